// core/conv2d's Winograd island (3x3 stride-1, >= 64 channels, AVX-512 CPUs)
// against a plain loop: the same numbers as the direct convolution within
// float rounding, the activation applied, NHWC in and out. Where oneDNN has no
// Winograd kernel (AVX2-only CPUs) the convolution must fall back to direct.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/conv2d.h"

namespace mmfuse {
namespace {

// NHWC 3x3 stride-1 pad-1 convolution + SiLU, weights [out][in][3][3].
std::vector<float> naive_conv3x3_silu(const std::vector<float>& x, const std::vector<float>& w,
                                      const std::vector<float>& b, int c_in, int c_out, int h, int wd) {
  std::vector<float> y(static_cast<size_t>(h) * wd * c_out);
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < wd; ++j)
      for (int o = 0; o < c_out; ++o) {
        double acc = b[o];
        for (int di = -1; di <= 1; ++di)
          for (int dj = -1; dj <= 1; ++dj) {
            const int ii = i + di, jj = j + dj;
            if (ii < 0 || jj < 0 || ii >= h || jj >= wd) continue;
            for (int c = 0; c < c_in; ++c)
              acc += static_cast<double>(x[(static_cast<size_t>(ii) * wd + jj) * c_in + c]) *
                     w[((static_cast<size_t>(o) * c_in + c) * 3 + (di + 1)) * 3 + (dj + 1)];
          }
        y[(static_cast<size_t>(i) * wd + j) * c_out + o] = static_cast<float>(acc / (1.0 + std::exp(-acc)));
      }
  return y;
}

float worst_difference(int c_in, int c_out, int h, int w, ConvAlgorithm algorithm, bool* winograd) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(h) * w * c_in), weights(static_cast<size_t>(c_out) * c_in * 9), bias(c_out);
  for (float& v : x) v = normal(rng);
  for (float& v : weights) v = normal(rng) / std::sqrt(9.f * c_in);
  for (float& v : bias) v = 0.1f * normal(rng);
  Conv2dShape s;
  s.in_channels = c_in;
  s.out_channels = c_out;
  s.in_h = h;
  s.in_w = w;
  s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
  const Conv2d conv(s, weights.data(), bias.data(), ConvActivation::silu, false, algorithm);
  *winograd = conv.winograd();
  std::vector<float> y(static_cast<size_t>(h) * w * c_out, -1.f);
  std::vector<char> scratch(conv.scratchpad_bytes() + 64);
  void* aligned = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  conv.run(x.data(), y.data(), aligned);
  const std::vector<float> want = naive_conv3x3_silu(x, weights, bias, c_in, c_out, h, w);
  float worst = 0;
  for (size_t k = 0; k < y.size(); ++k) worst = std::max(worst, std::fabs(y[k] - want[k]));
  return worst;
}

TEST(Conv2dWinograd, MatchesPlainLoopWithActivation) {
  bool winograd = false;
  // 64 -> 80 channels on 37x35 (tiles that do not divide the map).
  EXPECT_LT(worst_difference(64, 80, 37, 35, ConvAlgorithm::winograd_if_faster, &winograd), 1e-4f);
  const bool has_kernel = winograd;  // false on CPUs without oneDNN's AVX-512 Winograd: direct instead
  EXPECT_LT(worst_difference(64, 80, 37, 35, ConvAlgorithm::direct, &winograd), 1e-4f);
  EXPECT_FALSE(winograd);
  // From 128 input channels the F(4x4,3x3) kernel (larger transforms, more rounding).
  EXPECT_LT(worst_difference(128, 64, 33, 33, ConvAlgorithm::winograd_if_faster, &winograd), 1e-4f);
  EXPECT_EQ(winograd, has_kernel);
  // Few channels or a small map: direct even where Winograd exists (it does not pay there).
  EXPECT_LT(worst_difference(32, 32, 9, 9, ConvAlgorithm::winograd_if_faster, &winograd), 1e-4f);
  EXPECT_FALSE(winograd);
  EXPECT_LT(worst_difference(64, 64, 13, 11, ConvAlgorithm::winograd_if_faster, &winograd), 1e-4f);
  EXPECT_FALSE(winograd);
  if (!has_kernel) GTEST_SKIP() << "oneDNN has no Winograd kernel on this CPU (checked the direct fallback only)";
}

}  // namespace
}  // namespace mmfuse
