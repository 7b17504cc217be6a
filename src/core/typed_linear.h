// Linear layers whose weights stay in the type they are stored in (F16, BF16
// or F32), read straight from the memory-mapped file: a decoder's weights are
// most of its memory, and decoding one token is bound by the bytes read, so
// no float32 copy is made. Arithmetic is float32 (each weight is widened
// exactly), so results equal a float32 model built from the same weights.
// Q8_0 (`--dtype int8`): weights quantised at load to llama.cpp's 8-bit
// format, see core/q8_0.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "core/thread_pool.h"

namespace mmfuse {

enum class WeightType { f32, f16, bf16, q8_0 };
const char* to_string(WeightType type);
// Bytes per element of F32 / F16 / BF16 (q8_0 has no whole number: use typed_row_bytes).
size_t weight_type_size(WeightType type);
// Bytes of one row of `in` elements.
size_t typed_row_bytes(WeightType type, size_t in);

struct TypedLinear {
  WeightType type = WeightType::f32;
  const void* weight = nullptr;  // [out, in] row-major, as nn.Linear
  const float* bias = nullptr;   // [out] or null
  int in = 0;
  int out = 0;

  size_t bytes() const { return static_cast<size_t>(out) * typed_row_bytes(type, in); }
};

// y[rows, lin.out] = x[rows, lin.in] W^T + b (y += ... with accumulate). y must
// not alias x. Few rows (decoding) stream the weights once through vector dot
// products; many rows (a prompt) widen blocks of weights and use a GEMM.
void typed_linear(ThreadPool& pool, const float* x, size_t rows, const TypedLinear& lin, float* y,
                  bool accumulate = false);

// Several products of the same input (q/k/v, gate/up) in one pool call:
// y_i[rows, lin_i.out] = x W_i^T + b_i. Decoding issues fewer, larger loops.
struct TypedProduct {
  const TypedLinear* lin = nullptr;
  float* y = nullptr;
};
void typed_linears(ThreadPool& pool, const float* x, size_t rows,
                   std::initializer_list<TypedProduct> products);

// Row `row` of a [rows, dim] table in `type` (an embedding lookup), as floats.
void typed_row(WeightType type, const void* table, size_t row, size_t dim, float* out);

namespace kernels {
// Widens n values of `type` to float32 (picks AVX-512 / AVX2+F16C / scalar at run time).
void widen(WeightType type, const void* src, size_t n, float* dst);
// y[r * ldy + o] = sum_k x[r * ldx + k] * w[o, k] for o < outputs, r < rows,
// the weights read once for all rows (rows <= 4 per call is the fast case).
void typed_dot_rows(WeightType type, const void* w, size_t outputs, size_t in, const float* x,
                    size_t ldx, size_t rows, float* y, size_t ldy);
// The instruction set the kernels above chose ("avx512", "avx2", "scalar").
const char* typed_kernel_isa();
// The same dot products with a named instruction set (tests compare them);
// false when this CPU or build cannot run it.
bool typed_dot_rows_with(const char* isa, WeightType type, const void* w, size_t outputs,
                         size_t in, const float* x, size_t ldx, size_t rows, float* y,
                         size_t ldy);
}  // namespace kernels

}  // namespace mmfuse
