// Runs the ONNX graphs that Ultralytics' exporter writes for detection models
// (YOLOv8/v5/..., any opset): the operator subset those exports use, planned
// once for a fixed input size.
//
// At load the shape arithmetic (Shape/Gather/Concat/Reshape targets, anchor
// grids) is folded into constants, Conv + Sigmoid·Mul (SiLU) pairs become one
// oneDNN convolution with a fused activation (core/conv2d), the convolution
// stack runs in NHWC end to end (layout changes are inserted only where a
// plain op such as the head's Reshape needs them) and every intermediate gets
// a buffer slot reused once its last reader ran. A call only executes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/onnx_model.h"

namespace mmfuse {

class OnnxGraphRunner {
 public:
  // Plans `model`'s graph for one float input of `input_shape` (NCHW), its
  // convolutions for `threads` OpenMP threads (the caller's pool size).
  // Throws Error(unsupported) naming the node and op for an operator or an
  // attribute outside the supported subset, Error(bad_input) for a graph that
  // is inconsistent (unknown input names, shapes that do not match).
  // `input_nhwc`: run() takes the input interleaved ([H, W, C] floats for an
  // NCHW input_shape (1, C, H, W)), which the convolutions read directly.
  OnnxGraphRunner(const OnnxModel& model, const std::vector<int64_t>& input_shape, int threads = 1,
                  bool input_nhwc = false);
  ~OnnxGraphRunner();
  OnnxGraphRunner(const OnnxGraphRunner&) = delete;
  OnnxGraphRunner& operator=(const OnnxGraphRunner&) = delete;

  const std::vector<int64_t>& input_shape() const;
  size_t output_count() const;
  const std::vector<int64_t>& output_shape(size_t index) const;

  // `input`: the NCHW floats of input_shape() (NHWC if so planned). Returns each graph output,
  // row-major. Convolutions use the planned number of OpenMP threads; several
  // threads may call run() at once (each takes its own workspace).
  std::vector<std::vector<float>> run(const float* input) const;

  // Steps per call, e.g. "57 conv (57 fused SiLU), 40 other, 2 layout changes".
  std::string summary() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse
