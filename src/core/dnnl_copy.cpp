#include "core/dnnl_copy.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

// Runs `p` with a scratchpad of its own when it asks for one (the library's
// shared scratchpad would not be safe across concurrent callers).
void execute(const dnnl::primitive& p, const dnnl::engine& engine, const dnnl::memory::desc& scratch_md,
             std::unordered_map<int, dnnl::memory> args) {
  std::vector<char> scratch;
  if (scratch_md.get_size() > 0) {
    scratch.resize(scratch_md.get_size() + 64);
    args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(scratch_md, engine, scratch.data());
  }
  dnnl::stream stream(engine);
  p.execute(stream, args);
  stream.wait();
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

}  // namespace

// libgomp's entries (this file is not built with -fopenmp; see core/denormals.cpp).
extern "C" void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);
extern "C" int omp_get_thread_num(void);
extern "C" int omp_get_num_threads(void);

namespace {

struct RowCopy {
  const float* src;
  int64_t src_row;
  float* dst;
  int64_t dst_row, pixels, width;
};

void copy_rows(const RowCopy& c, int64_t begin, int64_t end) {
  const size_t bytes = static_cast<size_t>(c.width) * sizeof(float);
  for (int64_t p = begin; p < end; ++p) std::memcpy(c.dst + p * c.dst_row, c.src + p * c.src_row, bytes);
}

void copy_rows_on_thread(void* arg) {
  const RowCopy& c = *static_cast<const RowCopy*>(arg);
  const int64_t n = omp_get_num_threads(), t = omp_get_thread_num();
  copy_rows(c, c.pixels * t / n, c.pixels * (t + 1) / n);
}

}  // namespace

void copy_channel_rows(const float* src, int64_t src_row, float* dst, int64_t dst_row, int64_t pixels,
                       int64_t width, int threads) {
  const RowCopy c{src, src_row, dst, dst_row, pixels, width};
  // A parallel region costs a wake-up; small copies stay on the calling thread.
  if (threads <= 1 || pixels * width < (int64_t{1} << 16)) return copy_rows(c, 0, pixels);
  GOMP_parallel(copy_rows_on_thread, const_cast<RowCopy*>(&c), static_cast<unsigned>(threads), 0);
}

struct StridedCopy::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::memory::desc src_md, dst_md, scratch_md;
  dnnl::reorder primitive;
};

StridedCopy::StridedCopy(const Dims& dims, const Dims& src_strides, const Dims& dst_strides)
    : impl_(std::make_unique<Impl>()), dst_strides_(dst_strides) {
  const dnnl::memory::dims d(dims.begin(), dims.end());
  impl_->src_md = dnnl::memory::desc(d, dnnl::memory::data_type::f32, dnnl::memory::dims(src_strides.begin(), src_strides.end()));
  impl_->dst_md = dnnl::memory::desc(d, dnnl::memory::data_type::f32, dnnl::memory::dims(dst_strides.begin(), dst_strides.end()));
  try {
    const dnnl::reorder::primitive_desc pd(impl_->engine, impl_->src_md, impl_->engine, impl_->dst_md, user_scratchpad());
    impl_->primitive = dnnl::reorder(pd);
    impl_->scratch_md = pd.scratchpad_desc();
  } catch (const dnnl::error& e) {
    throw_error(ErrorKind::unsupported, std::string("strided copy: oneDNN has no reorder: ") + e.what());
  }
}

StridedCopy::~StridedCopy() = default;

void StridedCopy::run(const float* src, float* dst) const {
  execute(impl_->primitive, impl_->engine, impl_->scratch_md,
          {{DNNL_ARG_FROM, dnnl::memory(impl_->src_md, impl_->engine, const_cast<float*>(src))},
           {DNNL_ARG_TO, dnnl::memory(impl_->dst_md, impl_->engine, dst)}});
}

struct Elementwise::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::memory::desc md, scratch_md;
  dnnl::eltwise_forward primitive;
};

Elementwise::Elementwise(ElementwiseKind kind, int64_t n) : impl_(std::make_unique<Impl>()) {
  impl_->md = dnnl::memory::desc({n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
  const auto alg = kind == ElementwiseKind::logistic ? dnnl::algorithm::eltwise_logistic : dnnl::algorithm::eltwise_exp;
  try {
    const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, impl_->md, 0.f, 0.f);
    const dnnl::eltwise_forward::primitive_desc pd(desc, user_scratchpad(), impl_->engine);
    impl_->primitive = dnnl::eltwise_forward(pd);
    impl_->scratch_md = pd.scratchpad_desc();
  } catch (const dnnl::error& e) {
    throw_error(ErrorKind::unsupported, std::string("element-wise op: oneDNN has no implementation: ") + e.what());
  }
}

Elementwise::~Elementwise() = default;

void Elementwise::run(const float* src, float* dst) const {
  execute(impl_->primitive, impl_->engine, impl_->scratch_md,
          {{DNNL_ARG_SRC, dnnl::memory(impl_->md, impl_->engine, const_cast<float*>(src))},
           {DNNL_ARG_DST, dnnl::memory(impl_->md, impl_->engine, dst)}});
}

}  // namespace mmfuse
