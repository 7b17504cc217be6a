// Vector kernels for F16/BF16/F32 weights, compiled for several instruction
// sets with GCC target attributes and chosen once at run time from CPUID, so
// one binary uses AVX-512 where the CPU has it and still runs on AVX2-only or
// older x86-64 machines (nothing here depends on -march).
#include <cstring>
#include <string>

#include "core/cpu_features.h"
#include "core/typed_linear.h"

#if defined(__x86_64__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers build vectors from _mm512_undefined_*(), which
// -Wmaybe-uninitialized reports falsely once inlined into target functions.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#endif

namespace mmfuse::kernels {

namespace {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu, bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float scalar_value(WeightType type, const void* src, size_t i) {
  switch (type) {
    case WeightType::f16: return half_to_float(static_cast<const uint16_t*>(src)[i]);
    case WeightType::bf16: return bf16_to_float(static_cast<const uint16_t*>(src)[i]);
    case WeightType::f32:
    case WeightType::q8_0: break;  // q8_0 rows go through core/q8_0.h
  }
  return static_cast<const float*>(src)[i];
}

void widen_scalar(WeightType type, const void* src, size_t n, float* dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = scalar_value(type, src, i);
}

void dot_rows_scalar(WeightType type, const void* w, size_t outputs, size_t in, const float* x,
                     size_t ldx, size_t rows, float* y, size_t ldy) {
  const size_t esize = weight_type_size(type);
  for (size_t o = 0; o < outputs; ++o) {
    const void* wo = static_cast<const uint8_t*>(w) + o * in * esize;
    for (size_t r = 0; r < rows; ++r) {
      float sum = 0.0f;
      for (size_t k = 0; k < in; ++k) sum += x[r * ldx + k] * scalar_value(type, wo, k);
      y[r * ldy + o] = sum;
    }
  }
}

#if defined(__x86_64__)

// Weights are streamed once, row after row; the hardware prefetcher stops at
// each 4 KiB page (one F16 row of a 2048-wide layer), so the kernels ask for
// the bytes this far ahead themselves, across row and page ends.
constexpr size_t kPrefetchBytes = 1024;

// ---- AVX2 + FMA + F16C: 8 lanes ----
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8_avx2(WeightType type, const void* w,
                                                                 size_t k) {
  if (type == WeightType::f16)
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + k)));
  if (type == WeightType::bf16)
    return _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_cvtepu16_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + k))),
        16));
  return _mm256_loadu_ps(static_cast<const float*>(w) + k);
}

__attribute__((target("avx2,fma,f16c"))) inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) void widen_avx2(WeightType type, const void* src,
                                                        size_t n, float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8_avx2(type, src, i));
  for (; i < n; ++i) dst[i] = scalar_value(type, src, i);
}

// Up to 4 rows share each weight load; two accumulators per row hide the FMA latency.
template <int R>
__attribute__((target("avx2,fma,f16c"))) void dot_block_avx2(WeightType type, const void* wo,
                                                            size_t in, const float* x, size_t ldx,
                                                            float* out) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  size_t k = 0;
  const char* stream = static_cast<const char*>(wo);
  const size_t esize = weight_type_size(type);
  for (; k + 16 <= in; k += 16) {
    if (k % 32 == 0 || esize == 4) _mm_prefetch(stream + k * esize + kPrefetchBytes, _MM_HINT_T0);
    const __m256 w0 = load8_avx2(type, wo, k), w1 = load8_avx2(type, wo, k + 8);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * ldx + k), acc0[r]);
      acc1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * ldx + k + 8), acc1[r]);
    }
  }
  for (; k + 8 <= in; k += 8) {
    const __m256 w0 = load8_avx2(type, wo, k);
    for (int r = 0; r < R; ++r)
      acc0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * ldx + k), acc0[r]);
  }
  for (int r = 0; r < R; ++r) {
    float sum = hsum_avx2(_mm256_add_ps(acc0[r], acc1[r]));
    for (size_t j = k; j < in; ++j) sum += x[r * ldx + j] * scalar_value(type, wo, j);
    out[r] = sum;
  }
}

