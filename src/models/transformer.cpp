#include "models/transformer.h"

namespace mmfuse {

Linear load_linear(WeightStore& store, const std::string& prefix, int in, int out, bool with_bias) {
  Linear lin;
  lin.in = in;
  lin.out = out;
  lin.weight = store.f32(prefix + ".weight", {out, in});
  if (with_bias) lin.bias = store.f32(prefix + ".bias", {out});
  return lin;
}

LayerNormWeights load_layer_norm(WeightStore& store, const std::string& prefix, int dim, float eps) {
  LayerNormWeights ln;
  ln.dim = dim;
  ln.eps = eps;
  ln.weight = store.f32(prefix + ".weight", {dim});
  ln.bias = store.f32(prefix + ".bias", {dim});
  return ln;
}

void pre_ln_encoder_layer(ThreadPool& pool, float* x, const PackedSequences& seqs,
                          const EncoderLayer& layer, const AttentionOptions& attn,
                          EncoderWorkspace& ws) {
  const size_t rows = seqs.rows();
  const size_t hidden = static_cast<size_t>(layer.q.in);
  ws.normed.resize(rows * hidden);
  ws.q.resize(rows * hidden);
  ws.k.resize(rows * hidden);
  ws.v.resize(rows * hidden);
  ws.context.resize(rows * hidden);
  ws.hidden.resize(rows * static_cast<size_t>(layer.fc1.out));

  layer_norm(pool, x, rows, layer.ln_attn, ws.normed.data());
  linear(pool, ws.normed.data(), rows, layer.q, ws.q.data());
  linear(pool, ws.normed.data(), rows, layer.k, ws.k.data());
  linear(pool, ws.normed.data(), rows, layer.v, ws.v.data());
  attention(pool, ws.q.data(), ws.k.data(), ws.v.data(), ws.context.data(), seqs, attn);
  linear(pool, ws.context.data(), rows, layer.o, x, /*accumulate=*/true);

  layer_norm(pool, x, rows, layer.ln_mlp, ws.normed.data());
  linear(pool, ws.normed.data(), rows, layer.fc1, ws.hidden.data());
  activate(pool, ws.hidden.data(), ws.hidden.size(), layer.act);
  linear(pool, ws.hidden.data(), rows, layer.fc2, x, /*accumulate=*/true);
}

}  // namespace mmfuse
