#include "models/onnx_graph.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <type_traits>

#include "core/conv2d.h"
#include "core/denormals.h"
#include "core/dnnl_copy.h"
#include "mmfuse/error.h"

// libgomp runs oneDNN: the calling thread asks for `threads` OpenMP threads for
// the duration of a call and restores its previous setting (see core/gemm.cpp).
extern "C" void omp_set_num_threads(int);
extern "C" int omp_get_max_threads(void);

namespace mmfuse {

namespace {

using Shape = std::vector<int64_t>;

// Element count; shapes come from the file, so overflow and negative sizes are errors.
int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0 || (d > 0 && n > (int64_t{1} << 40) / d))
      throw_error(ErrorKind::bad_input, "tensor shape with a negative or too large dimension");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// ---- what one op sees: shapes always, data when computing ----

struct Arg {
  const Shape* shape = nullptr;
  bool is_int = false;
  const float* f = nullptr;
  const int64_t* i = nullptr;
  bool present = false;  // false for an omitted optional input
  bool has_data() const { return f || i; }
};

struct Out {
  Shape shape;
  bool is_int = false;
  float* f = nullptr;
  int64_t* i = nullptr;
};

struct OpContext {
  const OnnxNode& node;
  int64_t opset;
  const std::string& source;
  const std::vector<Arg>& in;
  std::vector<Out>& out;
  bool compute;