__attribute__((target("avx2,fma,f16c"))) void dot_rows_avx2(WeightType type, const void* w,
                                                           size_t outputs, size_t in,
                                                           const float* x, size_t ldx, size_t rows,
                                                           float* y, size_t ldy) {
  const size_t esize = weight_type_size(type);
  for (size_t o = 0; o < outputs; ++o) {
    const void* wo = static_cast<const uint8_t*>(w) + o * in * esize;
    size_t r = 0;
    float out[4];
    for (; r + 4 <= rows; r += 4) {
      dot_block_avx2<4>(type, wo, in, x + r * ldx, ldx, out);
      for (int j = 0; j < 4; ++j) y[(r + j) * ldy + o] = out[j];
    }
    for (; r < rows; ++r) {
      dot_block_avx2<1>(type, wo, in, x + r * ldx, ldx, out);
      y[r * ldy + o] = out[0];
    }
  }
}

// ---- AVX-512F: 16 lanes ----
__attribute__((target("avx512f"))) inline __m512 load16_avx512(WeightType type, const void* w,
                                                              size_t k) {
  if (type == WeightType::f16)
    return _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + k)));
  if (type == WeightType::bf16)
    return _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + k))),
        16));
  return _mm512_loadu_ps(static_cast<const float*>(w) + k);
}

__attribute__((target("avx512f"))) void widen_avx512(WeightType type, const void* src, size_t n,
                                                    float* dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load16_avx512(type, src, i));
  for (; i < n; ++i) dst[i] = scalar_value(type, src, i);
}

template <int R>
__attribute__((target("avx512f"))) void dot_block_avx512(WeightType type, const void* wo,
                                                        size_t in, const float* x, size_t ldx,
                                                        float* out) {
  // Four accumulators per row over 64 weights (two cache lines of F16) per step.
  __m512 acc[4][R];
  for (int j = 0; j < 4; ++j)
    for (int r = 0; r < R; ++r) acc[j][r] = _mm512_setzero_ps();
  const char* stream = static_cast<const char*>(wo);
  const size_t esize = weight_type_size(type);
  size_t k = 0;
  for (; k + 64 <= in; k += 64) {
    _mm_prefetch(stream + k * esize + kPrefetchBytes, _MM_HINT_T0);
    _mm_prefetch(stream + k * esize + kPrefetchBytes + 64, _MM_HINT_T0);
    if (esize == 4) {
      _mm_prefetch(stream + k * esize + kPrefetchBytes + 128, _MM_HINT_T0);
      _mm_prefetch(stream + k * esize + kPrefetchBytes + 192, _MM_HINT_T0);
    }
    __m512 w[4];
    for (int j = 0; j < 4; ++j) w[j] = load16_avx512(type, wo, k + 16 * j);
    for (int j = 0; j < 4; ++j)
      for (int r = 0; r < R; ++r)
        acc[j][r] = _mm512_fmadd_ps(w[j], _mm512_loadu_ps(x + r * ldx + k + 16 * j), acc[j][r]);
  }
  for (; k + 16 <= in; k += 16) {
    const __m512 w0 = load16_avx512(type, wo, k);
    for (int r = 0; r < R; ++r)
      acc[0][r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + r * ldx + k), acc[0][r]);
  }
  for (int r = 0; r < R; ++r) {
    float sum = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0][r], acc[1][r]), _mm512_add_ps(acc[2][r], acc[3][r])));
    for (size_t j = k; j < in; ++j) sum += x[r * ldx + j] * scalar_value(type, wo, j);
    out[r] = sum;
  }
}

// One input row against 4 weight rows at once: four streams in flight keep
// more memory requests outstanding than one (decoding is bound by them), and
// each x load feeds four FMAs.
__attribute__((target("avx512f"))) void dot_4_outputs_avx512(WeightType type, const void* w,
                                                            size_t in, const float* x,
                                                            float* out) {
  const size_t esize = weight_type_size(type);
  const char* rows[4];
  for (int j = 0; j < 4; ++j) rows[j] = static_cast<const char*>(w) + j * in * esize;
  __m512 acc0[4], acc1[4];
  for (int j = 0; j < 4; ++j) acc0[j] = acc1[j] = _mm512_setzero_ps();
  size_t k = 0;
  for (; k + 32 <= in; k += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
    for (int j = 0; j < 4; ++j) {
      _mm_prefetch(rows[j] + k * esize + kPrefetchBytes, _MM_HINT_T0);
      if (esize == 4) _mm_prefetch(rows[j] + k * esize + kPrefetchBytes + 64, _MM_HINT_T0);
      acc0[j] = _mm512_fmadd_ps(load16_avx512(type, rows[j], k), x0, acc0[j]);
      acc1[j] = _mm512_fmadd_ps(load16_avx512(type, rows[j], k + 16), x1, acc1[j]);
    }
  }
  for (int j = 0; j < 4; ++j) {
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0[j], acc1[j]));
    for (size_t i = k; i < in; ++i) sum += x[i] * scalar_value(type, rows[j], i);
    out[j] = sum;
  }
}

