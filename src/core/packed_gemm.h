// Weights packed once for oneDNN's matmul primitive. dnnl_sgemm repacks the
// weight matrix on every call, which at a few dozen tokens costs about a third
// of the product; packed once at load, the brgemm kernels run 25-30 % faster.
// The matrix is cut into column slices so the ThreadPool can share them out.
//
// The same class holds reduced-precision copies (core/precision.h):
//  - bf16: weights rounded to bfloat16; inputs rounded per product; float32
//    accumulation (AMX / AVX-512-BF16).
//  - int8: dynamic quantisation as PyTorch's / ONNX Runtime's quantize_dynamic:
//    weights int8, symmetric, one scale per output channel; inputs quantised
//    per product to uint8, asymmetric, one scale and zero point per row (token);
//    int32 accumulation (VNNI / AMX dot products), dequantised with the bias in
//    float32: y = s_x[r] s_w[n] (sum_k q_x[r,k] q_w[n,k] - z_x[r] sum_k q_w[n,k]) + b[n].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/precision.h"

namespace mmfuse {

class PackedLinear {
 public:
  // weight: [out, in] row-major (nn.Linear), float32. Throws mmfuse::Error if
  // oneDNN cannot pack it (the caller then keeps using the unpacked weights;
  // for bf16/int8 the layer then stays float32).
  PackedLinear(const float* weight, int in, int out, Precision precision = Precision::f32);
  ~PackedLinear();

  // A layer packed earlier with the same shape and precision by the same
  // oneDNN on the same CPU ISA (a packed-weight cache file), used in place:
  // no copy; `keep_alive` owns the bytes for the life of the layer. Slice s
  // reads packed_slice_bytes(...)[s] bytes at slices[s]; int8 layers also
  // read `out` channel scales and weight sums. Throws Error(internal) when
  // the slice count differs from what this build packs.
  struct Stored {
    std::vector<const void*> slices;
    const float* scale = nullptr;   // int8 only
    const int32_t* sums = nullptr;  // int8 only
    std::shared_ptr<const void> keep_alive;
  };
  static std::shared_ptr<const PackedLinear> from_stored(int in, int out, Precision precision,
                                                         const Stored& stored);
  // The packed size of each slice for this shape and precision on this CPU.
  static std::vector<size_t> packed_slice_bytes(int in, int out, Precision precision);
  // What a cache file stores: each slice's packed bytes, and for int8 the
  // per-channel scales and weight sums (empty otherwise).
  const void* slice_data(int s) const;
  size_t slice_bytes(int s) const;
  const std::vector<float>& channel_scales() const { return scale_; }
  const std::vector<int32_t>& channel_sums() const { return sums_; }
  int out() const { return out_; }
  PackedLinear(const PackedLinear&) = delete;
  PackedLinear& operator=(const PackedLinear&) = delete;

  // Columns per f32 slice: a multiple of the kernels' 64-wide blocks, small
  // enough that 2-4 threads get even shares of 512-3072 outputs (bf16 / int8
  // use wider slices; slice_start / slice_width give each slice's columns).
  static constexpr int kSliceWidth = 128;

  int slices() const { return static_cast<int>(slices_.size()); }
  int slice_start(int s) const;
  int slice_width(int s) const;
  int in() const { return in_; }
  Precision precision() const { return precision_; }
  // Bytes of packed weights (and int8 scales).
  size_t bytes() const;

  // f32 only: y[r, n0 + j] (+)= sum_k x[r, k] W[n0 + j, k] (+ bias[n0 + j]) for
  // the columns [n0, n0 + width) of slice `s`. x is [rows, in] dense; y has row
  // stride ldy. Returns false when no packed kernel fits this row count; the
  // caller must then use the unpacked weights. Single-threaded.
  bool multiply(const float* x, int rows, int s, const float* bias, float* y, int ldy,
                bool accumulate) const;

  // bf16 / int8: an input converted once per product and shared by every slice.
  struct Input {
    int rows = 0;
    std::vector<uint8_t> data;   // [rows, in]: uint8 (int8) or bfloat16 (2 bytes each)
    std::vector<float> scale;    // int8: per row
    std::vector<int32_t> zero;   // int8: per row
  };
  // Sizes `input` for `rows` rows of this layer.
  void prepare_input(int rows, Input& input) const;
  // Converts rows [r0, r1) of x[rows, in] into `input` (threads may convert
  // disjoint row ranges at once).
  void convert_rows(const float* x, int r0, int r1, Input& input) const;
  // The product of slice `s` with a converted input, as multiply(). Always
  // succeeds (a row count whose kernel wants another layout gets the weights
  // re-laid-out for the call). Single-threaded.
  void multiply_converted(const Input& input, int s, const float* bias, float* y, int ldy,
                          bool accumulate) const;

 private:
  struct Slice;
  PackedLinear() = default;
  int in_ = 0;
  int out_ = 0;
  Precision precision_ = Precision::f32;
  // int8: the largest input code (255 with VNNI/AMX; 127 without, so that
  // AVX2's 16-bit pair sums cannot saturate, as PyTorch's reduce_range).
  int input_levels_ = 255;
  std::vector<std::unique_ptr<Slice>> slices_;
  std::vector<float> scale_;   // int8: s_w per output channel
  std::vector<int32_t> sums_;  // int8: sum_k q_w[n, k] per output channel (zero-point term)
  std::shared_ptr<const void> keep_alive_;  // from_stored: the mapped bytes the slices read
};

// Row kernels of the converted inputs (kernels_fast.cpp, vectorised).
namespace kernels {
// q[i] = clamp(round(x[i] / scale) + zero, 0, levels), with scale and zero
// chosen so that [min(x, 0), max(x, 0)] spans [0, levels] (asymmetric, as
// DynamicQuantizeLinear; an all-zero row gets scale 1, zero 0).
void quantize_row_u8(const float* x, size_t n, int levels, uint8_t* q, float* scale, int32_t* zero);
// y[i] = bfloat16(x[i]), rounded to nearest even.
void round_row_bf16(const float* x, size_t n, uint16_t* y);
// y[j] (+)= s_x s_w[j] (acc[j] - z_x sums[j]) + bias[j] (bias may be null).
void dequantize_row(const int32_t* acc, size_t n, float sx, int32_t zx, const float* sw,
                    const int32_t* sums, const float* bias, float* y, bool accumulate);
// y[j] (+)= o[j] + bias[j] (bias may be null).
void bias_row(const float* o, size_t n, const float* bias, float* y, bool accumulate);
}  // namespace kernels

}  // namespace mmfuse
