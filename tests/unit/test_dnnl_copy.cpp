// core/dnnl_copy (strided copies, oneDNN exp/logistic) and core/denormals
// (flush-to-zero during a graph call, restored afterwards) on known values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/denormals.h"
#include "core/dnnl_copy.h"

namespace mmfuse {
namespace {

TEST(DnnlCopy, NchwToNhwcAndChannelSlices) {
  const int64_t C = 5, H = 3, W = 4;
  std::vector<float> plain(C * H * W);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<float>(i);
  std::vector<float> nhwc(plain.size(), -1.f);
  StridedCopy to_nhwc({1, C, H, W}, {C * H * W, H * W, W, 1}, {H * W * C, 1, W * C, C});
  to_nhwc.run(plain.data(), nhwc.data());
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < H * W; ++p) EXPECT_EQ(nhwc[p * C + c], plain[c * H * W + p]);
  // Channels 1..3 of the NHWC tensor into a dense NHWC tensor of 3 channels.
  std::vector<float> slice(3 * H * W, -1.f);
  StridedCopy cut({1, 3, H, W}, {H * W * C, 1, W * C, C}, {H * W * 3, 1, W * 3, 3});
  cut.run(nhwc.data() + 1, slice.data());
  for (int64_t p = 0; p < H * W; ++p)
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(slice[p * 3 + c], plain[(c + 1) * H * W + p]);
}

TEST(DnnlCopy, ExpAndLogistic) {
  std::vector<float> x{-20.f, -1.f, 0.f, 0.5f, 3.f, 30.f}, y(x.size());
  Elementwise logistic(ElementwiseKind::logistic, static_cast<int64_t>(x.size()));
  logistic.run(x.data(), y.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], 1.f / (1.f + std::exp(-x[i])), 1e-6f) << x[i];
  Elementwise exp(ElementwiseKind::exp, static_cast<int64_t>(x.size()));
  exp.run(x.data(), y.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i] / std::exp(x[i]), 1.f, 1e-5f) << x[i];
}

TEST(Denormals, FlushedInsideRestoredAfter) {
  volatile float tiny = 1e-40f;  // a denormal
  volatile float one = 1.f;
  {
    const FlushDenormals flush(2);
    const float product = tiny * one;
#if defined(__x86_64__)
    EXPECT_EQ(product, 0.f);
#else
    (void)product;
#endif
  }
  const float after = tiny * one;
  EXPECT_EQ(after, 1e-40f);
}

}  // namespace
}  // namespace mmfuse
