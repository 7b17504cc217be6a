// One 2-D convolution (with bias and an optional fused activation) on NHWC
// float activations, through oneDNN. The primitive and its weights, reordered
// once into the layout oneDNN picked, are built at construction; run() only
// executes, so one Conv2d may run on any number of threads at once (each with
// its own scratchpad).
#pragma once

#include <cstddef>
#include <memory>

namespace mmfuse {

struct Conv2dShape {
  int in_channels = 0, out_channels = 0, in_h = 0, in_w = 0;
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1, groups = 1;

  int out_h() const;
  int out_w() const;
};

enum class ConvActivation { none, silu, sigmoid, relu };

class Conv2d {
 public:
  // `weights`: ONNX/PyTorch layout [out, in/groups, kh, kw]; `bias`: [out] or null.
  // `accumulate`: add the convolution to what dst already holds (oneDNN's sum
  // post-op), before the activation. Throws Error(bad_input) for an inconsistent shape.
  Conv2d(const Conv2dShape& shape, const float* weights, const float* bias, ConvActivation activation,
         bool accumulate = false);
  ~Conv2d();
  Conv2d(const Conv2d&) = delete;
  Conv2d& operator=(const Conv2d&) = delete;

  const Conv2dShape& shape() const { return shape_; }
  size_t scratchpad_bytes() const;

  // src: [in_h, in_w, in_channels], dst: [out_h, out_w, out_channels] (batch 1,
  // NHWC). Uses the OpenMP threads the calling thread is set to.
  void run(const float* src, float* dst, void* scratchpad) const;

 private:
  Conv2dShape shape_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse
