#include "core/packed_gemm.h"

#include <algorithm>
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
// brgemm, which multiply() checks for every other row count.
constexpr int kPackRows = 64;

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::desc dense(memory::dim rows, memory::dim cols) {
  return memory::desc({rows, cols}, memory::data_type::f32, memory::format_tag::ab);
}

dnnl::matmul::primitive_desc make_pd(int rows, int in, int width) {
  memory::desc weights_any({in, width}, memory::data_type::f32, memory::format_tag::any);
  dnnl::matmul::desc desc(dense(rows, in), weights_any, dense(rows, width));
  // Each call brings its own scratchpad: the library's shared one is not safe
  // when several threads run primitives at once.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(desc, attr, cpu_engine());
}

// One single-threaded matmul per (rows, in, width), shared by every slice of
// every layer with that shape (the weights are an argument at execution).
struct Kernel {
  std::unique_ptr<dnnl::matmul> matmul;  // null: no packed kernel for this shape
  memory::desc scratchpad;
};

const Kernel& kernel_for(int rows, int in, int width, const memory::desc& packed) {
  static std::mutex mutex;
  static std::map<std::tuple<int, int, int>, Kernel> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto key = std::make_tuple(rows, in, width);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Kernel k;
  try {
    auto pd = make_pd(rows, in, width);
    if (pd.weights_desc() == packed) {
      k.matmul = std::make_unique<dnnl::matmul>(pd);
      k.scratchpad = pd.scratchpad_desc();
    }
  } catch (const dnnl::error&) {
  }
  return cache.emplace(key, std::move(k)).first->second;
}

}  // namespace

struct PackedLinear::Slice {
  int n0 = 0, width = 0;
  memory::desc packed_desc;
  memory packed;
};

PackedLinear::PackedLinear(const float* weight, int in, int out) : in_(in) {
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  try {
    dnnl::stream stream(cpu_engine());
    for (int n0 = 0; n0 < out; n0 += kSliceWidth) {
      auto slice = std::make_unique<Slice>();
      slice->n0 = n0;
      slice->width = std::min(kSliceWidth, out - n0);
      auto pd = make_pd(kPackRows, in, slice->width);
      slice->packed_desc = pd.weights_desc();
      // W[n0:n0+width, :] seen as a [in, width] matrix with strides (1, in).
      memory::desc source({in, slice->width}, memory::data_type::f32, memory::dims{1, in});
      memory src(source, cpu_engine(), const_cast<float*>(weight + static_cast<size_t>(n0) * in));
      slice->packed = memory(slice->packed_desc, cpu_engine());
      dnnl::reorder(src, slice->packed).execute(stream, src, slice->packed);
      stream.wait();
      slices_.push_back(std::move(slice));
    }
  } catch (const dnnl::error& e) {
    omp_set_num_threads(previous_threads);
    throw_error(ErrorKind::internal, std::string("oneDNN could not pack weights: ") + e.what());
  }
  omp_set_num_threads(previous_threads);
}

PackedLinear::~PackedLinear() = default;

bool PackedLinear::multiply(const float* x, int rows, int s, const float* bias, float* y, int ldy,
                            bool accumulate) const {
  const Slice& slice = *slices_[static_cast<size_t>(s)];
  const Kernel& k = kernel_for(rows, in_, slice.width, slice.packed_desc);
  if (!k.matmul) return false;
  thread_local std::vector<float> out;
  out.resize(static_cast<size_t>(rows) * static_cast<size_t>(slice.width));
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(1);
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
  omp_set_num_threads(previous_threads);
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

}  // namespace mmfuse
