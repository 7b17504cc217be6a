// 8-bit decoder weights in llama.cpp's q8_0 arithmetic (`--dtype int8` on the
// decoders): every row of a [out, in] weight is cut into blocks of 32 inputs,
// each with one float16 scale d = max|w| / 127 and 32 int8 values
// q = round(w / d), so a weight costs 34 / 32 = 1.0625 bytes instead of F16's 2
// (decoding one token is bound by the bytes it reads).
//
// Row layout (one row after the other, `q8_0_row_bytes(in)` bytes each): the
// row's `in` int8 values, then its in / 32 float16 scales. Unlike ggml's
// interleaved {d, q[32]} blocks this keeps the values of 64 inputs in one
// aligned-size vector load.
//
// Products quantise their input the same way (per row, blocks of 32, a float32
// scale) and sum int8 x int8 products per block in int32, scaled by d_w * d_x:
// llama.cpp's q8_0 x q8_0 dot product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "core/typed_linear.h"

namespace mmfuse {

constexpr size_t kQ8Block = 32;

inline size_t q8_0_row_bytes(size_t in) { return in + in / kQ8Block * 2; }

// Quantises rows [r0, r1) of a [rows, in] matrix stored in `type` (F32, F16 or
// BF16; in % 32 == 0) into `dst` (q8_0 rows, the whole matrix's layout).
void quantize_q8_0_rows(WeightType type, const void* src, size_t r0, size_t r1, size_t in,
                        uint8_t* dst);

// The inputs of one product, quantised once and shared by every output block.
struct Q8Input {
  size_t rows = 0, in = 0;
  std::vector<int8_t> q;  // [rows, in]
  std::vector<float> d;   // [rows, in / 32]
  // x: [rows, in] with row stride ldx.
  void quantize(const float* x, size_t rows, size_t in, size_t ldx);
};

namespace kernels {
// y[r * ldy + o] = sum over blocks of d_w d_x sum_i q_w q_x, for o < outputs
// (w: `outputs` q8_0 rows of x.in inputs), r < x.rows. Picks AVX-512 VNNI /
// AVX2 / scalar at run time.
void q8_0_dot_rows(const uint8_t* w, size_t outputs, const Q8Input& x, float* y, size_t ldy);
// The instruction set q8_0_dot_rows uses ("avx512_vnni", "avx2", "scalar").
const char* q8_0_kernel_isa();
// The same with a named instruction set (tests compare them); false when this
// CPU cannot run it.
bool q8_0_dot_rows_with(const char* isa, const uint8_t* w, size_t outputs, const Q8Input& x,
                        float* y, size_t ldy);
// One q8_0 row of `in` values back to float32 (d * q).
void dequantize_q8_0_row(const uint8_t* row, size_t in, float* out);
}  // namespace kernels

}  // namespace mmfuse
