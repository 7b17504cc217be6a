// Linear layers on F16 / BF16 / F32 weights (core/typed_linear.h) against a
// double-precision product, at decoder sizes (the tiny parity models are too
// narrow to reach the vector loops), for every instruction set this CPU has.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/typed_linear.h"
#include "test_util.h"

namespace mmfuse {
namespace {

uint16_t to_half(float f) {  // round to nearest even, normal range only (test data)
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = bits & 0x7fffffu;
  if (exponent <= 0) return static_cast<uint16_t>(sign);
  uint32_t half = sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(half);
}

uint16_t to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>(bits >> 16);  // truncation: any bf16 value will do
}

struct Weights {
  WeightType type;
  std::vector<uint8_t> bytes;
  std::vector<double> values;  // exactly what the stored weights mean
};

Weights make_weights(WeightType type, size_t out, size_t in, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.05f);
  Weights w{type, std::vector<uint8_t>(out * in * weight_type_size(type)), std::vector<double>(out * in)};
  for (size_t i = 0; i < out * in; ++i) {
    const float v = normal(rng);
    if (type == WeightType::f32) {
      std::memcpy(&w.bytes[i * 4], &v, 4);
      w.values[i] = v;
    } else {
      const uint16_t h = type == WeightType::f16 ? to_half(v) : to_bf16(v);
      std::memcpy(&w.bytes[i * 2], &h, 2);
      float back;
      kernels::widen(type, &h, 1, &back);
      w.values[i] = back;
    }
  }
  return w;
}

class TypedLinearTest : public ::testing::TestWithParam<WeightType> {};

TEST_P(TypedLinearTest, MatchesADoubleProductForEveryRowCountAndIsa) {
  std::mt19937 rng(7);
  const size_t in = 2048 + 40, out = 131;  // tails in both dimensions
  const Weights w = make_weights(GetParam(), out, in, rng);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> bias(out);
  for (float& b : bias) b = normal(rng);
  for (size_t rows : {1u, 3u, 4u, 9u, 37u}) {
    std::vector<float> x(rows * in);
    for (float& v : x) v = normal(rng);
    std::vector<double> want(rows * out);
    for (size_t r = 0; r < rows; ++r)
      for (size_t o = 0; o < out; ++o) {
        double sum = bias[o];
        for (size_t k = 0; k < in; ++k) sum += x[r * in + k] * w.values[o * in + k];
        want[r * out + o] = sum;
      }
    TypedLinear lin{GetParam(), w.bytes.data(), bias.data(), static_cast<int>(in),
                    static_cast<int>(out)};
    std::vector<float> y(rows * out, 0.0f);
    typed_linear(test::pool(), x.data(), rows, lin, y.data());
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::fabs(y[i] - want[i]));
    EXPECT_LT(worst, 2e-4) << rows << " rows";

    // accumulate: y += x W^T + b
    std::vector<float> acc(rows * out, 1.0f);
    typed_linear(test::pool(), x.data(), rows, lin, acc.data(), true);
    worst = 0;
    for (size_t i = 0; i < acc.size(); ++i) worst = std::max(worst, std::fabs(acc[i] - 1.0 - want[i]));
    EXPECT_LT(worst, 2e-4) << rows << " rows, accumulate";

    for (const char* isa : {"scalar", "avx2", "avx512"}) {
      std::vector<float> z(rows * out);
      if (!kernels::typed_dot_rows_with(isa, GetParam(), w.bytes.data(), out, in, x.data(), in,
                                        rows, z.data(), out))
        continue;
      worst = 0;
      for (size_t i = 0; i < z.size(); ++i)
        worst = std::max(worst, std::fabs(z[i] + bias[i % out] - want[i]));
      EXPECT_LT(worst, 2e-4) << isa << ", " << rows << " rows";
    }
  }
}

TEST_P(TypedLinearTest, SeveralProductsInOneCall) {
  std::mt19937 rng(11);
  const size_t in = 96;
  const Weights a = make_weights(GetParam(), 40, in, rng), b = make_weights(GetParam(), 7, in, rng);
  TypedLinear la{GetParam(), a.bytes.data(), nullptr, static_cast<int>(in), 40};
  TypedLinear lb{GetParam(), b.bytes.data(), nullptr, static_cast<int>(in), 7};
  std::vector<float> x(2 * in, 0.5f), ya(2 * 40), yb(2 * 7), ra(2 * 40), rb(2 * 7);
  typed_linears(test::pool(), x.data(), 2, {{&la, ya.data()}, {&lb, yb.data()}});
  typed_linear(test::pool(), x.data(), 2, la, ra.data());
  typed_linear(test::pool(), x.data(), 2, lb, rb.data());
  EXPECT_EQ(ya, ra);
  EXPECT_EQ(yb, rb);
}

INSTANTIATE_TEST_SUITE_P(Types, TypedLinearTest,
                         ::testing::Values(WeightType::f16, WeightType::bf16, WeightType::f32),
                         [](const ::testing::TestParamInfo<WeightType>& type) {
                           return std::string(to_string(type.param));
                         });

}  // namespace
}  // namespace mmfuse