  [[noreturn]] void fail(const std::string& what, ErrorKind kind = ErrorKind::unsupported) const {
    throw_error(kind, source + ": node '" + node.name + "' (" + node.op_type + "): " + what +
                          "; not a recognised Ultralytics export");
  }
  const Arg& input(size_t k) const {
    if (k >= in.size() || !in[k].present) fail("input " + std::to_string(k) + " is missing", ErrorKind::bad_input);
    return in[k];
  }
  bool has_input(size_t k) const { return k < in.size() && in[k].present; }
  // A constant integer input (shape, axes, starts, ...), read at plan time.
  std::vector<int64_t> const_ints(size_t k) const {
    const Arg& a = input(k);
    if (!a.has_data()) fail("input " + std::to_string(k) + " must be a constant");
    const int64_t n = numel(*a.shape);
    std::vector<int64_t> v(n);
    for (int64_t j = 0; j < n; ++j) {
      if (a.is_int) {
        v[j] = a.i[j];
        continue;
      }
      // A float constant used as an integer must be one (NaN or 1e30 is a broken file).
      const float f = a.f[j];
      if (!(std::fabs(f) < 9.0e18f)) fail("input " + std::to_string(k) + " holds a non-integer value");
      v[j] = static_cast<int64_t>(f);
    }
    return v;
  }
  std::vector<float> const_floats(size_t k) const {
    const Arg& a = input(k);
    if (!a.has_data()) fail("input " + std::to_string(k) + " must be a constant");
    const int64_t n = numel(*a.shape);
    std::vector<float> v(n);
    for (int64_t j = 0; j < n; ++j) v[j] = a.is_int ? static_cast<float>(a.i[j]) : a.f[j];
    return v;
  }
  int64_t attr_int(const char* name, int64_t fallback) const {
    const OnnxAttribute* a = node.attribute(name);
    return a ? a->i : fallback;
  }
  float attr_float(const char* name, float fallback) const {
    const OnnxAttribute* a = node.attribute(name);
    return a ? a->f : fallback;
  }
  std::string attr_str(const char* name, const std::string& fallback) const {
    const OnnxAttribute* a = node.attribute(name);
    return a ? a->s : fallback;
  }
  std::vector<int64_t> attr_ints(const char* name, std::vector<int64_t> fallback = {}) const {
    const OnnxAttribute* a = node.attribute(name);
    return a ? a->ints : fallback;
  }
  int64_t axis(int64_t a, size_t rank) const {
    const int64_t r = static_cast<int64_t>(rank);
    if (a < -r || a >= r) fail("axis " + std::to_string(a) + " out of range for rank " + std::to_string(r), ErrorKind::bad_input);
    return a < 0 ? a + r : a;
  }
};

// Copies dst_shape elements: dst[idx . dst_strides] = src[src_offset + idx . src_strides].
template <typename T>
void strided_copy(const T* src, int64_t src_offset, const Shape& src_strides, T* dst, int64_t dst_offset,
                  const Shape& dst_strides, const Shape& shape) {
  const size_t rank = shape.size();
  if (numel(shape) == 0) return;
  if (rank == 0) {
    dst[dst_offset] = src[src_offset];
    return;
  }
  const int64_t inner = shape[rank - 1], ss = src_strides[rank - 1], ds = dst_strides[rank - 1];
  std::vector<int64_t> idx(rank, 0);
  const int64_t outer = numel(shape) / inner;
  int64_t so = src_offset, dof = dst_offset;
  for (int64_t o = 0; o < outer; ++o) {
    if (ss == 1 && ds == 1) {
      std::memcpy(dst + dof, src + so, inner * sizeof(T));
    } else {
      for (int64_t k = 0; k < inner; ++k) dst[dof + k * ds] = src[so + k * ss];
    }
    for (int d = static_cast<int>(rank) - 2; d >= 0; --d) {
      so += src_strides[d];
      dof += dst_strides[d];
      if (++idx[d] < shape[d]) break;
      so -= src_strides[d] * shape[d];
      dof -= dst_strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

// The strides of `s` broadcast to `out` (0 on broadcast dimensions), right-aligned.
Shape broadcast_strides(const Shape& s, const Shape& out) {
  Shape st(out.size(), 0);
  const Shape cs = contiguous_strides(s);
  const size_t off = out.size() - s.size();
  for (size_t d = 0; d < s.size(); ++d) st[off + d] = s[d] == 1 ? 0 : cs[d];
  return st;
}

Shape broadcast_shape(const OpContext& c, const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (size_t k = 0; k < out.size(); ++k) {
    const int64_t da = k + a.size() >= out.size() ? a[k + a.size() - out.size()] : 1;
    const int64_t db = k + b.size() >= out.size() ? b[k + b.size() - out.size()] : 1;
    if (da != db && da != 1 && db != 1)
      c.fail("shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast", ErrorKind::bad_input);
    out[k] = da == 1 ? db : da;
  }
  return out;
}

template <typename T, typename F>
void broadcast_binary(const T* a, const Shape& as, const T* b, const Shape& bs, T* o, const Shape& os, F f) {
  const size_t rank = os.size();
  const int64_t n = numel(os);
  if (n == 0) return;
  if (as == os && bs == os) {
    for (int64_t k = 0; k < n; ++k) o[k] = f(a[k], b[k]);
    return;
  }
  if (rank == 0) {
    o[0] = f(a[0], b[0]);
    return;
  }
  const Shape sa = broadcast_strides(as, os), sb = broadcast_strides(bs, os);
  const int64_t inner = os[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1];
  std::vector<int64_t> idx(rank, 0);
  int64_t pa = 0, pb = 0;
  for (int64_t base = 0; base < n; base += inner) {
    for (int64_t k = 0; k < inner; ++k) o[base + k] = f(a[pa + k * ia], b[pb + k * ib]);
    for (int d = static_cast<int>(rank) - 2; d >= 0; --d) {
      pa += sa[d];
      pb += sb[d];
      if (++idx[d] < os[d]) break;
      pa -= sa[d] * os[d];
      pb -= sb[d] * os[d];
      idx[d] = 0;
    }
  }
}

// ---- the ops ----

void op_binary(OpContext& c) {
  const Arg &a = c.input(0), &b = c.input(1);
  Out& o = c.out[0];
  o.shape = broadcast_shape(c, *a.shape, *b.shape);
  const std::string& op = c.node.op_type;
  o.is_int = a.is_int && b.is_int && op != "Pow";
  if (!c.compute) return;
  if (o.is_int) {
    auto run = [&](auto f) { broadcast_binary<int64_t>(a.i, *a.shape, b.i, *b.shape, o.i, o.shape, f); };
    if (op == "Add") run([](int64_t x, int64_t y) { return x + y; });
    else if (op == "Sub") run([](int64_t x, int64_t y) { return x - y; });
    else if (op == "Mul") run([](int64_t x, int64_t y) { return x * y; });
    else if (op == "Equal") run([](int64_t x, int64_t y) { return static_cast<int64_t>(x == y); });
    else run([&](int64_t x, int64_t y) {
      if (y == 0) c.fail("integer division by zero", ErrorKind::bad_input);
      return x / y;
    });
    return;
  }
  if (a.is_int || b.is_int) c.fail("mixes integer and float inputs", ErrorKind::bad_input);
  auto run = [&](auto f) { broadcast_binary<float>(a.f, *a.shape, b.f, *b.shape, o.f, o.shape, f); };
  if (op == "Add") run([](float x, float y) { return x + y; });
  else if (op == "Sub") run([](float x, float y) { return x - y; });
  else if (op == "Mul") run([](float x, float y) { return x * y; });
  else if (op == "Div") run([](float x, float y) { return x / y; });
  else if (op == "Pow") run([](float x, float y) { return y == 2.f ? x * x : std::pow(x, y); });
  else c.fail("no float form");
}

void op_unary(OpContext& c) {
  const Arg& a = c.input(0);
  Out& o = c.out[0];
  o.shape = *a.shape;
  o.is_int = a.is_int;
  if (!c.compute) return;
  const int64_t n = numel(o.shape);
  const std::string& op = c.node.op_type;
  if (op == "Identity") {
    if (a.is_int) std::copy(a.i, a.i + n, o.i);
    else std::copy(a.f, a.f + n, o.f);
    return;
  }
  if (a.is_int) c.fail("integer input");
  const float* x = a.f;
  float* y = o.f;
  if (op == "Sigmoid") {
    for (int64_t k = 0; k < n; ++k) y[k] = 1.f / (1.f + std::exp(-x[k]));
  } else if (op == "Relu") {
    for (int64_t k = 0; k < n; ++k) y[k] = std::max(x[k], 0.f);
  } else if (op == "LeakyRelu") {
    const float alpha = c.attr_float("alpha", 0.01f);
    for (int64_t k = 0; k < n; ++k) y[k] = x[k] >= 0 ? x[k] : alpha * x[k];
  } else if (op == "HardSwish") {
    for (int64_t k = 0; k < n; ++k) y[k] = x[k] * std::clamp(x[k] / 6.f + 0.5f, 0.f, 1.f);
  } else if (op == "HardSigmoid") {
    const float alpha = c.attr_float("alpha", 0.2f), beta = c.attr_float("beta", 0.5f);
    for (int64_t k = 0; k < n; ++k) y[k] = std::clamp(alpha * x[k] + beta, 0.f, 1.f);
  } else if (op == "Tanh") {
    for (int64_t k = 0; k < n; ++k) y[k] = std::tanh(x[k]);
  } else if (op == "Floor") {
    for (int64_t k = 0; k < n; ++k) y[k] = std::floor(x[k]);
  } else if (op == "Sqrt") {
    for (int64_t k = 0; k < n; ++k) y[k] = std::sqrt(x[k]);
  } else {
    c.fail("no unary form");
  }
}

// Copies `src` (contiguous, shape s) into `o` with the given offset/strides.
template <typename F>
void for_type(const Arg& a, Out& o, F f) {
  if (a.is_int) f(a.i, o.i);
  else f(a.f, o.f);
}

void op_shape(OpContext& c) {
  const Shape& s = *c.input(0).shape;
  const int64_t r = static_cast<int64_t>(s.size());
  int64_t start = c.attr_int("start", 0), end = c.attr_int("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, start, r);
  Out& o = c.out[0];
  o.shape = {end - start};
  o.is_int = true;
  if (c.compute) std::copy(s.begin() + start, s.begin() + end, o.i);
}

void op_reshape_like(OpContext& c, Shape target) {
  const Arg& a = c.input(0);
  Out& o = c.out[0];
  o.is_int = a.is_int;
  o.shape = std::move(target);
  if (numel(o.shape) != numel(*a.shape))
    c.fail("cannot reshape " + shape_str(*a.shape) + " to " + shape_str(o.shape), ErrorKind::bad_input);
  if (!c.compute) return;
  const int64_t n = numel(o.shape);
  for_type(a, o, [&](const auto* src, auto* dst) { std::copy(src, src + n, dst); });
}

void op_reshape(OpContext& c) {
  const Shape& in = *c.input(0).shape;
  Shape t = c.const_ints(1);
  int64_t known = 1;
  int infer = -1;
  for (size_t d = 0; d < t.size(); ++d) {
    if (t[d] == 0 && !c.attr_int("allowzero", 0)) {
      if (d >= in.size()) c.fail("0 in the target shape beyond the input rank", ErrorKind::bad_input);
      t[d] = in[d];
    }
    if (t[d] == -1) {
      if (infer >= 0) c.fail("two -1 in the target shape", ErrorKind::bad_input);
      infer = static_cast<int>(d);
    } else {
      if (t[d] < 0) c.fail("negative target dimension", ErrorKind::bad_input);
      known *= t[d];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel(in) % known) c.fail("cannot infer -1 in " + shape_str(t), ErrorKind::bad_input);
    t[infer] = numel(in) / known;
  }
  op_reshape_like(c, t);
}

void op_flatten(OpContext& c) {
  const Shape& in = *c.input(0).shape;
  const int64_t axis = c.attr_int("axis", 1) < 0 ? c.attr_int("axis", 1) + in.size() : c.attr_int("axis", 1);
  if (axis < 0 || axis > static_cast<int64_t>(in.size())) c.fail("axis out of range", ErrorKind::bad_input);
  Shape t{1, 1};
  for (int64_t d = 0; d < static_cast<int64_t>(in.size()); ++d) t[d < axis ? 0 : 1] *= in[d];
  op_reshape_like(c, t);
}

void op_unsqueeze(OpContext& c) {
  const Shape& in = *c.input(0).shape;
  std::vector<int64_t> axes = c.opset >= 13 ? c.const_ints(1) : c.attr_ints("axes");
  const size_t rank = in.size() + axes.size();
  for (auto& a : axes) a = c.axis(a, rank);
  std::sort(axes.begin(), axes.end());
  Shape t;
  size_t k = 0;
  for (size_t d = 0; d < rank; ++d) {
    if (std::binary_search(axes.begin(), axes.end(), static_cast<int64_t>(d))) t.push_back(1);
    else if (k < in.size()) t.push_back(in[k++]);
  }
  op_reshape_like(c, t);
}

void op_squeeze(OpContext& c) {
  const Shape& in = *c.input(0).shape;
  std::vector<int64_t> axes = c.opset >= 13 ? (c.has_input(1) ? c.const_ints(1) : std::vector<int64_t>{})
                                            : c.attr_ints("axes");
  for (auto& a : axes) a = c.axis(a, in.size());
  Shape t;
  for (size_t d = 0; d < in.size(); ++d) {
    const bool listed = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
    if (axes.empty() ? in[d] == 1 : listed) {
      if (in[d] != 1) c.fail("squeezes a dimension of size " + std::to_string(in[d]), ErrorKind::bad_input);
      continue;
    }
    t.push_back(in[d]);
  }
  op_reshape_like(c, t);
}

void op_transpose(OpContext& c) {
  const Arg& a = c.input(0);
  const Shape& in = *a.shape;
  std::vector<int64_t> perm = c.attr_ints("perm");
  if (perm.empty())
    for (int64_t d = static_cast<int64_t>(in.size()) - 1; d >= 0; --d) perm.push_back(d);
  if (perm.size() != in.size()) c.fail("perm does not match the rank", ErrorKind::bad_input);
  Out& o = c.out[0];
  o.is_int = a.is_int;
  o.shape.clear();
  const Shape is = contiguous_strides(in);
  Shape src_strides;
  std::vector<bool> seen(in.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(in.size()) || seen[p]) c.fail("invalid perm", ErrorKind::bad_input);
    seen[p] = true;
    o.shape.push_back(in[p]);
    src_strides.push_back(is[p]);
  }
  if (!c.compute) return;
  for_type(a, o, [&](const auto* src, auto* dst) {
    strided_copy(src, 0, src_strides, dst, 0, contiguous_strides(o.shape), o.shape);
  });
}

void op_concat(OpContext& c) {
  const Arg& first = c.input(0);
  const int64_t axis = c.axis(c.attr_int("axis", 0), first.shape->size());
  Out& o = c.out[0];
  o.shape = *first.shape;
  o.is_int = first.is_int;
  o.shape[axis] = 0;
  for (size_t k = 0; k < c.in.size(); ++k) {
    const Arg& a = c.input(k);
    if (a.shape->size() != first.shape->size() || a.is_int != first.is_int)
      c.fail("inputs differ in rank or type", ErrorKind::bad_input);
    for (size_t d = 0; d < a.shape->size(); ++d)
      if (static_cast<int64_t>(d) != axis && (*a.shape)[d] != (*first.shape)[d])
        c.fail("input shapes " + shape_str(*a.shape) + " and " + shape_str(*first.shape) + " differ off the axis",
               ErrorKind::bad_input);
    o.shape[axis] += (*a.shape)[axis];
  }
  if (!c.compute) return;
  const Shape os = contiguous_strides(o.shape);
  int64_t offset = 0;
  for (const Arg& a : c.in) {
    for_type(a, o, [&](const auto* src, auto* dst) {
      strided_copy(src, 0, contiguous_strides(*a.shape), dst, offset * os[axis], os, *a.shape);
    });
    offset += (*a.shape)[axis];
  }
}

// Slices `a` along the given axes into out[k]: start, step per axis, out shape already set.
void slice_into(const Arg& a, Out& o, const Shape& starts, const Shape& steps) {
  const Shape is = contiguous_strides(*a.shape);
  int64_t offset = 0;
  Shape src_strides(is.size());
  for (size_t d = 0; d < is.size(); ++d) {
    offset += starts[d] * is[d];
    src_strides[d] = is[d] * steps[d];
  }
  for_type(a, o, [&](const auto* src, auto* dst) {
    strided_copy(src, offset, src_strides, dst, 0, contiguous_strides(o.shape), o.shape);
  });
}

void op_split(OpContext& c) {
  const Arg& a = c.input(0);
  const int64_t axis = c.axis(c.attr_int("axis", 0), a.shape->size());
  const int64_t len = (*a.shape)[axis];
  std::vector<int64_t> sizes;
  if (c.opset >= 13 && c.has_input(1)) sizes = c.const_ints(1);
  else if (c.opset < 13) sizes = c.attr_ints("split");
  const int64_t parts = static_cast<int64_t>(c.out.size());
  if (sizes.empty()) {
    const int64_t chunk = (len + parts - 1) / parts;  // opset 18 num_outputs: last chunk may be smaller
    for (int64_t k = 0; k < parts; ++k) sizes.push_back(std::min(chunk, len - k * chunk));
  }
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (static_cast<int64_t>(sizes.size()) != parts || total != len)
    c.fail("split sizes do not add up to the axis length " + std::to_string(len), ErrorKind::bad_input);
  int64_t start = 0;
  for (int64_t k = 0; k < parts; ++k) {
    Out& o = c.out[k];
    o.shape = *a.shape;
    o.shape[axis] = sizes[k];
    o.is_int = a.is_int;
    if (c.compute) {
      Shape starts(a.shape->size(), 0), steps(a.shape->size(), 1);
      starts[axis] = start;
      slice_into(a, o, starts, steps);
    }
    start += sizes[k];
  }
}

// ONNX Slice's clamping of start/end for one axis; returns the output length.
int64_t slice_axis(int64_t dim, int64_t step, int64_t* start, int64_t* end) {
  if (*start < 0) *start += dim;
  if (*end < 0) *end += dim;
  if (step > 0) {
    *start = std::clamp<int64_t>(*start, 0, dim);
    *end = std::clamp<int64_t>(*end, 0, dim);
    return *end > *start ? (*end - *start + step - 1) / step : 0;
  }
  *start = std::clamp<int64_t>(*start, 0, dim - 1);
  *end = std::clamp<int64_t>(*end, -1, dim - 1);
  return *start > *end ? (*start - *end - step - 1) / -step : 0;
}

void op_slice(OpContext& c) {
  const Arg& a = c.input(0);
  const Shape& in = *a.shape;
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.opset < 10) {
    starts = c.attr_ints("starts");
    ends = c.attr_ints("ends");
    axes = c.attr_ints("axes");
  } else {
    starts = c.const_ints(1);
    ends = c.const_ints(2);
    if (c.has_input(3)) axes = c.const_ints(3);
    if (c.has_input(4)) steps = c.const_ints(4);
  }
  if (axes.empty())
    for (size_t d = 0; d < starts.size(); ++d) axes.push_back(static_cast<int64_t>(d));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    c.fail("starts/ends/axes/steps differ in length", ErrorKind::bad_input);
  Shape full_start(in.size(), 0), full_step(in.size(), 1);
  Out& o = c.out[0];
  o.shape = in;
  o.is_int = a.is_int;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t d = c.axis(axes[k], in.size());
    if (steps[k] == 0) c.fail("step 0", ErrorKind::bad_input);
    // A step longer than the axis takes one element either way; bounding it keeps strides in range.
    const int64_t max_step = std::max<int64_t>(in[d], 1);
    steps[k] = std::clamp(steps[k], -max_step, max_step);
    int64_t s = starts[k], e = ends[k];
    o.shape[d] = slice_axis(in[d], steps[k], &s, &e);
    full_start[d] = s;
    full_step[d] = steps[k];
  }
  if (c.compute) slice_into(a, o, full_start, full_step);
}

void op_gather(OpContext& c) {
  const Arg& a = c.input(0);
  const std::vector<int64_t> idx = c.const_ints(1);
  const Shape& ishape = *c.input(1).shape;
  const int64_t axis = c.axis(c.attr_int("axis", 0), a.shape->size());
  const Shape& in = *a.shape;
  Out& o = c.out[0];
  o.is_int = a.is_int;
  o.shape.assign(in.begin(), in.begin() + axis);
  o.shape.insert(o.shape.end(), ishape.begin(), ishape.end());
  o.shape.insert(o.shape.end(), in.begin() + axis + 1, in.end());
  if (!c.compute) return;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= in[d];
  for (size_t d = axis + 1; d < in.size(); ++d) inner *= in[d];
  const int64_t n = in[axis];
  for_type(a, o, [&](const auto* src, auto* dst) {
    for (int64_t p = 0; p < outer; ++p)
      for (size_t k = 0; k < idx.size(); ++k) {
        int64_t j = idx[k] < 0 ? idx[k] + n : idx[k];
        if (j < 0 || j >= n) c.fail("index " + std::to_string(idx[k]) + " out of range", ErrorKind::bad_input);
        std::copy(src + (p * n + j) * inner, src + (p * n + j + 1) * inner, dst + (p * idx.size() + k) * inner);
      }
  });
}

void op_expand(OpContext& c) {
  const Arg& a = c.input(0);
  const Shape target = c.const_ints(1);
  Out& o = c.out[0];
  o.is_int = a.is_int;
  o.shape = broadcast_shape(c, *a.shape, target);
  if (!c.compute) return;
  for_type(a, o, [&](const auto* src, auto* dst) {
    strided_copy(src, 0, broadcast_strides(*a.shape, o.shape), dst, 0, contiguous_strides(o.shape), o.shape);
  });
}

void op_softmax(OpContext& c) {
  const Arg& a = c.input(0);
  const Shape& in = *a.shape;
  Out& o = c.out[0];
  o.shape = in;
  if (a.is_int) c.fail("integer input");
  const int64_t axis = c.axis(c.attr_int("axis", c.opset >= 13 ? -1 : 1), in.size());
  if (!c.compute) return;
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t d = 0; d < static_cast<int64_t>(in.size()); ++d) {
    if (d < axis) outer *= in[d];
    else if (d == axis || c.opset < 13) len *= in[d];  // opset < 13 flattens from the axis on
    else inner *= in[d];
  }
  std::vector<float> mx(inner), sum(inner);
  for (int64_t p = 0; p < outer; ++p) {
    const float* x = a.f + p * len * inner;
    float* y = o.f + p * len * inner;
    std::fill(mx.begin(), mx.end(), -std::numeric_limits<float>::infinity());
    std::fill(sum.begin(), sum.end(), 0.f);
    for (int64_t l = 0; l < len; ++l)
      for (int64_t q = 0; q < inner; ++q) mx[q] = std::max(mx[q], x[l * inner + q]);
    for (int64_t l = 0; l < len; ++l)
      for (int64_t q = 0; q < inner; ++q) sum[q] += (y[l * inner + q] = std::exp(x[l * inner + q] - mx[q]));
    for (int64_t l = 0; l < len; ++l)
      for (int64_t q = 0; q < inner; ++q) y[l * inner + q] /= sum[q];
  }
}

void set_const(Out& o, const OnnxTensor& t, bool compute) {
  o.shape = t.dims;
  o.is_int = !t.is_float();
  if (!compute) return;
  if (o.is_int) std::copy(t.ints.begin(), t.ints.end(), o.i);
  else std::copy(t.floats.begin(), t.floats.end(), o.f);
}

void op_constant(OpContext& c) {
  Out& o = c.out[0];
  for (const auto& a : c.node.attributes) {
    if (a.name == "value" && a.kind == OnnxAttribute::Kind::t && !a.t.empty()) return set_const(o, a.t[0], c.compute);
    OnnxTensor t;
    if (a.name == "value_float") {
      t.type = OnnxType::float32;
      t.floats = {a.f};
    } else if (a.name == "value_int") {
      t.type = OnnxType::int64;
      t.ints = {a.i};
    } else if (a.name == "value_floats") {
      t.type = OnnxType::float32;
      t.floats = a.floats;
      t.dims = {static_cast<int64_t>(a.floats.size())};
    } else if (a.name == "value_ints") {
      t.type = OnnxType::int64;
      t.ints = a.ints;
      t.dims = {static_cast<int64_t>(a.ints.size())};
    } else {
      continue;
    }
    return set_const(o, t, c.compute);
  }
  c.fail("has no supported value attribute");
}

void op_constant_of_shape(OpContext& c) {
  Out& o = c.out[0];
  o.shape = c.const_ints(0);
  for (int64_t d : o.shape)
    if (d < 0 || d > (int64_t{1} << 31)) c.fail("invalid shape", ErrorKind::bad_input);
  const OnnxAttribute* v = c.node.attribute("value");
  const OnnxTensor* t = v && !v->t.empty() ? &v->t[0] : nullptr;
  o.is_int = t && !t->is_float();
  if (t && t->numel() != 1) c.fail("value must hold one element", ErrorKind::bad_input);
  if (!c.compute) return;
  const int64_t n = numel(o.shape);
  if (o.is_int) std::fill(o.i, o.i + n, t->ints[0]);
  else std::fill(o.f, o.f + n, t ? t->floats[0] : 0.f);
}

void op_cast(OpContext& c) {
  const Arg& a = c.input(0);
  const auto to = static_cast<OnnxType>(c.attr_int("to", 1));
  OnnxTensor probe;
  probe.type = to;
  Out& o = c.out[0];
  o.shape = *a.shape;
  o.is_int = !probe.is_float();
  if (!c.compute) return;
  const int64_t n = numel(o.shape);
  for (int64_t k = 0; k < n; ++k) {
    if (o.is_int) o.i[k] = a.is_int ? a.i[k] : static_cast<int64_t>(a.f[k]);
    else o.f[k] = a.is_int ? static_cast<float>(a.i[k]) : a.f[k];
  }
}

void op_range(OpContext& c) {
  const Arg& a = c.input(0);
  Out& o = c.out[0];
  o.is_int = a.is_int;
  const std::vector<float> s = c.const_floats(0), l = c.const_floats(1), d = c.const_floats(2);
  if (s.size() != 1 || l.size() != 1 || d.size() != 1 || d[0] == 0) c.fail("needs three scalars, delta != 0", ErrorKind::bad_input);
  const double count = std::ceil((static_cast<double>(l[0]) - s[0]) / d[0]);
  if (count > (1 << 26)) c.fail("range too long", ErrorKind::bad_input);
  o.shape = {std::max<int64_t>(0, static_cast<int64_t>(count))};
  if (!c.compute) return;
  for (int64_t k = 0; k < o.shape[0]; ++k) {
    if (o.is_int) o.i[k] = c.const_ints(0)[0] + k * c.const_ints(2)[0];
    else o.f[k] = s[0] + static_cast<float>(k) * d[0];
  }
}

void op_where(OpContext& c) {
  const Arg &cond = c.input(0), &x = c.input(1), &y = c.input(2);
  Out& o = c.out[0];
  o.shape = broadcast_shape(c, broadcast_shape(c, *cond.shape, *x.shape), *y.shape);
  o.is_int = x.is_int;
  if (x.is_int != y.is_int || !cond.is_int) c.fail("input types", ErrorKind::bad_input);
  if (!c.compute) return;
  // Broadcast all three to the output shape, then pick.
  const int64_t n = numel(o.shape);
  const Shape os = contiguous_strides(o.shape);
  std::vector<int64_t> k(n);
  strided_copy(cond.i, 0, broadcast_strides(*cond.shape, o.shape), k.data(), 0, os, o.shape);
  for_type(x, o, [&](const auto* xs, auto* dst) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(xs)>>;
    std::vector<T> a(n), b(n);
    const T* ys = nullptr;
    if constexpr (std::is_same_v<T, float>) ys = y.f;
    else ys = y.i;
    strided_copy(xs, 0, broadcast_strides(*x.shape, o.shape), a.data(), 0, os, o.shape);
    strided_copy(ys, 0, broadcast_strides(*y.shape, o.shape), b.data(), 0, os, o.shape);
    for (int64_t j = 0; j < n; ++j) dst[j] = k[j] ? a[j] : b[j];
  });
}

