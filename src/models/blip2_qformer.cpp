#include "models/blip2_qformer.h"

#include <algorithm>

namespace mmfuse {

Blip2QFormer::Blip2QFormer(WeightStore& store, const Blip2QFormerConfig& config,
                           int num_query_tokens, const std::string& prefix,
                           const std::string& query_tokens_name)
    : config_(config), queries_(num_query_tokens) {
  const int h = config.hidden_size, ffn = config.intermediate_size;
  const int image = config.encoder_hidden_size;
  const float eps = config.layer_norm_eps;
  query_tokens_ = store.f32(query_tokens_name, {1, num_query_tokens, h});
  layernorm_ = load_layer_norm(store, prefix + ".layernorm", h, eps);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = prefix + ".encoder.layer." + std::to_string(i);
    Layer l;
    l.q = load_linear_stored(store, p + ".attention.attention.query", h, h);
    l.k = load_linear_stored(store, p + ".attention.attention.key", h, h);
    l.v = load_linear_stored(store, p + ".attention.attention.value", h, h);
    l.o = load_linear_stored(store, p + ".attention.output.dense", h, h);
    l.ln_attn = load_layer_norm(store, p + ".attention.output.LayerNorm", h, eps);
    l.has_cross_attention = config.has_cross_attention(i);
    if (l.has_cross_attention) {
      l.cross_q = load_linear_stored(store, p + ".crossattention.attention.query", h, h);
      l.cross_k = load_linear_stored(store, p + ".crossattention.attention.key", image, h);
      l.cross_v = load_linear_stored(store, p + ".crossattention.attention.value", image, h);
      l.cross_o = load_linear_stored(store, p + ".crossattention.output.dense", h, h);
      l.ln_cross = load_layer_norm(store, p + ".crossattention.output.LayerNorm", h, eps);
    }
    l.fc1 = load_linear_stored(store, p + ".intermediate_query.dense", h, ffn);
    l.fc2 = load_linear_stored(store, p + ".output_query.dense", ffn, h);
    l.ln_mlp = load_layer_norm(store, p + ".output_query.LayerNorm", h, eps);
    layers_.push_back(std::move(l));
  }
}

std::vector<float> Blip2QFormer::forward(ThreadPool& pool, const float* image_embeds, size_t batch,
                                         size_t image_tokens) const {
  const size_t h = static_cast<size_t>(config_.hidden_size);
  const size_t queries = static_cast<size_t>(queries_);
  std::vector<float> x(batch * queries * h);
  for (size_t b = 0; b < batch; ++b)
    std::copy_n(query_tokens_, queries * h, x.data() + b * queries * h);
  layer_norm(pool, x.data(), batch * queries, layernorm_, x.data());

  PackedSequences seqs, image;
  for (size_t b = 0; b <= batch; ++b) {
    seqs.offsets.push_back(b * queries);
    image.offsets.push_back(b * image_tokens);
  }
  AttentionOptions attn;  // every query and image token is attended (all-ones masks)
  attn.heads = config_.num_attention_heads;
  attn.head_dim = config_.hidden_size / config_.num_attention_heads;
  EncoderWorkspace ws;
  for (const Layer& l : layers_) {
    post_ln_attention_block(pool, x.data(), seqs, l.q, l.k, l.v, l.o, l.ln_attn, attn, ws);
    if (l.has_cross_attention)
      post_ln_attention_block(pool, x.data(), seqs, l.cross_q, l.cross_k, l.cross_v, l.cross_o,
                              l.ln_cross, attn, ws, image_embeds, &image);
    post_ln_mlp_block(pool, x.data(), batch * queries, l.fc1, l.fc2, config_.hidden_act, l.ln_mlp,
                      ws);
  }
  return x;
}

}  // namespace mmfuse
