// Weights packed once for oneDNN's matmul primitive. dnnl_sgemm repacks the
// weight matrix on every call, which at a few dozen tokens costs about a third
// of the product; packed once at load, the brgemm kernels run 25-30 % faster.
// The matrix is cut into column slices so the ThreadPool can share them out.
#pragma once

#include <memory>
#include <vector>

namespace mmfuse {

class PackedLinear {
 public:
  // weight: [out, in] row-major (nn.Linear). Throws mmfuse::Error if oneDNN
  // cannot pack it (the caller then keeps using the unpacked weights).
  PackedLinear(const float* weight, int in, int out);
  ~PackedLinear();
  PackedLinear(const PackedLinear&) = delete;
  PackedLinear& operator=(const PackedLinear&) = delete;

  // Columns per slice: a multiple of the kernels' 64-wide blocks, small enough
  // that 2-4 threads get even shares of 512-3072 outputs.
  static constexpr int kSliceWidth = 128;

  int slices() const { return static_cast<int>(slices_.size()); }

  // y[r, n0 + j] (+)= sum_k x[r, k] W[n0 + j, k] (+ bias[n0 + j]) for the
  // columns [n0, n0 + width) of slice `s`. x is [rows, in] dense; y has row
  // stride ldy. Returns false when no packed kernel fits this row count; the
  // caller must then use the unpacked weights. Single-threaded.
  bool multiply(const float* x, int rows, int s, const float* bias, float* y, int ldy,
                bool accumulate) const;

 private:
  struct Slice;
  int in_ = 0;
  std::vector<std::unique_ptr<Slice>> slices_;
};

}  // namespace mmfuse
