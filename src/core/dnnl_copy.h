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
  // Where it writes: a graph re-plans a copy into the same destination from these.
  const Dims& dst_strides() const { return dst_strides_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Dims dst_strides_;
};

// Channel slices between NHWC tensors: for each of `pixels` pixels, copies
// `width` floats from src + p * src_row to dst + p * dst_row (memcpy per pixel,
// the pixels split over `threads` OpenMP threads when there are enough).
// oneDNN's generic strided reorder was slower for this (yolov8s' Concats).
void copy_channel_rows(const float* src, int64_t src_row, float* dst, int64_t dst_row, int64_t pixels,
                       int64_t width, int threads);

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
