// CLIP parity against the Hugging Face reference outputs in tests/fixtures/clip
// (bars from the fixtures' README: 1e-4 on hidden states and features, 5e-5 on
// normalised embeddings, 1e-4 * exp(logit_scale) on logits).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/model_folder.h"
#include "models/clip.h"
#include "models/zero_shot.h"
#include "test_util.h"
#include "vision/image.h"

namespace mmfuse {
namespace {

using test::fixture;
using test::max_abs_diff;
using test::Reference;

const char* const kModels[] = {"clip-tiny-quickgelu-p32", "clip-tiny-quickgelu-p32-f16",
                               "clip-tiny-gelu-p16"};
constexpr size_t kInputs = 8;

class ClipParity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    name_ = GetParam();
    model_ = ClipModel::load(fixture("clip/models/" + name_));
    ref_ = std::make_unique<Reference>(fixture("clip/outputs/" + name_ + "/outputs.safetensors"));
    pixels_ = std::make_unique<Reference>(fixture("clip/preprocess/pixel_values.safetensors"));
  }

  TokenBatch reference_tokens() const {
    TokenBatch batch;
    std::vector<int64_t> ids = ref_->i64("input_ids"), mask = ref_->i64("attention_mask");
    const size_t len = ids.size() / kInputs;
    for (size_t b = 0; b < kInputs; ++b) {
      batch.input_ids.emplace_back(ids.begin() + static_cast<long>(b * len),
                                   ids.begin() + static_cast<long>((b + 1) * len));
      batch.attention_mask.emplace_back(mask.begin() + static_cast<long>(b * len),
                                        mask.begin() + static_cast<long>((b + 1) * len));
    }
    return batch;
  }

  std::vector<float> reference_pixels() const {
    std::vector<float> all;
    for (size_t i = 0; i < kInputs; ++i) {
      std::vector<float> one = pixels_->f32("pixel_values_" + std::to_string(i));
      all.insert(all.end(), one.begin(), one.end());
    }
    return all;
  }

  std::string name_;
  std::unique_ptr<ClipModel> model_;
  std::unique_ptr<Reference> ref_, pixels_;
};

TEST_P(ClipParity, LogitScale) {
  EXPECT_NEAR(model_->logit_scale(), std::exp(ref_->f32("logit_scale")[0]), 1e-5);
}

TEST_P(ClipParity, TokenizerGivesReferenceInputIds) {
  nlohmann::json outputs = read_json_file(fixture("clip/outputs/" + name_ + "/outputs.json"));
  std::vector<std::string> texts = outputs["texts"].get<std::vector<std::string>>();
  ASSERT_EQ(texts.size(), kInputs);
  TokenBatch ours = model_->tokenizer().encode_batch(texts, model_->context_length());
  TokenBatch expected = reference_tokens();
  EXPECT_EQ(ours.input_ids, expected.input_ids);
  EXPECT_EQ(ours.attention_mask, expected.attention_mask);
}

TEST_P(ClipParity, TextFeaturesMatch) {
  const TokenBatch tokens = reference_tokens();
  std::vector<float> features = model_->text_features(tokens);
  const double raw = max_abs_diff(features, ref_->f32("text_embeds_unnormalized"));
  EXPECT_LE(raw, 1e-4);
  l2_normalize_rows(features.data(), kInputs, static_cast<size_t>(model_->dim()));
  const double normed = max_abs_diff(features, ref_->f32("text_embeds"));
  EXPECT_LE(normed, 5e-5);
  std::printf("[parity] %-28s text  features max abs %.2e, normalised %.2e\n", name_.c_str(), raw, normed);
}

TEST_P(ClipParity, TextHiddenStatesMatch) {
  const TokenBatch tokens = reference_tokens();
  TowerTrace trace;
  trace.keep_hidden_states = true;
  trace.keep_last_hidden_state = true;
  std::vector<float> features = model_->text_features(tokens, &trace);
  EXPECT_LE(max_abs_diff(features, ref_->f32("text_embeds_unnormalized")), 1e-4);
  ASSERT_EQ(trace.hidden_states.size(), static_cast<size_t>(model_->config().text.num_hidden_layers + 1));
  for (size_t k = 0; k < trace.hidden_states.size(); ++k)
    EXPECT_LE(max_abs_diff(trace.hidden_states[k],
                           ref_->f32("text_hidden_states_input0_layer" + std::to_string(k))),
              1e-4)
        << "layer " << k;
  std::vector<float> first2 = ref_->f32("text_last_hidden_state_first2");
  ASSERT_GE(trace.last_hidden_state.size(), first2.size());
  EXPECT_LE(max_abs_diff(trace.last_hidden_state.data(), first2.data(), first2.size()), 1e-4);
}