// Attributes of the window ops, read once per call.
struct Window {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, pt = 0, pl = 0, pb = 0, pr = 0, dh = 1, dw = 1;
};

Window read_window(const OpContext& c, const Shape& weights_shape) {
  Window w;
  std::vector<int64_t> k = c.attr_ints("kernel_shape");
  if (k.empty() && weights_shape.size() == 4) k = {weights_shape[2], weights_shape[3]};
  const std::vector<int64_t> s = c.attr_ints("strides", {1, 1}), d = c.attr_ints("dilations", {1, 1}),
                             p = c.attr_ints("pads", {0, 0, 0, 0});
  const std::string auto_pad = c.attr_str("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") c.fail("auto_pad " + auto_pad);
  if (c.attr_int("ceil_mode", 0)) c.fail("ceil_mode 1");
  if (k.size() != 2 || s.size() != 2 || d.size() != 2 || p.size() != 4) c.fail("only 2-D windows");
  w = {k[0], k[1], s[0], s[1], p[0], p[1], p[2], p[3], d[0], d[1]};
  if (w.kh <= 0 || w.kw <= 0 || w.sh <= 0 || w.sw <= 0 || w.dh <= 0 || w.dw <= 0 || w.pt < 0 || w.pl < 0 ||
      w.pb < 0 || w.pr < 0 || w.kh > 64 || w.kw > 64)
    c.fail("invalid kernel, stride, dilation or pads", ErrorKind::bad_input);
  return w;
}

Shape window_out(const OpContext& c, const Shape& in, const Window& w, int64_t channels) {
  if (in.size() != 4 || in[0] != 1) c.fail("needs a 4-D input of batch 1, got " + shape_str(in));
  const int64_t oh = (in[2] + w.pt + w.pb - (w.dh * (w.kh - 1) + 1)) / w.sh + 1;
  const int64_t ow = (in[3] + w.pl + w.pr - (w.dw * (w.kw - 1) + 1)) / w.sw + 1;
  if (oh <= 0 || ow <= 0) c.fail("window larger than the input", ErrorKind::bad_input);
  return {1, channels, oh, ow};
}

void op_conv_shape(OpContext& c) {
  const Shape& x = *c.input(0).shape;
  const Shape& wt = *c.input(1).shape;
  if (wt.size() != 4) c.fail("only 2-D convolutions");
  const Window w = read_window(c, wt);
  const int64_t groups = c.attr_int("group", 1);
  if (x.size() != 4 || groups <= 0 || x[1] != wt[1] * groups || wt[2] != w.kh || wt[3] != w.kw)
    c.fail("weights " + shape_str(wt) + " do not fit input " + shape_str(x), ErrorKind::bad_input);
  if (c.has_input(2) && *c.input(2).shape != Shape{wt[0]}) c.fail("bias shape", ErrorKind::bad_input);
  c.out[0].shape = window_out(c, x, w, wt[0]);
  if (c.compute) c.fail("a convolution of constants");
}

// MaxPool on NHWC: out[y][x][ch] = max over the window (padding never wins).
// Max is exact in any order, so the window is split: a max along x into a row
// buffer, then along y (SPPF's 5x5 takes 10 comparisons per output, not 25),
// each a loop over contiguous channels the compiler vectorises.
void maxpool_nhwc(const float* src, const Shape& in, float* dst, const Shape& out, const Window& w) {
  const int64_t C = in[1], H = in[2], W = in[3], OH = out[2], OW = out[3];
  const float lowest = -std::numeric_limits<float>::infinity();
  // rows[iy] = the x-window maxima of input row iy, for every output column.
  std::vector<float> rows(static_cast<size_t>(H) * OW * C);
  for (int64_t iy = 0; iy < H; ++iy)
    for (int64_t ox = 0; ox < OW; ++ox) {
      float* o = rows.data() + (iy * OW + ox) * C;
      std::fill(o, o + C, lowest);
      for (int64_t kx = 0; kx < w.kw; ++kx) {
        const int64_t ix = ox * w.sw - w.pl + kx * w.dw;
        if (ix < 0 || ix >= W) continue;
        const float* s = src + (iy * W + ix) * C;
        for (int64_t ch = 0; ch < C; ++ch) o[ch] = o[ch] < s[ch] ? s[ch] : o[ch];
      }
    }
  for (int64_t oy = 0; oy < OH; ++oy)
    for (int64_t ox = 0; ox < OW; ++ox) {
      float* o = dst + (oy * OW + ox) * C;
      std::fill(o, o + C, lowest);
      for (int64_t ky = 0; ky < w.kh; ++ky) {
        const int64_t iy = oy * w.sh - w.pt + ky * w.dh;
        if (iy < 0 || iy >= H) continue;
        const float* s = rows.data() + (iy * OW + ox) * C;
        for (int64_t ch = 0; ch < C; ++ch) o[ch] = o[ch] < s[ch] ? s[ch] : o[ch];
      }
    }
}

// Nearest-neighbour Resize/Upsample by integer factors: src = floor(dst / factor).
struct ResizeFactors {
  int64_t fy = 1, fx = 1;
};

