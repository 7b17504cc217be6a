// Element-wise kernels and reductions. This file alone is compiled with
// -ffast-math so that GCC vectorises expf/erff/tanhf through glibc's libmvec
// (AVX2/AVX-512 variants), about 10x faster than scalar libm and accurate to a
// few ulp, and may reorder sums into vector lanes. Inputs must be finite
// (masked attention scores are skipped, never set to -inf).
//
// One build serves every x86-64 CPU: each kernel is compiled for AVX-512
// (x86-64-v4), AVX2 + FMA (x86-64-v3) and the baseline, and the dynamic loader
// picks the best the CPU has (GCC function multi-versioning), so nothing here
// depends on -march. The clones live in an anonymous namespace: GCC would
// export the resolvers of clones with external linkage from the library.
#include <cmath>
#include <cstring>

#include "core/ops.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MMFUSE_CPU_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MMFUSE_CPU_CLONES
#endif

namespace mmfuse::kernels {

namespace {

MMFUSE_CPU_CLONES
void activate_span_clones(float* x, size_t n, Activation act) {
  switch (act) {
    case Activation::quick_gelu:
      for (size_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-1.702f * x[i]));
      return;
    case Activation::gelu:
      for (size_t i = 0; i < n; ++i)
        x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
      return;
    case Activation::gelu_tanh:
      for (size_t i = 0; i < n; ++i) {
        float u = 0.7978845608028654f * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        x[i] = 0.5f * x[i] * (1.0f + std::tanh(u));
      }
      return;
    case Activation::relu:
      for (size_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case Activation::tanh:
      for (size_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
      return;
  }
}

MMFUSE_CPU_CLONES
void layer_norm_row_clones(const float* x, size_t dim, const float* w, const float* b, float eps,
                    float* y) {
  float sum = 0.0f;
  for (size_t i = 0; i < dim; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(dim);
  float sq = 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    float d = x[i] - mean;
    sq += d * d;
  }
  const float inv = 1.0f / std::sqrt(sq / static_cast<float>(dim) + eps);
  for (size_t i = 0; i < dim; ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

MMFUSE_CPU_CLONES
void softmax_row_clones(float* x, size_t n) {
  float max = x[0];
  for (size_t i = 1; i < n; ++i) max = x[i] > max ? x[i] : max;
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

MMFUSE_CPU_CLONES
float dot_clones(const float* a, const float* b, size_t n) {
  // 32 independent partial sums: GCC keeps them in four 8-wide registers, so
  // consecutive FMAs do not wait on each other's latency.
  constexpr size_t lanes = 32;
  float partial[lanes] = {};
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (size_t j = 0; j < lanes; ++j) partial[j] += a[i + j] * b[i + j];
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * b[i];
  for (size_t j = 0; j < lanes; ++j) sum += partial[j];
  return sum;
}

MMFUSE_CPU_CLONES
float dot_u8_clones(const float* a, const uint8_t* b, size_t n) {
  constexpr size_t lanes = 32;
  float partial[lanes] = {};
  size_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (size_t j = 0; j < lanes; ++j) partial[j] += a[i + j] * static_cast<float>(b[i + j]);
  float sum = 0.0f;
  for (; i < n; ++i) sum += a[i] * static_cast<float>(b[i]);
  for (size_t j = 0; j < lanes; ++j) sum += partial[j];
  return sum;
}

MMFUSE_CPU_CLONES
void quantize_row_u8_clones(const float* x, size_t n, int levels, uint8_t* q, float* scale_out,
                            int32_t* zero_out) {
  float lo = 0.0f, hi = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  const float top = static_cast<float>(levels);
  float scale = (hi - lo) / top;
  if (!(scale > 0.0f)) scale = 1.0f;
  float zero = std::nearbyint(-lo / scale);
  zero = zero < 0.0f ? 0.0f : (zero > top ? top : zero);
  const float inv = 1.0f / scale;
  for (size_t i = 0; i < n; ++i) {
    float v = std::rint(x[i] * inv) + zero;
    v = v < 0.0f ? 0.0f : (v > top ? top : v);
    q[i] = static_cast<uint8_t>(static_cast<int>(v));
  }
  *scale_out = scale;
  *zero_out = static_cast<int32_t>(zero);
}

MMFUSE_CPU_CLONES
void round_row_bf16_clones(const float* x, size_t n, uint16_t* y) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof(bits));
    bits += 0x7fffu + ((bits >> 16) & 1u);
    y[i] = static_cast<uint16_t>(bits >> 16);
  }
}

MMFUSE_CPU_CLONES
void dequantize_row_clones(const int32_t* acc, size_t n, float sx, int32_t zx, const float* sw,
                           const int32_t* sums, const float* bias, float* y, bool accumulate) {
  if (accumulate) {
    if (bias != nullptr)
      for (size_t j = 0; j < n; ++j)
        y[j] += sx * sw[j] * static_cast<float>(acc[j] - zx * sums[j]) + bias[j];
    else
      for (size_t j = 0; j < n; ++j) y[j] += sx * sw[j] * static_cast<float>(acc[j] - zx * sums[j]);
  } else {
    if (bias != nullptr)
      for (size_t j = 0; j < n; ++j)
        y[j] = sx * sw[j] * static_cast<float>(acc[j] - zx * sums[j]) + bias[j];
    else
      for (size_t j = 0; j < n; ++j) y[j] = sx * sw[j] * static_cast<float>(acc[j] - zx * sums[j]);
  }
}

MMFUSE_CPU_CLONES
void bias_row_clones(const float* o, size_t n, const float* bias, float* y, bool accumulate) {
  if (accumulate) {
    if (bias != nullptr)
      for (size_t j = 0; j < n; ++j) y[j] += o[j] + bias[j];
    else
      for (size_t j = 0; j < n; ++j) y[j] += o[j];
  } else {
    if (bias != nullptr)
      for (size_t j = 0; j < n; ++j) y[j] = o[j] + bias[j];
    else
      for (size_t j = 0; j < n; ++j) y[j] = o[j];
  }
}

}  // namespace

void dequantize_row(const int32_t* acc, size_t n, float sx, int32_t zx, const float* sw,
                    const int32_t* sums, const float* bias, float* y, bool accumulate) {
  dequantize_row_clones(acc, n, sx, zx, sw, sums, bias, y, accumulate);
}
void bias_row(const float* o, size_t n, const float* bias, float* y, bool accumulate) {
  bias_row_clones(o, n, bias, y, accumulate);
}
void quantize_row_u8(const float* x, size_t n, int levels, uint8_t* q, float* scale,
                     int32_t* zero) {
  quantize_row_u8_clones(x, n, levels, q, scale, zero);
}
void round_row_bf16(const float* x, size_t n, uint16_t* y) { round_row_bf16_clones(x, n, y); }
void activate_span(float* x, size_t n, Activation act) { activate_span_clones(x, n, act); }
void layer_norm_row(const float* x, size_t dim, const float* w, const float* b, float eps,
                    float* y) {
  layer_norm_row_clones(x, dim, w, b, eps, y);
}
void softmax_row(float* x, size_t n) { softmax_row_clones(x, n); }
float dot(const float* a, const float* b, size_t n) { return dot_clones(a, b, n); }
float dot_u8(const float* a, const uint8_t* b, size_t n) { return dot_u8_clones(a, b, n); }

}  // namespace mmfuse::kernels
