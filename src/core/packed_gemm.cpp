#include "core/packed_gemm.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>

#include "mmfuse/error.h"

extern "C" void omp_set_num_threads(int);
extern "C" int omp_get_max_threads(void);

namespace mmfuse {

namespace {

// The row count weights are packed for; the layout does not depend on it for
// brgemm, which the multiply calls check for every other row count.
constexpr int kPackRows = 64;

using dnnl::memory;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// oneDNN's types for a product: input, weights, output.
struct Types {
  dt src, weights, dst;
};
Types types_for(Precision p) {
  switch (p) {
    case Precision::bf16: return {dt::bf16, dt::bf16, dt::f32};
    case Precision::int8: return {dt::u8, dt::s8, dt::s32};
    case Precision::f32: break;
  }
  return {dt::f32, dt::f32, dt::f32};
}

memory::desc dense(memory::dim rows, memory::dim cols, dt type = dt::f32) {
  return memory::desc({rows, cols}, type, memory::format_tag::ab);
}

dnnl::matmul::primitive_desc make_pd(Precision p, int rows, int in, int width) {
  const Types t = types_for(p);
  memory::desc weights_any({in, width}, t.weights, memory::format_tag::any);
  dnnl::matmul::desc desc(dense(rows, in, t.src), weights_any, dense(rows, width, t.dst));
  // Each call brings its own scratchpad: the library's shared one is not safe
  // when several threads run primitives at once.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(desc, attr, cpu_engine());
}

// The packed weight layout of a (precision, in, width) slice, made once per
// shape: a cache hit re-creates many layers of a few shapes, and a primitive
// descriptor costs tens of microseconds.
memory::desc packed_desc_for(Precision p, int in, int width) {
  static std::mutex mutex;
  static std::map<std::tuple<int, int, int>, memory::desc> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_tuple(static_cast<int>(p), in, width);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  return cache.emplace(key, make_pd(p, kPackRows, in, width).weights_desc()).first->second;
}

// One single-threaded matmul per (precision, rows, in, width), shared by every
// slice of every layer with that shape (the weights are an argument at execution).
struct Kernel {
  std::unique_ptr<dnnl::matmul> matmul;  // null: no kernel for this shape
  memory::desc weights;                  // the weight layout it reads
  memory::desc scratchpad;
};

const Kernel& kernel_for(Precision p, int rows, int in, int width) {
  static std::mutex mutex;
  static std::map<std::tuple<int, int, int, int>, Kernel> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_tuple(static_cast<int>(p), rows, in, width);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Kernel k;
  try {
    auto pd = make_pd(p, rows, in, width);
    k.matmul = std::make_unique<dnnl::matmul>(pd);
    k.weights = pd.weights_desc();
    k.scratchpad = pd.scratchpad_desc();
  } catch (const dnnl::error&) {
    k.matmul.reset();
  }
  return cache.emplace(key, std::move(k)).first->second;
}

// oneDNN runs on libgomp: one OpenMP thread per call (the ThreadPool owns the
// cores), the caller's setting restored afterwards (FAISS shares it).
class OneOmpThread {
 public:
  OneOmpThread() : previous_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneOmpThread() { omp_set_num_threads(previous_); }

