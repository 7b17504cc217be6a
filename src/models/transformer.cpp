#include "models/transformer.h"

#include <algorithm>
#include <cstring>

#include "core/linear_group.h"
#include "io/packed_weight_cache.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {
Linear load_packed_linear(WeightStore& store, const std::string& prefix, int in, int out,
                          bool with_bias, Precision precision) {
  Linear lin;
  lin.in = in;
  lin.out = out;
  lin.weight = store.f32(prefix + ".weight", {out, in});
  if (with_bias) lin.bias = store.f32(prefix + ".bias", {out});
  // From the packed-weight cache when the opener enabled it and it holds the
  // layer; packed here (and recorded for the cache) otherwise.
  PackedWeightCache* cache = store.packed_cache();
  if (cache != nullptr) lin.packed = cache->find(prefix, in, out, supported_precision(precision));
  if (lin.packed == nullptr) pack_linear(lin, precision);
  if (cache != nullptr && lin.packed != nullptr) cache->add(prefix, lin.packed);
  // The packed copy serves every product from now on; the mapped original is
  // only re-read (from the file) for a row count with no packed kernel.
  if (lin.packed != nullptr) store.release(prefix + ".weight");
  return lin;
}
}  // namespace

Linear load_linear(WeightStore& store, const std::string& prefix, int in, int out, bool with_bias) {
  return load_packed_linear(store, prefix, in, out, with_bias, store.linear_precision());
}

Linear load_linear_exact(WeightStore& store, const std::string& prefix, int in, int out,
                         bool with_bias) {
  return load_packed_linear(store, prefix, in, out, with_bias, Precision::f32);
}

LayerNormWeights load_layer_norm(WeightStore& store, const std::string& prefix, int dim, float eps) {
  LayerNormWeights ln;
  ln.dim = dim;
  ln.eps = eps;
  ln.weight = store.f32(prefix + ".weight", {dim});
  ln.bias = store.f32(prefix + ".bias", {dim});
  return ln;
}

Linear load_linear_stored(WeightStore& store, const std::string& prefix, int in, int out,
                          bool with_bias, bool pack) {
  const WeightStore::Typed w = store.typed(prefix + ".weight", {out, in});
  if (w.type == WeightType::f32) {
    if (pack) return load_linear(store, prefix, in, out, with_bias);
    Linear lin;
    lin.in = in;
    lin.out = out;
    lin.weight = static_cast<const float*>(w.data);
    if (with_bias) lin.bias = store.f32(prefix + ".bias", {out});
    return lin;
  }
  Linear lin;
  lin.in = in;
  lin.out = out;
  lin.stored_type = w.type;
  lin.stored_weight = w.data;
  if (with_bias) lin.bias = store.f32(prefix + ".bias", {out});
  return lin;
}

Linear linear_rows(const Linear& whole, int first, int count) {
  MMFUSE_ASSERT(whole.packed == nullptr && first >= 0 && count > 0 && first + count <= whole.out);
  Linear part = whole;
  part.out = count;
  const size_t skip = static_cast<size_t>(first) * static_cast<size_t>(whole.in);
  if (whole.bias != nullptr) part.bias = whole.bias + first;
  if (whole.weight != nullptr) {
    part.weight = whole.weight + skip;
    pack_linear(part);
  } else {
    part.stored_weight = static_cast<const uint8_t*>(whole.stored_weight) +
                         skip * weight_type_size(whole.stored_type);
  }
  return part;
}

