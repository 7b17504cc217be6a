// q8_0 quantisation and dot products (core/q8_0.h). The dot products are
// compiled for AVX-512 VNNI and AVX2 with GCC target attributes and chosen once
// at run time from CPUID, so one binary runs on any x86-64.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/q8_0.h"
#include "core/cpu_features.h"

#if defined(__x86_64__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers build vectors from _mm512_undefined_*(), which
// -Wmaybe-uninitialized reports falsely once inlined into target functions.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#endif

namespace mmfuse {

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// float32 -> float16, round to nearest even (subnormals, infinities and NaN
// included): the float addition below lets the FPU do the rounding at the
// half's precision.
uint16_t half_from_float(float f) {
  const float to_inf = 0x1.0p+112f, to_zero = 0x1.0p-110f;
  float base = (std::fabs(f) * to_inf) * to_zero;
  const uint32_t w = bits_of(f), twice = w + w, sign = w & 0x80000000u;
  uint32_t bias = twice & 0xff000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = float_of((bias >> 1) + 0x07800000u) + base;
  const uint32_t b = bits_of(base);
  const uint32_t nonsign = ((b >> 13) & 0x7c00u) + (b & 0x0fffu);
  return static_cast<uint16_t>((sign >> 16) | (twice > 0xff000000u ? 0x7e00u : nonsign));
}

float float_from_half(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float v = static_cast<float>(mantissa) * 0x1.0p-24f;
    return sign ? -v : v;
  }
  if (exponent == 31) return float_of(sign | 0x7f800000u | (mantissa << 13));
  return float_of(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

float scale_at(const uint8_t* row, size_t in, size_t block) {
  uint16_t h;
  std::memcpy(&h, row + in + 2 * block, sizeof h);
  return float_from_half(h);
}

// Round half away from zero (ggml's roundf), inline: |v| <= 127.5 here.
int8_t round_to_int8(float v) {
  const float r = v >= 0.0f ? v + 0.5f : v - 0.5f;
  return static_cast<int8_t>(std::clamp(static_cast<int>(r), -127, 127));
}

// One block of 32 values: max |v| / 127 as the scale, values rounded to it.
void quantize_block(const float* v, float* scale, int8_t* q) {
  float amax = 0.0f;
  for (size_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(v[i]));
  const float d = amax / 127.0f;
  *scale = d;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (size_t i = 0; i < kQ8Block; ++i) q[i] = round_to_int8(v[i] * id);
}

}  // namespace

void quantize_q8_0_rows(WeightType type, const void* src, size_t r0, size_t r1, size_t in,
                        uint8_t* dst) {
  const size_t blocks = in / kQ8Block, esize = weight_type_size(type);
  std::vector<float> row(in);
  for (size_t r = r0; r < r1; ++r) {
    kernels::widen(type, static_cast<const uint8_t*>(src) + r * in * esize, in, row.data());
    uint8_t* out = dst + r * q8_0_row_bytes(in);
    for (size_t b = 0; b < blocks; ++b) {
      const float* v = &row[b * kQ8Block];
      float amax = 0.0f;
      for (size_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(v[i]));
      // The stored scale is float16, as in ggml; the values are rounded to
      // that rounded scale, so d16 * q is the closest reconstruction.
      const uint16_t h = half_from_float(amax / 127.0f);
      const float d16 = float_from_half(h);
      const float id = d16 != 0.0f ? 1.0f / d16 : 0.0f;
      auto* q = reinterpret_cast<int8_t*>(out + b * kQ8Block);
      for (size_t i = 0; i < kQ8Block; ++i) q[i] = round_to_int8(v[i] * id);
      std::memcpy(out + in + 2 * b, &h, sizeof h);
    }
  }
}

void pack_q8_0_tiles(const uint8_t* rows, size_t out, size_t in, uint8_t* dst) {
  const size_t blocks = in / kQ8Block, row_bytes = q8_0_row_bytes(in);
  const size_t tiles = (out + kQ8TileRows - 1) / kQ8TileRows;
  for (size_t t = 0; t < tiles; ++t) {
    uint8_t* tile = dst + t * kQ8TileRows * row_bytes;
    std::memset(tile, 0, kQ8TileRows * row_bytes);
    uint8_t* scales = tile + blocks * kQ8TileRows * kQ8Block;
    for (size_t j = 0; j < kQ8TileRows; ++j) {
      const size_t o = t * kQ8TileRows + j;
      const uint8_t* row = o < out ? rows + o * row_bytes : nullptr;
      for (size_t b = 0; b < blocks; ++b) {
        uint8_t* q = tile + b * kQ8TileRows * kQ8Block;
        for (size_t i = 0; i < kQ8Block; ++i) {
          const int v = row ? static_cast<int8_t>(row[b * kQ8Block + i]) : 0;
          q[(i / 4) * 64 + j * 4 + i % 4] = static_cast<uint8_t>(v + 128);
        }
        if (row) std::memcpy(scales + b * 32 + j * 2, row + in + 2 * b, 2);
      }
    }
  }
}

void quantize_q8_0_tiles(WeightType type, const void* src, size_t out, size_t in, size_t t0,
                         size_t t1, uint8_t* dst) {
  const size_t row_bytes = q8_0_row_bytes(in), tile_bytes = kQ8TileRows * row_bytes;
  std::vector<uint8_t> rows(tile_bytes);
  for (size_t t = t0; t < t1; ++t) {
    const size_t r0 = t * kQ8TileRows, r1 = std::min(out, r0 + kQ8TileRows);
    // quantize_q8_0_rows writes row r at r * row_bytes: shift the source instead
    const auto* first = static_cast<const uint8_t*>(src) + r0 * in * weight_type_size(type);
    quantize_q8_0_rows(type, first, 0, r1 - r0, in, rows.data());
    pack_q8_0_tiles(rows.data(), r1 - r0, in, dst + t * tile_bytes);
  }
}

void Q8Input::quantize(const float* x, size_t n_rows, size_t n_in, size_t ldx, ThreadPool* pool) {
  rows = n_rows;
  in = n_in;
  const size_t blocks = in / kQ8Block;
  q.resize(rows * in);
  d.resize(rows * blocks);
  offset.resize(rows * blocks);
  auto quantize_rows = [&](size_t r0, size_t r1, int) {
    for (size_t r = r0; r < r1; ++r)
      for (size_t b = 0; b < blocks; ++b) {
        int8_t* qb = &q[r * in + b * kQ8Block];
        quantize_block(x + r * ldx + b * kQ8Block, &d[r * blocks + b], qb);
        int32_t sum = 0;
        for (size_t i = 0; i < kQ8Block; ++i) sum += qb[i];
        offset[r * blocks + b] = -128 * sum;
      }
  };
  // Splitting pays only for a prompt's many rows.
  if (pool != nullptr && rows >= 16)
    pool->parallel_for(rows, quantize_rows);
  else
    quantize_rows(0, rows, 0);
}

namespace kernels {

namespace {

// Tile t's weight bytes of block b (16 rows x 32 inputs, see core/q8_0.h).
inline const uint8_t* tile_block(const uint8_t* tile, size_t b) {
  return tile + b * kQ8TileRows * kQ8Block;
}
inline const uint16_t* tile_scales(const uint8_t* tile, size_t blocks) {
  return reinterpret_cast<const uint16_t*>(tile + blocks * kQ8TileRows * kQ8Block);
}

// The reference: every product of the layout spelled out.
void dot_rows_scalar(const uint8_t* w, size_t outputs, const Q8Input& x, float* y, size_t ldy) {
  const size_t in = x.in, blocks = in / kQ8Block, tile_bytes = kQ8TileRows * q8_0_row_bytes(in);
  for (size_t o = 0; o < outputs; ++o) {
    const uint8_t* tile = w + o / kQ8TileRows * tile_bytes;
    const size_t j = o % kQ8TileRows;
    const uint16_t* scales = tile_scales(tile, blocks);
    for (size_t r = 0; r < x.rows; ++r) {
      const int8_t* qx = &x.q[r * in];
      float sum = 0.0f;
      for (size_t b = 0; b < blocks; ++b) {
        const uint8_t* qw = tile_block(tile, b);
        int32_t s = 0;
        for (size_t i = 0; i < kQ8Block; ++i)
          s += (static_cast<int32_t>(qw[(i / 4) * 64 + j * 4 + i % 4]) - 128) *
               qx[b * kQ8Block + i];
        uint16_t h;
        std::memcpy(&h, scales + b * kQ8TileRows + j, sizeof h);
        sum += static_cast<float>(s) * (float_from_half(h) * x.d[r * blocks + b]);
      }
      y[r * ldy + o] = sum;
    }
  }
}

#if defined(__x86_64__)

// Weights stream once, tile after tile; the hardware prefetcher stops at 4 KiB
// pages, so the kernels ask for the bytes this far ahead themselves.
constexpr size_t kPrefetchBytes = 2048;

// ---- AVX2: 8 rows per vector, |x| times w with x's sign (llama.cpp's trick:
// AVX2 multiplies only unsigned by signed bytes, in saturating 16-bit pairs,
// which |x| <= 127 and |w| <= 127 keep within range) ----
__attribute__((target("avx2,fma,f16c"))) void dot_tile_avx2(const uint8_t* tile, size_t n,
                                                           const Q8Input& x, float* y,
                                                           size_t ldy) {
  const size_t in = x.in, blocks = in / kQ8Block;
  const uint16_t* scales = tile_scales(tile, blocks);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones = _mm256_set1_epi16(1);
  for (size_t r = 0; r < x.rows; ++r) {
    const int8_t* qx = &x.q[r * in];
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; ++b) {
      const uint8_t* qw = tile_block(tile, b);
      __m256i sum_lo = _mm256_setzero_si256(), sum_hi = _mm256_setzero_si256();
      for (size_t g = 0; g < 8; ++g) {
        int32_t x4;
        std::memcpy(&x4, qx + b * kQ8Block + 4 * g, sizeof x4);
        const __m256i xv = _mm256_set1_epi32(x4), ax = _mm256_abs_epi8(xv);
        const __m256i w_lo = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qw + 64 * g)), flip);
        const __m256i w_hi = _mm256_xor_si256(
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qw + 64 * g + 32)), flip);
        sum_lo = _mm256_add_epi32(
            sum_lo, _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w_lo, xv)), ones));
        sum_hi = _mm256_add_epi32(
            sum_hi, _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(w_hi, xv)), ones));
      }
      const __m256 dx = _mm256_set1_ps(x.d[r * blocks + b]);
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + b * 16));
      const __m128i h_hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + b * 16 + 8));
      acc_lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum_lo), _mm256_mul_ps(_mm256_cvtph_ps(h), dx),
                               acc_lo);
      acc_hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum_hi),
                               _mm256_mul_ps(_mm256_cvtph_ps(h_hi), dx), acc_hi);
    }
    float out[16];
    _mm256_storeu_ps(out, acc_lo);
    _mm256_storeu_ps(out + 8, acc_hi);
    std::memcpy(y + r * ldy, out, n * sizeof(float));
  }
}

