// One 2-D convolution (with bias and an optional fused activation) on NHWC
// float activations, through oneDNN. The primitive and its weights, reordered
// once into the layout oneDNN picked, are built at construction; run() only
// executes, so one Conv2d may run on any number of threads at once (each with
// its own scratchpad).
//
// A 3x3 stride-1 convolution may run as Winograd (ConvAlgorithm::winograd_if_faster):
// oneDNN's Winograd kernels (AVX-512 only) take blocked nChw16c tensors and no
// SiLU post-op, so such a convolution is an island: reorder the NHWC input in,
// convolve, apply the activation, reorder out, all inside run(). Where oneDNN
// has no Winograd kernel (AVX2-only CPUs) or the shape is one where it does not
// pay, the direct convolution is used.
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

// direct: always oneDNN's direct convolution (exact summation order of the
// direct kernels). winograd_if_faster: Winograd for the 3x3 stride-1 shapes
// where it was measured faster on AVX-512 (see conv2d.cpp); results differ
// from direct by float rounding (~1e-6 relative per layer).
enum class ConvAlgorithm { direct, winograd_if_faster };

class Conv2d {
 public:
  // `weights`: ONNX/PyTorch layout [out, in/groups, kh, kw]; `bias`: [out] or null.
  // `accumulate`: add the convolution to what dst already holds (oneDNN's sum
  // post-op), before the activation. Throws Error(bad_input) for an inconsistent shape.
  Conv2d(const Conv2dShape& shape, const float* weights, const float* bias, ConvActivation activation,
         bool accumulate = false, ConvAlgorithm algorithm = ConvAlgorithm::direct);
  ~Conv2d();
  Conv2d(const Conv2d&) = delete;
  Conv2d& operator=(const Conv2d&) = delete;

  const Conv2dShape& shape() const { return shape_; }
  // Whether this convolution runs as Winograd (an island; see above).
  bool winograd() const;
  size_t scratchpad_bytes() const;

  // src: [in_h, in_w, in_channels], dst: [out_h, out_w, out_channels] (batch 1,
  // NHWC). Uses the OpenMP threads the calling thread is set to.
  // Winograd chains: `src_blocked` reads src in this convolution's blocked
  // input layout, `dst_blocked` leaves dst in its blocked output layout (no
  // reorder); only between two convolutions for which chains_into() holds.
  void run(const float* src, float* dst, void* scratchpad, bool src_blocked = false, bool dst_blocked = false) const;

  // Whether this convolution's blocked output is exactly `next`'s blocked input
  // (both Winograd, same layout and size as the NHWC tensor), so that the pair
  // can skip the reorders between them.
  bool chains_into(const Conv2d& next) const;

 private:
  Conv2dShape shape_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse
