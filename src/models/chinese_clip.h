// Chinese-CLIP (Yang et al. 2022) as Hugging Face's ChineseCLIPModel computes
// it: a BERT text tower read at [CLS] (no pooler, no final LayerNorm) and a
// CLIP ViT image tower, each projected into one shared space, with CLIP's
// logit_scale. Both towers are the shared blocks (BertEncoder, ClipVisionTower).
#pragma once

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "models/bert.h"
#include "models/clip.h"
#include "models/dual_encoder.h"

namespace mmfuse {

struct ChineseClipConfig {
  BertConfig text;  // text_config (ChineseCLIPTextConfig defaults)
  ClipVisionConfig vision;
  int projection_dim = 512;

  // Parses a ChineseCLIPModel config.json (model_type "chinese_clip").
  static ChineseClipConfig from_json(const nlohmann::json& config, const std::string& where);
};

class ChineseClipModel final : public DualEncoder {
 public:
  // Loads config.json, the weights, vocab.txt (+ tokenizer files) and
  // preprocessor_config.json (when present) from a Hugging Face folder.
  // Computes on `pool` (shared with others) or, when null, on a pool of its own.
  // `precision`: the encoder layers' arithmetic (--dtype; the projections stay f32).
  static std::unique_ptr<ChineseClipModel> load(const std::filesystem::path& dir,
                                                std::shared_ptr<ThreadPool> pool = nullptr,
                                                Precision precision = Precision::f32);

  const std::string& name() const override { return name_; }
  int dim() const override { return config_.projection_dim; }
  const ChineseClipConfig& config() const { return config_; }
  float logit_scale() const override { return logit_scale_; }  // exp of the stored parameter
  ThreadPool& pool() const override { return *pool_; }
  const WordPieceTokenizer& tokenizer() const { return *tokenizer_; }
  const ImageProcessorConfig& image_processor() const;
  size_t weight_bytes() const override { return store_->total_bytes(); }
  // Texts are cut to Chinese-CLIP's context length, 52 tokens with [CLS]/[SEP]
  // (cn_clip's default, and what the reference outputs use).
  static constexpr size_t kContextLength = 52;
  size_t context_length() const;
  size_t count_text_tokens(const std::string& text) const override {
    return std::min(tokenizer().encode(text).size(), context_length());
  }

  // Projected features before L2 normalisation ([batch, dim]), as HF's
  // get_text_features (text_projection(last_hidden_state[:, 0])) /
  // get_image_features (visual_projection(post_layernorm(CLS))).
  std::vector<float> text_features(const TokenBatch& tokens,
                                   TowerTrace* trace = nullptr) const override;
  std::vector<float> image_features(const float* pixel_values, size_t batch,
                                    TowerTrace* trace = nullptr) const override;
  TokenBatch tokenize(const std::vector<std::string>& texts, bool pad) const override {
    return tokenizer_->encode_batch(texts, context_length(), pad);
  }
  int image_size() const override { return config_.vision.image_size; }
  std::vector<float> text_features(const std::vector<std::string>& texts) const override;
  std::vector<float> image_features(const std::vector<Image>& images) const override;
  // Chinese-CLIP's own zero-shot prompt ("a photo of {}" in Chinese).
  std::string default_prompt_template() const override { return "一张{}的照片。"; }

 private:
  ChineseClipModel() = default;
  std::shared_ptr<ThreadPool> pool_;
  std::string name_;
  ChineseClipConfig config_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<WordPieceTokenizer> tokenizer_;
  std::unique_ptr<ImageProcessorConfig> image_processor_;
  std::filesystem::path dir_;
  std::unique_ptr<BertEncoder> text_;
  std::unique_ptr<ClipVisionTower> vision_;
  Linear text_projection_, visual_projection_;
  float logit_scale_ = 1.0f;
};

}  // namespace mmfuse
