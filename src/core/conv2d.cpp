#include "core/conv2d.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <string>

#include "mmfuse/error.h"

namespace mmfuse {

int Conv2dShape::out_h() const {
  return (in_h + pad_top + pad_bottom - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
}
int Conv2dShape::out_w() const {
  return (in_w + pad_left + pad_right - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
}

struct Conv2d::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::convolution_forward primitive;
  dnnl::memory::desc src_md, dst_md;
  dnnl::memory weights, bias;
  size_t scratchpad_bytes = 0;
  dnnl::memory::desc scratchpad_md;
  // Winograd island: NHWC -> blocked input, the convolution's blocked output,
  // its activation in place, blocked -> NHWC. The blocked tensors live in the
  // caller's scratchpad after the primitives' own (shared: they run in turn).
  bool winograd = false;
  dnnl::reorder to_blocked, from_blocked;
  dnnl::eltwise_forward activation;
  bool has_activation = false;
  dnnl::memory::desc blocked_src_md, blocked_dst_md;
  dnnl::memory::desc to_blocked_scratch_md, from_blocked_scratch_md, activation_scratch_md;
  size_t blocked_src_offset = 0, blocked_dst_offset = 0;
};

namespace {

dnnl::algorithm eltwise_algorithm(ConvActivation a) {
  return a == ConvActivation::silu      ? dnnl::algorithm::eltwise_swish
         : a == ConvActivation::sigmoid ? dnnl::algorithm::eltwise_logistic
                                        : dnnl::algorithm::eltwise_relu;
}

size_t round_up_64(size_t n) { return (n + 63) / 64 * 64; }

// Where Winograd pays on this machine's oneDNN 2.6 (Xeon, AVX-512, 2 threads,
// measured island against direct with the fused SiLU): from 64 input and 64
// output channels (1.1-1.8x, 4x3 kernels on 20x20, 2x3 above); with 16 or 32
// channels the reorders cost more than the Winograd saves (0.6-0.8x). Inside
// the YOLOv8 networks (per-step minima, yolov8n and yolov8s at 640) maps
// smaller than 32x32 (the 20x20 level) gained nothing: equal in the backbone,
// 0.1-0.25 ms slower per convolution in the detection head, so they stay direct.
bool winograd_candidate(const Conv2dShape& s) {
  return s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 && s.stride_w == 1 && s.dilation_h == 1 &&
         s.dilation_w == 1 && s.groups == 1 && s.pad_top == 1 && s.pad_left == 1 && s.pad_bottom == 1 &&
         s.pad_right == 1 && s.in_channels >= 64 && s.out_channels >= 64 && s.in_channels % 16 == 0 &&
         s.out_channels % 16 == 0 && s.out_h() * s.out_w() >= 32 * 32;
}

}  // namespace

Conv2d::Conv2d(const Conv2dShape& s, const float* weights, const float* bias, ConvActivation activation,
               bool accumulate, ConvAlgorithm algorithm)
    : shape_(s), impl_(std::make_unique<Impl>()) {
  MMFUSE_CHECK(s.in_channels > 0 && s.out_channels > 0 && s.groups > 0 && s.in_channels % s.groups == 0 &&
                   s.out_channels % s.groups == 0 && s.kernel_h > 0 && s.kernel_w > 0 && s.stride_h > 0 &&
                   s.stride_w > 0 && s.dilation_h > 0 && s.dilation_w > 0 && s.pad_top >= 0 &&
                   s.pad_left >= 0 && s.pad_bottom >= 0 && s.pad_right >= 0 && s.out_h() > 0 && s.out_w() > 0,
               bad_input, "convolution: inconsistent shape");
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  const dnnl::memory::dim g = s.groups;
  impl_->src_md = dnnl::memory::desc({1, s.in_channels, s.in_h, s.in_w}, dt::f32, tag::nhwc);
  impl_->dst_md = dnnl::memory::desc({1, s.out_channels, s.out_h(), s.out_w()}, dt::f32, tag::nhwc);
  dnnl::memory::dims wdims = g == 1 ? dnnl::memory::dims{s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}
                                    : dnnl::memory::dims{g, s.out_channels / g, s.in_channels / g, s.kernel_h, s.kernel_w};
  const dnnl::memory::desc user_w_md(wdims, dt::f32, g == 1 ? tag::oihw : tag::goihw);
  const dnnl::memory::desc any_w_md(wdims, dt::f32, tag::any);
  const dnnl::memory::desc bias_md({s.out_channels}, dt::f32, tag::x);

  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const dnnl::memory::dims strides{s.stride_h, s.stride_w}, dilation{s.dilation_h - 1, s.dilation_w - 1},
      pad_l{s.pad_top, s.pad_left}, pad_r{s.pad_bottom, s.pad_right};
  dnnl::convolution_forward::primitive_desc pd;
  if (algorithm == ConvAlgorithm::winograd_if_faster && !accumulate && winograd_candidate(s)) {
    // No post-ops (oneDNN's Winograd takes ReLU only); blocked layouts of its choice.
    const dnnl::memory::desc any_src({1, s.in_channels, s.in_h, s.in_w}, dt::f32, tag::any);
    const dnnl::memory::desc any_dst({1, s.out_channels, s.out_h(), s.out_w()}, dt::f32, tag::any);
    try {
      const dnnl::convolution_forward::desc wdesc(dnnl::prop_kind::forward_inference,
                                                  dnnl::algorithm::convolution_winograd, any_src, any_w_md, bias_md,
                                                  any_dst, strides, dilation, pad_l, pad_r);
      pd = dnnl::convolution_forward::primitive_desc(wdesc, attr, impl_->engine);
      // oneDNN lists F(2x2,3x3) first; from 128 input channels F(4x4,3x3)
      // (fewer multiplications, larger transforms) was faster inside the
      // networks (yolov8s: 128->128 on 80x80 3.9 -> 3.1-3.4 ms, on 40x40
      // 1.12 -> 1.03 ms); with 64 channels it was not.
      if (s.in_channels >= 128) {
        const dnnl::convolution_forward::primitive_desc first = pd;
        bool found = false;
        do found = std::string(pd.impl_info_str()).find("wino_4x3") != std::string::npos;
        while (!found && pd.next_impl());
        if (!found) pd = first;
      }
      impl_->winograd = true;
    } catch (const dnnl::error&) {
      // No Winograd kernel here (AVX2-only CPU, or a shape it refuses): direct below.
    }
  }
  if (impl_->winograd) {
    Impl& m = *impl_;
    m.blocked_src_md = pd.src_desc();
    m.blocked_dst_md = pd.dst_desc();
    const dnnl::reorder::primitive_desc in_pd(m.engine, m.src_md, m.engine, m.blocked_src_md, attr);
    const dnnl::reorder::primitive_desc out_pd(m.engine, m.blocked_dst_md, m.engine, m.dst_md, attr);
    m.to_blocked = dnnl::reorder(in_pd);
    m.from_blocked = dnnl::reorder(out_pd);
    m.to_blocked_scratch_md = in_pd.scratchpad_desc();
    m.from_blocked_scratch_md = out_pd.scratchpad_desc();
    size_t shared = std::max({pd.scratchpad_desc().get_size(), m.to_blocked_scratch_md.get_size(),
                              m.from_blocked_scratch_md.get_size()});
    if (activation != ConvActivation::none) {
      const dnnl::eltwise_forward::primitive_desc act_pd(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, eltwise_algorithm(activation),
                                      m.blocked_dst_md, activation == ConvActivation::silu ? 1.f : 0.f, 0.f),
          attr, m.engine);
      m.activation = dnnl::eltwise_forward(act_pd);
      m.activation_scratch_md = act_pd.scratchpad_desc();
      m.has_activation = true;
      shared = std::max(shared, m.activation_scratch_md.get_size());
    }
    m.blocked_src_offset = round_up_64(shared);
    m.blocked_dst_offset = m.blocked_src_offset + round_up_64(m.blocked_src_md.get_size());
    m.scratchpad_bytes = m.blocked_dst_offset + round_up_64(m.blocked_dst_md.get_size());
  } else {
    dnnl::post_ops ops;
    if (accumulate) ops.append_sum(1.f);
    if (activation != ConvActivation::none)
      ops.append_eltwise(1.f, eltwise_algorithm(activation), activation == ConvActivation::silu ? 1.f : 0.f, 0.f);
    attr.set_post_ops(ops);
    const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                               dnnl::algorithm::convolution_direct, impl_->src_md, any_w_md, bias_md,
                                               impl_->dst_md, strides, dilation, pad_l, pad_r);
    try {
      pd = dnnl::convolution_forward::primitive_desc(desc, attr, impl_->engine);
    } catch (const dnnl::error& e) {
      throw_error(ErrorKind::unsupported, std::string("convolution: oneDNN has no implementation: ") + e.what());
    }
    impl_->scratchpad_bytes = pd.scratchpad_desc().get_size();
  }
  impl_->primitive = dnnl::convolution_forward(pd);
  impl_->scratchpad_md = pd.scratchpad_desc();

