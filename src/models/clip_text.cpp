// CLIP text tower: token + position embeddings, causal pre-LN encoder, final
// layer norm, pooled at the end-of-text token.
#include <algorithm>
#include <cstring>

#include "mmfuse/error.h"
#include "models/clip.h"

namespace mmfuse {

EncoderLayer load_clip_encoder_layer(WeightStore& store, const std::string& prefix, int hidden,
                                     int intermediate, int heads, float eps, Activation act) {
  EncoderLayer l;
  l.heads = heads;
  l.act = act;
  l.ln_attn = load_layer_norm(store, prefix + ".layer_norm1", hidden, eps);
  l.q = load_linear(store, prefix + ".self_attn.q_proj", hidden, hidden);
  l.k = load_linear(store, prefix + ".self_attn.k_proj", hidden, hidden);
  l.v = load_linear(store, prefix + ".self_attn.v_proj", hidden, hidden);
  l.o = load_linear(store, prefix + ".self_attn.out_proj", hidden, hidden);
  l.ln_mlp = load_layer_norm(store, prefix + ".layer_norm2", hidden, eps);
  l.fc1 = load_linear(store, prefix + ".mlp.fc1", hidden, intermediate);
  l.fc2 = load_linear(store, prefix + ".mlp.fc2", intermediate, hidden);
  return l;
}

ClipTextTower::ClipTextTower(WeightStore& store, const ClipTextConfig& config, const std::string& prefix)
    : config_(config) {
  const int h = config.hidden_size;
  token_embedding_ = store.f32(prefix + ".embeddings.token_embedding.weight", {config.vocab_size, h});
  position_embedding_ =
      store.f32(prefix + ".embeddings.position_embedding.weight", {config.max_position_embeddings, h});
  for (int i = 0; i < config.num_hidden_layers; ++i)
    layers_.push_back(load_clip_encoder_layer(store, prefix + ".encoder.layers." + std::to_string(i), h,
                                              config.intermediate_size, config.num_attention_heads,
                                              config.layer_norm_eps, config.hidden_act));
  final_layer_norm_ = load_layer_norm(store, prefix + ".final_layer_norm", h, config.layer_norm_eps);
}

size_t ClipTextTower::pooling_position(const std::vector<int64_t>& ids) const {
  if (ids.empty()) return 0;
  if (config_.eos_token_id == 2) {
    // Legacy configs: the end-of-text token has the largest id; first maximum wins.
    return static_cast<size_t>(std::max_element(ids.begin(), ids.end()) - ids.begin());
  }
  auto it = std::find(ids.begin(), ids.end(), config_.eos_token_id);
  return it == ids.end() ? 0 : static_cast<size_t>(it - ids.begin());
}

std::vector<float> ClipTextTower::forward(ThreadPool& pool, const TokenBatch& tokens,
                                          TowerTrace* trace) const {
  const size_t batch = tokens.input_ids.size();
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const bool full = trace != nullptr && trace->keep_last_hidden_state;
  MMFUSE_CHECK(tokens.attention_mask.size() == batch, bad_input,
               "attention_mask must have one row per input");

  // Each sequence is cut right after its pooling position unless all positions are wanted.
  PackedSequences seqs;
  seqs.offsets.push_back(0);
  std::vector<size_t> pool_pos(batch);
  for (size_t b = 0; b < batch; ++b) {
    const auto& ids = tokens.input_ids[b];
    MMFUSE_CHECK(!ids.empty(), bad_input, "input " + std::to_string(b) + " has no tokens");
    MMFUSE_CHECK(ids.size() <= static_cast<size_t>(config_.max_position_embeddings), bad_input,
                 "input " + std::to_string(b) + " has " + std::to_string(ids.size()) +
                     " tokens, more than max_position_embeddings " +
                     std::to_string(config_.max_position_embeddings));
    MMFUSE_CHECK(tokens.attention_mask[b].size() == ids.size(), bad_input,
                 "attention_mask row " + std::to_string(b) + " differs in length from input_ids");
    pool_pos[b] = pooling_position(ids);
    seqs.offsets.push_back(seqs.offsets.back() + (full ? ids.size() : pool_pos[b] + 1));
  }
  const size_t rows = seqs.rows();
  std::vector<float> x(rows * hidden);
  std::vector<int64_t> key_mask(rows);
  for (size_t b = 0; b < batch; ++b) {
    const auto& ids = tokens.input_ids[b];
    for (size_t t = 0; t < seqs.length(b); ++t) {
      const int64_t id = ids[t];
      MMFUSE_CHECK(id >= 0 && id < config_.vocab_size, bad_input,
                   "token id " + std::to_string(id) + " outside the vocabulary of " +
                       std::to_string(config_.vocab_size));
      float* row = x.data() + (seqs.offsets[b] + t) * hidden;
      const float* tok = token_embedding_ + static_cast<size_t>(id) * hidden;
      const float* pos = position_embedding_ + t * hidden;
      for (size_t i = 0; i < hidden; ++i) row[i] = tok[i] + pos[i];
      key_mask[seqs.offsets[b] + t] = tokens.attention_mask[b][t];
    }
  }
  AttentionOptions attn;
  attn.heads = config_.num_attention_heads;
  attn.head_dim = config_.hidden_size / config_.num_attention_heads;
  attn.causal = true;
  attn.key_mask = key_mask.data();

  auto keep_layer = [&] {
    if (trace != nullptr && trace->keep_hidden_states && batch > 0)
      trace->hidden_states.emplace_back(x.begin(), x.begin() + static_cast<long>(seqs.length(0) * hidden));
  };
  std::vector<float> pooled(batch * hidden);
  EncoderWorkspace ws;
  if (trace == nullptr && !layers_.empty()) {
    // Only the pooled rows of the last layer are used: compute just those.
    std::vector<size_t> pooled_rows(batch);
    for (size_t b = 0; b < batch; ++b) pooled_rows[b] = seqs.offsets[b] + pool_pos[b];
    for (size_t i = 0; i + 1 < layers_.size(); ++i)
      pre_ln_encoder_layer(pool, x.data(), seqs, layers_[i], attn, ws);
    pre_ln_encoder_layer_for_rows(pool, x.data(), seqs, pooled_rows, layers_.back(), attn, ws, pooled.data());
    layer_norm(pool, pooled.data(), batch, final_layer_norm_, pooled.data());
    return pooled;
  }
  keep_layer();
  for (const auto& layer : layers_) {
    pre_ln_encoder_layer(pool, x.data(), seqs, layer, attn, ws);
    keep_layer();
  }
  if (full) {
    layer_norm(pool, x.data(), rows, final_layer_norm_, x.data());
    trace->last_hidden_state = x;
    for (size_t b = 0; b < batch; ++b)
      std::memcpy(pooled.data() + b * hidden, x.data() + (seqs.offsets[b] + pool_pos[b]) * hidden,
                  hidden * sizeof(float));
  } else {
    for (size_t b = 0; b < batch; ++b)
      kernels::layer_norm_row(x.data() + (seqs.offsets[b] + pool_pos[b]) * hidden, hidden,
                              final_layer_norm_.weight, final_layer_norm_.bias, final_layer_norm_.eps,
                              pooled.data() + b * hidden);
  }
  return pooled;
}

}  // namespace mmfuse
