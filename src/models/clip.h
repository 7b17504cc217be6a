// CLIP (Radford et al. 2021) as Hugging Face's CLIPModel computes it: a causal
// text transformer pooled at the end-of-text token, a ViT pooled at the class
// token, and linear projections into one shared embedding space.
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/clip_config.h"
#include "models/dual_encoder.h"
#include "models/transformer.h"
#include "text/clip_tokenizer.h"
#include "vision/image.h"
#include "vision/image_processor.h"

namespace mmfuse {

class ClipTextTower {
 public:
  ClipTextTower(WeightStore& store, const ClipTextConfig& config, const std::string& prefix);
  // Pooled output (final_layer_norm at the pooling position), [batch, hidden].
  // Only positions up to the pooling position are computed (the attention is
  // causal, so later ones cannot change the result) unless the trace asks for
  // the last hidden state, which is then computed over all positions.
  std::vector<float> forward(ThreadPool& pool, const TokenBatch& tokens,
                             TowerTrace* trace = nullptr) const;
  // The position whose output is pooled, as the reference picks it.
  size_t pooling_position(const std::vector<int64_t>& ids) const;
  const ClipTextConfig& config() const { return config_; }

 private:
  ClipTextConfig config_;
  const float* token_embedding_ = nullptr;     // [vocab, hidden]
  const float* position_embedding_ = nullptr;  // [max_positions, hidden]
  std::vector<EncoderLayer> layers_;
  LayerNormWeights final_layer_norm_;
};

class ClipVisionTower {
 public:
  ClipVisionTower(WeightStore& store, const ClipVisionConfig& config, const std::string& prefix);
  // pixel_values: [batch, 3, image_size, image_size]. Returns post_layernorm of
  // the class token, [batch, hidden]. The trace's last_hidden_state is the
  // encoder output before post_layernorm.
  std::vector<float> forward(ThreadPool& pool, const float* pixel_values, size_t batch,
                             TowerTrace* trace = nullptr) const;
  // HF's output_hidden_states[k] for every input, [batch, tokens, hidden]: the
  // embeddings after pre_layrnorm (k = 0), then after each of k encoder layers
  // (no post_layernorm). Only the first k layers run (LLaVA's feature layer).
  std::vector<float> hidden_states_at(ThreadPool& pool, const float* pixel_values, size_t batch,
                                      int k) const;
  // A copy sharing these weights except the linear layers named in `weights`
  // (path under the tower, e.g. "encoder.layers.0.self_attn.q_proj"), which
  // use the given float32 [out, in] matrices instead: a LoRA-merged tower per
  // adapter without a second copy of the rest. The caller keeps them alive.
  ClipVisionTower with_linear_weights(const std::map<std::string, const float*>& weights) const;
  const ClipVisionConfig& config() const { return config_; }

 private:
  // Patch embedding + class token + positions, then pre_layrnorm: [batch, tokens, hidden].
  std::vector<float> embed(ThreadPool& pool, const float* pixel_values, size_t batch) const;

  ClipVisionConfig config_;
  const float* class_embedding_ = nullptr;     // [hidden]
  Linear patch_embedding_;                     // conv weight [hidden, 3*P*P], no bias
  const float* position_embedding_ = nullptr;  // [positions, hidden]
  LayerNormWeights pre_layernorm_;
  std::vector<EncoderLayer> layers_;
  LayerNormWeights post_layernorm_;
};

// Loads the layer `prefix.layers.{i}` of a CLIP-style encoder.
EncoderLayer load_clip_encoder_layer(WeightStore& store, const std::string& prefix, int hidden,
                                     int intermediate, int heads, float eps, Activation act);

class ClipModel final : public DualEncoder {
 public:
  // Loads config.json, the weights, the tokenizer and (if present)
  // preprocessor_config.json from a Hugging Face CLIP folder.
  // Computes on `pool` (shared with others) or, when null, on a pool of its own.
  // `precision`: the encoder layers' arithmetic (--dtype; the projections stay f32).
  static std::unique_ptr<ClipModel> load(const std::filesystem::path& dir,
                                         std::shared_ptr<ThreadPool> pool = nullptr,
                                         Precision precision = Precision::f32);

  const std::string& name() const override { return name_; }
  int dim() const override { return config_.projection_dim; }
  const ClipConfig& config() const { return config_; }
  // exp(logit_scale): the temperature of zero-shot classification logits.
  float logit_scale() const override { return logit_scale_; }
  ThreadPool& pool() const override { return *pool_; }
  size_t weight_bytes() const override { return store_->total_bytes(); }
  const ClipTokenizer& tokenizer() const { return *tokenizer_; }
  const ImageProcessorConfig& image_processor() const;

  // Projected features before L2 normalisation ([batch, dim]), as HF's
  // get_text_features / get_image_features.
  std::vector<float> text_features(const TokenBatch& tokens,
                                   TowerTrace* trace = nullptr) const override;
  std::vector<float> image_features(const float* pixel_values, size_t batch,
                                    TowerTrace* trace = nullptr) const override;
  // CLIP rows are always padded (the pooling position is found either way).
  TokenBatch tokenize(const std::vector<std::string>& texts, bool) const override {
    return tokenizer_->encode_batch(texts, context_length());
  }
  int image_size() const override { return config_.vision.image_size; }
  std::vector<float> text_features(const std::vector<std::string>& texts) const override;
  std::vector<float> image_features(const std::vector<Image>& images) const override;

  // Texts are tokenised to this length (max_position_embeddings).
  size_t context_length() const {
    return static_cast<size_t>(config_.text.max_position_embeddings);
  }
  size_t count_text_tokens(const std::string& text) const override {
    return std::min(tokenizer().encode(text).size(), context_length());
  }

 private:
  ClipModel() = default;
  std::shared_ptr<ThreadPool> pool_;
  std::string name_;
  ClipConfig config_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<ClipTokenizer> tokenizer_;
  std::unique_ptr<ImageProcessorConfig> image_processor_;
  std::filesystem::path dir_;
  std::unique_ptr<ClipTextTower> text_;
  std::unique_ptr<ClipVisionTower> vision_;
  Linear text_projection_, visual_projection_;
  float logit_scale_ = 1.0f;
};

// dir/preprocessor_config.json (null when absent), checked to produce the
// image_size x image_size pixel_values the vision tower takes.
std::unique_ptr<ImageProcessorConfig> load_image_processor(const std::filesystem::path& dir,
                                                           int image_size);

// Scales each row of x[rows, dim] to unit L2 norm (rows of zeros stay zero).
void l2_normalize_rows(float* x, size_t rows, size_t dim);

}  // namespace mmfuse
