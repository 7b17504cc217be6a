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

}  // namespace

void activate_span(float* x, size_t n, Activation act) { activate_span_clones(x, n, act); }
void layer_norm_row(const float* x, size_t dim, const float* w, const float* b, float eps,
                    float* y) {
  layer_norm_row_clones(x, dim, w, b, eps, y);
}
void softmax_row(float* x, size_t n) { softmax_row_clones(x, n); }
float dot(const float* a, const float* b, size_t n) { return dot_clones(a, b, n); }
float dot_u8(const float* a, const uint8_t* b, size_t n) { return dot_u8_clones(a, b, n); }

}  // namespace mmfuse::kernels
