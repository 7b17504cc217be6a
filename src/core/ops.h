// The numeric building blocks every model is made of: linear layers (GEMM via
// OpenBLAS), layer norm, activations and multi-head attention. All tensors are
// row-major float32; a "row" is one token. Work is split over a ThreadPool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/packed_gemm.h"
#include "core/thread_pool.h"
#include "core/typed_linear.h"

namespace mmfuse {

enum class Activation { quick_gelu, gelu, gelu_tanh, relu, tanh };

// Maps a Hugging Face `hidden_act` string; `where` names the config field in errors.
Activation parse_activation(const std::string& name, const std::string& where);

// y = x W^T + b with W stored [out, in] as in PyTorch's nn.Linear.
struct Linear {
  const float* weight = nullptr;  // out * in floats
  const float* bias = nullptr;    // out floats, or null
  int in = 0;
  int out = 0;
  // The same weights packed for oneDNN's matmul kernels (see pack_linear), or null.
  std::shared_ptr<const PackedLinear> packed;
  // Weights kept in their stored F16/BF16 type instead of `weight` (which is
  // then null): linear() runs typed_linear on them. For large towers loaded
  // from half-precision files, where a float32 copy would double the memory.
  WeightType stored_type = WeightType::f32;
  const void* stored_weight = nullptr;  // out * in values of stored_type
};

// Packs lin's weights for the faster kernels, in `precision` (bf16 and int8
// keep float32 inputs and outputs; see packed_gemm.h); keeps lin unpacked
// (float32) if oneDNN cannot.
void pack_linear(Linear& lin, Precision precision = Precision::f32);

struct LayerNormWeights {
  const float* weight = nullptr;  // dim floats
  const float* bias = nullptr;    // dim floats
  int dim = 0;
  float eps = 1e-5f;
};

// y[rows, lin.out] = x[rows, lin.in] W^T + b. y must not alias x.
// With accumulate = true, y += x W^T + b (a residual connection for free).
void linear(ThreadPool& pool, const float* x, size_t rows, const Linear& lin, float* y,
            bool accumulate = false);

// y[rows, dim] = layer_norm(x) (population variance, as torch). y may alias x.
void layer_norm(ThreadPool& pool, const float* x, size_t rows, const LayerNormWeights& ln,
                float* y);

// x = act(x), n floats.
void activate(ThreadPool& pool, float* x, size_t n, Activation act);

// x += y, n floats.
void add_inplace(ThreadPool& pool, float* x, const float* y, size_t n);

// Sequences packed one after another: sequence s owns rows [offsets[s], offsets[s+1]).
struct PackedSequences {
  std::vector<size_t> offsets;  // size = number of sequences + 1
  size_t count() const { return offsets.size() - 1; }
  size_t rows() const { return offsets.back(); }
  size_t length(size_t s) const { return offsets[s + 1] - offsets[s]; }
};

struct AttentionOptions {
  int heads = 1;
  int head_dim = 0;
  bool causal = false;                // query i sees keys j <= i only
  // Per packed key row: nonzero = may be attended to; null = all.
  const int64_t* key_mask = nullptr;
  // Cross-attention: keys and values are packed as key_seqs (sequence s of the
  // queries attends to sequence s of the keys, e.g. its image tokens) instead
  // of like the queries. Null = self-attention. Not with causal.
  const PackedSequences* key_seqs = nullptr;
};

// Scaled dot-product attention per sequence and head (scale = head_dim^-0.5,
// softmax in fp32). q and out are [rows, heads*head_dim]; k and v the same, or
// [opt.key_seqs->rows(), heads*head_dim] for cross-attention.
void attention(ThreadPool& pool, const float* q, const float* k, const float* v, float* out,
               const PackedSequences& seqs, const AttentionOptions& opt);

// Attention for one query row per sequence: query_rows[s] is the packed row of
// sequence s whose output is wanted; q and out hold one row per sequence
// ([count, heads*head_dim]); k and v hold all rows. Used when only a pooled
// token's output matters (the last layer of a pooled encoder).
void attention_for_rows(ThreadPool& pool, const float* q, const float* k, const float* v,
                        float* out, const PackedSequences& seqs,
                        const std::vector<size_t>& query_rows, const AttentionOptions& opt);

// Single-row kernels, vectorised (see kernels_fast.cpp).
namespace kernels {
void activate_span(float* x, size_t n, Activation act);
void layer_norm_row(const float* x, size_t dim, const float* w, const float* b, float eps,
                    float* y);
// Softmax over x[0, n) in place; entries are finite.
void softmax_row(float* x, size_t n);
// Inner product of a[0, n) and b[0, n), summed in vector lanes (so not in
// index order: results differ from a sequential sum by rounding only).
float dot(const float* a, const float* b, size_t n);
// The same with bytes (0..255) as the second operand.
float dot_u8(const float* a, const uint8_t* b, size_t n);
}  // namespace kernels

}  // namespace mmfuse
