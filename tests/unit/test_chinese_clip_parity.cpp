// Chinese-CLIP parity against the Hugging Face ChineseCLIPModel outputs in
// tests/fixtures/chinese_clip (bars from the fixtures' README: 1e-4 on hidden
// states and features, 5e-5 on normalised embeddings, 1e-4 * exp(logit_scale) on logits).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/model_folder.h"
#include "mmfuse/embedder.h"
#include "models/chinese_clip.h"
#include "models/zero_shot.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::fixture;
using test::max_abs_diff;
using test::Reference;

constexpr size_t kTexts = 8, kImages = 3, kLen = 52;
const char* const kImageFiles[] = {"img0_photo_640x480_rgb.jpg", "img1_portrait_480x640_rgb.png",
                                   "img3_wide_100x37_rgb.png"};

class ChineseClipParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = ChineseClipModel::load(fixture("chinese_clip/models/chinese-clip-tiny-p16")).release();
    ref_ = new Reference(fixture("chinese_clip/outputs/chinese-clip-tiny-p16/outputs.safetensors"));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete ref_;
  }
  static TokenBatch tokens() {
    TokenBatch batch;
    const std::vector<int64_t> ids = ref_->i64("input_ids"), mask = ref_->i64("attention_mask"),
                               types = ref_->i64("token_type_ids");
    for (size_t b = 0; b < kTexts; ++b) {
      auto row = [&](const std::vector<int64_t>& v) {
        return std::vector<int64_t>(v.begin() + static_cast<long>(b * kLen),
                                    v.begin() + static_cast<long>((b + 1) * kLen));
      };
      batch.input_ids.push_back(row(ids));
      batch.attention_mask.push_back(row(mask));
      batch.token_type_ids.push_back(row(types));
    }
    return batch;
  }
  static std::vector<std::string> texts() {
    return read_json_file(fixture("chinese_clip/outputs/chinese-clip-tiny-p16/outputs.json"))
        .at("texts")
        .get<std::vector<std::string>>();
  }
  static ChineseClipModel* model_;
  static Reference* ref_;
};
ChineseClipModel* ChineseClipParity::model_ = nullptr;
Reference* ChineseClipParity::ref_ = nullptr;

TEST_F(ChineseClipParity, ConfigAndLogitScale) {
  EXPECT_EQ(model_->dim(), 16);
  EXPECT_EQ(model_->config().text.hidden_size, 32);
  EXPECT_EQ(model_->config().vision.patch_size, 16);
  EXPECT_EQ(model_->context_length(), 52u);
  EXPECT_NEAR(model_->logit_scale(), std::exp(ref_->f32("logit_scale")[0]), 1e-5);
}

TEST_F(ChineseClipParity, TextTowerAndFeaturesMatch) {
  TowerTrace trace;
  trace.keep_hidden_states = true;
  trace.keep_last_hidden_state = true;
  std::vector<float> f = model_->text_features(tokens(), &trace);
  ASSERT_EQ(trace.hidden_states.size(), 3u);
  double worst = 0;
  for (size_t k = 0; k < 3; ++k) {
    const double e = max_abs_diff(trace.hidden_states[k],
                                  ref_->f32("text_hidden_states_input0_layer" + std::to_string(k)));
    worst = std::max(worst, e);
    EXPECT_LE(e, 1e-4) << "layer " << k;
  }
  EXPECT_LE(max_abs_diff(trace.last_hidden_state, ref_->f32("text_last_hidden_state")), 1e-4);
  const double raw = max_abs_diff(f, ref_->f32("text_embeds_unnormalized"));
  EXPECT_LE(raw, 1e-4);
  // The fast path (last layer for [CLS] only) and the texts end to end agree.
  EXPECT_LE(max_abs_diff(model_->text_features(tokens()), ref_->f32("text_embeds_unnormalized")),
            1e-4);
  std::vector<float> from_texts = model_->text_features(texts());
  EXPECT_LE(max_abs_diff(from_texts, ref_->f32("text_embeds_unnormalized")), 1e-4);
  l2_normalize_rows(f.data(), kTexts, 16);
  const double normed = max_abs_diff(f, ref_->f32("text_embeds"));
  EXPECT_LE(normed, 5e-5);
  std::printf("[parity] chinese-clip text: hidden states %.2e, features %.2e, normalised %.2e\n",
              worst, raw, normed);
}

