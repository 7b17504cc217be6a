#include "sensor/slow_channels.h"

namespace mmfuse::sensor {

std::vector<double> lag_autocorrelation(const Matrix& x, size_t lag) {
  std::vector<double> ac(x.cols, 0.0);
  if (lag == 0) lag = 1;
  if (x.rows < lag + 2) return ac;
  for (size_t c = 0; c < x.cols; ++c) {
    double mean = 0.0;
    for (size_t r = 0; r < x.rows; ++r) mean += x(r, c);
    mean /= static_cast<double>(x.rows);
    double num = 0.0, den = 0.0;
    for (size_t r = 0; r < x.rows; ++r) {
      const double d = x(r, c) - mean;
      den += d * d;
      if (r >= lag) num += d * (x(r - lag, c) - mean);
    }
    if (den > 0.0) ac[c] = num / den;
  }
  return ac;
}

}  // namespace mmfuse::sensor