TEST_P(ClipParity, ImageFeaturesMatch) {
  const std::vector<float> pixels = reference_pixels();
  TowerTrace trace;
  trace.keep_hidden_states = true;
  trace.keep_last_hidden_state = true;
  std::vector<float> features = model_->image_features(pixels.data(), kInputs, &trace);
  const double raw = max_abs_diff(features, ref_->f32("image_embeds_unnormalized"));
  EXPECT_LE(raw, 1e-4);
  double worst_hidden = 0;
  for (size_t k = 0; k < trace.hidden_states.size(); ++k) {
    const double e = max_abs_diff(trace.hidden_states[k],
                                  ref_->f32("vision_hidden_states_image0_layer" + std::to_string(k)));
    worst_hidden = std::max(worst_hidden, e);
    EXPECT_LE(e, 1e-4) << "layer " << k;
  }
  std::vector<float> first2 = ref_->f32("vision_last_hidden_state_first2");
  EXPECT_LE(max_abs_diff(trace.last_hidden_state.data(), first2.data(), first2.size()), 1e-4);
  l2_normalize_rows(features.data(), kInputs, static_cast<size_t>(model_->dim()));
  const double normed = max_abs_diff(features, ref_->f32("image_embeds"));
  EXPECT_LE(normed, 5e-5);
  std::printf("[parity] %-28s image features max abs %.2e, normalised %.2e, hidden states %.2e\n",
              name_.c_str(), raw, normed, worst_hidden);
}

TEST_P(ClipParity, LogitsAndZeroShotProbabilitiesMatch) {
  const size_t dim = static_cast<size_t>(model_->dim());
  const std::vector<float> pixels = reference_pixels();
  std::vector<float> image = model_->image_features(pixels.data(), kInputs);
  std::vector<float> text = model_->text_features(reference_tokens());
  std::vector<float> ref_logits = ref_->f32("logits_per_image");
  std::vector<float> image_n = image, text_n = text;
  l2_normalize_rows(image_n.data(), kInputs, dim);
  l2_normalize_rows(text_n.data(), kInputs, dim);
  double worst_logit = 0, worst_prob = 0;
  for (size_t i = 0; i < kInputs; ++i) {
    for (size_t t = 0; t < kInputs; ++t) {
      float dot = 0;
      for (size_t d = 0; d < dim; ++d) dot += image_n[i * dim + d] * text_n[t * dim + d];
      worst_logit = std::max(
          worst_logit, static_cast<double>(std::fabs(model_->logit_scale() * dot - ref_logits[i * kInputs + t])));
    }
    // Reference probabilities: softmax over the reference logits of this image.
    std::vector<double> ref_prob(kInputs);
    double max = -1e300, sum = 0;
    for (size_t t = 0; t < kInputs; ++t) max = std::max(max, static_cast<double>(ref_logits[i * kInputs + t]));
    for (size_t t = 0; t < kInputs; ++t) sum += ref_prob[t] = std::exp(ref_logits[i * kInputs + t] - max);
    std::vector<float> probs =
        zero_shot_probabilities(image.data() + i * dim, text.data(), kInputs, dim, model_->logit_scale());
    for (size_t t = 0; t < kInputs; ++t)
      worst_prob = std::max(worst_prob, std::fabs(static_cast<double>(probs[t]) - ref_prob[t] / sum));
  }
  EXPECT_LE(worst_logit, 1e-4 * model_->logit_scale());
  EXPECT_LE(worst_prob, 1e-4);
  std::printf("[parity] %-28s logits max abs %.2e, zero-shot probabilities %.2e\n", name_.c_str(),
              worst_logit, worst_prob);
}

TEST_P(ClipParity, EndToEndFromImageFiles) {
  const char* const files[] = {"img0_photo_640x480_rgb.jpg",  "img1_portrait_480x640_rgb.png",
                               "img2_square_224x224_rgb.png", "img3_wide_100x37_rgb.png",
                               "img4_pixel_1x1_rgb.png",      "img5_gray_320x240_L.png",
                               "img6_alpha_300x200_RGBA.png", "img7_palette_256x256_P.png"};
  std::vector<Image> images;
  for (const char* f : files) images.push_back(decode_image_file(fixture(std::string("images/") + f)));
  std::vector<float> features = model_->image_features(images);
  std::vector<float> ref = ref_->f32("image_embeds_unnormalized");
  const size_t dim = static_cast<size_t>(model_->dim());
  double worst = 1.0;
  for (size_t i = 0; i < kInputs; ++i) {
    const double c = test::cosine(features.data() + i * dim, ref.data() + i * dim, dim);
    worst = std::min(worst, c);
    EXPECT_GE(c, 0.9999) << files[i];
  }
  std::printf("[parity] %-28s end-to-end image cosine min %.9f\n", name_.c_str(), worst);
}

TEST_P(ClipParity, TextTruncationAtEndOfTextChangesNothing) {
  // Pooling only needs positions up to the end-of-text token; the full computation must agree.
  const TokenBatch tokens = reference_tokens();
  TowerTrace full;
  full.keep_last_hidden_state = true;
  std::vector<float> a = model_->text_features(tokens, &full);
  std::vector<float> b = model_->text_features(tokens);
  EXPECT_LE(max_abs_diff(a, b), 1e-5);
}

TEST_P(ClipParity, BatchOfOneEqualsBatched) {
  const std::vector<float> pixels = reference_pixels();
  std::vector<float> all = model_->image_features(pixels.data(), kInputs);
  const size_t per = pixels.size() / kInputs, dim = static_cast<size_t>(model_->dim());
  for (size_t i = 0; i < kInputs; ++i) {
    std::vector<float> one = model_->image_features(pixels.data() + i * per, 1);
    EXPECT_LE(max_abs_diff(one.data(), all.data() + i * dim, dim), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ClipParity, ::testing::ValuesIn(kModels),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                           std::string n = param.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace mmfuse