 private:
  int previous_;
};

// bf16 / int8 slices are wider: the AMX / VNNI kernels are fast enough that
// the per-call cost dominates at 128 columns (384 measured 7 % faster than 128
// for int8 ViT-B/32 at one thread). Widths that split the layer into an even
// number of equal slices, so two threads get equal shares.
int reduced_slice_width(int out) {
  if (out % 768 == 0) return 384;
  if (out % 512 == 0) return 256;
  return PackedLinear::kSliceWidth;
}

}  // namespace

struct PackedLinear::Slice {
  int n0 = 0, width = 0;
  memory::desc packed_desc;
  memory packed;
};

PackedLinear::PackedLinear(const float* weight, int in, int out, Precision precision)
    : in_(in), out_(out), precision_(precision) {
  OneOmpThread one;
  // int8: symmetric per-channel weights in [-127, 127] (as quantize_dynamic).
  std::vector<int8_t> quantized;
  if (precision == Precision::int8) {
    input_levels_ = cpu_has_int8_dot() ? 255 : 127;
    quantized.resize(static_cast<size_t>(in) * static_cast<size_t>(out));
    scale_.resize(static_cast<size_t>(out));
    sums_.resize(static_cast<size_t>(out));
    for (int n = 0; n < out; ++n) {
      const float* w = weight + static_cast<size_t>(n) * in;
      float amax = 0.0f;
      for (int k = 0; k < in; ++k) amax = std::max(amax, std::fabs(w[k]));
      const float scale = amax > 0.0f ? amax / 127.0f : 1.0f;
      int8_t* q = quantized.data() + static_cast<size_t>(n) * in;
      int32_t sum = 0;
      for (int k = 0; k < in; ++k) {
        const float v = std::nearbyint(w[k] / scale);
        q[k] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
        sum += q[k];
      }
      scale_[static_cast<size_t>(n)] = scale;
      sums_[static_cast<size_t>(n)] = sum;
    }
  }
  try {
    dnnl::stream stream(cpu_engine());
    const int slice_width = precision == Precision::f32 ? kSliceWidth : reduced_slice_width(out);
    for (int n0 = 0; n0 < out; n0 += slice_width) {
      auto slice = std::make_unique<Slice>();
      slice->n0 = n0;
      slice->width = std::min(slice_width, out - n0);
      slice->packed_desc = packed_desc_for(precision, in, slice->width);
      // W[n0:n0+width, :] seen as a [in, width] matrix with strides (1, in);
      // the reorder converts f32 to bf16 (round to nearest even) on the way.
      const bool int8 = precision == Precision::int8;
      memory::desc source({in, slice->width}, int8 ? dt::s8 : dt::f32, memory::dims{1, in});
      void* source_data =
          int8 ? static_cast<void*>(quantized.data() + static_cast<size_t>(n0) * in)
               : static_cast<void*>(const_cast<float*>(weight + static_cast<size_t>(n0) * in));
      memory src(source, cpu_engine(), source_data);
      slice->packed = memory(slice->packed_desc, cpu_engine());
      dnnl::reorder(src, slice->packed).execute(stream, src, slice->packed);
      stream.wait();
      slices_.push_back(std::move(slice));
    }
  } catch (const dnnl::error& e) {
    throw_error(ErrorKind::internal, std::string("oneDNN could not pack weights: ") + e.what());
  }
}

PackedLinear::~PackedLinear() = default;

std::vector<size_t> PackedLinear::packed_slice_bytes(int in, int out, Precision precision) {
  std::vector<size_t> bytes;
  try {
    const int slice_width = precision == Precision::f32 ? kSliceWidth : reduced_slice_width(out);
    for (int n0 = 0; n0 < out; n0 += slice_width)
      bytes.push_back(packed_desc_for(precision, in, std::min(slice_width, out - n0)).get_size());
  } catch (const dnnl::error& e) {
    throw_error(ErrorKind::internal, std::string("oneDNN has no packed layout: ") + e.what());
  }
  return bytes;
}

std::shared_ptr<const PackedLinear> PackedLinear::from_stored(int in, int out, Precision precision,
                                                              const Stored& stored) {
  const std::vector<size_t> sizes = packed_slice_bytes(in, out, precision);
  MMFUSE_CHECK(stored.slices.size() == sizes.size(), internal,
               "stored packed layer has " + std::to_string(stored.slices.size()) +
                   " slices, this build packs " + std::to_string(sizes.size()));
  std::shared_ptr<PackedLinear> p(new PackedLinear());
  p->in_ = in;
  p->out_ = out;
  p->precision_ = precision;
  p->keep_alive_ = stored.keep_alive;
  if (precision == Precision::int8) {
    MMFUSE_CHECK(stored.scale != nullptr && stored.sums != nullptr, internal,
                 "stored int8 layer without scales");
    p->input_levels_ = cpu_has_int8_dot() ? 255 : 127;
    p->scale_.assign(stored.scale, stored.scale + out);
    p->sums_.assign(stored.sums, stored.sums + out);
  }
  const int slice_width = precision == Precision::f32 ? kSliceWidth : reduced_slice_width(out);
  for (size_t s = 0; s < sizes.size(); ++s) {
    auto slice = std::make_unique<Slice>();
    slice->n0 = static_cast<int>(s) * slice_width;
    slice->width = std::min(slice_width, out - slice->n0);
    slice->packed_desc = packed_desc_for(precision, in, slice->width);
    // oneDNN only reads weights, so a read-only mapping serves as the buffer.
    slice->packed = memory(slice->packed_desc, cpu_engine(), const_cast<void*>(stored.slices[s]));
    p->slices_.push_back(std::move(slice));
  }
  return p;
}

const void* PackedLinear::slice_data(int s) const {
  return slices_[static_cast<size_t>(s)]->packed.get_data_handle();
}

size_t PackedLinear::slice_bytes(int s) const {
  return slices_[static_cast<size_t>(s)]->packed_desc.get_size();
}

int PackedLinear::slice_start(int s) const { return slices_[static_cast<size_t>(s)]->n0; }
int PackedLinear::slice_width(int s) const { return slices_[static_cast<size_t>(s)]->width; }

size_t PackedLinear::bytes() const {
  size_t total = scale_.size() * sizeof(float) + sums_.size() * sizeof(int32_t);
  for (const auto& s : slices_) total += s->packed_desc.get_size();
  return total;
}

bool PackedLinear::multiply(const float* x, int rows, int s, const float* bias, float* y, int ldy,
                            bool accumulate) const {
  MMFUSE_ASSERT(precision_ == Precision::f32);
  const Slice& slice = *slices_[static_cast<size_t>(s)];
  const Kernel& k = kernel_for(precision_, rows, in_, slice.width);
  if (!k.matmul || k.weights != slice.packed_desc) return false;
  thread_local std::vector<float> out;
  out.resize(static_cast<size_t>(rows) * static_cast<size_t>(slice.width));
  OneOmpThread one;
  thread_local dnnl::stream stream(cpu_engine());
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(std::max<size_t>(1, k.scratchpad.get_size()));
  memory src(dense(rows, in_), cpu_engine(), const_cast<float*>(x));
  memory dst(dense(rows, slice.width), cpu_engine(), out.data());
  memory pad(k.scratchpad, cpu_engine(), scratch.data());
  k.matmul->execute(stream, {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_WEIGHTS, slice.packed},
                             {DNNL_ARG_DST, dst},
                             {DNNL_ARG_SCRATCHPAD, pad}});
  stream.wait();
  // Bias and the residual (accumulate) in the same pass that scatters the slice.
  for (int r = 0; r < rows; ++r) {
    const float* o = out.data() + static_cast<size_t>(r) * slice.width;
    float* yr = y + static_cast<size_t>(r) * ldy + slice.n0;
    const float* b = bias != nullptr ? bias + slice.n0 : nullptr;
    for (int j = 0; j < slice.width; ++j) {
      float v = o[j] + (b != nullptr ? b[j] : 0.0f);
      yr[j] = accumulate ? yr[j] + v : v;
    }
  }
  return true;
}

