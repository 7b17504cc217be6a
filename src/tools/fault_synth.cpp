#include "tools/fault_synth.h"

#include <cmath>
#include <numbers>
#include <random>

namespace mmfuse {

const char* to_string(SyntheticFault fault) {
  switch (fault) {
    case SyntheticFault::tone: return "tone";
    case SyntheticFault::clicks: return "clicks";
    case SyntheticFault::noise: return "noise";
    case SyntheticFault::modulation: return "modulation";
  }
  return "?";
}

const std::vector<SyntheticFault>& all_synthetic_faults() {
  static const std::vector<SyntheticFault> all = {SyntheticFault::tone, SyntheticFault::clicks,
                                                  SyntheticFault::noise,
                                                  SyntheticFault::modulation};
  return all;
}

std::vector<float> inject_fault(const std::vector<float>& x, int sample_rate, SyntheticFault fault,
                                uint32_t seed) {
  std::mt19937 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  double sum = 0.0;
  for (float v : x) sum += static_cast<double>(v) * v;
  const double rms = x.empty() ? 0.0 : std::sqrt(sum / static_cast<double>(x.size()));
  const double sr = sample_rate, two_pi = 2.0 * std::numbers::pi;
  std::vector<float> y = x;
  switch (fault) {
    case SyntheticFault::tone: {
      const double f = uniform(1000.0, std::min(6000.0, 0.45 * sr)), a = 0.3 * rms * std::sqrt(2.0);
      const double phase = uniform(0.0, two_pi);
      for (size_t i = 0; i < y.size(); ++i)
        y[i] += static_cast<float>(a * std::sin(two_pi * f * static_cast<double>(i) / sr + phase));
      break;
    }
    case SyntheticFault::clicks: {
      const double rate = uniform(5.0, 30.0), f = uniform(2000.0, std::min(5000.0, 0.45 * sr));
      const size_t period = static_cast<size_t>(sr / rate), burst = static_cast<size_t>(0.01 * sr);
      const size_t start = static_cast<size_t>(uniform(0.0, static_cast<double>(period)));
      for (size_t s = start; s + burst < y.size(); s += period)
        for (size_t k = 0; k < burst; ++k) {
          const double t = static_cast<double>(k) / sr;
          y[s + k] +=
              static_cast<float>(3.0 * rms * std::exp(-t / 0.002) * std::sin(two_pi * f * t));
        }
      break;
    }
    case SyntheticFault::noise: {
      std::normal_distribution<double> normal(0.0, 0.3 * rms);
      for (float& v : y) v += static_cast<float>(normal(rng));
      break;
    }
    case SyntheticFault::modulation: {
      const double f = uniform(2.0, 10.0), phase = uniform(0.0, two_pi);
      for (size_t i = 0; i < y.size(); ++i)
        y[i] *= static_cast<float>(
            1.0 + 0.5 * std::sin(two_pi * f * static_cast<double>(i) / sr + phase));
      break;
    }
  }
  return y;
}

}  // namespace mmfuse