__attribute__((target("avx2,fma,f16c"))) void dot_rows_avx2(const uint8_t* w, size_t outputs,
                                                           const Q8Input& x, float* y,
                                                           size_t ldy) {
  const size_t tile_bytes = kQ8TileRows * q8_0_row_bytes(x.in);
  for (size_t o = 0; o < outputs; o += kQ8TileRows)
    dot_tile_avx2(w + o / kQ8TileRows * tile_bytes, std::min(kQ8TileRows, outputs - o), x, y + o,
                  ldy);
}

// ---- AVX-512 VNNI: one vpdpbusd = 16 rows x 4 inputs ----
// The weights are stored as unsigned q + 128 and the inputs are signed, so
// each block's int32 sums start from the input's -128 * sum(q_x) (Q8Input::offset).
#define MMFUSE_VNNI_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma"

// R input rows against one tile; two dependency chains per row and block.
template <int R>
__attribute__((target(MMFUSE_VNNI_TARGET))) inline void dot_tile_vnni(const uint8_t* tile,
                                                                    __mmask16 keep,
                                                                    const Q8Input& x, size_t r0,
                                                                    float* y, size_t ldy) {
  const size_t in = x.in, blocks = in / kQ8Block;
  const uint16_t* scales = tile_scales(tile, blocks);
  const int8_t* qx[R];
  const float* dx[R];
  const int32_t* ox[R];
  __m512 acc[R];
  for (int r = 0; r < R; ++r) {
    qx[r] = &x.q[(r0 + r) * in];
    dx[r] = &x.d[(r0 + r) * blocks];
    ox[r] = &x.offset[(r0 + r) * blocks];
    acc[r] = _mm512_setzero_ps();
  }
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* qw = tile_block(tile, b);
    for (size_t line = 0; line < 512; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(qw) + kPrefetchBytes + line, _MM_HINT_T0);
    __m512i wv[8];
    for (int g = 0; g < 8; ++g) wv[g] = _mm512_loadu_si512(qw + 64 * g);
    const __m512 dw = _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + b * kQ8TileRows)));
    for (int r = 0; r < R; ++r) {
      const int32_t* x4 = reinterpret_cast<const int32_t*>(qx[r] + b * kQ8Block);
      __m512i even = _mm512_set1_epi32(ox[r][b]), odd = _mm512_setzero_si512();
      for (int g = 0; g < 8; g += 2) {
        even = _mm512_dpbusd_epi32(even, wv[g], _mm512_set1_epi32(x4[g]));
        odd = _mm512_dpbusd_epi32(odd, wv[g + 1], _mm512_set1_epi32(x4[g + 1]));
      }
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(even, odd)),
                               _mm512_mul_ps(dw, _mm512_set1_ps(dx[r][b])), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + (r0 + r) * ldy, keep, acc[r]);
}