ResizeFactors resize_factors(OpContext& c) {
  const Arg& x = c.input(0);
  const Shape& in = *x.shape;
  if (in.size() != 4 || in[0] != 1) c.fail("needs a 4-D input of batch 1");
  if (c.attr_str("mode", "nearest") != "nearest") c.fail("mode " + c.attr_str("mode", ""));
  const std::string ctm = c.attr_str("coordinate_transformation_mode", "half_pixel");
  std::vector<float> scales;
  Shape sizes;
  if (c.node.op_type == "Upsample") {
    scales = c.opset >= 9 ? c.const_floats(1) : c.node.attribute("scales") ? c.node.attribute("scales")->floats
                                                                          : std::vector<float>{};
  } else {
    if (c.opset >= 11 && c.has_input(3)) sizes = c.const_ints(3);
    if (c.opset >= 11 && c.has_input(2) && numel(*c.input(2).shape) > 0) scales = c.const_floats(2);
    if (c.opset < 11 && c.has_input(1)) scales = c.const_floats(1);
  }
  if (!sizes.empty()) {
    if (sizes.size() != 4) c.fail("sizes must have 4 values", ErrorKind::bad_input);
    scales.clear();
    for (int d = 0; d < 4; ++d) {
      if (in[d] == 0 || sizes[d] % in[d]) c.fail("non-integer resize factor");
      scales.push_back(static_cast<float>(sizes[d] / in[d]));
    }
  }
  if (scales.size() != 4 || scales[0] != 1 || scales[1] != 1) c.fail("only spatial scales are supported");
  ResizeFactors f{static_cast<int64_t>(scales[2]), static_cast<int64_t>(scales[3])};
  if (f.fy < 1 || f.fx < 1 || f.fy > 64 || f.fx > 64 || static_cast<float>(f.fy) != scales[2] ||
      static_cast<float>(f.fx) != scales[3])
    c.fail("only integer upsampling factors are supported");
  // With integer factors asymmetric/floor, half_pixel/round_prefer_floor and the
  // PyTorch modes all pick src = floor(dst / factor); align_corners does not.
  if (ctm == "align_corners" || ctm == "tf_crop_and_resize") c.fail("coordinate_transformation_mode " + ctm);
  c.out[0].shape = {1, in[1], in[2] * f.fy, in[3] * f.fx};
  return f;
}

void resize_nhwc(const float* src, const Shape& in, float* dst, const ResizeFactors& f) {
  const int64_t C = in[1], H = in[2], W = in[3], OW = W * f.fx;
  for (int64_t y = 0; y < H; ++y) {
    float* row = dst + y * f.fy * OW * C;
    for (int64_t x = 0; x < W; ++x)
      for (int64_t k = 0; k < f.fx; ++k) std::memcpy(row + (x * f.fx + k) * C, src + (y * W + x) * C, C * sizeof(float));
    for (int64_t k = 1; k < f.fy; ++k) std::memcpy(row + k * OW * C, row, OW * C * sizeof(float));
  }
}

const std::set<std::string>& binary_ops() {
  static const std::set<std::string> s{"Add", "Sub", "Mul", "Div", "Pow", "Equal"};
  return s;
}
const std::set<std::string>& unary_ops() {
  static const std::set<std::string> s{"Sigmoid", "Relu",  "LeakyRelu", "HardSwish", "HardSigmoid",
                                       "Tanh",    "Floor", "Sqrt",      "Identity"};
  return s;
}

// Runs one op in plain (row-major) layout; `compute` false = shapes only.
void apply_plain(OpContext& c) {
  const std::string& op = c.node.op_type;
  if (!c.node.domain.empty() && c.node.domain != "ai.onnx") c.fail("custom domain " + c.node.domain);
  if (binary_ops().count(op)) return op_binary(c);
  if (unary_ops().count(op)) return op_unary(c);
  if (op == "Conv") return op_conv_shape(c);
  if (op == "Shape") return op_shape(c);
  if (op == "Reshape") return op_reshape(c);
  if (op == "Flatten") return op_flatten(c);
  if (op == "Unsqueeze") return op_unsqueeze(c);
  if (op == "Squeeze") return op_squeeze(c);
  if (op == "Transpose") return op_transpose(c);
  if (op == "Concat") return op_concat(c);
  if (op == "Split") return op_split(c);
  if (op == "Slice") return op_slice(c);
  if (op == "Gather") return op_gather(c);
  if (op == "Expand") return op_expand(c);
  if (op == "Softmax") return op_softmax(c);
  if (op == "Constant") return op_constant(c);
  if (op == "ConstantOfShape") return op_constant_of_shape(c);
  if (op == "Cast") return op_cast(c);
  if (op == "Range") return op_range(c);
  if (op == "Where") return op_where(c);
  if (op == "MaxPool") {
    const Window w = read_window(c, {});
    c.out[0].shape = window_out(c, *c.input(0).shape, w, (*c.input(0).shape)[1]);
    if (c.compute) c.fail("a pooling of constants");
    return;
  }
  if (op == "Resize" || op == "Upsample") {
    resize_factors(c);
    if (c.compute) c.fail("a resize of constants");
    return;
  }
  c.fail("operator " + op + " is not supported");
}

// ---- planning ----

struct Value {
  std::string name;
  Shape shape;
  bool defined = false;
  bool is_const = false;
  bool is_int = false;
  std::vector<float> f;
  std::vector<int64_t> i;
  bool nhwc = false;  // runtime layout: [H, W, C] for a (1, C, H, W) tensor
  int slot = -1;
  int64_t offset = 0;  // floats into the slot (a view: a chunk of a Concat output or of a Split input)
  int view_of = -1;    // written straight into this Concat output's buffer, at `offset`
  int nhwc_twin = -1, plain_twin = -1;  // converted copies, made once
};

enum class StepKind { conv, conv_plain, plain, nhwc, to_nhwc, to_plain };

struct Step {
  StepKind kind = StepKind::plain;
  const OnnxNode* node = nullptr;
  std::vector<int> in, out;
  int conv = -1;
  // A Winograd pair (Conv2d::chains_into): the tensor between them stays in
  // the convolutions' blocked layout.
  bool src_blocked = false, dst_blocked = false;
  int64_t channel_offset = -1;  // an NHWC Slice: the first channel kept
  ConvActivation activation = ConvActivation::none;
  // Data movement: a layout change's oneDNN reorder (an index into Impl::copies);
  // for an NHWC Concat/Split/Slice the channel width of each copy, with the
  // channel it reads from (Split, Slice) or writes at (Concat).
  std::vector<int> copies;
  std::vector<int64_t> copy_offsets;
  // Concat: the value each copy reads (an input, or the tensor that adjacent
  // Split outputs were cut from: one wide copy instead of several narrow ones).
  std::vector<int> copy_from;
  std::vector<bool> copy_skip;  // Split: an output nobody reads is not copied
  std::vector<int64_t> copy_src_offset;  // Concat: the first channel read in copy_from
  int elementwise = -1;  // Impl::elementwise: Sigmoid's logistic, Softmax's exp
  // conv_plain: a 1x1 convolution on a plain (NCHW) input with few outputs
  // (the DFL head's 16 -> 1), computed directly instead of changing layout twice.
  std::vector<float> weights, bias;
  bool alias = false;  // a plain reshape: the output is the input's buffer, nothing to run
  bool dropped = false;  // an NHWC Concat that the 1x1 convolution reading it replaced (see plan)
  // A plain Concat/Split along an axis with only 1s before it: its parts are
  // contiguous chunks of the whole. Concat: the inputs written in place by their
  // producers (nothing to copy for them); Split: the outputs are views.
  std::vector<bool> view_in;
  bool split_views = false;
};

// The number of floats in one step along `axis` (dims after it) and whether all
// dims before it are 1 (then each index range along the axis is one contiguous chunk).
bool leading_ones(const Shape& s, int64_t axis, int64_t* inner) {
  *inner = 1;
  for (size_t d = axis + 1; d < s.size(); ++d) *inner *= s[d];
  for (int64_t d = 0; d < axis; ++d)
    if (s[d] != 1) return false;
  return true;
}

// The strides (in floats) of a (1, C, H, W) tensor held plain or NHWC with
// `row` floats per pixel (C, or more for a channel slice of a wider tensor).
StridedCopy::Dims plain_strides(const Shape& s) { return {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1}; }
StridedCopy::Dims nhwc_strides(const Shape& s, int64_t row) { return {s[2] * s[3] * row, 1, s[3] * row, row}; }

// out[o][p] = bias[o] + sum_c w[o][c] in[c][p]: a 1x1 convolution on NCHW planes.
void conv1x1_plain(const float* in, int64_t channels, int64_t hw, const std::vector<float>& w,
                   const std::vector<float>& bias, float* out) {
  const int64_t outs = static_cast<int64_t>(bias.size());
  for (int64_t o = 0; o < outs; ++o) {
    float* y = out + o * hw;
    std::fill(y, y + hw, bias[o]);
    for (int64_t c = 0; c < channels; ++c) {
      const float wc = w[o * channels + c];
      const float* x = in + c * hw;
      for (int64_t p = 0; p < hw; ++p) y[p] += wc * x[p];
    }
  }
}

// Softmax over the middle axis of [outer, len, inner]: max and sums in vector
// loops over `inner`, the exponentials through oneDNN (`exp`).
void softmax_middle(const float* x, float* y, int64_t outer, int64_t len, int64_t inner, const Elementwise& exp) {
  std::vector<float> mx(inner);
  for (int64_t p = 0; p < outer; ++p) {
    const float* xs = x + p * len * inner;
    float* ys = y + p * len * inner;
    std::copy(xs, xs + inner, mx.begin());
    for (int64_t l = 1; l < len; ++l)
      for (int64_t q = 0; q < inner; ++q) mx[q] = std::max(mx[q], xs[l * inner + q]);
    for (int64_t l = 0; l < len; ++l)
      for (int64_t q = 0; q < inner; ++q) ys[l * inner + q] = xs[l * inner + q] - mx[q];
  }
  exp.run(y, y);
  for (int64_t p = 0; p < outer; ++p) {
    float* ys = y + p * len * inner;
    std::fill(mx.begin(), mx.end(), 0.f);  // now the sums
    for (int64_t l = 0; l < len; ++l)
      for (int64_t q = 0; q < inner; ++q) mx[q] += ys[l * inner + q];
    for (int64_t q = 0; q < inner; ++q) mx[q] = 1.f / mx[q];
    for (int64_t l = 0; l < len; ++l)
      for (int64_t q = 0; q < inner; ++q) ys[l * inner + q] *= mx[q];
  }
}

// Memory aligned for oneDNN's vector loads.
struct AlignedFloats {
  float* data = nullptr;
  explicit AlignedFloats(size_t n) {
    data = static_cast<float*>(std::aligned_alloc(64, std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64)));
    if (!data) throw std::bad_alloc();
  }
  ~AlignedFloats() { std::free(data); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

struct Workspace {
  std::vector<std::unique_ptr<AlignedFloats>> slots;
  std::unique_ptr<AlignedFloats> scratch;
};

}  // namespace

struct OnnxGraphRunner::Impl {
  std::string source;
  int64_t opset = 0;
  std::deque<Value> values;
  std::map<std::string, int> ids;
  int input = -1;
  std::vector<int> outputs;
  std::vector<Shape> output_shapes;
  Shape input_shape;
  std::vector<Step> steps;
  std::vector<std::unique_ptr<Conv2d>> convs;
  std::vector<std::unique_ptr<StridedCopy>> copies;
  std::vector<std::unique_ptr<Elementwise>> elementwise;
  std::vector<size_t> slot_sizes;
  size_t scratch_bytes = 0;
  int fused = 0;
  int winograd = 0;  // convolutions that run as Winograd (core/conv2d.h)
  // MMFUSE_CONV_DIRECT=1: direct convolutions only (A/B timing, development aid).
  ConvAlgorithm conv_algorithm =
      std::getenv("MMFUSE_CONV_DIRECT") ? ConvAlgorithm::direct : ConvAlgorithm::winograd_if_faster;
  int threads = 1;
  mutable std::mutex pool_mutex;
  mutable std::vector<std::unique_ptr<Workspace>> pool;

  int add_value(const std::string& name) {
    values.push_back({});
    values.back().name = name;
    if (!name.empty()) ids[name] = static_cast<int>(values.size()) - 1;
    return static_cast<int>(values.size()) - 1;
  }

  Arg arg_of(const Value& v) const {
    Arg a;
    a.shape = &v.shape;
    a.is_int = v.is_int;
    a.present = true;
    if (v.is_const) {
      a.f = v.is_int ? nullptr : v.f.data();
      a.i = v.is_int ? v.i.data() : nullptr;
      if (!a.f && !a.i) a.f = reinterpret_cast<const float*>(&v);  // empty constant: non-null marker
    }
    return a;
  }

