#include "core/typed_linear.h"

#include <algorithm>
#include <vector>

#include "core/gemm.h"
#include "core/profiler.h"
#include "core/q8_0.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {
// Up to this many rows the weights are streamed once through dot products
// (decoding: one row per running sequence); beyond it, widening a block of
// weights to float32 once and running a GEMM over all rows is faster.
constexpr size_t kMaxDotRows = 8;
// Outputs per task when streaming: tasks are handed out dynamically, so a
// core that gets less memory bandwidth for a moment takes fewer of them.
constexpr size_t kDotBlock = 32;
constexpr size_t kRunsPerCore = 4;
// Outputs per task in the GEMM path: a widened block is reused by every row.
constexpr size_t kGemmBlock = 256;

// y[rows, n0:n1] (+)= x W[n0:n1]^T + b for one block of one product; q8_0
// weights take the input quantised once per call (xq), n0 on a tile boundary.
void dot_block(const float* x, const Q8Input& xq, size_t rows, const TypedProduct& p, size_t n0,
               size_t n1, bool accumulate) {
  const TypedLinear& lin = *p.lin;
  const size_t in = static_cast<size_t>(lin.in), out = static_cast<size_t>(lin.out);
  const auto* w = static_cast<const uint8_t*>(lin.weight) + n0 * typed_row_bytes(lin.type, in);
  auto dot = [&](float* y, size_t ldy) {
    if (lin.type == WeightType::q8_0)
      kernels::q8_0_dot_rows(w, n1 - n0, xq, y, ldy);
    else
      kernels::typed_dot_rows(lin.type, w, n1 - n0, in, x, in, rows, y, ldy);
  };
  if (!accumulate) {
    dot(p.y + n0, out);
  } else {
    std::vector<float> part(rows * (n1 - n0));
    dot(part.data(), n1 - n0);
    for (size_t r = 0; r < rows; ++r)
      for (size_t n = n0; n < n1; ++n) p.y[r * out + n] += part[r * (n1 - n0) + n - n0];
  }
  if (lin.bias != nullptr)
    for (size_t r = 0; r < rows; ++r)
      for (size_t n = n0; n < n1; ++n) p.y[r * out + n] += lin.bias[n];
}

// Few rows (or q8_0 weights, whose int8 kernel also serves a prompt: each
// 16-row tile stays in cache while every row passes): every block of every
// product is one task, all in one pool call.
void stream_products(ThreadPool& pool, const float* x, size_t rows,
                     const TypedProduct* products, size_t count, bool accumulate) {
  Q8Input xq;  // every product has the same input
  for (size_t i = 0; i < count; ++i)
    if (products[i].lin->type == WeightType::q8_0) {
      xq.quantize(x, rows, static_cast<size_t>(products[i].lin->in),
                  static_cast<size_t>(products[i].lin->in), &pool);
      break;
    }
  std::vector<std::pair<size_t, size_t>> tasks;  // (product, first output)
  for (size_t i = 0; i < count; ++i)
    for (size_t n = 0; n < static_cast<size_t>(products[i].lin->out); n += kDotBlock)
      tasks.emplace_back(i, n);
  // Contiguous runs of blocks (each streams its weights in order), several per
  // core and handed out as cores free up, so neither core waits for the other.
  const size_t runs = std::min(tasks.size(), static_cast<size_t>(pool.size()) * kRunsPerCore);
  pool.parallel_tasks(runs, [&](size_t run, int) {
    const size_t t0 = tasks.size() * run / runs, t1 = tasks.size() * (run + 1) / runs;
    for (size_t t = t0; t < t1; ++t) {
      const TypedProduct& p = products[tasks[t].first];
      const size_t n0 = tasks[t].second;
      dot_block(x, xq, rows, p, n0, std::min(static_cast<size_t>(p.lin->out), n0 + kDotBlock),
                accumulate);
    }
  });
}
}  // namespace

const char* to_string(WeightType type) {
  switch (type) {
    case WeightType::f16: return "F16";
    case WeightType::bf16: return "BF16";
    case WeightType::q8_0: return "Q8_0";
    case WeightType::f32: break;
  }
  return "F32";
}

size_t weight_type_size(WeightType type) {
  MMFUSE_ASSERT(type != WeightType::q8_0);
  return type == WeightType::f32 ? 4 : 2;
}

size_t typed_row_bytes(WeightType type, size_t in) {
  return type == WeightType::q8_0 ? q8_0_row_bytes(in) : in * weight_type_size(type);
}

void typed_row(WeightType type, const void* table, size_t row, size_t dim, float* out) {
  const auto* src = static_cast<const uint8_t*>(table) + row * typed_row_bytes(type, dim);
  if (type == WeightType::q8_0)
    kernels::dequantize_q8_0_tiled_row(static_cast<const uint8_t*>(table), row, dim, out);
  else
    kernels::widen(type, src, dim, out);
}

void typed_linears(ThreadPool& pool, const float* x, size_t rows,
                   std::initializer_list<TypedProduct> products) {
  if (rows == 0 || products.size() == 0) return;
  for (const TypedProduct& p : products)
    MMFUSE_ASSERT(p.lin->weight != nullptr && p.lin->in == products.begin()->lin->in);
  if (rows > kMaxDotRows && products.begin()->lin->type != WeightType::q8_0) {
    for (const TypedProduct& p : products) typed_linear(pool, x, rows, *p.lin, p.y);
    return;
  }
  profiler::Scope timer(profiler::Op::linear);
  stream_products(pool, x, rows, products.begin(), products.size(), false);
}

void typed_linear(ThreadPool& pool, const float* x, size_t rows, const TypedLinear& lin, float* y,
                  bool accumulate) {
  MMFUSE_ASSERT(lin.weight != nullptr && lin.in > 0 && lin.out > 0);
  if (rows == 0) return;
  profiler::Scope timer(profiler::Op::linear);
  const size_t in = static_cast<size_t>(lin.in), out = static_cast<size_t>(lin.out);
  const size_t row_bytes = typed_row_bytes(lin.type, in);
  const auto* w = static_cast<const uint8_t*>(lin.weight);

  auto add_bias = [&](size_t n0, size_t n1) {
    if (lin.bias == nullptr) return;
    for (size_t r = 0; r < rows; ++r)
      for (size_t n = n0; n < n1; ++n) y[r * out + n] += lin.bias[n];
  };

  if (rows <= kMaxDotRows || lin.type == WeightType::q8_0) {
    const TypedProduct product{&lin, y};
    stream_products(pool, x, rows, &product, 1, accumulate);
    return;
  }

  const size_t blocks = (out + kGemmBlock - 1) / kGemmBlock;
  pool.parallel_for(blocks, [&](size_t b0, size_t b1, int) {
    std::vector<float> widened;
    for (size_t b = b0; b < b1; ++b) {
      const size_t n0 = b * kGemmBlock, n1 = std::min(out, n0 + kGemmBlock);
      const float* block = reinterpret_cast<const float*>(w + n0 * row_bytes);
      if (lin.type != WeightType::f32) {
        widened.resize((n1 - n0) * in);
        kernels::widen(lin.type, w + n0 * row_bytes, widened.size(), widened.data());
        block = widened.data();
      }
      sgemm(true, static_cast<int>(rows), static_cast<int>(n1 - n0), static_cast<int>(in), 1.0f, x,
            static_cast<int>(in), block, static_cast<int>(in), accumulate ? 1.0f : 0.0f, y + n0,
            static_cast<int>(out));
      add_bias(n0, n1);
    }
  });
}

}  // namespace mmfuse
