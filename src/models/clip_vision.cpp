// CLIP vision tower (ViT): patch embedding as a GEMM over image patches, class
// token, position embeddings, pre-layernorm, pre-LN encoder, post-layernorm of
// the class token.
#include "mmfuse/error.h"
#include "models/clip.h"

namespace mmfuse {

ClipVisionTower::ClipVisionTower(WeightStore& store, const ClipVisionConfig& config,
                                 const std::string& prefix)
    : config_(config) {
  const int h = config.hidden_size, p = config.patch_size, c = config.num_channels;
  class_embedding_ = store.f32(prefix + ".embeddings.class_embedding", {h});
  patch_embedding_.weight = store.f32(prefix + ".embeddings.patch_embedding.weight", {h, c, p, p});
  patch_embedding_.in = c * p * p;
  patch_embedding_.out = h;
  pack_linear(patch_embedding_);
  if (patch_embedding_.packed != nullptr) store.release(prefix + ".embeddings.patch_embedding.weight");
  position_embedding_ =
      store.f32(prefix + ".embeddings.position_embedding.weight", {config.num_positions(), h});
  pre_layernorm_ = load_layer_norm(store, prefix + ".pre_layrnorm", h, config.layer_norm_eps);
  for (int i = 0; i < config.num_hidden_layers; ++i)
    layers_.push_back(load_clip_encoder_layer(store, prefix + ".encoder.layers." + std::to_string(i), h,
                                              config.intermediate_size, config.num_attention_heads,
                                              config.layer_norm_eps, config.hidden_act));
  post_layernorm_ = load_layer_norm(store, prefix + ".post_layernorm", h, config.layer_norm_eps);
}

std::vector<float> ClipVisionTower::embed(ThreadPool& pool, const float* pixel_values,
                                          size_t batch) const {
  std::vector<float> x = vit_embeddings(pool, pixel_values, batch, config_.num_channels,
                                        config_.image_size, config_.patch_size, patch_embedding_,
                                        class_embedding_, position_embedding_);
  layer_norm(pool, x.data(), x.size() / static_cast<size_t>(config_.hidden_size), pre_layernorm_,
             x.data());
  return x;
}

std::vector<float> ClipVisionTower::hidden_states_at(ThreadPool& pool, const float* pixel_values,
                                                     size_t batch, int k) const {
  MMFUSE_CHECK(k >= 0 && static_cast<size_t>(k) <= layers_.size(), bad_input,
               "vision feature layer " + std::to_string(k) + " is outside the tower's " +
                   std::to_string(layers_.size()) + " layers");
  std::vector<float> x = embed(pool, pixel_values, batch);
  const size_t tokens = static_cast<size_t>(config_.num_positions());
  PackedSequences seqs;
  for (size_t b = 0; b <= batch; ++b) seqs.offsets.push_back(b * tokens);
  AttentionOptions attn;
  attn.heads = config_.num_attention_heads;
  attn.head_dim = config_.hidden_size / config_.num_attention_heads;
  EncoderWorkspace ws;
  for (int i = 0; i < k; ++i) pre_ln_encoder_layer(pool, x.data(), seqs, layers_[i], attn, ws);
  return x;
}

ClipVisionTower ClipVisionTower::with_linear_weights(
    const std::map<std::string, const float*>& weights) const {
  ClipVisionTower copy = *this;
  for (const auto& [path, weight] : weights) {
    Linear* target = nullptr;
    for (size_t i = 0; i < copy.layers_.size() && target == nullptr; ++i) {
      EncoderLayer& l = copy.layers_[i];
      const std::string p = "encoder.layers." + std::to_string(i) + ".";
      const std::pair<const char*, Linear*> named[] = {
          {"self_attn.q_proj", &l.q}, {"self_attn.k_proj", &l.k}, {"self_attn.v_proj", &l.v},
          {"self_attn.out_proj", &l.o}, {"mlp.fc1", &l.fc1},        {"mlp.fc2", &l.fc2}};
      for (const auto& [name, lin] : named)
        if (path == p + name) target = lin;
    }
    MMFUSE_CHECK(target != nullptr, bad_input,
                 "no linear layer \"" + path + "\" in the CLIP vision tower");
    target->weight = weight;
    target->packed = nullptr;
    pack_linear(*target);
  }
  return copy;
}

std::vector<float> ClipVisionTower::forward(ThreadPool& pool, const float* pixel_values, size_t batch,
                                            TowerTrace* trace) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const size_t tokens = static_cast<size_t>(config_.num_positions());
  std::vector<float> x = embed(pool, pixel_values, batch);
  PackedSequences seqs;
  for (size_t b = 0; b <= batch; ++b) seqs.offsets.push_back(b * tokens);

  AttentionOptions attn;
  attn.heads = config_.num_attention_heads;
  attn.head_dim = config_.hidden_size / config_.num_attention_heads;
  auto keep_layer = [&] {
    if (trace != nullptr && trace->keep_hidden_states && batch > 0)
      trace->hidden_states.emplace_back(x.begin(), x.begin() + static_cast<long>(tokens * hidden));
  };
  std::vector<float> pooled(batch * hidden);
  EncoderWorkspace ws;
  if (trace == nullptr && !layers_.empty()) {
    // Only the class tokens of the last layer are used: compute just those.
    std::vector<size_t> rows(batch);
    for (size_t b = 0; b < batch; ++b) rows[b] = b * tokens;
    for (size_t i = 0; i + 1 < layers_.size(); ++i)
      pre_ln_encoder_layer(pool, x.data(), seqs, layers_[i], attn, ws);
    pre_ln_encoder_layer_for_rows(pool, x.data(), seqs, rows, layers_.back(), attn, ws, pooled.data());
    layer_norm(pool, pooled.data(), batch, post_layernorm_, pooled.data());
    return pooled;
  }
  keep_layer();
  for (const auto& layer : layers_) {
    pre_ln_encoder_layer(pool, x.data(), seqs, layer, attn, ws);
    keep_layer();
  }
  if (trace != nullptr && trace->keep_last_hidden_state) trace->last_hidden_state = x;
  for (size_t b = 0; b < batch; ++b)
    kernels::layer_norm_row(x.data() + b * tokens * hidden, hidden, post_layernorm_.weight,
                            post_layernorm_.bias, post_layernorm_.eps, pooled.data() + b * hidden);
  return pooled;
}

}  // namespace mmfuse