  // A runtime value in the wanted layout, adding one conversion step the first time.
  int in_layout(int id, bool nhwc) {
    Value& v = values[id];  // values is a deque: references stay valid
    if (v.is_const || v.nhwc == nhwc) return id;
    int& twin = nhwc ? v.nhwc_twin : v.plain_twin;
    if (twin < 0) {
      MMFUSE_CHECK(v.shape.size() == 4 && v.shape[0] == 1, unsupported,
                   source + ": '" + v.name + "' " + shape_str(v.shape) + " cannot be an image tensor; not a recognised Ultralytics export");
      twin = add_value("");
      values[twin].shape = v.shape;
      values[twin].defined = true;
      values[twin].nhwc = nhwc;
      Step step;
      step.kind = nhwc ? StepKind::to_nhwc : StepKind::to_plain;
      step.in = {id};
      step.out = {twin};
      step.copies = {add_copy(v.shape, nhwc ? plain_strides(v.shape) : nhwc_strides(v.shape, v.shape[1]),
                              nhwc ? nhwc_strides(v.shape, v.shape[1]) : plain_strides(v.shape))};
      step.copy_offsets = {0};
      steps.push_back(step);
    }
    return twin;
  }

  int add_copy(const Shape& s, const StridedCopy::Dims& from, const StridedCopy::Dims& to) {
    copies.push_back(std::make_unique<StridedCopy>(StridedCopy::Dims{s[0], s[1], s[2], s[3]}, from, to));
    return static_cast<int>(copies.size()) - 1;
  }
  int add_elementwise(ElementwiseKind kind, const Shape& s) {
    elementwise.push_back(std::make_unique<Elementwise>(kind, numel(s)));
    return static_cast<int>(elementwise.size()) - 1;
  }

  std::map<int, std::pair<int, int64_t>> split_source;  // an NHWC Split output -> (its input, first channel)
  void plan_fast_paths(Step& step);
  void skip_unread_split_outputs();
  void plan_views();
  void plan_concat_to_plain();
  void plan_winograd_chains();
  bool plan_concat_as_sum(const OnnxNode& n, const Conv2dShape& cs, const std::vector<float>& weights, const float* bias,
                          Step step, const std::string& out_name, const Shape& out_shape, bool only_reader, int x);
  void plan_strided_concat(Step& st, int64_t axis, const std::vector<int>& readers, const std::vector<int>& producer);
  void plan(const OnnxModel& model, const Shape& in_shape, bool input_nhwc);
  void assign_slots();
  std::string label(const Step& s) const;
};

// A step's operation for the profiles: "Concat (nhwc)", "to_plain", ...
static std::string op_name(const Step& s) {
  if (s.kind == StepKind::to_nhwc) return "to_nhwc";
  if (s.kind == StepKind::to_plain) return "to_plain";
  return s.node->op_type + (s.kind == StepKind::nhwc ? " (nhwc)" : s.kind == StepKind::plain ? " (plain)" : "");
}

// "index op shape" of one step, for MMFUSE_GRAPH_PROFILE=steps.
std::string OnnxGraphRunner::Impl::label(const Step& s) const {
  char buf[160];
  const int index = static_cast<int>(&s - steps.data());
  if (s.kind == StepKind::conv) {
    const Conv2dShape& c = convs[s.conv]->shape();
    std::snprintf(buf, sizeof buf, "%03d conv %dx%d %d->%d k%d s%d%s%s%s", index, c.in_h, c.in_w, c.in_channels,
                  c.out_channels, c.kernel_h, c.stride_h, convs[s.conv]->winograd() ? " wino" : "",
                  s.src_blocked ? " <b" : "", s.dst_blocked ? " b>" : "");
    return buf;
  }
  const Shape& sh = values[!s.out.empty() ? s.out[0] : s.in[0]].shape;
  std::snprintf(buf, sizeof buf, "%03d %s %s", index, op_name(s).c_str(), shape_str(sh).c_str());
  return buf;
}

void OnnxGraphRunner::Impl::plan(const OnnxModel& model, const Shape& in_shape, bool input_nhwc) {
  source = model.source;
  opset = model.opset();
  const OnnxGraph& g = model.graph;
  for (const OnnxTensor& t : g.initializers) {
    const int id = add_value(t.name);
    Value& v = values[id];
    v.shape = t.dims;
    v.defined = v.is_const = true;
    v.is_int = !t.is_float();
    v.f = t.floats;
    v.i = t.ints;
  }
  for (const OnnxValueInfo& vi : g.inputs) {
    if (ids.count(vi.name)) continue;  // an initializer listed as input (IR < 4)
    MMFUSE_CHECK(input < 0, unsupported, source + ": graph.input: more than one input; not a recognised Ultralytics export");
    MMFUSE_CHECK(vi.type == OnnxType::float32, unsupported,
                 source + ": graph.input '" + vi.name + "' is not float32; not a recognised Ultralytics export");
    MMFUSE_CHECK(!vi.has_shape || vi.shape.size() == in_shape.size(), bad_input,
                 source + ": graph.input '" + vi.name + "' has rank " + std::to_string(vi.shape.size()) + ", expected " +
                     std::to_string(in_shape.size()));
    for (size_t d = 0; vi.has_shape && d < vi.shape.size(); ++d)
      MMFUSE_CHECK(vi.shape[d] < 0 || vi.shape[d] == in_shape[d], bad_input,
                   source + ": graph.input '" + vi.name + "' has shape " + shape_str(vi.shape) + ", not " +
                       shape_str(in_shape));
    input = add_value(vi.name);
    values[input].shape = in_shape;
    values[input].defined = true;
    if (input_nhwc) {
      MMFUSE_CHECK(in_shape.size() == 4 && in_shape[0] == 1, bad_input,
                   source + ": an interleaved (NHWC) input needs a (1, C, H, W) shape, not " + shape_str(in_shape));
      values[input].nhwc = true;
    }
  }
  MMFUSE_CHECK(input >= 0, bad_input, source + ": graph.input: the graph has no input");
  input_shape = in_shape;

  // How many nodes read each name (for the SiLU fusion).
  std::map<std::string, int> readers;
  std::set<std::string> graph_outputs;
  for (const OnnxValueInfo& o : g.outputs) graph_outputs.insert(o.name);
  for (const OnnxNode& n : g.nodes)
    for (const std::string& s : n.inputs) ++readers[s];
  std::vector<bool> skip(g.nodes.size(), false);
  std::map<const OnnxNode*, std::pair<ConvActivation, std::string>> fusions;  // conv node -> activation, output
  std::map<std::string, std::vector<size_t>> consumers;
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (const std::string& s : g.nodes[k].inputs) consumers[s].push_back(k);
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const OnnxNode& n = g.nodes[k];
    if (n.op_type != "Conv" || n.outputs.size() != 1) continue;
    const std::string& y = n.outputs[0];
    if (graph_outputs.count(y) || readers[y] != 2) continue;
    const auto& cs = consumers[y];
    const OnnxNode *sig = nullptr, *mul = nullptr;
    for (size_t j : cs) {
      if (g.nodes[j].op_type == "Sigmoid") sig = &g.nodes[j];
      if (g.nodes[j].op_type == "Mul") mul = &g.nodes[j];
    }
    if (!sig || !mul || sig->outputs.size() != 1 || mul->inputs.size() != 2 || mul->outputs.size() != 1 ||
        sig < &n || mul < &n)
      continue;
    const std::string& s = sig->outputs[0];
    if (graph_outputs.count(s) || readers[s] != 1) continue;
    if (!((mul->inputs[0] == y && mul->inputs[1] == s) || (mul->inputs[0] == s && mul->inputs[1] == y))) continue;
    skip[sig - g.nodes.data()] = skip[mul - g.nodes.data()] = true;
    fusions[&n] = {ConvActivation::silu, mul->outputs[0]};
  }

  for (size_t k = 0; k < g.nodes.size(); ++k) {
    if (skip[k]) continue;
    const OnnxNode& n = g.nodes[k];
    std::vector<int> in_ids;
    bool all_const = true;
    for (const std::string& name : n.inputs) {
      if (name.empty()) {
        in_ids.push_back(-1);
        continue;
      }
      auto it = ids.find(name);
      MMFUSE_CHECK(it != ids.end() && values[it->second].defined, bad_input,
                   source + ": node '" + n.name + "' (" + n.op_type + ") reads '" + name + "', which no earlier node writes");
      in_ids.push_back(it->second);
      all_const = all_const && values[it->second].is_const;
    }
    std::vector<Arg> args;
    for (int id : in_ids) args.push_back(id < 0 ? Arg{} : arg_of(values[id]));
    // Shape only needs its input's (static) shape.
    if (n.op_type == "Shape" && !args.empty()) {
      args[0].f = reinterpret_cast<const float*>(&args);
      all_const = true;
    }
    std::vector<Out> outs(n.outputs.size());
    MMFUSE_CHECK(!outs.empty(), bad_input, source + ": node '" + n.name + "' (" + n.op_type + ") has no output");
    OpContext ctx{n, opset, source, args, outs, false};
    apply_plain(ctx);  // shapes (and validation)

    const bool fold = all_const && n.op_type != "Conv" && n.op_type != "MaxPool" && n.op_type != "Resize" &&
                      n.op_type != "Upsample";
    if (fold) {
      std::vector<int> out_ids;
      for (size_t o = 0; o < outs.size(); ++o) {
        MMFUSE_CHECK(numel(outs[o].shape) <= (int64_t{1} << 24), bad_input, source + ": node '" + n.name + "': constant too large");
        const int id = add_value(n.outputs[o]);
        Value& v = values[id];
        v.shape = outs[o].shape;
        v.defined = v.is_const = true;
        v.is_int = outs[o].is_int;
        if (v.is_int) v.i.resize(numel(v.shape));
        else v.f.resize(numel(v.shape));
        outs[o].f = v.is_int ? nullptr : v.f.data();
        outs[o].i = v.is_int ? v.i.data() : nullptr;
        out_ids.push_back(id);
      }
      std::vector<Arg> cargs;
      for (int id : in_ids) cargs.push_back(id < 0 ? Arg{} : arg_of(values[id]));
      if (n.op_type == "Shape") cargs[0].f = reinterpret_cast<const float*>(&cargs);
      OpContext run{n, opset, source, cargs, outs, true};
      apply_plain(run);
      continue;
    }

    for (const Out& o : outs)
      if (o.is_int)
        throw_error(ErrorKind::unsupported, source + ": node '" + n.name + "' (" + n.op_type +
                                                "): integer values computed from the image; not a recognised Ultralytics export");
    const std::string& op = n.op_type;
    Step step;
    step.node = &n;
    auto runtime_inputs = [&] {
      std::vector<int> r;
      for (int id : in_ids)
        if (id >= 0 && !values[id].is_const) r.push_back(id);
      return r;
    };
    const std::vector<int> rin = runtime_inputs();
    auto all_nhwc_4d = [&] {
      for (int id : in_ids)
        if (id < 0 || values[id].is_const || !values[id].nhwc) return false;
      return true;
    };
    bool nhwc_out = false;
    if (op == "Conv") {
      MMFUSE_CHECK(!values[in_ids[0]].is_const && values[in_ids[1]].is_const &&
                       (in_ids.size() < 3 || in_ids[2] < 0 || values[in_ids[2]].is_const),
                   unsupported, source + ": node '" + n.name + "' (Conv): weights must be initializers; not a recognised Ultralytics export");
      const Value& w = values[in_ids[1]];
      const Shape& x = values[in_ids[0]].shape;
      const Window win = read_window(ctx, w.shape);
      Conv2dShape cs;
      cs.in_channels = static_cast<int>(x[1]);
      cs.in_h = static_cast<int>(x[2]);
      cs.in_w = static_cast<int>(x[3]);
      cs.out_channels = static_cast<int>(w.shape[0]);
      cs.kernel_h = static_cast<int>(win.kh);
      cs.kernel_w = static_cast<int>(win.kw);
      cs.stride_h = static_cast<int>(win.sh);
      cs.stride_w = static_cast<int>(win.sw);
      cs.pad_top = static_cast<int>(win.pt);
      cs.pad_left = static_cast<int>(win.pl);
      cs.pad_bottom = static_cast<int>(win.pb);
      cs.pad_right = static_cast<int>(win.pr);
      cs.dilation_h = static_cast<int>(win.dh);
      cs.dilation_w = static_cast<int>(win.dw);
      cs.groups = static_cast<int>(ctx.attr_int("group", 1));
      const float* bias = in_ids.size() >= 3 && in_ids[2] >= 0 ? values[in_ids[2]].f.data() : nullptr;
      auto fusion = fusions.find(&n);
      step.activation = fusion == fusions.end() ? ConvActivation::none : fusion->second.first;
      if (step.activation != ConvActivation::none) ++fused;
      const bool pointwise = cs.kernel_h == 1 && cs.kernel_w == 1 && cs.stride_h == 1 && cs.stride_w == 1 &&
                             cs.pad_top == 0 && cs.pad_left == 0 && cs.pad_bottom == 0 && cs.pad_right == 0 &&
                             cs.groups == 1;
      if (pointwise && !values[in_ids[0]].nhwc && in_ids[0] != input && cs.out_channels <= 16 &&
          step.activation == ConvActivation::none && fusion == fusions.end()) {
        step.kind = StepKind::conv_plain;
        step.weights = w.f;
        step.bias.assign(cs.out_channels, 0.f);
        if (bias) std::copy(bias, bias + cs.out_channels, step.bias.begin());
        step.in = {in_ids[0]};
        const int id = add_value(n.outputs[0]);
        values[id].shape = outs[0].shape;
        values[id].defined = true;
        step.out = {id};
        steps.push_back(step);
        continue;
      }
      if (pointwise && plan_concat_as_sum(n, cs, w.f, bias, step, fusion == fusions.end() ? n.outputs[0] : fusion->second.second,
                                          outs[0].shape, readers[n.inputs[0]] == 1 && !graph_outputs.count(n.inputs[0]),
                                          in_ids[0]))
        continue;
      try {
        convs.push_back(std::make_unique<Conv2d>(cs, w.f.data(), bias, step.activation, /*accumulate=*/false,
                                                 conv_algorithm));
        if (convs.back()->winograd()) ++winograd;
      } catch (const Error& e) {
        ctx.fail(e.what());
      }
      scratch_bytes = std::max(scratch_bytes, convs.back()->scratchpad_bytes());
      step.kind = StepKind::conv;
      step.conv = static_cast<int>(convs.size()) - 1;
      step.in = {in_layout(in_ids[0], true)};
      nhwc_out = true;
      const std::string out_name = fusion == fusions.end() ? n.outputs[0] : fusion->second.second;
      const int id = add_value(out_name);
      values[id].shape = outs[0].shape;
      values[id].defined = true;
      values[id].nhwc = true;
      step.out = {id};
      steps.push_back(step);
      continue;
    }
    bool use_nhwc = false;
    if (op == "MaxPool" || op == "Resize" || op == "Upsample") {
      use_nhwc = true;
    } else if (unary_ops().count(op)) {
      use_nhwc = values[in_ids[0]].nhwc;
    } else if (binary_ops().count(op) && rin.size() >= 1) {
      if (rin.size() == 2) {
        use_nhwc = values[rin[0]].nhwc && values[rin[1]].nhwc && values[rin[0]].shape == values[rin[1]].shape;
      } else {
        const int other = in_ids[0] == rin[0] ? in_ids[1] : in_ids[0];
        use_nhwc = values[rin[0]].nhwc && numel(values[other].shape) == 1 &&
                   values[rin[0]].shape == outs[0].shape;
      }
    } else if (op == "Concat") {
      use_nhwc = all_nhwc_4d() && ctx.axis(ctx.attr_int("axis", 0), 4) == 1;
    } else if (op == "Split") {
      use_nhwc = values[in_ids[0]].nhwc && ctx.axis(ctx.attr_int("axis", 0), 4) == 1;
    } else if (op == "Slice") {
      // Channel slices (torch exports C2f's chunk this way) stay in NHWC.
      use_nhwc = values[in_ids[0]].nhwc && outs[0].shape[0] == 1 && outs[0].shape[2] == values[in_ids[0]].shape[2] &&
                 outs[0].shape[3] == values[in_ids[0]].shape[3];
      if (use_nhwc) {
        std::vector<Out> probe(1);
        OpContext pc{n, opset, source, args, probe, false};
        const Shape& in = values[in_ids[0]].shape;
        std::vector<int64_t> starts = opset < 10 ? pc.attr_ints("starts") : pc.const_ints(1);
        std::vector<int64_t> axes = opset < 10 ? pc.attr_ints("axes") : (pc.has_input(3) ? pc.const_ints(3) : std::vector<int64_t>{});
        std::vector<int64_t> stepv = opset >= 10 && pc.has_input(4) ? pc.const_ints(4) : std::vector<int64_t>{};
        if (axes.empty()) for (size_t d = 0; d < starts.size(); ++d) axes.push_back(static_cast<int64_t>(d));
        for (size_t q = 0; q < axes.size(); ++q) {
          const int64_t ax = pc.axis(axes[q], 4);
          if (ax != 1 && !(ax >= 2 && outs[0].shape[ax] == in[ax] && (starts[q] == 0 || starts[q] <= -in[ax]))) use_nhwc = false;
          if (!stepv.empty() && stepv[q] != 1) use_nhwc = false;
          if (ax == 1) {
            int64_t st = starts[q] < 0 ? starts[q] + in[1] : starts[q];
            step.channel_offset = std::clamp<int64_t>(st, 0, in[1]);
          }
        }
        if (step.channel_offset < 0) use_nhwc = false;
      }
    }
    step.kind = use_nhwc ? StepKind::nhwc : StepKind::plain;
    for (int id : in_ids) step.in.push_back(id < 0 ? -1 : in_layout(id, use_nhwc));
    nhwc_out = use_nhwc;
    for (size_t o = 0; o < outs.size(); ++o) {
      MMFUSE_CHECK(numel(outs[o].shape) <= (int64_t{1} << 30), bad_input,
                   source + ": node '" + n.name + "' (" + op + "): output " + shape_str(outs[o].shape) + " too large");
      const int id = add_value(n.outputs[o]);
      values[id].shape = outs[o].shape;
      values[id].defined = true;
      values[id].nhwc = nhwc_out && outs[o].shape.size() == 4;
      step.out.push_back(id);
    }
    plan_fast_paths(step);
    static const std::set<std::string> reshapes{"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
    step.alias = step.kind == StepKind::plain && reshapes.count(op) && step.out.size() == 1 && !step.in.empty() &&
                 step.in[0] >= 0 && step.in[0] != input && !values[step.in[0]].is_const;
    steps.push_back(step);
  }

  for (const OnnxValueInfo& o : g.outputs) {
    auto it = ids.find(o.name);
    MMFUSE_CHECK(it != ids.end() && values[it->second].defined, bad_input,
                 source + ": graph.output '" + o.name + "' is written by no node");
    MMFUSE_CHECK(!values[it->second].is_const, unsupported,
                 source + ": graph.output '" + o.name + "' does not depend on the image; not a recognised Ultralytics export");
    const int id = in_layout(it->second, false);
    outputs.push_back(id);
    output_shapes.push_back(values[id].shape);
  }
  MMFUSE_CHECK(!outputs.empty(), bad_input, source + ": graph.output: the graph has no output");
  skip_unread_split_outputs();
  plan_views();
  plan_concat_to_plain();
  plan_winograd_chains();
  assign_slots();
}