  // Weights: reordered once into the primitive's preferred layout.
  dnnl::memory user_w(user_w_md, impl_->engine, const_cast<float*>(weights));
  impl_->weights = dnnl::memory(pd.weights_desc(), impl_->engine);
  dnnl::stream stream(impl_->engine);
  dnnl::reorder(user_w, impl_->weights).execute(stream, user_w, impl_->weights);
  impl_->bias = dnnl::memory(bias_md, impl_->engine);
  auto* b = static_cast<float*>(impl_->bias.get_data_handle());
  for (int i = 0; i < s.out_channels; ++i) b[i] = bias ? bias[i] : 0.f;
  stream.wait();
}

Conv2d::~Conv2d() = default;

size_t Conv2d::scratchpad_bytes() const { return impl_->scratchpad_bytes; }
bool Conv2d::winograd() const { return impl_->winograd; }

bool Conv2d::chains_into(const Conv2d& next) const {
  const Impl &a = *impl_, &b = *next.impl_;
  return a.winograd && b.winograd && a.blocked_dst_md == b.blocked_src_md &&
         a.blocked_dst_md.get_size() == a.dst_md.get_size();
}

void Conv2d::run(const float* src, float* dst, void* scratchpad, bool src_blocked, bool dst_blocked) const {
  const Impl& m = *impl_;
  dnnl::stream stream(m.engine);
  dnnl::memory src_m(m.src_md, m.engine, const_cast<float*>(src));
  dnnl::memory dst_m(m.dst_md, m.engine, dst);
  dnnl::memory scratch_m(m.scratchpad_md, m.engine, scratchpad);
  if (!m.winograd) {
    m.primitive.execute(stream, {{DNNL_ARG_SRC, src_m},
                                 {DNNL_ARG_WEIGHTS, m.weights},
                                 {DNNL_ARG_BIAS, m.bias},
                                 {DNNL_ARG_DST, dst_m},
                                 {DNNL_ARG_SCRATCHPAD, scratch_m}});
    stream.wait();
    return;
  }
  char* base = static_cast<char*>(scratchpad);
  dnnl::memory blocked_src(m.blocked_src_md, m.engine,
                           src_blocked ? static_cast<void*>(const_cast<float*>(src)) : base + m.blocked_src_offset);
  dnnl::memory blocked_dst(m.blocked_dst_md, m.engine,
                           dst_blocked ? static_cast<void*>(dst) : base + m.blocked_dst_offset);
  if (!src_blocked)
    m.to_blocked.execute(stream, {{DNNL_ARG_FROM, src_m},
                                  {DNNL_ARG_TO, blocked_src},
                                  {DNNL_ARG_SCRATCHPAD, dnnl::memory(m.to_blocked_scratch_md, m.engine, base)}});
  m.primitive.execute(stream, {{DNNL_ARG_SRC, blocked_src},
                               {DNNL_ARG_WEIGHTS, m.weights},
                               {DNNL_ARG_BIAS, m.bias},
                               {DNNL_ARG_DST, blocked_dst},
                               {DNNL_ARG_SCRATCHPAD, scratch_m}});
  if (m.has_activation)
    m.activation.execute(stream, {{DNNL_ARG_SRC, blocked_dst},
                                  {DNNL_ARG_DST, blocked_dst},
                                  {DNNL_ARG_SCRATCHPAD, dnnl::memory(m.activation_scratch_md, m.engine, base)}});
  if (!dst_blocked)
    m.from_blocked.execute(stream, {{DNNL_ARG_FROM, blocked_dst},
                                    {DNNL_ARG_TO, dst_m},
                                    {DNNL_ARG_SCRATCHPAD, dnnl::memory(m.from_blocked_scratch_md, m.engine, base)}});
  stream.wait();
}

}  // namespace mmfuse