__attribute__((target("avx512f"))) void dot_rows_avx512(WeightType type, const void* w,
                                                       size_t outputs, size_t in, const float* x,
                                                       size_t ldx, size_t rows, float* y,
                                                       size_t ldy) {
  const size_t esize = weight_type_size(type);
  size_t first = 0;
  if (rows == 1) {
    float out[4];
    for (; first + 4 <= outputs; first += 4) {
      dot_4_outputs_avx512(type, static_cast<const uint8_t*>(w) + first * in * esize, in, x, out);
      for (int j = 0; j < 4; ++j) y[first + j] = out[j];
    }
  }
  for (size_t o = first; o < outputs; ++o) {
    const void* wo = static_cast<const uint8_t*>(w) + o * in * esize;
    size_t r = 0;
    float out[4];
    for (; r + 4 <= rows; r += 4) {
      dot_block_avx512<4>(type, wo, in, x + r * ldx, ldx, out);
      for (int j = 0; j < 4; ++j) y[(r + j) * ldy + o] = out[j];
    }
    for (; r < rows; ++r) {
      dot_block_avx512<1>(type, wo, in, x + r * ldx, ldx, out);
      y[r * ldy + o] = out[0];
    }
  }
}

#endif  // __x86_64__

enum class Isa { scalar, avx2, avx512 };

Isa isa() {
  static const Isa chosen = [] {
    const CpuFeatures& cpu = cpu_features();
    return cpu.avx512f ? Isa::avx512 : cpu.avx2_fma ? Isa::avx2 : Isa::scalar;
  }();
  return chosen;
}

}  // namespace

const char* typed_kernel_isa() {
  switch (isa()) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::scalar: break;
  }
  return "scalar";
}

void widen(WeightType type, const void* src, size_t n, float* dst) {
#if defined(__x86_64__)
  if (isa() == Isa::avx512) return widen_avx512(type, src, n, dst);
  if (isa() == Isa::avx2) return widen_avx2(type, src, n, dst);
#endif
  widen_scalar(type, src, n, dst);
}

void typed_dot_rows(WeightType type, const void* w, size_t outputs, size_t in, const float* x,
                    size_t ldx, size_t rows, float* y, size_t ldy) {
#if defined(__x86_64__)
  if (isa() == Isa::avx512) return dot_rows_avx512(type, w, outputs, in, x, ldx, rows, y, ldy);
  if (isa() == Isa::avx2) return dot_rows_avx2(type, w, outputs, in, x, ldx, rows, y, ldy);
#endif
  dot_rows_scalar(type, w, outputs, in, x, ldx, rows, y, ldy);
}

bool typed_dot_rows_with(const char* name, WeightType type, const void* w, size_t outputs,
                         size_t in, const float* x, size_t ldx, size_t rows, float* y,
                         size_t ldy) {
  const std::string isa_name = name;
  if (isa_name == "scalar") {
    dot_rows_scalar(type, w, outputs, in, x, ldx, rows, y, ldy);
    return true;
  }
#if defined(__x86_64__)
  if (isa_name == "avx512" && isa() == Isa::avx512) {
    dot_rows_avx512(type, w, outputs, in, x, ldx, rows, y, ldy);
    return true;
  }
  if (isa_name == "avx2" && isa() != Isa::scalar) {
    dot_rows_avx2(type, w, outputs, in, x, ldx, rows, y, ldy);
    return true;
  }
#endif
  return false;
}

}  // namespace mmfuse::kernels
