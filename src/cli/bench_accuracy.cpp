#include "cli/bench_accuracy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>

#include "cli/common.h"
#include "core/precision.h"
#include "mmfuse/error.h"
#include "models/dual_encoder.h"
#include "models/registry.h"
#include "models/zero_shot.h"
#include "vision/image.h"

namespace mmfuse::cli {

namespace {

namespace fs = std::filesystem;

const char* const kTexts[] = {
    "a photo of a cat sitting on a red sofa in the living room",
    "an industrial pump with a rusty pipe and a leaking valve",
    "two people walking a dog along the beach at sunset",
    "a close-up photo of a printed circuit board with a burnt resistor",
    "a bus parked on a city street",
    "a plate of food with vegetables and rice",
    "a scratched steel surface under bright light",
    "a man playing tennis on a clay court",
    "an infrared image of an overheating transformer",
    "a bowl of fruit on a wooden table",
    "a crack in a concrete wall",
    "a red car driving on the highway at night",
    "a group of children playing football in a park",
    "a laptop and a cup of coffee on a desk",
    "a bird flying over the sea",
    "a snowy mountain under a blue sky",
};

// Zero-shot labels (put through the model's own template).
const char* const kLabels[] = {"cat",    "dog",       "bus",     "person",  "car",
                               "bird",   "food",      "pump",    "circuit", "crack",
                               "scratch", "mountain", "computer", "fruit",  "sea",
                               "tennis"};

// Smooth random scenes: a colour gradient, a few soft blobs and a little noise,
// so the towers see image-like statistics rather than white noise.
Image synthetic_image(std::mt19937& rng, int side) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  Image img;
  img.width = img.height = side;
  img.rgb.resize(static_cast<size_t>(side) * side * 3);
  float base[3], slope[3][2];
  for (int c = 0; c < 3; ++c) {
    base[c] = 255.0f * u(rng);
    slope[c][0] = 200.0f * (u(rng) - 0.5f);
    slope[c][1] = 200.0f * (u(rng) - 0.5f);
  }
  struct Blob {
    float x, y, r, colour[3];
  };
  std::vector<Blob> blobs(3 + static_cast<size_t>(4 * u(rng)));
  for (Blob& b : blobs) {
    b.x = u(rng), b.y = u(rng), b.r = 0.05f + 0.25f * u(rng);
    for (float& c : b.colour) c = 255.0f * u(rng);
  }
  std::normal_distribution<float> noise(0.0f, 6.0f);
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      const float fx = static_cast<float>(x) / side, fy = static_cast<float>(y) / side;
      for (int c = 0; c < 3; ++c) {
        float v = base[c] + slope[c][0] * fx + slope[c][1] * fy;
        for (const Blob& b : blobs) {
          const float d2 = (fx - b.x) * (fx - b.x) + (fy - b.y) * (fy - b.y);
          const float w = std::exp(-d2 / (b.r * b.r));
          v = v * (1.0f - w) + b.colour[c] * w;
        }
        v += noise(rng);
        img.rgb[(static_cast<size_t>(y) * side + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
      }
    }
  return img;
}

std::vector<std::string> image_files(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    if (!fs::is_directory(in)) {
      files.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(in)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() &&
          (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp"))
        found.push_back(e.path().string());
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

// Zero-shot logits of one image: logit_scale * cos(image, label) per label.
std::vector<double> zero_shot_logits(const float* image, const float* labels, size_t count,
                                     size_t dim, float logit_scale) {
  std::vector<double> out(count);
  for (size_t l = 0; l < count; ++l) out[l] = logit_scale * cosine(image, labels + l * dim, dim);
  return out;
}

double logit_error_quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::lround(q * static_cast<double>(v.size() - 1)))];
}

struct CosineStats {
  double min = 1.0, sum = 0.0;
  size_t count = 0;
  void add(double c) {
    min = std::min(min, c);
    sum += c;
    ++count;
  }
  Json json() const {
    return {{"count", count}, {"min", count ? min : 0.0}, {"mean", count ? sum / count : 0.0}};
  }
};

}  // namespace

void bench_accuracy(const AccuracyBenchOptions& opt) {
  const Precision precision = parse_precision(opt.dtype, "--dtype");
  const Precision effective = supported_precision(precision);
  const Architecture& arch =
      architecture_with(opt.model, Capability::embed_image, "be checked by bench --accuracy");
  auto reference = arch.open_dual_encoder(opt.model, command_pool(), Precision::f32);
  auto reduced = arch.open_dual_encoder(opt.model, command_pool(), effective);
  const size_t dim = static_cast<size_t>(reference->dim());

  std::vector<Image> images;
  std::vector<std::string> image_names;
  for (const std::string& f : image_files(opt.images)) {
    images.push_back(decode_image_file(f));
    image_names.push_back(f);
  }
  if (images.empty()) {
    std::mt19937 rng(20261207);
    for (int i = 0; i < opt.synthetic_images; ++i) {
      images.push_back(synthetic_image(rng, 256));
      image_names.push_back("synthetic:" + std::to_string(i));
    }
  }
  std::vector<std::string> texts = opt.texts;
  if (texts.empty()) texts.assign(std::begin(kTexts), std::end(kTexts));

  // Features one image / text at a time (what `embed` and the server compute).
  CosineStats image_cos, text_cos, prob_cos;
  std::vector<float> ref_images, red_images;
  for (const Image& img : images) {
    const std::vector<float> a = reference->image_features({img});
    const std::vector<float> b = reduced->image_features({img});
    image_cos.add(cosine(a.data(), b.data(), dim));
    ref_images.insert(ref_images.end(), a.begin(), a.end());
    red_images.insert(red_images.end(), b.begin(), b.end());
  }
  for (const std::string& t : texts) {
    const std::vector<float> a = reference->text_features({t});
    const std::vector<float> b = reduced->text_features({t});
    text_cos.add(cosine(a.data(), b.data(), dim));
  }

  // Zero-shot: each model with its own label prompts.
  std::vector<std::string> prompts;
  for (const char* label : kLabels)
    prompts.push_back(apply_template(reference->default_prompt_template(), label));
  const std::vector<float> ref_labels = reference->text_features(prompts);
  const std::vector<float> red_labels = reduced->text_features(prompts);
  size_t agree = 0;
  // Random-weight models put many images on near-ties between two labels,
  // where any rounding flips the top-1; a flip there says nothing about the
  // dtype. So every flip is listed with the f32 logit gap between its top two
  // labels (ln p1 / p2), and agreement is also given over the images whose
  // gap is at least kGaps[g] (int8's embedding error, cosine ~0.9999, moves a
  // logit by a few hundredths on average).
  constexpr double kGaps[] = {0.05, 0.1, 0.5};
  size_t decided[3] = {}, decided_agree[3] = {};
  Json flips = Json::array();
  // The reduced dtype's own logit error per image (largest |logit - f32 logit|
  // over the labels) and the f32 margin between the top two labels. An image
  // whose margin is below twice the error is a near-tie: rounding alone can
  // swap its top two, so it says little about the dtype.
  std::vector<double> logit_error(images.size()), margin(images.size());
  std::vector<bool> agrees(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const std::vector<float> p = zero_shot_probabilities(
        ref_images.data() + i * dim, ref_labels.data(), prompts.size(), dim, reference->logit_scale());
    const std::vector<float> q = zero_shot_probabilities(
        red_images.data() + i * dim, red_labels.data(), prompts.size(), dim, reduced->logit_scale());
    prob_cos.add(cosine(p.data(), q.data(), p.size()));
    const auto top_p = std::max_element(p.begin(), p.end()) - p.begin();
    const auto top_q = std::max_element(q.begin(), q.end()) - q.begin();
    if (top_p == top_q) ++agree;
    agrees[i] = top_p == top_q;
    {
      const std::vector<double> a = zero_shot_logits(ref_images.data() + i * dim, ref_labels.data(),
                                                     prompts.size(), dim, reference->logit_scale());
      const std::vector<double> b = zero_shot_logits(red_images.data() + i * dim, red_labels.data(),
                                                     prompts.size(), dim, reduced->logit_scale());
      double err = 0.0;
      for (size_t l = 0; l < a.size(); ++l) err = std::max(err, std::abs(a[l] - b[l]));
      logit_error[i] = err;
      std::vector<double> top = a;
      std::partial_sort(top.begin(), top.begin() + std::min<size_t>(2, top.size()), top.end(),
                        std::greater<double>());
      margin[i] = top.size() < 2 ? 1e9 : top[0] - top[1];
    }
    std::vector<float> sorted = p;
    std::partial_sort(sorted.begin(), sorted.begin() + std::min<size_t>(2, sorted.size()),
                      sorted.end(), std::greater<float>());
    const double gap = sorted.size() < 2 || sorted[1] <= 0.0f
                           ? 1e9
                           : std::log(static_cast<double>(sorted[0]) / sorted[1]);
    for (size_t g = 0; g < 3; ++g) {
      if (gap < kGaps[g]) continue;
      ++decided[g];
      if (top_p == top_q) ++decided_agree[g];
    }
    if (top_p != top_q)
      flips.push_back({{"image", image_names[i]}, {"f32_top2_logit_gap", gap}});
  }
  Json by_gap = Json::array();
  for (size_t g = 0; g < 3; ++g)
    by_gap.push_back({{"min_f32_logit_gap", kGaps[g]},
                      {"images", decided[g]},
                      {"agreement", decided[g] ? static_cast<double>(decided_agree[g]) / decided[g]
                                               : 0.0}});
  const double agreement = images.empty() ? 0.0 : static_cast<double>(agree) / images.size();
  // Agreement over the images whose f32 margin exceeds twice the measured
  // logit error (the median and the largest over the set), near-ties apart.
  // Beyond twice the largest error a flip cannot happen: that row shows how
  // many images are decided at all; the median row is the informative one.
  const Json error_stats = {{"median", logit_error_quantile(logit_error, 0.5)},
                            {"p95", logit_error_quantile(logit_error, 0.95)},
                            {"max", logit_error_quantile(logit_error, 1.0)}};
  Json beyond_error = Json::array();
  for (const char* which : {"median", "max"}) {
    const double min_margin = 2.0 * error_stats[which].get<double>();
    size_t decided_n = 0, decided_ok = 0, ties = 0, ties_ok = 0;
    for (size_t i = 0; i < images.size(); ++i) {
      if (margin[i] > min_margin) {
        ++decided_n;
        decided_ok += agrees[i] ? 1 : 0;
      } else {
        ++ties;
        ties_ok += agrees[i] ? 1 : 0;
      }
    }
    beyond_error.push_back(
        {{"f32_margin_over", std::string("2x ") + which + " logit error"},
         {"min_f32_margin", min_margin},
         {"images", decided_n},
         {"agreement", decided_n ? static_cast<double>(decided_ok) / decided_n : 0.0},
         {"near_ties", ties},
         {"near_tie_agreement", ties ? static_cast<double>(ties_ok) / ties : 0.0}});
  }

  Json result = {{"model", reference->name()},
                 {"dtype", to_string(precision)},
                 {"dtype_run", to_string(effective)},
                 {"isa", compute_isa()},
                 {"images", images.size()},
                 {"image_source", opt.images.empty() ? "synthetic" : "files"},
                 {"texts", texts.size()},
                 {"image_cosine", image_cos.json()},
                 {"text_cosine", text_cos.json()},
                 {"zero_shot_labels", prompts.size()},
                 {"zero_shot_top1_agreement", agreement},
                 {"zero_shot_agreement_by_gap", by_gap},
                 {"zero_shot_logit_error", error_stats},
                 {"zero_shot_agreement_beyond_error", beyond_error},
                 {"zero_shot_flips", flips},
                 {"zero_shot_probability_cosine", prob_cos.json()}};
  if (opt.json) {
    print_json(result);
    return;
  }
  std::printf(
      "model %s, %s against f32 (%s, runs as %s)\n  image cosine  min %.5f  mean %.5f  (%zu "
      "images, %s)\n  text cosine   min %.5f  mean %.5f  (%zu texts)\n  zero-shot top-1 "
      "agreement %.1f %% over %zu labels\n",
      reference->name().c_str(), to_string(precision), compute_isa(), to_string(effective),
      image_cos.min, image_cos.sum / std::max<size_t>(1, image_cos.count), images.size(),
      opt.images.empty() ? "synthetic" : "files", text_cos.min,
      text_cos.sum / std::max<size_t>(1, text_cos.count), texts.size(), 100.0 * agreement,
      prompts.size());
  for (const Json& g : by_gap)
    std::printf("    over images whose f32 top-2 logit gap >= %.2f: %.1f %% of %zu\n",
                g["min_f32_logit_gap"].get<double>(), 100.0 * g["agreement"].get<double>(),
                g["images"].get<size_t>());
  std::printf("    logit error (|int8 - f32| per image, largest label): median %.4f  p95 %.4f  "
              "max %.4f\n",
              error_stats["median"].get<double>(), error_stats["p95"].get<double>(),
              error_stats["max"].get<double>());
  for (const Json& g : beyond_error)
    std::printf("    over images whose f32 top-2 margin > %s (%.4f): %.1f %% of %zu; near-ties "
                "%zu (%.1f %% agree)\n",
                g["f32_margin_over"].get<std::string>().c_str(), g["min_f32_margin"].get<double>(),
                100.0 * g["agreement"].get<double>(), g["images"].get<size_t>(),
                g["near_ties"].get<size_t>(), 100.0 * g["near_tie_agreement"].get<double>());
  for (const Json& f : flips)
    std::printf("    flipped: %s (f32 top-2 logit gap %.4f)\n",
                f["image"].get<std::string>().c_str(), f["f32_top2_logit_gap"].get<double>());
}

}  // namespace mmfuse::cli