// An NHWC channel Concat that only a layout change reads (the detection
// head's box and class outputs of each level, before they leave NHWC): the
// layout change reads each part and writes it at its channel offset, so the
// Concat's copy is gone. The same floats.
void OnnxGraphRunner::Impl::plan_concat_to_plain() {
  std::vector<int> readers(values.size(), 0);
  for (const Step& st : steps)
    for (int id : st.in)
      if (id >= 0) ++readers[id];
  for (int id : outputs) readers[id] += 2;
  for (Step& change : steps) {
    if (change.kind != StepKind::to_plain || change.in.size() != 1 || change.copies.size() != 1) continue;
    const int x = change.in[0];
    if (readers[x] != 1) continue;
    Step* cat = nullptr;
    for (Step& st : steps)
      if (std::find(st.out.begin(), st.out.end(), x) != st.out.end()) cat = &st;
    if (!cat || cat->kind != StepKind::nhwc || cat->dropped || cat->node->op_type != "Concat" || cat->copies.size() < 2)
      continue;
    bool dense = true;
    for (size_t k = 0; k < cat->copies.size(); ++k) {
      const Value& part = values[cat->copy_from[k]];
      dense = dense && part.nhwc && cat->copy_src_offset[k] == 0 && part.shape.size() == 4 &&
              part.shape[1] == cat->copies[k] && part.view_of < 0;
    }
    if (!dense) continue;
    // The layout change's destination strides (plain, or columns of the anchors' Concat).
    const StridedCopy::Dims to = copies[change.copies[0]]->dst_strides();
    std::vector<int> parts, copies_of;
    std::vector<int64_t> offsets;
    for (size_t k = 0; k < cat->copies.size(); ++k) {
      const Shape& ps = values[cat->copy_from[k]].shape;
      parts.push_back(cat->copy_from[k]);
      copies_of.push_back(add_copy(ps, nhwc_strides(ps, ps[1]), to));
      offsets.push_back(cat->copy_offsets[k] * to[1]);  // the part's first channel, in floats
    }
    change.in = parts;
    change.copies = copies_of;
    change.copy_offsets = offsets;
    cat->dropped = true;
    cat->in.clear();
  }
}

// A Winograd convolution whose output only the next Winograd convolution
// reads (a C2f bottleneck's cv1 -> cv2, a head branch's two 3x3 convs): the
// output stays blocked, saving a reorder out and one in. Same floats.
void OnnxGraphRunner::Impl::plan_winograd_chains() {
  std::vector<std::vector<int>> readers(values.size());
  for (size_t k = 0; k < steps.size(); ++k)
    for (int id : steps[k].in)
      if (id >= 0) readers[id].push_back(static_cast<int>(k));
  std::vector<bool> is_output(values.size(), false);
  for (int id : outputs) is_output[id] = true;
  for (Step& a : steps) {
    if (a.kind != StepKind::conv || a.out.size() != 1 || !convs[a.conv]->winograd()) continue;
    const int v = a.out[0];
    const Value& val = values[v];
    if (is_output[v] || val.view_of >= 0 || val.nhwc_twin >= 0 || val.plain_twin >= 0 || readers[v].size() != 1)
      continue;
    Step& b = steps[readers[v][0]];
    if (b.kind != StepKind::conv || b.in.size() != 1 || b.in[0] != v || !convs[a.conv]->chains_into(*convs[b.conv]))
      continue;
    a.dst_blocked = true;
    b.src_blocked = true;
  }
}

