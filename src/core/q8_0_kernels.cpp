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

const uint16_t* scales_of(const uint8_t* row, size_t in) {
  return reinterpret_cast<const uint16_t*>(row + in);
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

void Q8Input::quantize(const float* x, size_t n_rows, size_t n_in, size_t ldx) {
  rows = n_rows;
  in = n_in;
  const size_t blocks = in / kQ8Block;
  q.resize(rows * in);
  d.resize(rows * blocks);
  for (size_t r = 0; r < rows; ++r)
    for (size_t b = 0; b < blocks; ++b)
      quantize_block(x + r * ldx + b * kQ8Block, &d[r * blocks + b], &q[r * in + b * kQ8Block]);
}

namespace kernels {

namespace {

void dot_rows_scalar(const uint8_t* w, size_t outputs, const Q8Input& x, float* y, size_t ldy) {
  const size_t in = x.in, blocks = in / kQ8Block, stride = q8_0_row_bytes(in);
  for (size_t o = 0; o < outputs; ++o) {
    const uint8_t* row = w + o * stride;
    const auto* qw = reinterpret_cast<const int8_t*>(row);
    for (size_t r = 0; r < x.rows; ++r) {
      const int8_t* qx = &x.q[r * in];
      float sum = 0.0f;
      for (size_t b = 0; b < blocks; ++b) {
        int32_t s = 0;
        for (size_t i = b * kQ8Block; i < (b + 1) * kQ8Block; ++i)
          s += static_cast<int32_t>(qw[i]) * qx[i];
        sum += static_cast<float>(s) * (scale_at(row, in, b) * x.d[r * blocks + b]);
      }
      y[r * ldy + o] = sum;
    }
  }
}

#if defined(__x86_64__)

// Weights stream once, row after row; the hardware prefetcher stops at 4 KiB
// pages, so the kernels ask for the bytes this far ahead themselves.
constexpr size_t kPrefetchBytes = 1024;

// ---- AVX2: one block (32 values) per step ----
// |x| as unsigned times w with x's sign, in 16-bit pair sums (at most
// 2 * 127 * 127, no saturation), then 32-bit sums: llama.cpp's trick, as
// AVX2 multiplies only unsigned by signed bytes.
__attribute__((target("avx2,fma,f16c"))) inline __m256 block_dot_avx2(const int8_t* qw,
                                                                     const int8_t* qx) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qw));
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qx));
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(w, v));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

__attribute__((target("avx2,fma,f16c"))) inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) void dot_rows_avx2(const uint8_t* w, size_t outputs,
                                                           const Q8Input& x, float* y,
                                                           size_t ldy) {
  const size_t in = x.in, blocks = in / kQ8Block, stride = q8_0_row_bytes(in);
  for (size_t o = 0; o < outputs; ++o) {
    const uint8_t* row = w + o * stride;
    const auto* qw = reinterpret_cast<const int8_t*>(row);
    const uint16_t* dw = scales_of(row, in);
    for (size_t r = 0; r < x.rows; ++r) {
      const int8_t* qx = &x.q[r * in];
      const float* dx = &x.d[r * blocks];
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      size_t b = 0;
      for (; b + 2 <= blocks; b += 2) {
        if (r == 0) _mm_prefetch(reinterpret_cast<const char*>(qw + b * kQ8Block) + kPrefetchBytes,
                                 _MM_HINT_T0);
        uint16_t h[2];
        std::memcpy(h, dw + b, sizeof h);
        acc0 = _mm256_fmadd_ps(block_dot_avx2(qw + b * kQ8Block, qx + b * kQ8Block),
                               _mm256_set1_ps(_cvtsh_ss(h[0]) * dx[b]), acc0);
        acc1 = _mm256_fmadd_ps(block_dot_avx2(qw + (b + 1) * kQ8Block, qx + (b + 1) * kQ8Block),
                               _mm256_set1_ps(_cvtsh_ss(h[1]) * dx[b + 1]), acc1);
      }
      for (; b < blocks; ++b) {
        uint16_t h;
        std::memcpy(&h, dw + b, sizeof h);
        acc0 = _mm256_fmadd_ps(block_dot_avx2(qw + b * kQ8Block, qx + b * kQ8Block),
                               _mm256_set1_ps(_cvtsh_ss(h) * dx[b]), acc0);
      }
      y[r * ldy + o] = hsum_avx2(_mm256_add_ps(acc0, acc1));
    }
  }
}

// ---- AVX-512 VNNI: two blocks (64 values) per step ----
// vpdpbusd multiplies unsigned by signed bytes, so as on AVX2: |x| times w
// with x's sign. Lanes 0-7 of the 16 int32 sums belong to the first block,
// 8-15 to the second; the scale products d_w d_x of 16 blocks are computed at
// once and spread to those lanes with a permute.
#define MMFUSE_VNNI_TARGET "avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma"