void PackedLinear::prepare_input(int rows, Input& input) const {
  MMFUSE_ASSERT(precision_ != Precision::f32);
  input.rows = rows;
  const size_t values = static_cast<size_t>(rows) * static_cast<size_t>(in_);
  input.data.resize(precision_ == Precision::bf16 ? 2 * values : values);
  if (precision_ == Precision::int8) {
    input.scale.resize(static_cast<size_t>(rows));
    input.zero.resize(static_cast<size_t>(rows));
  }
}

void PackedLinear::convert_rows(const float* x, int r0, int r1, Input& input) const {
  const size_t in = static_cast<size_t>(in_);
  for (int r = r0; r < r1; ++r) {
    const size_t row = static_cast<size_t>(r);
    if (precision_ == Precision::bf16) {
      kernels::round_row_bf16(x + row * in, in,
                              reinterpret_cast<uint16_t*>(input.data.data()) + row * in);
    } else {
      kernels::quantize_row_u8(x + row * in, in, input_levels_, input.data.data() + row * in,
                               &input.scale[row], &input.zero[row]);
    }
  }
}

void PackedLinear::multiply_converted(const Input& input, int s, const float* bias, float* y,
                                      int ldy, bool accumulate) const {
  MMFUSE_ASSERT(precision_ != Precision::f32);
  const Slice& slice = *slices_[static_cast<size_t>(s)];
  const int rows = input.rows;
  const Kernel& k = kernel_for(precision_, rows, in_, slice.width);
  MMFUSE_CHECK(k.matmul != nullptr, internal,
               std::string("oneDNN has no ") + to_string(precision_) + " matmul for " +
                   std::to_string(rows) + "x" + std::to_string(in_) + " inputs");
  const Types t = types_for(precision_);
  OneOmpThread one;
  thread_local dnnl::stream stream(cpu_engine());
  // A row count whose kernel reads another layout: re-lay the slice out for this call.
  thread_local std::vector<uint8_t> relaid_bytes;
  memory weights = slice.packed;
  if (k.weights != slice.packed_desc) {
    relaid_bytes.resize(k.weights.get_size());
    weights = memory(k.weights, cpu_engine(), relaid_bytes.data());
    memory packed = slice.packed;  // a handle: the reorder only reads it
    dnnl::reorder(packed, weights).execute(stream, packed, weights);
  }
  thread_local std::vector<int32_t> out;  // int32 (int8) or float (bf16) results
  out.resize(static_cast<size_t>(rows) * static_cast<size_t>(slice.width));
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(std::max<size_t>(1, k.scratchpad.get_size()));
  memory src(dense(rows, in_, t.src), cpu_engine(), const_cast<uint8_t*>(input.data.data()));
  memory dst(dense(rows, slice.width, t.dst), cpu_engine(), out.data());
  memory pad(k.scratchpad, cpu_engine(), scratch.data());
  k.matmul->execute(stream, {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_WEIGHTS, weights},
                             {DNNL_ARG_DST, dst},
                             {DNNL_ARG_SCRATCHPAD, pad}});
  stream.wait();
  const float* b = bias != nullptr ? bias + slice.n0 : nullptr;
  const size_t width = static_cast<size_t>(slice.width);
  for (int r = 0; r < rows; ++r) {
    float* yr = y + static_cast<size_t>(r) * ldy + slice.n0;
    const size_t at = static_cast<size_t>(r) * width;
    if (precision_ == Precision::bf16) {
      kernels::bias_row(reinterpret_cast<const float*>(out.data()) + at, width, b, yr, accumulate);
    } else {
      kernels::dequantize_row(out.data() + at, width, input.scale[static_cast<size_t>(r)],
                              input.zero[static_cast<size_t>(r)], scale_.data() + slice.n0,
                              sums_.data() + slice.n0, b, yr, accumulate);
    }
  }
}

}  // namespace mmfuse
