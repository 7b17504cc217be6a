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
//
// Tiled layout (what the decoders multiply with, `q8_0_tiles_bytes`): the rows
// are packed 16 at a time into tiles, so that one 4-byte load of the input
// feeds 16 output rows in one AVX-512 VNNI `vpdpbusd` (llama.cpp repacks the
// same way). A tile of 16 rows and `in` inputs (in / 32 blocks) is
//   in / 32 blocks of 512 bytes: 8 groups of 4 inputs, each 16 rows x 4 bytes
//     (row j's values for inputs 4g..4g+3 at byte 64 g + 4 j), stored as
//     unsigned q + 128 (vpdpbusd multiplies unsigned by signed bytes; the
//     input's block sums correct for the 128, see Q8Input::offset)
//   then in / 32 x 16 float16 scales (block b's at 32 b, row j's at 2 j).
// 16 * q8_0_row_bytes(in) bytes per tile: the same 1.0625 bytes per weight.
// Rows past `out` in the last tile are zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "core/typed_linear.h"

namespace mmfuse {

constexpr size_t kQ8Block = 32;
constexpr size_t kQ8TileRows = 16;

inline size_t q8_0_row_bytes(size_t in) { return in + in / kQ8Block * 2; }
inline size_t q8_0_tiles_bytes(size_t out, size_t in) {
  return (out + kQ8TileRows - 1) / kQ8TileRows * kQ8TileRows * q8_0_row_bytes(in);
}

// Quantises rows [r0, r1) of a [rows, in] matrix stored in `type` (F32, F16 or
// BF16; in % 32 == 0) into `dst` (q8_0 rows, the whole matrix's layout).
void quantize_q8_0_rows(WeightType type, const void* src, size_t r0, size_t r1, size_t in,
                        uint8_t* dst);
// Quantises tiles [t0, t1) of an [out, in] matrix into `dst` (the whole
// matrix's tiled layout, q8_0_tiles_bytes(out, in) bytes).
void quantize_q8_0_tiles(WeightType type, const void* src, size_t out, size_t in, size_t t0,
                         size_t t1, uint8_t* dst);
// Packs `out` q8_0 rows (row layout) into tiles.
void pack_q8_0_tiles(const uint8_t* rows, size_t out, size_t in, uint8_t* dst);

// The inputs of one product, quantised once and shared by every output block.
struct Q8Input {
  size_t rows = 0, in = 0;
  std::vector<int8_t> q;        // [rows, in]
  std::vector<float> d;         // [rows, in / 32]
  std::vector<int32_t> offset;  // [rows, in / 32]: -128 * the block's sum of q
  // x: [rows, in] with row stride ldx; rows split over `pool` when given.
  void quantize(const float* x, size_t rows, size_t in, size_t ldx, ThreadPool* pool = nullptr);
};

namespace kernels {
// y[r * ldy + o] = sum over blocks of d_w d_x sum_i q_w q_x, for o < outputs
// (w: tiled q8_0 weights starting at a tile, at least `outputs` rows of x.in
// inputs), r < x.rows. Picks AVX-512 VNNI / AVX2 / scalar at run time.
void q8_0_dot_rows(const uint8_t* w, size_t outputs, const Q8Input& x, float* y, size_t ldy);
// The instruction set q8_0_dot_rows uses ("avx512_vnni", "avx2", "scalar").
const char* q8_0_kernel_isa();
// The same with a named instruction set (tests compare them); false when this
// CPU cannot run it.
bool q8_0_dot_rows_with(const char* isa, const uint8_t* w, size_t outputs, const Q8Input& x,
                        float* y, size_t ldy);
// One q8_0 row of `in` values back to float32 (d * q).
void dequantize_q8_0_row(const uint8_t* row, size_t in, float* out);
// Row `row` of tiled q8_0 weights back to float32.
void dequantize_q8_0_tiled_row(const uint8_t* tiles, size_t row, size_t in, float* out);
}  // namespace kernels

}  // namespace mmfuse