// A 1x1 convolution over an NHWC channel Concat (C2f's cv2 over its chunks and
// bottleneck outputs, the neck's C2f cv1 over upsampled + skip features) is
// the sum of 1x1 convolutions over the parts, each with its slice of the
// weights: the first with the bias, the next ones adding to the output
// (oneDNN's sum post-op), the last with the activation. The Concat's copy of
// every part is gone; results differ by float reassociation only. Measured on
// this machine's oneDNN (brgconv_1x1): faster from 40x40 up, not on 20x20 with
// SPPF's five parts, so small maps keep the Concat.
bool OnnxGraphRunner::Impl::plan_concat_as_sum(const OnnxNode& n, const Conv2dShape& cs, const std::vector<float>& weights,
                                               const float* bias, Step step, const std::string& out_name,
                                               const Shape& out_shape, bool only_reader, int x) {
  if (!only_reader || x < 0 || !values[x].nhwc || cs.in_h * cs.in_w < 1600 ||
      weights.size() != static_cast<size_t>(cs.out_channels) * cs.in_channels)
    return false;
  int producer = -1;
  for (int k = static_cast<int>(steps.size()) - 1; k >= 0 && producer < 0; --k)
    if (std::find(steps[k].out.begin(), steps[k].out.end(), x) != steps[k].out.end()) producer = k;
  if (producer < 0) return false;
  Step& cat = steps[producer];
  if (cat.kind != StepKind::nhwc || cat.node->op_type != "Concat" || cat.copies.size() < 2 || cat.dropped) return false;
  for (size_t k = 0; k < cat.copies.size(); ++k) {
    const Value& part = values[cat.copy_from[k]];
    if (cat.copy_src_offset[k] != 0 || part.shape[1] != cat.copies[k] || !part.nhwc) return false;
  }
  // Copies: steps.push_back below may move `cat`.
  const std::vector<int> parts = cat.copy_from;
  const std::vector<int> widths = cat.copies;
  const std::vector<int64_t> firsts = cat.copy_offsets;
  const int64_t total = cs.in_channels;
  const int id = add_value(out_name);
  values[id].shape = out_shape;
  values[id].defined = true;
  values[id].nhwc = true;
  for (size_t k = 0; k < parts.size(); ++k) {
    const int64_t width = widths[k], first = firsts[k];
    std::vector<float> slice(static_cast<size_t>(cs.out_channels) * width);
    for (int64_t o = 0; o < cs.out_channels; ++o)
      std::copy(weights.begin() + o * total + first, weights.begin() + o * total + first + width,
                slice.begin() + o * width);
    Conv2dShape part = cs;
    part.in_channels = static_cast<int>(width);
    const bool last = k + 1 == parts.size();
    try {
      convs.push_back(std::make_unique<Conv2d>(part, slice.data(), k == 0 ? bias : nullptr,
                                               last ? step.activation : ConvActivation::none, /*accumulate=*/k > 0));
    } catch (const Error& e) {
      throw_error(ErrorKind::unsupported, source + ": node '" + n.name + "' (Conv): " + e.what());
    }
    scratch_bytes = std::max(scratch_bytes, convs.back()->scratchpad_bytes());
    Step s = step;
    s.kind = StepKind::conv;
    s.conv = static_cast<int>(convs.size()) - 1;
    s.in = {parts[k]};
    s.out = {id};
    steps.push_back(s);
  }
  // The Concat reads and copies nothing now; its output (unread) is freed at once.
  steps[producer].dropped = true;
  steps[producer].in.clear();
  return true;
}

// The head's Concat of the levels' (1, C, H*W) outputs along the anchors: each
// level leaves NHWC through a layout change, which can write its floats
// straight into its columns of the Concat output (strided), instead of into a
// buffer of its own that the Concat then copies. All inputs or none.
void OnnxGraphRunner::Impl::plan_strided_concat(Step& st, int64_t axis, const std::vector<int>& readers,
                                                const std::vector<int>& producer) {
  const int out = st.out[0];
  const Shape& os = values[out].shape;
  if (os.size() != 3 || os[0] != 1 || axis != 2 || values[out].is_int || values[out].view_of >= 0) return;
  std::vector<std::pair<int, int>> plan;  // (layout change step, its plain output) per input
  for (int id : st.in) {
    if (id < 0 || values[id].is_const || readers[id] != 1 || producer[id] < 0 ||
        std::count(st.in.begin(), st.in.end(), id) != 1)
      return;
    const Step& reshape = steps[producer[id]];
    if (!reshape.alias || readers[reshape.in[0]] != 1 || producer[reshape.in[0]] < 0) return;
    const int plain = reshape.in[0];
    const Step& change = steps[producer[plain]];
    const Shape& ps = values[plain].shape;
    if (change.kind != StepKind::to_plain || ps.size() != 4 || ps[1] != os[1] ||
        values[id].shape != Shape{1, os[1], ps[2] * ps[3]})
      return;
    plan.emplace_back(producer[plain], plain);
  }
  st.view_in.assign(st.in.size(), true);
  int64_t at = 0;
  for (auto [change, plain] : plan) {
    const Shape& ps = values[plain].shape;
    steps[change].copies[0] = add_copy(ps, nhwc_strides(ps, ps[1]), {os[1] * os[2], os[2], ps[3], 1});
    values[plain].view_of = out;
    values[plain].offset = at;
    at += ps[2] * ps[3];
  }
}

// Plain Concat/Split whose parts are contiguous chunks (the detection head's
// box/class tensors): Split outputs become views of the input, and a Concat
// input that nothing else reads is written by its producer straight into the
// Concat's output. No copies, the same floats.
void OnnxGraphRunner::Impl::plan_views() {
  std::vector<int> readers(values.size(), 0), producer(values.size(), -1);
  for (size_t k = 0; k < steps.size(); ++k) {
    for (int id : steps[k].in)
      if (id >= 0) ++readers[id];
    for (int id : steps[k].out) producer[id] = static_cast<int>(k);
  }
  for (int id : outputs) readers[id] += 2;
  for (Step& st : steps) {
    if (st.kind != StepKind::plain || st.alias || st.elementwise >= 0) continue;
    const std::string& op = st.node->op_type;
    if (op != "Concat" && op != "Split") continue;
    const Shape& whole = values[op == "Concat" ? st.out[0] : st.in[0]].shape;
    const int64_t axis = st.node->attribute("axis") ? st.node->attribute("axis")->i : 0;
    const int64_t rank = static_cast<int64_t>(whole.size());
    if (axis < -rank || axis >= rank) continue;  // refused by the op at run time anyway
    int64_t inner = 1;
    const int64_t ax = axis < 0 ? axis + rank : axis;
    if (!leading_ones(whole, ax, &inner)) {
      if (op == "Concat") plan_strided_concat(st, ax, readers, producer);
      continue;
    }
    if (op == "Split") {
      const int from = st.in[0];
      if (from < 0 || from == input || values[from].is_const || values[from].is_int) continue;
      st.split_views = true;
      int64_t at = 0;
      for (int id : st.out) {
        values[id].offset = at * inner;  // relative to the input; made absolute in assign_slots
        at += values[id].shape[ax];
      }
      continue;
    }
    const int out = st.out[0];
    if (values[out].is_int || values[out].view_of >= 0) continue;
    st.view_in.assign(st.in.size(), false);
    int64_t at = 0;
    for (size_t k = 0; k < st.in.size(); ++k) {
      const int id = st.in[k];
      const int64_t extent = id >= 0 ? values[id].shape[ax] : 0;
      const bool once = id >= 0 && std::count(st.in.begin(), st.in.end(), id) == 1;
      if (once && id != input && !values[id].is_const && readers[id] == 1 && producer[id] >= 0) {
        const Step& p = steps[producer[id]];
        const bool writes_whole = (p.kind == StepKind::plain || p.kind == StepKind::to_plain ||
                                   p.kind == StepKind::conv_plain) &&
                                  !p.alias && !p.split_views && p.out.size() == 1 &&
                                  (p.kind != StepKind::plain || p.node->op_type != "Concat");
        if (writes_whole) {
          values[id].view_of = out;
          values[id].offset = at * inner;
          st.view_in[k] = true;
        }
      }
      at += extent;
    }
  }
}

// A Split output that only a Concat read (and the Concat now reads the Split's
// input instead) is not copied at all.
void OnnxGraphRunner::Impl::skip_unread_split_outputs() {
  std::vector<bool> read(values.size(), false);
  for (const Step& st : steps)
    for (int id : st.in)
      if (id >= 0) read[id] = true;
  for (int id : outputs) read[id] = true;
  for (Step& st : steps)
    if (st.kind == StepKind::nhwc && st.node->op_type != "Concat" && !st.copies.empty())
      for (size_t k = 0; k < st.out.size(); ++k) st.copy_skip[k] = !read[st.out[k]];
}

// Channel Concat/Split/Slice in NHWC become strided copies; Sigmoid and
// Softmax get oneDNN's vectorised exponentials.
void OnnxGraphRunner::Impl::plan_fast_paths(Step& step) {
  const std::string& op = step.node->op_type;
  if (step.kind == StepKind::nhwc && op == "Concat") {
    std::vector<int> reads;
    int64_t channel = 0;
    for (size_t k = 0; k < step.in.size();) {
      int from = step.in[k];
      int64_t width = values[from].shape[1], src_offset = 0;
      auto it = split_source.find(from);
      size_t next = k + 1;
      if (it != split_source.end()) {
        // Extend over the following inputs cut from the same tensor, in order.
        const int cut_from = it->second.first;
        int64_t end = it->second.second + width;
        for (; next < step.in.size(); ++next) {
          auto nt = split_source.find(step.in[next]);
          if (nt == split_source.end() || nt->second.first != cut_from || nt->second.second != end) break;
          end += values[step.in[next]].shape[1];
        }
        if (next > k + 1) {
          from = cut_from;
          src_offset = it->second.second;
          width = end - src_offset;
        }
      }
      step.copies.push_back(static_cast<int>(width));  // NHWC channel copies: the width
      step.copy_offsets.push_back(channel);
      step.copy_from.push_back(from);
      // The offset into the source rides on the read pointer: keep it with the value id.
      step.copy_skip.push_back(false);
      step.copy_src_offset.push_back(src_offset);
      if (std::find(reads.begin(), reads.end(), from) == reads.end()) reads.push_back(from);
      channel += width;
      k = next;
    }
    step.in = reads;  // what the step reads, for the buffer lifetimes
    return;
  }
  if (step.kind == StepKind::nhwc && (op == "Split" || op == "Slice")) {
    int64_t channel = op == "Slice" ? step.channel_offset : 0;
    for (int id : step.out) {
      const Shape& part = values[id].shape;
      step.copies.push_back(static_cast<int>(part[1]));  // NHWC channel copies: the width
      step.copy_offsets.push_back(channel);
      step.copy_skip.push_back(false);
      split_source[id] = {step.in[0], channel};
      channel += part[1];
    }
    return;
  }
  if ((step.kind == StepKind::nhwc || step.kind == StepKind::plain) && op == "Sigmoid" && step.in.size() == 1 &&
      !values[step.in[0]].is_int)
    step.elementwise = add_elementwise(ElementwiseKind::logistic, values[step.in[0]].shape);
  if (step.kind == StepKind::plain && op == "Softmax" && step.in.size() == 1 && !values[step.in[0]].is_int)
    step.elementwise = add_elementwise(ElementwiseKind::exp, values[step.in[0]].shape);
}

// Gives every runtime value a buffer slot, reusing a slot once its last reader ran.
void OnnxGraphRunner::Impl::assign_slots() {
  // A reshape-like step's output shares its input's slot (`root`), which then
  // lives until the last reader of either.
  std::vector<int> root(values.size());
  for (size_t id = 0; id < values.size(); ++id) root[id] = static_cast<int>(id);
  for (const Step& st : steps) {
    if (st.alias) root[st.out[0]] = root[st.in[0]];
    if (st.split_views)
      for (int id : st.out) root[id] = root[st.in[0]];
    for (int id : st.out)
      if (values[id].view_of >= 0) root[id] = root[values[id].view_of];
  }
  std::vector<int> last_use(values.size(), -1);
  for (size_t s = 0; s < steps.size(); ++s)
    for (int id : steps[s].in)
      if (id >= 0) last_use[root[id]] = static_cast<int>(s);
  for (int id : outputs) last_use[root[id]] = std::numeric_limits<int>::max();
  std::vector<int> free_slots;
  auto take = [&](size_t n) {
    int best = -1;
    for (size_t k = 0; k < free_slots.size(); ++k) {
      const int sl = free_slots[k];
      if (best < 0 || std::abs(static_cast<long>(slot_sizes[sl]) - static_cast<long>(n)) <
                          std::abs(static_cast<long>(slot_sizes[free_slots[best]]) - static_cast<long>(n)))
        best = static_cast<int>(k);
    }
    int sl;
    if (best >= 0) {
      sl = free_slots[best];
      free_slots.erase(free_slots.begin() + best);
      slot_sizes[sl] = std::max(slot_sizes[sl], n);
    } else {
      sl = static_cast<int>(slot_sizes.size());
      slot_sizes.push_back(n);
    }
    return sl;
  };
  for (size_t s = 0; s < steps.size(); ++s) {
    const Step& st = steps[s];
    for (int id : st.out) {
      Value& v = values[id];
      if (st.alias || st.split_views) {
        const Value& from = values[st.in[0]];
        v.slot = from.slot;
        v.offset += from.offset;  // a Split view's offset was relative to its input
      } else if (v.view_of >= 0) {
        Value& whole = values[v.view_of];
        if (whole.slot < 0) whole.slot = take(static_cast<size_t>(numel(whole.shape)));
        v.slot = whole.slot;
      } else if (v.slot < 0) {  // a Concat output already has its slot when views were written first
        v.slot = take(static_cast<size_t>(numel(v.shape)));
      }
    }
    // Free inputs read for the last time, and outputs nobody reads.
    std::set<int> done;
    for (int id : steps[s].in)
      if (id >= 0 && root[id] != input && !values[id].is_const && last_use[root[id]] == static_cast<int>(s))
        done.insert(root[id]);
    for (int id : steps[s].out)
      if (root[id] == id && last_use[id] < 0) done.insert(id);
    for (int id : done) free_slots.push_back(values[id].slot);
  }
}