std::vector<float> vit_embeddings(ThreadPool& pool, const float* pixel_values, size_t batch,
                                  int channels_in, int image_size, int patch_size,
                                  const Linear& patch_embedding, const float* class_embedding,
                                  const float* position_embedding) {
  const size_t hidden = static_cast<size_t>(patch_embedding.out);
  const size_t p = static_cast<size_t>(patch_size);
  const size_t size = static_cast<size_t>(image_size);
  const size_t side = size / p;
  const size_t channels = static_cast<size_t>(channels_in);
  const size_t patches = side * side;
  const size_t tokens = patches + 1;
  const size_t patch_len = channels * p * p;
  MMFUSE_ASSERT(static_cast<size_t>(patch_embedding.in) == patch_len);

  // im2col: one row per patch, laid out (channel, y, x) like the conv weight.
  std::vector<float> columns(batch * patches * patch_len);
  pool.parallel_for(batch * patches, [&](size_t r0, size_t r1, int) {
    for (size_t r = r0; r < r1; ++r) {
      const size_t b = r / patches, patch = r % patches;
      const size_t py = patch / side, px = patch % side;
      float* dst = columns.data() + r * patch_len;
      for (size_t c = 0; c < channels; ++c)
        for (size_t y = 0; y < p; ++y) {
          const float* src =
              pixel_values + ((b * channels + c) * size + py * p + y) * size + px * p;
          std::memcpy(dst + (c * p + y) * p, src, p * sizeof(float));
        }
    }
  });
  std::vector<float> embedded(batch * patches * hidden);
  linear(pool, columns.data(), batch * patches, patch_embedding, embedded.data());

  std::vector<float> x(batch * tokens * hidden);
  for (size_t b = 0; b < batch; ++b) {
    for (size_t t = 0; t < tokens; ++t) {
      float* row = x.data() + (b * tokens + t) * hidden;
      const float* src =
          t == 0 ? class_embedding : embedded.data() + (b * patches + t - 1) * hidden;
      const float* pos = position_embedding + t * hidden;
      for (size_t i = 0; i < hidden; ++i) row[i] = src[i] + pos[i];
    }
  }
  return x;
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
  // q, k and v of one input: converted once in bf16 / int8 (core/linear_group.h).
  linear_group(pool, ws.normed.data(), rows,
               {{&layer.q, ws.q.data()}, {&layer.k, ws.k.data()}, {&layer.v, ws.v.data()}});
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
  post_ln_attention_block(pool, x, seqs, layer.q, layer.k, layer.v, layer.o, layer.ln_attn, attn,
                          ws);
  post_ln_mlp_block(pool, x, seqs.rows(), layer.fc1, layer.fc2, layer.act, layer.ln_mlp, ws);
}

void post_ln_attention_block(ThreadPool& pool, float* x, const PackedSequences& seqs,
                             const Linear& q, const Linear& k, const Linear& v, const Linear& o,
                             const LayerNormWeights& ln, const AttentionOptions& attn,
                             EncoderWorkspace& ws, const float* memory,
                             const PackedSequences* memory_seqs) {
  MMFUSE_ASSERT((memory == nullptr) == (memory_seqs == nullptr));
  const size_t rows = seqs.rows();
  const size_t keys = memory_seqs != nullptr ? memory_seqs->rows() : rows;
  const float* source = memory != nullptr ? memory : x;
  ws.q.resize(rows * static_cast<size_t>(q.out));
  ws.k.resize(keys * static_cast<size_t>(k.out));
  ws.v.resize(keys * static_cast<size_t>(v.out));
  ws.context.resize(rows * static_cast<size_t>(q.out));

  if (memory == nullptr) {
    linear_group(pool, x, rows, {{&q, ws.q.data()}, {&k, ws.k.data()}, {&v, ws.v.data()}});
  } else {
    linear(pool, x, rows, q, ws.q.data());
    linear_group(pool, source, keys, {{&k, ws.k.data()}, {&v, ws.v.data()}});
  }
  AttentionOptions options = attn;
  if (memory_seqs != nullptr) options.key_seqs = memory_seqs;
  attention(pool, ws.q.data(), ws.k.data(), ws.v.data(), ws.context.data(), seqs, options);
  linear(pool, ws.context.data(), rows, o, x, /*accumulate=*/true);
  layer_norm(pool, x, rows, ln, x);
}

void post_ln_mlp_block(ThreadPool& pool, float* x, size_t rows, const Linear& fc1,
                       const Linear& fc2, Activation act, const LayerNormWeights& ln,
                       EncoderWorkspace& ws) {
  ws.hidden.resize(rows * static_cast<size_t>(fc1.out));
  linear(pool, x, rows, fc1, ws.hidden.data());
  activate(pool, ws.hidden.data(), ws.hidden.size(), act);
  linear(pool, ws.hidden.data(), rows, fc2, x, /*accumulate=*/true);
  layer_norm(pool, x, rows, ln, x);
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