// One input row (decoding one sequence) against two tiles: two weight streams
// in flight keep more memory requests outstanding, and each 4-byte input
// broadcast feeds both.
__attribute__((target(MMFUSE_VNNI_TARGET))) inline void dot_tile_pair_vnni(
    const uint8_t* tile0, const uint8_t* tile1, __mmask16 keep1, const Q8Input& x, float* y) {
  const size_t in = x.in, blocks = in / kQ8Block;
  const uint16_t* scales0 = tile_scales(tile0, blocks);
  const uint16_t* scales1 = tile_scales(tile1, blocks);
  const int8_t* qx = x.q.data();
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* qw0 = tile_block(tile0, b);
    const uint8_t* qw1 = tile_block(tile1, b);
    for (size_t line = 0; line < 512; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(qw0) + kPrefetchBytes + line, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(qw1) + kPrefetchBytes + line, _MM_HINT_T0);
    }
    const int32_t* x4 = reinterpret_cast<const int32_t*>(qx + b * kQ8Block);
    const __m512i offset = _mm512_set1_epi32(x.offset[b]);
    __m512i even0 = offset, odd0 = _mm512_setzero_si512();
    __m512i even1 = offset, odd1 = _mm512_setzero_si512();
    for (int g = 0; g < 8; g += 2) {
      const __m512i xa = _mm512_set1_epi32(x4[g]), xb = _mm512_set1_epi32(x4[g + 1]);
      even0 = _mm512_dpbusd_epi32(even0, _mm512_loadu_si512(qw0 + 64 * g), xa);
      even1 = _mm512_dpbusd_epi32(even1, _mm512_loadu_si512(qw1 + 64 * g), xa);
      odd0 = _mm512_dpbusd_epi32(odd0, _mm512_loadu_si512(qw0 + 64 * g + 64), xb);
      odd1 = _mm512_dpbusd_epi32(odd1, _mm512_loadu_si512(qw1 + 64 * g + 64), xb);
    }
    const __m512 dx = _mm512_set1_ps(x.d[b]);
    const __m512 dw0 = _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales0 + b * kQ8TileRows)));
    const __m512 dw1 = _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales1 + b * kQ8TileRows)));
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(even0, odd0)),
                           _mm512_mul_ps(dw0, dx), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(even1, odd1)),
                           _mm512_mul_ps(dw1, dx), acc1);
  }
  _mm512_storeu_ps(y, acc0);
  _mm512_mask_storeu_ps(y + kQ8TileRows, keep1, acc1);
}