OnnxGraphRunner::OnnxGraphRunner(const OnnxModel& model, const std::vector<int64_t>& input_shape, int threads,
                                 bool input_nhwc)
    : impl_(std::make_unique<Impl>()) {
  // oneDNN sizes a primitive's work split by the OpenMP threads at creation:
  // create them with the count they will run with.
  impl_->threads = std::max(1, threads);
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(impl_->threads);
  try {
    impl_->plan(model, input_shape, input_nhwc);
  } catch (...) {
    omp_set_num_threads(previous_threads);
    throw;
  }
  omp_set_num_threads(previous_threads);
}

OnnxGraphRunner::~OnnxGraphRunner() = default;

const std::vector<int64_t>& OnnxGraphRunner::input_shape() const { return impl_->input_shape; }
size_t OnnxGraphRunner::output_count() const { return impl_->outputs.size(); }
const std::vector<int64_t>& OnnxGraphRunner::output_shape(size_t index) const { return impl_->output_shapes.at(index); }

std::string OnnxGraphRunner::summary() const {
  int conv = 0, other = 0, layout = 0;
  for (const Step& s : impl_->steps) {
    if (s.kind == StepKind::conv) ++conv;
    else if (s.kind == StepKind::to_nhwc || s.kind == StepKind::to_plain) ++layout;
    else ++other;
  }
  return std::to_string(conv) + " conv (" + std::to_string(impl_->fused) + " fused SiLU, " +
         std::to_string(impl_->winograd) + " Winograd), " + std::to_string(other) +
         " other, " + std::to_string(layout) + " layout changes";
}

namespace {

// A Sigmoid or Softmax step with its oneDNN exponential.
void run_with_elementwise(const Elementwise& f, const Step& s, const Shape& sh, int64_t opset, const float* in,
                          float* out) {
  if (s.node->op_type == "Sigmoid") return f.run(in, out);
  const int64_t rank = static_cast<int64_t>(sh.size());
  const OnnxAttribute* a = s.node->attribute("axis");
  int64_t axis = a ? a->i : (opset >= 13 ? -1 : 1);
  if (axis < 0) axis += rank;  // validated at plan time
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (d < axis) outer *= sh[d];
    else if (d == axis || opset < 13) len *= sh[d];
    else inner *= sh[d];
  }
  softmax_middle(in, out, outer, len, inner, f);
}

}  // namespace

std::vector<std::vector<float>> OnnxGraphRunner::run(const float* input) const {
  const Impl& m = *impl_;
  std::unique_ptr<Workspace> ws;
  {
    std::lock_guard<std::mutex> lock(m.pool_mutex);
    if (!m.pool.empty()) {
      ws = std::move(m.pool.back());
      m.pool.pop_back();
    }
  }
  if (!ws) {
    ws = std::make_unique<Workspace>();
    for (size_t n : m.slot_sizes) ws->slots.push_back(std::make_unique<AlignedFloats>(n));
    ws->scratch = std::make_unique<AlignedFloats>(m.scratch_bytes / sizeof(float) + 16);
  }
  auto data = [&](int id) -> float* {
    if (id == m.input) return const_cast<float*>(input);
    return ws->slots[m.values[id].slot]->data + m.values[id].offset;
  };
  auto arg = [&](int id) {
    if (id < 0) return Arg{};
    Arg a = m.arg_of(m.values[id]);
    if (!m.values[id].is_const) a.f = data(id);
    return a;
  };
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(m.threads);
  const FlushDenormals flush(m.threads);

  // MMFUSE_GRAPH_PROFILE=1: time per op type on stderr; =steps: per step, in
  // order, with the convolution's shape (development aids).
  static const char* profile_env = std::getenv("MMFUSE_GRAPH_PROFILE");
  static const bool profile = profile_env != nullptr;
  static const bool profile_steps = profile && std::string(profile_env) == "steps";
  std::map<std::string, double> spent;
  try {
    for (const Step& s : m.steps) {
      const auto t0 = std::chrono::steady_clock::now();
      struct Account {
        std::map<std::string, double>& spent;
        const Impl* this_impl;
        const Step& s;
        std::chrono::steady_clock::time_point t0;
        ~Account() {
          if (!profile) return;
          const std::string key = profile_steps ? this_impl->label(s) : op_name(s);
          spent[key] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        }
      } account{spent, &m, s, t0};
      switch (s.kind) {
        case StepKind::conv:
          m.convs[s.conv]->run(data(s.in[0]), data(s.out[0]), ws->scratch->data, s.src_blocked, s.dst_blocked);
          break;
        case StepKind::conv_plain: {
          const Shape& sh = m.values[s.in[0]].shape;
          conv1x1_plain(data(s.in[0]), sh[1], sh[2] * sh[3], s.weights, s.bias, data(s.out[0]));
          break;
        }
        case StepKind::to_nhwc:
        case StepKind::to_plain:
          // One copy, or one per part of a Concat it replaced (at the part's offset).
          for (size_t k = 0; k < s.copies.size(); ++k)
            m.copies[s.copies[k]]->run(data(s.in[k]), data(s.out[0]) + s.copy_offsets[k]);
          break;
        case StepKind::plain: {
          if (s.alias || s.split_views) break;
          if (!s.view_in.empty()) {
            if (std::all_of(s.view_in.begin(), s.view_in.end(), [](bool v) { return v; })) break;
            // Concat of contiguous chunks: copy only what was not written in place.
            const Shape& os = m.values[s.out[0]].shape;
            const int64_t rank = static_cast<int64_t>(os.size());
            int64_t axis = s.node->attribute("axis") ? s.node->attribute("axis")->i : 0;
            if (axis < 0) axis += rank;
            int64_t inner = 1;
            leading_ones(os, axis, &inner);
            float* dst = data(s.out[0]);
            int64_t at = 0;
            for (size_t k = 0; k < s.in.size(); ++k) {
              const int64_t n = m.values[s.in[k]].shape[axis] * inner;
              if (!s.view_in[k]) {
                const Value& v = m.values[s.in[k]];
                const float* src = v.is_const ? v.f.data() : data(s.in[k]);
                std::memcpy(dst + at, src, n * sizeof(float));
              }
              at += n;
            }
            break;
          }
          if (s.elementwise >= 0) {
            run_with_elementwise(*m.elementwise[s.elementwise], s, m.values[s.in[0]].shape, m.opset, data(s.in[0]),
                                 data(s.out[0]));
            break;
          }
          std::vector<Arg> args;
          for (int id : s.in) args.push_back(arg(id));
          std::vector<Out> outs(s.out.size());
          for (size_t o = 0; o < outs.size(); ++o) {
            outs[o].shape = m.values[s.out[o]].shape;
            outs[o].f = data(s.out[o]);
          }
          OpContext ctx{*s.node, m.opset, m.source, args, outs, true};
          apply_plain(ctx);
          break;
        }
        case StepKind::nhwc: {
          if (s.dropped) break;
          const std::string& op = s.node->op_type;
          if (s.elementwise >= 0) {
            run_with_elementwise(*m.elementwise[s.elementwise], s, m.values[s.in[0]].shape, m.opset, data(s.in[0]),
                                 data(s.out[0]));
            break;
          }
          if (!s.copies.empty()) {
            // Concat writes each input at its channel offset; Split/Slice read theirs.
            const bool gather = op == "Concat";
            const Shape& first = m.values[s.in[0]].shape;
            const int64_t pixels = first[2] * first[3];
            for (size_t k = 0; k < s.copies.size(); ++k) {
              const int64_t width = s.copies[k];
              if (gather) {
                const int from = s.copy_from[k];
                copy_channel_rows(data(from) + s.copy_src_offset[k], m.values[from].shape[1], data(s.out[0]) + s.copy_offsets[k],
                                  m.values[s.out[0]].shape[1], pixels, width, m.threads);
              } else if (!s.copy_skip[k]) {
                copy_channel_rows(data(s.in[0]) + s.copy_offsets[k], first[1], data(s.out[k]), width, pixels, width, m.threads);
              }
            }
            break;
          }
          std::vector<Arg> args;
          for (int id : s.in) args.push_back(arg(id));
          std::vector<Out> outs(s.out.size());
          OpContext ctx{*s.node, m.opset, m.source, args, outs, false};
          const Shape& in0 = m.values[s.in[0]].shape;
          if (op == "MaxPool") {
            const Window w = read_window(ctx, {});
            maxpool_nhwc(data(s.in[0]), in0, data(s.out[0]), m.values[s.out[0]].shape, w);
          } else if (op == "Resize" || op == "Upsample") {
            resize_nhwc(data(s.in[0]), in0, data(s.out[0]), resize_factors(ctx));
          } else if (op == "Concat") {
            const int64_t hw = in0[2] * in0[3], C = m.values[s.out[0]].shape[1];
            float* dst = data(s.out[0]);
            int64_t offset = 0;
            for (int id : s.in) {
              const int64_t c = m.values[id].shape[1];
              const float* src = data(id);
              for (int64_t p = 0; p < hw; ++p) std::memcpy(dst + p * C + offset, src + p * c, c * sizeof(float));
              offset += c;
            }
          } else if (op == "Slice") {
            const int64_t hw = in0[2] * in0[3], C = in0[1], c = m.values[s.out[0]].shape[1], offset = s.channel_offset;
            const float* src = data(s.in[0]);
            float* dst = data(s.out[0]);
            for (int64_t p = 0; p < hw; ++p) std::memcpy(dst + p * c, src + p * C + offset, c * sizeof(float));
          } else if (op == "Split") {
            const int64_t hw = in0[2] * in0[3], C = in0[1];
            const float* src = data(s.in[0]);
            int64_t offset = 0;
            for (int id : s.out) {
              const int64_t c = m.values[id].shape[1];
              float* dst = data(id);
              for (int64_t p = 0; p < hw; ++p) std::memcpy(dst + p * c, src + p * C + offset, c * sizeof(float));
              offset += c;
            }
          } else {
            // Element-wise: same layout on both sides, or a scalar constant.
            std::vector<Out> plain_outs(1);
            plain_outs[0].f = data(s.out[0]);
            std::vector<Arg> flat = args;
            std::vector<Shape> flat_shapes(flat.size());
            for (size_t k = 0; k < flat.size(); ++k) {
              flat_shapes[k] = numel(*flat[k].shape) == 1 ? Shape{1} : Shape{numel(*flat[k].shape)};
              flat[k].shape = &flat_shapes[k];
            }
            OpContext run{*s.node, m.opset, m.source, flat, plain_outs, true};
            apply_plain(run);
          }
          break;
        }
      }
    }
  } catch (...) {
    omp_set_num_threads(previous_threads);
    throw;
  }
  omp_set_num_threads(previous_threads);
  if (profile)
    for (const auto& [op, ms] : spent) std::fprintf(stderr, "graph: %-24s %8.2f ms\n", op.c_str(), ms);
  std::vector<std::vector<float>> result;
  for (int id : m.outputs) {
    const float* p = data(id);
    result.emplace_back(p, p + numel(m.values[id].shape));
  }
  {
    std::lock_guard<std::mutex> lock(m.pool_mutex);
    m.pool.push_back(std::move(ws));
  }
  return result;
}

}  // namespace mmfuse
