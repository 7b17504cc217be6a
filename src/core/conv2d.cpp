#include "core/conv2d.h"

#include <oneapi/dnnl/dnnl.hpp>

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
};

Conv2d::Conv2d(const Conv2dShape& s, const float* weights, const float* bias, ConvActivation activation,
               bool accumulate)
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
  dnnl::post_ops ops;
  if (accumulate) ops.append_sum(1.f);
  if (activation != ConvActivation::none) {
    const auto alg = activation == ConvActivation::silu      ? dnnl::algorithm::eltwise_swish
                     : activation == ConvActivation::sigmoid ? dnnl::algorithm::eltwise_logistic
                                                             : dnnl::algorithm::eltwise_relu;
    ops.append_eltwise(1.f, alg, activation == ConvActivation::silu ? 1.f : 0.f, 0.f);
  }
  attr.set_post_ops(ops);
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, impl_->src_md, any_w_md, bias_md,
      impl_->dst_md, {s.stride_h, s.stride_w}, {s.dilation_h - 1, s.dilation_w - 1}, {s.pad_top, s.pad_left},
      {s.pad_bottom, s.pad_right});
  dnnl::convolution_forward::primitive_desc pd;
  try {
    pd = dnnl::convolution_forward::primitive_desc(desc, attr, impl_->engine);
  } catch (const dnnl::error& e) {
    throw_error(ErrorKind::unsupported, std::string("convolution: oneDNN has no implementation: ") + e.what());
  }
  impl_->primitive = dnnl::convolution_forward(pd);
  impl_->scratchpad_md = pd.scratchpad_desc();
  impl_->scratchpad_bytes = impl_->scratchpad_md.get_size();

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

void Conv2d::run(const float* src, float* dst, void* scratchpad) const {
  dnnl::stream stream(impl_->engine);
  dnnl::memory src_m(impl_->src_md, impl_->engine, const_cast<float*>(src));
  dnnl::memory dst_m(impl_->dst_md, impl_->engine, dst);
  dnnl::memory scratch_m(impl_->scratchpad_md, impl_->engine, scratchpad);
  impl_->primitive.execute(stream, {{DNNL_ARG_SRC, src_m},
                                    {DNNL_ARG_WEIGHTS, impl_->weights},
                                    {DNNL_ARG_BIAS, impl_->bias},
                                    {DNNL_ARG_DST, dst_m},
                                    {DNNL_ARG_SCRATCHPAD, scratch_m}});
  stream.wait();
}

}  // namespace mmfuse