__attribute__((target(MMFUSE_VNNI_TARGET))) void dot_rows_vnni(const uint8_t* w, size_t outputs,
                                                             const Q8Input& x, float* y,
                                                             size_t ldy) {
  const size_t tile_bytes = kQ8TileRows * q8_0_row_bytes(x.in);
  size_t first = 0;
  if (x.rows == 1)
    for (; first + kQ8TileRows < outputs; first += 2 * kQ8TileRows) {
      const size_t n = std::min(kQ8TileRows, outputs - first - kQ8TileRows);
      const uint8_t* tile = w + first / kQ8TileRows * tile_bytes;
      dot_tile_pair_vnni(tile, tile + tile_bytes, static_cast<__mmask16>((1u << n) - 1), x,
                         y + first);
    }
  for (size_t o = first; o < outputs; o += kQ8TileRows) {
    const uint8_t* tile = w + o / kQ8TileRows * tile_bytes;
    const size_t n = std::min(kQ8TileRows, outputs - o);
    const auto keep = static_cast<__mmask16>((1u << n) - 1);
    size_t r = 0;
    // A prompt's rows go 4 at a time through a tile that stays in cache.
    for (; r + 4 <= x.rows; r += 4) dot_tile_vnni<4>(tile, keep, x, r, y + o, ldy);
    switch (x.rows - r) {
      case 3: dot_tile_vnni<3>(tile, keep, x, r, y + o, ldy); break;
      case 2: dot_tile_vnni<2>(tile, keep, x, r, y + o, ldy); break;
      case 1: dot_tile_vnni<1>(tile, keep, x, r, y + o, ldy); break;
      default: break;
    }
  }
}

