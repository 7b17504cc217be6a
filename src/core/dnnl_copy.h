// Strided 4-D float copies and element-wise maps through oneDNN's JIT reorder
// and eltwise kernels, split over the calling thread's OpenMP threads (the
// same threads the convolutions use, so nothing is oversubscribed). The ONNX
// graph runner moves activations with these: layout changes (NCHW <-> NHWC),
// channel Concat/Split/Slice in NHWC (a channel slice is a strided view).
// Built once at plan time; run() only executes and may be called from several
// threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

namespace mmfuse {

class StridedCopy {
 public:
  using Dims = std::array<int64_t, 4>;
  // Copies `dims` elements: dst[i . dst_strides] = src[i . src_strides] (strides in floats).
  StridedCopy(const Dims& dims, const Dims& src_strides, const Dims& dst_strides);
  ~StridedCopy();
  StridedCopy(const StridedCopy&) = delete;
  StridedCopy& operator=(const StridedCopy&) = delete;

  void run(const float* src, float* dst) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class ElementwiseKind { logistic, exp };

// dst[k] = f(src[k]) for n floats; dst may alias src.
class Elementwise {
 public:
  Elementwise(ElementwiseKind kind, int64_t n);
  ~Elementwise();
  Elementwise(const Elementwise&) = delete;
  Elementwise& operator=(const Elementwise&) = delete;

  void run(const float* src, float* dst) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse
