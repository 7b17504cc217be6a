#include "tools/synthetic.h"

#include <cmath>
#include <random>
#include <vector>

namespace mmfuse::sensor {

Matrix synthetic_sensor_data(const SyntheticOptions& options) {
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const size_t d = options.channels;
  Matrix x(options.rows, d);
  std::vector<double> loading(d), level(d), state(d, 0.0);
  for (size_t c = 0; c < d; ++c) {
    loading[c] = 0.5 + 0.1 * static_cast<double>(c % 5);
    level[c] = 10.0 * static_cast<double>(c + 1);
  }
  double factor = 0.0;
  for (size_t r = 0; r < options.rows; ++r) {
    factor = 0.95 * factor + 0.3 * normal(rng);
    const bool fault = r >= options.fault_begin && r < options.fault_end;
    for (size_t c = 0; c < d; ++c) {
      state[c] = 0.5 * state[c] + normal(rng);
      double v = level[c] + loading[c] * factor + state[c];
      if (fault && c < 2) v += options.fault_size * (c == 0 ? 1.0 : -1.0);
      x(r, c) = v;
    }
  }
  return x;
}

}  // namespace mmfuse::sensor
