#include "core/ops.h"

#include <algorithm>
#include <cmath>

#include "core/gemm.h"
#include "core/profiler.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {
// Below this many multiply-adds a job runs on the calling thread: waking the
// pool costs more than it saves.
constexpr size_t kMinParallelWork = 1u << 15;
}  // namespace

Activation parse_activation(const std::string& name, const std::string& where) {
  if (name == "quick_gelu") return Activation::quick_gelu;
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast")
    return Activation::gelu_tanh;
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  throw_error(ErrorKind::unsupported, where + ": unsupported activation \"" + name + "\"");
}

void linear(ThreadPool& pool, const float* x, size_t rows, const Linear& lin, float* y,
            bool accumulate) {
  if (lin.weight == nullptr && lin.stored_weight != nullptr) {
    const TypedLinear typed{lin.stored_type, lin.stored_weight, lin.bias, lin.in, lin.out};
    typed_linear(pool, x, rows, typed, y, accumulate);
    return;
  }
  MMFUSE_ASSERT(lin.weight != nullptr && lin.in > 0 && lin.out > 0);
  profiler::Scope timer(profiler::Op::linear);
  const size_t in = static_cast<size_t>(lin.in), out = static_cast<size_t>(lin.out);
  if (rows == 0) return;
  if (lin.packed != nullptr && lin.packed->precision() != Precision::f32) {
    // bf16 / int8: the input is converted (rounded or quantised per row) once,
    // then the column slices are shared between threads.
    // The caller's buffer, reused across calls; the workers reach it through
    // this pointer (a thread_local named inside the lambdas would be their own).
    thread_local PackedLinear::Input caller_input;
    PackedLinear::Input* input = &caller_input;
    const PackedLinear& packed = *lin.packed;
    packed.prepare_input(static_cast<int>(rows), *input);
    if (rows * in < kMinParallelWork) {
      packed.convert_rows(x, 0, static_cast<int>(rows), *input);
    } else {
      pool.parallel_for(rows, [&packed, x, input](size_t r0, size_t r1, int) {
        packed.convert_rows(x, static_cast<int>(r0), static_cast<int>(r1), *input);
      });
    }
    pool.parallel_for(static_cast<size_t>(packed.slices()), [&, input](size_t s0, size_t s1, int) {
      for (size_t s = s0; s < s1; ++s)
        packed.multiply_converted(*input, static_cast<int>(s), lin.bias, y, static_cast<int>(out),
                                  accumulate);
    });
    return;
  }
  if (lin.packed != nullptr) {
    // Packed column slices shared between threads; a row count without a packed
    // kernel falls back to the unpacked weights for that slice.
    pool.parallel_for(static_cast<size_t>(lin.packed->slices()), [&](size_t s0, size_t s1, int) {
      for (size_t s = s0; s < s1; ++s) {
        const int slice = static_cast<int>(s);
        if (lin.packed->multiply(x, static_cast<int>(rows), slice, lin.bias, y, static_cast<int>(out),
                                 accumulate))
          continue;
        const size_t width = PackedLinear::kSliceWidth;
        const size_t n0 = s * width, n1 = std::min(out, n0 + width);
        sgemm(true, static_cast<int>(rows), static_cast<int>(n1 - n0), static_cast<int>(in), 1.0f, x,
              static_cast<int>(in), lin.weight + n0 * in, static_cast<int>(in), accumulate ? 1.0f : 0.0f,
              y + n0, static_cast<int>(out));
        if (lin.bias != nullptr)
          for (size_t r = 0; r < rows; ++r)
            for (size_t n = n0; n < n1; ++n) y[r * out + n] += lin.bias[n];
      }
    });
    return;
  }
  // Columns of W are split across threads: each thread streams its own slice of
  // the weights once, which is what bounds small-batch inference.
  constexpr size_t kBlock = 64;
  const size_t blocks = (out + kBlock - 1) / kBlock;
  auto run = [&](size_t b0, size_t b1, int) {
    const size_t n0 = b0 * kBlock, n1 = std::min(out, b1 * kBlock);
    sgemm(true, static_cast<int>(rows), static_cast<int>(n1 - n0), static_cast<int>(in), 1.0f, x,
          static_cast<int>(in), lin.weight + n0 * in, static_cast<int>(in), accumulate ? 1.0f : 0.0f,
          y + n0, static_cast<int>(out));
    if (lin.bias != nullptr) {
      for (size_t r = 0; r < rows; ++r) {
        float* yr = y + r * out;
        for (size_t n = n0; n < n1; ++n) yr[n] += lin.bias[n];
      }
    }
  };
  if (rows * in * out < kMinParallelWork) {
    run(0, blocks, 0);
  } else {
    pool.parallel_for(blocks, run);
  }
}