TEST_F(ChineseClipParity, ImageTowerAndFeaturesMatch) {
  const std::vector<float> pixels = ref_->f32("pixel_values");
  TowerTrace trace;
  trace.keep_hidden_states = true;
  trace.keep_last_hidden_state = true;
  std::vector<float> f = model_->image_features(pixels.data(), kImages, &trace);
  double worst = 0;
  for (size_t k = 0; k < trace.hidden_states.size(); ++k) {
    const double e = max_abs_diff(
        trace.hidden_states[k], ref_->f32("vision_hidden_states_image0_layer" + std::to_string(k)));
    worst = std::max(worst, e);
    EXPECT_LE(e, 1e-4) << "layer " << k;
  }
  const std::vector<float> first2 = ref_->f32("vision_last_hidden_state_first2");
  EXPECT_LE(max_abs_diff(trace.last_hidden_state.data(), first2.data(), first2.size()), 1e-4);
  const double raw = max_abs_diff(f, ref_->f32("image_embeds_unnormalized"));
  EXPECT_LE(raw, 1e-4);
  EXPECT_LE(max_abs_diff(model_->image_features(pixels.data(), kImages),
                         ref_->f32("image_embeds_unnormalized")),
            1e-4);
  l2_normalize_rows(f.data(), kImages, 16);
  const double normed = max_abs_diff(f, ref_->f32("image_embeds"));
  EXPECT_LE(normed, 5e-5);
  std::printf("[parity] chinese-clip image: hidden states %.2e, features %.2e, normalised %.2e\n",
              worst, raw, normed);
}

TEST_F(ChineseClipParity, EndToEndFromFilesThroughThePublicApi) {
  auto e = Embedder::open(fixture("chinese_clip/models/chinese-clip-tiny-p16").string());
  EXPECT_TRUE(e->embeds_images());
  std::vector<std::string> paths;
  for (const char* f : kImageFiles) paths.push_back(fixture(std::string("images/") + f).string());
  const auto images = e->embed_image_files(paths);
  const auto text = e->embed_texts(texts());
  const std::vector<float> ref_images = ref_->f32("image_embeds"),
                           ref_text = ref_->f32("text_embeds");
  const std::vector<float> ref_logits = ref_->f32("logits_per_image");
  double worst_cos = 1, worst_text = 0, worst_logit = 0;
  for (size_t i = 0; i < kImages; ++i) {
    worst_cos = std::min(worst_cos, test::cosine(images[i].data(), ref_images.data() + i * 16, 16));
    for (size_t t = 0; t < kTexts; ++t) {
      double dot = 0;
      for (size_t d = 0; d < 16; ++d) dot += static_cast<double>(images[i][d]) * text[t][d];
      worst_logit = std::max(worst_logit,
                             std::fabs(model_->logit_scale() * dot - ref_logits[i * kTexts + t]));
    }
  }
  for (size_t t = 0; t < kTexts; ++t)
    worst_text = std::max(worst_text, max_abs_diff(text[t].data(), ref_text.data() + t * 16, 16));
  EXPECT_GE(worst_cos, 0.999);
  EXPECT_LE(worst_text, 5e-5);
  EXPECT_LE(worst_logit, 1e-4 * model_->logit_scale());
  std::printf("[parity] chinese-clip from files: image cosine min %.9f, text %.2e, logits %.2e\n",
              worst_cos, worst_text, worst_logit);
}

TEST_F(ChineseClipParity, ClassifyMatchesReferenceSoftmax) {
  auto e = Embedder::open(fixture("chinese_clip/models/chinese-clip-tiny-p16").string());
  EXPECT_EQ(e->default_prompt_template(), "一张{}的照片。");
  const std::vector<std::string> labels = texts();
  const auto scores =
      e->classify(fixture(std::string("images/") + kImageFiles[0]).string(), labels, "{}");
  ASSERT_EQ(scores.size(), kTexts);
  const std::vector<float> logits = ref_->f32("logits_per_image");
  double max = -1e300, sum = 0, total = 0, worst = 0;
  for (size_t t = 0; t < kTexts; ++t) max = std::max(max, static_cast<double>(logits[t]));
  for (size_t t = 0; t < kTexts; ++t) sum += std::exp(logits[t] - max);
  for (size_t k = 0; k < scores.size(); ++k) {
    if (k > 0) {
      EXPECT_GE(scores[k - 1].score, scores[k].score);
    }
    const size_t t = static_cast<size_t>(std::find(labels.begin(), labels.end(), scores[k].label) -
                                         labels.begin());
    ASSERT_LT(t, kTexts);
    worst = std::max(worst, std::fabs(scores[k].score - std::exp(logits[t] - max) / sum));
    total += scores[k].score;
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  EXPECT_LE(worst, 1e-4);
}

TEST(ChineseClipModel, ConfigErrorsNameTheField) {
  EXPECT_THROW(ChineseClipConfig::from_json(nlohmann::json{{"model_type", "clip"}}, "cfg"), Error);
  try {
    ChineseClipConfig::from_json(
        nlohmann::json{{"model_type", "chinese_clip"}, {"text_config", {{"hidden_size", -1}}}},
        "cfg");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos) << e.what();
  }
  EmbedOptions pooled;
  pooled.pooling = "mean";
  auto e = Embedder::open(fixture("chinese_clip/models/chinese-clip-tiny-p16").string());
  EXPECT_THROW(e->embed_texts({"猫"}, pooled), Error);
}

}  // namespace
}  // namespace mmfuse
