// Every operator against a naive double-precision computation or a hand-checked value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/ops.h"
#include "core/thread_pool.h"
#include "mmfuse/error.h"
#include "test_util.h"

namespace mmfuse {
namespace {

std::vector<float> random_vector(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

TEST(Activation, HandCheckedValues) {
  float x[] = {0.0f, 1.0f, -1.0f, 3.0f};
  float q[4], g[4], t[4];
  std::copy(x, x + 4, q);
  std::copy(x, x + 4, g);
  std::copy(x, x + 4, t);
  kernels::activate_span(q, 4, Activation::quick_gelu);
  kernels::activate_span(g, 4, Activation::gelu);
  kernels::activate_span(t, 4, Activation::gelu_tanh);
  EXPECT_NEAR(q[0], 0.0, 1e-7);
  EXPECT_NEAR(q[1], 1.0 / (1.0 + std::exp(-1.702)), 1e-6);   // 0.845796
  EXPECT_NEAR(q[2], -1.0 / (1.0 + std::exp(1.702)), 1e-6);   // -0.154204
  EXPECT_NEAR(g[1], 0.8413447460685429, 1e-6);                // x * Phi(x)
  EXPECT_NEAR(g[2], -0.15865525393145707, 1e-6);
  EXPECT_NEAR(g[3], 2.9959502000, 1e-5);
  EXPECT_NEAR(t[1], 0.8411919906082768, 1e-6);
}

TEST(Activation, VectorisedMatchesScalarOverARange) {
  std::vector<float> x(4001);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -10.0f + 0.005f * static_cast<float>(i);
  std::vector<float> q = x, g = x;
  kernels::activate_span(q.data(), q.size(), Activation::quick_gelu);
  kernels::activate_span(g.data(), g.size(), Activation::gelu);
  for (size_t i = 0; i < x.size(); ++i) {
    double xd = x[i];
    ASSERT_NEAR(q[i], xd / (1.0 + std::exp(-1.702 * xd)), 1e-6 * (1 + std::fabs(xd))) << xd;
    ASSERT_NEAR(g[i], 0.5 * xd * (1.0 + std::erf(xd / std::sqrt(2.0))), 1e-6 * (1 + std::fabs(xd))) << xd;
  }
}

TEST(Activation, ParsesHuggingFaceNames) {
  EXPECT_EQ(parse_activation("quick_gelu", "cfg"), Activation::quick_gelu);
  EXPECT_EQ(parse_activation("gelu", "cfg"), Activation::gelu);
  EXPECT_EQ(parse_activation("gelu_new", "cfg"), Activation::gelu_tanh);
  EXPECT_THROW(parse_activation("swish2", "cfg"), Error);
}

TEST(LayerNorm, MatchesDoubleReference) {
  ThreadPool pool(2);
  const size_t rows = 37, dim = 96;
  std::vector<float> x = random_vector(rows * dim, 1, 3.0f), w = random_vector(dim, 2),
                     b = random_vector(dim, 3), y(rows * dim);
  for (float& v : x) v += 5.0f;  // a large mean must not hurt precision
  LayerNormWeights ln{w.data(), b.data(), static_cast<int>(dim), 1e-5f};
  layer_norm(pool, x.data(), rows, ln, y.data());
  for (size_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (size_t i = 0; i < dim; ++i) mean += x[r * dim + i];
    mean /= dim;
    for (size_t i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
    var /= dim;
    for (size_t i = 0; i < dim; ++i) {
      double want = (x[r * dim + i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
      ASSERT_NEAR(y[r * dim + i], want, 2e-5);
    }
  }
}

TEST(Linear, MatchesNaiveProductOnEveryThreadCount) {
  const size_t rows = 13, in = 70, out = 300;
  std::vector<float> x = random_vector(rows * in, 4), w = random_vector(out * in, 5),
                     bias = random_vector(out, 6);
  Linear lin{w.data(), bias.data(), static_cast<int>(in), static_cast<int>(out), nullptr};
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> y(rows * out, 0.5f), acc(rows * out, 0.5f);
    linear(pool, x.data(), rows, lin, y.data());
    linear(pool, x.data(), rows, lin, acc.data(), /*accumulate=*/true);
    for (size_t r = 0; r < rows; ++r)
      for (size_t n = 0; n < out; ++n) {
        double want = bias[n];
        for (size_t k = 0; k < in; ++k) want += static_cast<double>(x[r * in + k]) * w[n * in + k];
        ASSERT_NEAR(y[r * out + n], want, 1e-4) << threads;
        ASSERT_NEAR(acc[r * out + n], want + 0.5, 1e-4) << threads;
      }
  }
}

TEST(Linear, PackedWeightsMatchNaiveProductForEveryRowCount) {
  const size_t in = 96, out = 300;  // slices of 128, 128 and 44 columns
  std::vector<float> w = random_vector(out * in, 15), bias = random_vector(out, 16);
  Linear lin{w.data(), bias.data(), static_cast<int>(in), static_cast<int>(out), nullptr};
  pack_linear(lin);
  ASSERT_NE(lin.packed, nullptr);
  EXPECT_EQ(lin.packed->slices(), 3);
  ThreadPool pool(2);
  for (size_t rows : {1u, 7u, 50u, 333u}) {
    std::vector<float> x = random_vector(rows * in, static_cast<unsigned>(rows));
    std::vector<float> y(rows * out), acc(rows * out, 0.25f);
    linear(pool, x.data(), rows, lin, y.data());
    linear(pool, x.data(), rows, lin, acc.data(), /*accumulate=*/true);
    for (size_t r = 0; r < rows; ++r)
      for (size_t n = 0; n < out; ++n) {
        double want = bias[n];
        for (size_t k = 0; k < in; ++k) want += static_cast<double>(x[r * in + k]) * w[n * in + k];
        ASSERT_NEAR(y[r * out + n], want, 1e-4) << rows;
        ASSERT_NEAR(acc[r * out + n], want + 0.25, 1e-4) << rows;
      }
  }
}

TEST(Softmax, SumsToOneAndIsShiftInvariant) {
  float a[] = {1.0f, 2.0f, 3.0f}, b[] = {1001.0f, 1002.0f, 1003.0f};
  kernels::softmax_row(a, 3);
  kernels::softmax_row(b, 3);
  EXPECT_NEAR(a[0] + a[1] + a[2], 1.0, 1e-6);
  EXPECT_NEAR(a[2], std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0)), 1e-6);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
}

// Naive attention in double for one packed batch.
std::vector<double> naive_attention(const std::vector<float>& q, const std::vector<float>& k,
                                    const std::vector<float>& v, const PackedSequences& seqs,
                                    int heads, int d, bool causal, const std::vector<int64_t>* mask) {
  const size_t width = static_cast<size_t>(heads * d);
  std::vector<double> out(q.size(), 0.0);
  for (size_t s = 0; s < seqs.count(); ++s)
    for (int h = 0; h < heads; ++h) {
      const size_t r0 = seqs.offsets[s], len = seqs.length(s);
      for (size_t i = 0; i < len; ++i) {
        std::vector<double> p(len, 0.0);
        double max = -1e300, sum = 0;
        for (size_t j = 0; j < len; ++j) {
          if ((causal && j > i) || (mask && (*mask)[r0 + j] == 0)) continue;
          double dot = 0;
          for (int c = 0; c < d; ++c)
            dot += static_cast<double>(q[(r0 + i) * width + h * d + c]) * k[(r0 + j) * width + h * d + c];
          p[j] = dot / std::sqrt(static_cast<double>(d));
          max = std::max(max, p[j]);
        }
        for (size_t j = 0; j < len; ++j) {
          if ((causal && j > i) || (mask && (*mask)[r0 + j] == 0)) {
            p[j] = 0;
            continue;
          }
          sum += p[j] = std::exp(p[j] - max);
        }
        for (size_t j = 0; j < len; ++j)
          for (int c = 0; c < d; ++c)
            out[(r0 + i) * width + h * d + c] += p[j] / sum * v[(r0 + j) * width + h * d + c];
      }
    }
  return out;
}

TEST(Attention, MatchesNaiveWithCausalAndPaddingMasks) {
  const int heads = 3, d = 8;
  PackedSequences seqs;
  seqs.offsets = {0, 5, 6, 17};  // three sequences of lengths 5, 1 and 11
  const size_t rows = seqs.rows(), width = heads * d;
  std::vector<float> q = random_vector(rows * width, 7), k = random_vector(rows * width, 8),
                     v = random_vector(rows * width, 9), out(rows * width);
  std::vector<int64_t> mask(rows, 1);
  mask[3] = 0;
  mask[10] = 0;
  mask[16] = 0;
  ThreadPool pool(2);
  for (bool causal : {false, true})
    for (bool masked : {false, true}) {
      AttentionOptions opt;
      opt.heads = heads;
      opt.head_dim = d;
      opt.causal = causal;
      opt.key_mask = masked ? mask.data() : nullptr;
      attention(pool, q.data(), k.data(), v.data(), out.data(), seqs, opt);
      std::vector<double> want = naive_attention(q, k, v, seqs, heads, d, causal, masked ? &mask : nullptr);
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], want[i], 1e-5) << "causal " << causal << " masked " << masked << " at " << i;
    }
}

TEST(Attention, CrossAttentionReadsKeysPackedApart) {
  // Queries of lengths 2, 3, 1 attend to key sequences of lengths 5, 1, 4
  // (BLIP-2's queries reading image tokens); keys 1 and 8 are masked out.
  const int heads = 2, d = 4;
  PackedSequences queries, keys;
  queries.offsets = {0, 2, 5, 6};
  keys.offsets = {0, 5, 6, 10};
  const size_t width = heads * d;
  std::vector<float> q = random_vector(queries.rows() * width, 21),
                     k = random_vector(keys.rows() * width, 22),
                     v = random_vector(keys.rows() * width, 23), out(queries.rows() * width);
  std::vector<int64_t> mask(keys.rows(), 1);
  mask[1] = 0;
  mask[8] = 0;
  ThreadPool pool(2);
  for (bool masked : {false, true}) {
    AttentionOptions opt;
    opt.heads = heads;
    opt.head_dim = d;
    opt.key_seqs = &keys;
    opt.key_mask = masked ? mask.data() : nullptr;
    attention(pool, q.data(), k.data(), v.data(), out.data(), queries, opt);
    for (size_t s = 0; s < queries.count(); ++s)
      for (size_t i = queries.offsets[s]; i < queries.offsets[s + 1]; ++i)
        for (int h = 0; h < heads; ++h) {
          std::vector<double> p;
          double max = -1e300, sum = 0;
          for (size_t j = keys.offsets[s]; j < keys.offsets[s + 1]; ++j) {
            double dot = 0;
            for (int c = 0; c < d; ++c) dot += double(q[i * width + h * d + c]) * k[j * width + h * d + c];
            p.push_back(masked && mask[j] == 0 ? -INFINITY : dot / std::sqrt(double(d)));
            max = std::max(max, p.back());
          }
          for (double& x : p) sum += x = std::exp(x - max);
          for (int c = 0; c < d; ++c) {
            double want = 0;
            for (size_t j = 0; j < p.size(); ++j)
              want += p[j] / sum * v[(keys.offsets[s] + j) * width + h * d + c];
            ASSERT_NEAR(out[i * width + h * d + c], want, 1e-5) << "masked " << masked << " row " << i;
          }
        }
  }
}

TEST(Linear, StoredHalfPrecisionWeightsMatchTheirFloatCopy) {
  // A Linear whose weights stay F16 gives what the widened float32 weights give.
  const size_t in = 40, out = 70;
  std::vector<float> w = random_vector(out * in, 31), bias = random_vector(out, 32);
  std::vector<uint16_t> half(w.size());
  for (size_t i = 0; i < w.size(); ++i) {  // round to F16 (normal range, round to nearest even)
    uint32_t bits;
    std::memcpy(&bits, &w[i], 4);
    const uint32_t sign = (bits >> 16) & 0x8000u;
    int exp = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
    uint32_t mant = bits & 0x7fffffu;
    uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    ASSERT_GT(exp, 0);
    half[i] = static_cast<uint16_t>(h);
  }
  std::vector<float> widened(w.size());
  kernels::widen(WeightType::f16, half.data(), half.size(), widened.data());
  Linear typed;
  typed.in = static_cast<int>(in);
  typed.out = static_cast<int>(out);
  typed.bias = bias.data();
  typed.stored_type = WeightType::f16;
  typed.stored_weight = half.data();
  const Linear plain{widened.data(), bias.data(), static_cast<int>(in), static_cast<int>(out), nullptr};
  ThreadPool pool(2);
  for (size_t rows : {1u, 3u, 20u}) {
    std::vector<float> x = random_vector(rows * in, 33), a(rows * out), b(rows * out), acc(rows * out, 0.5f);
    linear(pool, x.data(), rows, typed, a.data());
    linear(pool, x.data(), rows, plain, b.data());
    linear(pool, x.data(), rows, typed, acc.data(), /*accumulate=*/true);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_NEAR(a[i], b[i], 1e-4) << rows;
      ASSERT_NEAR(acc[i], b[i] + 0.5f, 1e-4) << rows;
    }
  }
}

TEST(ThreadPool, RunsEveryIndexOnceAndPropagatesErrors) {
  ThreadPool pool(3);
  std::vector<int> hits(1000, 0);
  pool.parallel_for(hits.size(), [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) ++hits[i];
  });
  for (int h : hits) ASSERT_EQ(h, 1);
  std::vector<int> tasks(57, 0);
  pool.parallel_tasks(tasks.size(), [&](size_t t, int) { ++tasks[t]; });
  for (int h : tasks) ASSERT_EQ(h, 1);
  EXPECT_THROW(pool.parallel_for(10,
                                 [](size_t b, size_t, int) {
                                   if (b > 0) throw Error(ErrorKind::bad_input, "boom");
                                 }),
               Error);
  // The pool is still usable after an error.
  int sum = 0;
  std::mutex m;
  pool.parallel_for(4, [&](size_t b, size_t e, int) {
    std::lock_guard<std::mutex> lock(m);
    sum += static_cast<int>(e - b);
  });
  EXPECT_EQ(sum, 4);
}

}  // namespace
}  // namespace mmfuse