void pack_linear(Linear& lin, Precision precision) {
  try {
    lin.packed = std::make_shared<const PackedLinear>(lin.weight, lin.in, lin.out,
                                                      supported_precision(precision));
  } catch (const Error&) {
    lin.packed.reset();
  }
}

void layer_norm(ThreadPool& pool, const float* x, size_t rows, const LayerNormWeights& ln, float* y) {
  profiler::Scope timer(profiler::Op::layer_norm);
  const size_t dim = static_cast<size_t>(ln.dim);
  auto run = [&](size_t r0, size_t r1, int) {
    for (size_t r = r0; r < r1; ++r)
      kernels::layer_norm_row(x + r * dim, dim, ln.weight, ln.bias, ln.eps, y + r * dim);
  };
  if (rows * dim < kMinParallelWork) {
    run(0, rows, 0);
  } else {
    pool.parallel_for(rows, run);
  }
}

void activate(ThreadPool& pool, float* x, size_t n, Activation act) {
  profiler::Scope timer(profiler::Op::activation);
  if (n < kMinParallelWork) {
    kernels::activate_span(x, n, act);
    return;
  }
  constexpr size_t kChunk = 4096;
  pool.parallel_for((n + kChunk - 1) / kChunk, [&](size_t c0, size_t c1, int) {
    const size_t begin = c0 * kChunk, end = std::min(n, c1 * kChunk);
    kernels::activate_span(x + begin, end - begin, act);
  });
}

void add_inplace(ThreadPool& pool, float* x, const float* y, size_t n) {
  profiler::Scope timer(profiler::Op::residual);
  auto run = [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) x[i] += y[i];
  };
  if (n < kMinParallelWork) {
    run(0, n, 0);
  } else {
    pool.parallel_for(n, run);
  }
}

void attention(ThreadPool& pool, const float* q, const float* k, const float* v, float* out,
               const PackedSequences& seqs, const AttentionOptions& opt) {
  profiler::Scope timer(profiler::Op::attention);
  const int heads = opt.heads, d = opt.head_dim;
  const int width = heads * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const PackedSequences& key_seqs = opt.key_seqs != nullptr ? *opt.key_seqs : seqs;
  MMFUSE_ASSERT(key_seqs.count() == seqs.count());
  MMFUSE_ASSERT(!(opt.causal && opt.key_seqs != nullptr));
  size_t max_len = 0, max_keys = 0;
  for (size_t s = 0; s < seqs.count(); ++s) {
    max_len = std::max(max_len, seqs.length(s));
    max_keys = std::max(max_keys, key_seqs.length(s));
  }
  struct Scratch {
    std::vector<float> scores, kept;
    std::vector<int> index;
  };
  std::vector<Scratch> scratch(static_cast<size_t>(pool.size()));
  const size_t tasks = seqs.count() * static_cast<size_t>(heads);

  auto run_task = [&](size_t task, int worker) {
    const size_t s = task / static_cast<size_t>(heads);
    const int h = static_cast<int>(task % static_cast<size_t>(heads));
    const size_t row0 = seqs.offsets[s], key0 = key_seqs.offsets[s];
    const int len = static_cast<int>(seqs.length(s));
    const int keys = static_cast<int>(key_seqs.length(s));
    const size_t col = static_cast<size_t>(h) * static_cast<size_t>(d);
    if (len == 0) return;
    if (keys == 0) {  // nothing to attend to (cross-attention to an empty sequence)
      for (int i = 0; i < len; ++i) std::fill_n(out + (row0 + i) * width + col, d, 0.0f);
      return;
    }
    Scratch& mine = scratch[static_cast<size_t>(worker)];
    std::vector<float>& scores = mine.scores;
    scores.resize(max_len * max_keys);
    sgemm(true, len, keys, d, scale, q + row0 * width + col, width, k + key0 * width + col, width,
          0.0f, scores.data(), keys);
    for (int i = 0; i < len; ++i) {
      float* row = scores.data() + static_cast<size_t>(i) * keys;
      const int visible = opt.causal ? i + 1 : keys;
      if (opt.key_mask == nullptr) {
        kernels::softmax_row(row, static_cast<size_t>(visible));
      } else {
        // Gather the attendable keys, softmax them, scatter back; others get 0.
        // A query with no attendable key attends uniformly, as a large negative
        // additive mask does in the reference implementation.
        mine.kept.resize(static_cast<size_t>(keys));
        mine.index.resize(static_cast<size_t>(keys));
        float* kept = mine.kept.data();
        int* idx = mine.index.data();
        int m = 0;
        for (int j = 0; j < visible; ++j)
          if (opt.key_mask[key0 + static_cast<size_t>(j)] != 0) {
            kept[m] = row[j];
            idx[m++] = j;
          }
        if (m == 0) {
          for (int j = 0; j < keys; ++j)
            row[j] = j < visible ? 1.0f / static_cast<float>(visible) : 0.0f;
          continue;
        }
        kernels::softmax_row(kept, static_cast<size_t>(m));
        std::fill(row, row + keys, 0.0f);
        for (int t = 0; t < m; ++t) row[idx[t]] = kept[t];
        continue;
      }
      std::fill(row + visible, row + keys, 0.0f);
    }
    sgemm(false, len, d, keys, 1.0f, scores.data(), keys, v + key0 * width + col, width, 0.0f,
          out + row0 * width + col, width);
  };
  if (max_len * max_keys * static_cast<size_t>(d) * tasks < kMinParallelWork) {
    for (size_t t = 0; t < tasks; ++t) run_task(t, 0);
  } else {
    pool.parallel_tasks(tasks, run_task);
  }
}

