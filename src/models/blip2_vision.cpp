#include "models/blip2_vision.h"

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

// One encoder layer: qkv is a single [3*hidden, hidden] product without a
// bias of its own in the module; 4.44 checkpoints store the bias it is given
// as `qkv.bias` [3*hidden] (the key third is whatever was saved; HF uses it
// as is), original LAVIS-style ones as `q_bias` / `v_bias` with no key bias.
EncoderLayer load_layer(WeightStore& store, const std::string& prefix, const Blip2VisionConfig& c) {
  const int h = c.hidden_size;
  EncoderLayer layer;
  layer.heads = c.num_attention_heads;
  layer.act = c.hidden_act;
  layer.ln_attn = load_layer_norm(store, prefix + ".layer_norm1", h, c.layer_norm_eps);
  layer.ln_mlp = load_layer_norm(store, prefix + ".layer_norm2", h, c.layer_norm_eps);

  const std::string attn = prefix + ".self_attn";
  const bool fused_bias = c.qkv_bias && store.has(attn + ".qkv.bias");
  const Linear qkv = load_linear_stored(store, attn + ".qkv", h, 3 * h, fused_bias, /*pack=*/false);
  layer.q = linear_rows(qkv, 0, h);
  layer.k = linear_rows(qkv, h, h);
  layer.v = linear_rows(qkv, 2 * h, h);
  // A float32 file: the packed thirds serve every product (as load_linear does).
  if (qkv.weight != nullptr && layer.q.packed && layer.k.packed && layer.v.packed)
    store.release(attn + ".qkv.weight");
  if (c.qkv_bias && !fused_bias) {
    MMFUSE_CHECK(store.has(attn + ".q_bias") && store.has(attn + ".v_bias"), bad_input,
                 store.describe_source(attn + ".qkv.weight") + ": missing tensor \"" + attn +
                     ".qkv.bias\" (or \"q_bias\" and \"v_bias\"); vision_config.qkv_bias is true");
    layer.q.bias = store.f32(attn + ".q_bias", {h});
    layer.v.bias = store.f32(attn + ".v_bias", {h});
    layer.k.bias = nullptr;
  }
  layer.o = load_linear_stored(store, attn + ".projection", h, h);
  layer.fc1 = load_linear_stored(store, prefix + ".mlp.fc1", h, c.intermediate_size);
  layer.fc2 = load_linear_stored(store, prefix + ".mlp.fc2", c.intermediate_size, h);
  return layer;
}

}  // namespace

Blip2VisionTower::Blip2VisionTower(WeightStore& store, const Blip2VisionConfig& config,
                                   const std::string& prefix)
    : config_(config) {
  const int h = config.hidden_size, p = config.patch_size;
  const std::string emb = prefix + ".embeddings";
  // The conv weight [h, 3, p, p] is the [h, 3*p*p] matrix of the patch GEMM
  // (small: a float32 copy, packed).
  patch_embedding_.weight = store.f32(emb + ".patch_embedding.weight", {h, 3, p, p});
  patch_embedding_.bias = store.f32(emb + ".patch_embedding.bias", {h});
  patch_embedding_.in = 3 * p * p;
  patch_embedding_.out = h;
  pack_linear(patch_embedding_);
  class_embedding_ = store.f32(emb + ".class_embedding", {1, 1, h});
  position_embedding_ = store.f32(emb + ".position_embedding", {1, config.num_positions(), h});
  for (int i = 0; i < config.num_hidden_layers; ++i)
    layers_.push_back(load_layer(store, prefix + ".encoder.layers." + std::to_string(i), config));
  post_layernorm_ = load_layer_norm(store, prefix + ".post_layernorm", h, config.layer_norm_eps);
}

Blip2VisionOutput Blip2VisionTower::forward(ThreadPool& pool, const float* pixel_values,
                                            size_t batch) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const size_t tokens = static_cast<size_t>(config_.num_positions());
  Blip2VisionOutput out;
  out.last_hidden_state =
      vit_embeddings(pool, pixel_values, batch, 3, config_.image_size, config_.patch_size,
                     patch_embedding_, class_embedding_, position_embedding_);
  float* x = out.last_hidden_state.data();
  PackedSequences seqs;
  for (size_t b = 0; b <= batch; ++b) seqs.offsets.push_back(b * tokens);
  AttentionOptions attn;
  attn.heads = config_.num_attention_heads;
  attn.head_dim = config_.hidden_size / config_.num_attention_heads;
  EncoderWorkspace ws;
  for (const EncoderLayer& layer : layers_) pre_ln_encoder_layer(pool, x, seqs, layer, attn, ws);
  layer_norm(pool, x, batch * tokens, post_layernorm_, x);
  out.pooler_output.resize(batch * hidden);
  for (size_t b = 0; b < batch; ++b)
    kernels::layer_norm_row(x + b * tokens * hidden, hidden, post_layernorm_.weight,
                            post_layernorm_.bias, post_layernorm_.eps,
                            out.pooler_output.data() + b * hidden);
  return out;
}

}  // namespace mmfuse