#endif  // __x86_64__

enum class Isa { scalar, avx2, avx512_vnni };

Isa isa() {
  static const Isa chosen = [] {
    const CpuFeatures& cpu = cpu_features();
    return cpu.avx512_vnni ? Isa::avx512_vnni : cpu.avx2_fma ? Isa::avx2 : Isa::scalar;
  }();
  return chosen;
}

}  // namespace

const char* q8_0_kernel_isa() {
  switch (isa()) {
    case Isa::avx512_vnni: return "avx512_vnni";
    case Isa::avx2: return "avx2";
    case Isa::scalar: break;
  }
  return "scalar";
}

void q8_0_dot_rows(const uint8_t* w, size_t outputs, const Q8Input& x, float* y, size_t ldy) {
#if defined(__x86_64__)
  if (isa() == Isa::avx512_vnni) return dot_rows_vnni(w, outputs, x, y, ldy);
  if (isa() == Isa::avx2) return dot_rows_avx2(w, outputs, x, y, ldy);
#endif
  dot_rows_scalar(w, outputs, x, y, ldy);
}

bool q8_0_dot_rows_with(const char* name, const uint8_t* w, size_t outputs, const Q8Input& x,
                        float* y, size_t ldy) {
  const std::string isa_name = name;
  if (isa_name == "scalar") {
    dot_rows_scalar(w, outputs, x, y, ldy);
    return true;
  }
#if defined(__x86_64__)
  if (isa_name == "avx512_vnni" && isa() == Isa::avx512_vnni) {
    dot_rows_vnni(w, outputs, x, y, ldy);
    return true;
  }
  if (isa_name == "avx2" && isa() != Isa::scalar) {
    dot_rows_avx2(w, outputs, x, y, ldy);
    return true;
  }
#endif
  return false;
}

void dequantize_q8_0_row(const uint8_t* row, size_t in, float* out) {
  const auto* q = reinterpret_cast<const int8_t*>(row);
  for (size_t b = 0; b < in / kQ8Block; ++b) {
    const float d = scale_at(row, in, b);
    for (size_t i = b * kQ8Block; i < (b + 1) * kQ8Block; ++i)
      out[i] = d * static_cast<float>(q[i]);
  }
}

void dequantize_q8_0_tiled_row(const uint8_t* tiles, size_t row, size_t in, float* out) {
  const size_t blocks = in / kQ8Block, j = row % kQ8TileRows;
  const uint8_t* tile = tiles + row / kQ8TileRows * kQ8TileRows * q8_0_row_bytes(in);
  const uint16_t* scales = tile_scales(tile, blocks);
  for (size_t b = 0; b < blocks; ++b) {
    uint16_t h;
    std::memcpy(&h, scales + b * kQ8TileRows + j, sizeof h);
    const float d = float_from_half(h);
    const uint8_t* qw = tile_block(tile, b);
    for (size_t i = 0; i < kQ8Block; ++i)
      out[b * kQ8Block + i] =
          d * static_cast<float>(static_cast<int>(qw[(i / 4) * 64 + j * 4 + i % 4]) - 128);
  }
}

}  // namespace kernels

}  // namespace mmfuse