void attention_for_rows(ThreadPool& pool, const float* q, const float* k, const float* v, float* out,
                        const PackedSequences& seqs, const std::vector<size_t>& query_rows,
                        const AttentionOptions& opt) {
  profiler::Scope timer(profiler::Op::attention);
  const size_t heads = static_cast<size_t>(opt.heads), d = static_cast<size_t>(opt.head_dim);
  const size_t width = heads * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  MMFUSE_ASSERT(query_rows.size() == seqs.count());
  MMFUSE_ASSERT(opt.key_seqs == nullptr);  // self-attention only
  size_t max_len = 0;
  for (size_t s = 0; s < seqs.count(); ++s) max_len = std::max(max_len, seqs.length(s));
  std::vector<std::vector<float>> scratch(static_cast<size_t>(pool.size()));
  auto run_task = [&](size_t task, int worker) {
    const size_t s = task / heads, h = task % heads;
    const size_t row0 = seqs.offsets[s], query = query_rows[s];
    MMFUSE_ASSERT(query >= row0 && query < seqs.offsets[s + 1]);
    const size_t visible = opt.causal ? query - row0 + 1 : seqs.length(s);
    std::vector<float>& p = scratch[static_cast<size_t>(worker)];
    p.resize(max_len);
    const float* qh = q + s * width + h * d;
    size_t m = 0;
    std::vector<size_t> keys;
    for (size_t j = 0; j < visible; ++j) {
      if (opt.key_mask != nullptr && opt.key_mask[row0 + j] == 0) continue;
      const float* kj = k + (row0 + j) * width + h * d;
      float dot = 0.0f;
      for (size_t c = 0; c < d; ++c) dot += qh[c] * kj[c];
      p[m++] = dot * scale;
      keys.push_back(j);
    }
    float* oh = out + s * width + h * d;
    std::fill(oh, oh + d, 0.0f);
    if (m == 0) {  // nothing attendable: uniform over the visible keys (see attention())
      for (size_t j = 0; j < visible; ++j) keys.push_back(j);
      m = visible;
      std::fill(p.begin(), p.begin() + static_cast<long>(m), 0.0f);
    }
    kernels::softmax_row(p.data(), m);
    for (size_t t = 0; t < m; ++t) {
      const float* vj = v + (row0 + keys[t]) * width + h * d;
      for (size_t c = 0; c < d; ++c) oh[c] += p[t] * vj[c];
    }
  };
  const size_t tasks = seqs.count() * heads;
  if (tasks * max_len * d < kMinParallelWork) {
    for (size_t t = 0; t < tasks; ++t) run_task(t, 0);
  } else {
    pool.parallel_tasks(tasks, run_task);
  }
}

}  // namespace mmfuse
