// The BLIP-2 vision tower (transformers 4.44 Blip2VisionModel, an EVA-style
// ViT): patch embedding (with bias) + class token + positions, pre-LN encoder
// layers whose attention is one fused `qkv` product, then post_layernorm over
// every token. Large linear weights stay in their stored type (F16 / BF16).
#pragma once

#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/blip2_config.h"
#include "models/transformer.h"

namespace mmfuse {

struct Blip2VisionOutput {
  std::vector<float> last_hidden_state;  // [batch, tokens, hidden], after post_layernorm
  std::vector<float> pooler_output;      // [batch, hidden]: post_layernorm again on token 0
};

class Blip2VisionTower {
 public:
  // Loads `prefix`.embeddings / .encoder.layers.{i} / .post_layernorm. The
  // store must outlive the tower (weights are read from it in place).
  Blip2VisionTower(WeightStore& store, const Blip2VisionConfig& config, const std::string& prefix);

  // pixel_values: [batch, 3, image_size, image_size]. Thread-safe.
  Blip2VisionOutput forward(ThreadPool& pool, const float* pixel_values, size_t batch) const;
  const Blip2VisionConfig& config() const { return config_; }

 private:
  Blip2VisionConfig config_;
  Linear patch_embedding_;                     // conv [hidden, 3*P*P] + bias
  const float* class_embedding_ = nullptr;     // [hidden]
  const float* position_embedding_ = nullptr;  // [positions, hidden]
  std::vector<EncoderLayer> layers_;
  LayerNormWeights post_layernorm_;
};

}  // namespace mmfuse
