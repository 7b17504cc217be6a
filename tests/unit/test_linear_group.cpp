// linear_group (q, k and v sharing one converted input) gives exactly what
// separate linear() calls give, in every precision.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/linear_group.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {
namespace {

TEST(LinearGroup, MatchesSeparateLinearCalls) {
  const int in = 192, rows = 50;
  const int outs[] = {768, 256, 384};
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows) * in);
  for (float& v : x) v = normal(rng);
  ThreadPool pool(2);
  for (Precision p : {Precision::f32, Precision::bf16, Precision::int8}) {
    SCOPED_TRACE(to_string(p));
    std::vector<std::vector<float>> weights, biases;
    std::vector<Linear> layers(3);
    for (int l = 0; l < 3; ++l) {
      weights.emplace_back(static_cast<size_t>(outs[l]) * in);
      biases.emplace_back(static_cast<size_t>(outs[l]));
      for (float& v : weights.back()) v = normal(rng);
      for (float& v : biases.back()) v = normal(rng);
    }
    for (int l = 0; l < 3; ++l) {
      layers[l].weight = weights[l].data();
      layers[l].bias = biases[l].data();
      layers[l].in = in;
      layers[l].out = outs[l];
      pack_linear(layers[l], p);
    }
    std::vector<std::vector<float>> separate, grouped;
    for (int l = 0; l < 3; ++l) {
      separate.emplace_back(static_cast<size_t>(rows) * outs[l]);
      grouped.emplace_back(static_cast<size_t>(rows) * outs[l], -1.0f);
      linear(pool, x.data(), rows, layers[l], separate.back().data());
    }
    linear_group(pool, x.data(), rows,
                 {{&layers[0], grouped[0].data()},
                  {&layers[1], grouped[1].data()},
                  {&layers[2], grouped[2].data()}});
    for (int l = 0; l < 3; ++l)
      EXPECT_EQ(0, std::memcmp(separate[l].data(), grouped[l].data(),
                               separate[l].size() * sizeof(float)))
          << "layer " << l;
  }
}

}  // namespace
}  // namespace mmfuse
