#include "models/zero_shot.h"

#include <algorithm>
#include <cmath>

#include "mmfuse/error.h"
#include "models/clip.h"

namespace mmfuse {

std::string apply_template(const std::string& templ, const std::string& label) {
  MMFUSE_CHECK(templ.find("{}") != std::string::npos, bad_input,
               "prompt template \"" + templ + "\" has no {} for the label");
  std::string out;
  for (size_t i = 0; i < templ.size();) {
    if (templ.compare(i, 2, "{}") == 0) {
      out += label;
      i += 2;
    } else {
      out += templ[i++];
    }
  }
  return out;
}

std::vector<float> zero_shot_probabilities(const float* image_features, const float* text_features,
                                           size_t labels, size_t dim, float logit_scale) {
  std::vector<float> image(image_features, image_features + dim);
  std::vector<float> texts(text_features, text_features + labels * dim);
  l2_normalize_rows(image.data(), 1, dim);
  l2_normalize_rows(texts.data(), labels, dim);
  std::vector<double> logits(labels);
  double max = -1e300;
  for (size_t l = 0; l < labels; ++l) {
    float dot = 0.0f;
    for (size_t i = 0; i < dim; ++i) dot += image[i] * texts[l * dim + i];
    logits[l] = static_cast<double>(logit_scale * dot);
    max = std::max(max, logits[l]);
  }
  double sum = 0.0;
  for (double& v : logits) sum += (v = std::exp(v - max));
  std::vector<float> probs(labels);
  for (size_t l = 0; l < labels; ++l) probs[l] = static_cast<float>(logits[l] / sum);
  return probs;
}

std::vector<ZeroShotScore> zero_shot_classify(const DualEncoder& model, const Image& image,
                                              const std::vector<std::string>& labels,
                                              const std::string& templ) {
  MMFUSE_CHECK(!labels.empty(), bad_input, "classify: give at least one label");
  std::vector<std::string> prompts;
  for (const auto& l : labels) prompts.push_back(apply_template(templ, l));
  const size_t dim = static_cast<size_t>(model.dim());
  std::vector<float> text = model.text_features(prompts);
  std::vector<float> img = model.image_features(std::vector<Image>{image});
  std::vector<float> probs = zero_shot_probabilities(img.data(), text.data(), labels.size(), dim,
                                                     model.logit_scale());
  std::vector<ZeroShotScore> scores;
  for (size_t l = 0; l < labels.size(); ++l) scores.push_back({labels[l], probs[l]});
  std::stable_sort(scores.begin(), scores.end(),
                   [](const ZeroShotScore& a, const ZeroShotScore& b) { return a.score > b.score; });
  return scores;
}

}  // namespace mmfuse