template <int R>
__attribute__((target(MMFUSE_VNNI_TARGET))) void dot_row_vnni(const uint8_t* row, size_t in,
                                                            const int8_t* const* qx,
                                                            const float* const* dx, float* out) {
  const size_t blocks = in / kQ8Block;
  const auto* qw = reinterpret_cast<const int8_t*>(row);
  const uint16_t* dw = scales_of(row, in);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const __m512i high_half = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (size_t b0 = 0; b0 < blocks; b0 += 16) {
    const size_t n = std::min<size_t>(16, blocks - b0);  // blocks in this group
    const __mmask16 scale_mask = static_cast<__mmask16>((1u << n) - 1);
    const __m512 sw = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(scale_mask, dw + b0));
    __m512 s[R];
    for (int r = 0; r < R; ++r)
      s[r] = _mm512_mul_ps(sw, _mm512_maskz_loadu_ps(scale_mask, dx[r] + b0));
    for (size_t p = 0; p < n; p += 2) {
      const size_t k = (b0 + p) * kQ8Block;
      _mm_prefetch(reinterpret_cast<const char*>(qw + k) + kPrefetchBytes, _MM_HINT_T0);
      const __mmask64 bytes = n - p >= 2 ? ~__mmask64{0} : __mmask64{0xffffffffu};
      const __m512i wv = _mm512_maskz_loadu_epi8(bytes, qw + k);
      const __m512i idx = _mm512_add_epi32(high_half, _mm512_set1_epi32(static_cast<int>(p)));
      for (int r = 0; r < R; ++r) {
        const __m512i xv = _mm512_maskz_loadu_epi8(bytes, qx[r] + k);
        const __mmask64 negative = _mm512_movepi8_mask(xv);
        const __m512i signed_w = _mm512_mask_sub_epi8(wv, negative, _mm512_setzero_si512(), wv);
        const __m512i sums =
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(xv), signed_w);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_permutexvar_ps(idx, s[r]),
                                 acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

// One input row against 4 weight rows (decoding one sequence): four weight
// streams in flight keep more memory requests outstanding, and |x| and its
// signs are computed once for the four.
__attribute__((target(MMFUSE_VNNI_TARGET))) void dot_4_outputs_vnni(const uint8_t* w,
                                                                  size_t stride, size_t in,
                                                                  const int8_t* qx,
                                                                  const float* dx, float* out) {
  const size_t blocks = in / kQ8Block;
  const int8_t* qw[4];
  const uint16_t* dw[4];
  for (int j = 0; j < 4; ++j) {
    qw[j] = reinterpret_cast<const int8_t*>(w + j * stride);
    dw[j] = scales_of(w + j * stride, in);
  }
  __m512 acc[4];
  for (int j = 0; j < 4; ++j) acc[j] = _mm512_setzero_ps();
  const __m512i high_half = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (size_t b0 = 0; b0 < blocks; b0 += 16) {
    const size_t n = std::min<size_t>(16, blocks - b0);
    const __mmask16 scale_mask = static_cast<__mmask16>((1u << n) - 1);
    const __m512 sx = _mm512_maskz_loadu_ps(scale_mask, dx + b0);
    __m512 s[4];
    for (int j = 0; j < 4; ++j)
      s[j] = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(scale_mask, dw[j] + b0)), sx);
    for (size_t p = 0; p < n; p += 2) {
      const size_t k = (b0 + p) * kQ8Block;
      const __mmask64 bytes = n - p >= 2 ? ~__mmask64{0} : __mmask64{0xffffffffu};
      const __m512i xv = _mm512_maskz_loadu_epi8(bytes, qx + k);
      const __mmask64 negative = _mm512_movepi8_mask(xv);
      const __m512i ax = _mm512_abs_epi8(xv);
      const __m512i idx = _mm512_add_epi32(high_half, _mm512_set1_epi32(static_cast<int>(p)));
      for (int j = 0; j < 4; ++j) {
        _mm_prefetch(reinterpret_cast<const char*>(qw[j] + k) + kPrefetchBytes, _MM_HINT_T0);
        const __m512i wv = _mm512_maskz_loadu_epi8(bytes, qw[j] + k);
        const __m512i signed_w = _mm512_mask_sub_epi8(wv, negative, _mm512_setzero_si512(), wv);
        const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ax, signed_w);
        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_permutexvar_ps(idx, s[j]),
                                 acc[j]);
      }
    }
  }
  for (int j = 0; j < 4; ++j) out[j] = _mm512_reduce_add_ps(acc[j]);
}

__attribute__((target(MMFUSE_VNNI_TARGET))) void dot_rows_vnni(const uint8_t* w, size_t outputs,
                                                             const Q8Input& x, float* y,
                                                             size_t ldy) {
  const size_t in = x.in, blocks = in / kQ8Block, stride = q8_0_row_bytes(in);
  const int8_t* qx[4];
  const float* dx[4];
  size_t first = 0;
  if (x.rows == 1) {
    float out[4];
    for (; first + 4 <= outputs; first += 4) {
      dot_4_outputs_vnni(w + first * stride, stride, in, x.q.data(), x.d.data(), out);
      for (int j = 0; j < 4; ++j) y[first + j] = out[j];
    }
  }
  for (size_t o = first; o < outputs; ++o) {
    const uint8_t* row = w + o * stride;
    size_t r = 0;
    float out[4];
    for (; r + 4 <= x.rows; r += 4) {
      for (int j = 0; j < 4; ++j) {
        qx[j] = &x.q[(r + j) * in];
        dx[j] = &x.d[(r + j) * blocks];
      }
      dot_row_vnni<4>(row, in, qx, dx, out);
      for (int j = 0; j < 4; ++j) y[(r + j) * ldy + o] = out[j];
    }
    for (; r < x.rows; ++r) {
      qx[0] = &x.q[r * in];
      dx[0] = &x.d[r * blocks];
      dot_row_vnni<1>(row, in, qx, dx, out);
      y[r * ldy + o] = out[0];
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

}  // namespace kernels

}  // namespace mmfuse
