#include "models/transformer.h"

#include <algorithm>

namespace mmfuse {

Linear load_linear(WeightStore& store, const std::string& prefix, int in, int out, bool with_bias) {
  Linear lin;
  lin.in = in;
  lin.out = out;
  lin.weight = store.f32(prefix + ".weight", {out, in});
  if (with_bias) lin.bias = store.f32(prefix + ".bias", {out});
  pack_linear(lin);
  // The packed copy serves every product from now on; the mapped original is
  // only re-read (from the file) for a row count with no packed kernel.
  if (lin.packed != nullptr) store.release(prefix + ".weight");
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

void post_ln_encoder_layer(ThreadPool& pool, float* x, const PackedSequences& seqs,
                           const EncoderLayer& layer, const AttentionOptions& attn,
                           EncoderWorkspace& ws) {
  const size_t rows = seqs.rows();
  const size_t hidden = static_cast<size_t>(layer.q.in);
  ws.q.resize(rows * hidden);
  ws.k.resize(rows * hidden);
  ws.v.resize(rows * hidden);
  ws.context.resize(rows * hidden);
  ws.hidden.resize(rows * static_cast<size_t>(layer.fc1.out));

  linear(pool, x, rows, layer.q, ws.q.data());
  linear(pool, x, rows, layer.k, ws.k.data());
  linear(pool, x, rows, layer.v, ws.v.data());
  attention(pool, ws.q.data(), ws.k.data(), ws.v.data(), ws.context.data(), seqs, attn);
  linear(pool, ws.context.data(), rows, layer.o, x, /*accumulate=*/true);
  layer_norm(pool, x, rows, layer.ln_attn, x);

  linear(pool, x, rows, layer.fc1, ws.hidden.data());
  activate(pool, ws.hidden.data(), ws.hidden.size(), layer.act);
  linear(pool, ws.hidden.data(), rows, layer.fc2, x, /*accumulate=*/true);
  layer_norm(pool, x, rows, layer.ln_mlp, x);
}

void pre_ln_encoder_layer_for_rows(ThreadPool& pool, const float* x, const PackedSequences& seqs,
                                   const std::vector<size_t>& rows, const EncoderLayer& layer,
                                   const AttentionOptions& attn, EncoderWorkspace& ws, float* out) {
  const size_t all = seqs.rows(), picked = rows.size();
  const size_t hidden = static_cast<size_t>(layer.q.in);
  ws.normed.resize(all * hidden);
  ws.q.resize(picked * hidden);
  ws.k.resize(all * hidden);
  ws.v.resize(all * hidden);
  ws.context.resize(picked * hidden);
  ws.hidden.resize(picked * static_cast<size_t>(layer.fc1.out));

  layer_norm(pool, x, all, layer.ln_attn, ws.normed.data());
  linear(pool, ws.normed.data(), all, layer.k, ws.k.data());
  linear(pool, ws.normed.data(), all, layer.v, ws.v.data());
  // Gather the picked rows (x for the residual, normed for the queries).
  std::vector<float> picked_normed(picked * hidden);
  for (size_t i = 0; i < picked; ++i) {
    std::copy_n(x + rows[i] * hidden, hidden, out + i * hidden);
    std::copy_n(ws.normed.data() + rows[i] * hidden, hidden, picked_normed.data() + i * hidden);
  }
  linear(pool, picked_normed.data(), picked, layer.q, ws.q.data());
  attention_for_rows(pool, ws.q.data(), ws.k.data(), ws.v.data(), ws.context.data(), seqs, rows, attn);
  linear(pool, ws.context.data(), picked, layer.o, out, /*accumulate=*/true);

  layer_norm(pool, out, picked, layer.ln_mlp, picked_normed.data());
  linear(pool, picked_normed.data(), picked, layer.fc1, ws.hidden.data());
  activate(pool, ws.hidden.data(), ws.hidden.size(), layer.act);
  linear(pool, ws.hidden.data(), picked, layer.fc2, out, /*accumulate=*/true);
}

void post_ln_encoder_layer_for_rows(ThreadPool& pool, const float* x, const PackedSequences& seqs,
                                    const std::vector<size_t>& rows, const EncoderLayer& layer,
                                    const AttentionOptions& attn, EncoderWorkspace& ws,
                                    float* out) {
  const size_t all = seqs.rows(), picked = rows.size();
  const size_t hidden = static_cast<size_t>(layer.q.in);
  ws.q.resize(picked * hidden);
  ws.k.resize(all * hidden);
  ws.v.resize(all * hidden);
  ws.context.resize(picked * hidden);
  ws.hidden.resize(picked * static_cast<size_t>(layer.fc1.out));

  linear(pool, x, all, layer.k, ws.k.data());
  linear(pool, x, all, layer.v, ws.v.data());
  for (size_t i = 0; i < picked; ++i) std::copy_n(x + rows[i] * hidden, hidden, out + i * hidden);
  linear(pool, out, picked, layer.q, ws.q.data());
  attention_for_rows(pool, ws.q.data(), ws.k.data(), ws.v.data(), ws.context.data(), seqs, rows,
                     attn);
  linear(pool, ws.context.data(), picked, layer.o, out, /*accumulate=*/true);
  layer_norm(pool, out, picked, layer.ln_attn, out);

  linear(pool, out, picked, layer.fc1, ws.hidden.data());
  activate(pool, ws.hidden.data(), ws.hidden.size(), layer.act);
  linear(pool, ws.hidden.data(), picked, layer.fc2, out, /*accumulate=*/true);
  layer_norm(pool, out, picked, layer.ln_mlp, out);
}

}  // namespace mmfuse
