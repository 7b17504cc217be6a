// Sensor cleaning from the chapter (section 6.2.2): 3-sigma outlier removal and
// moving-average smoothing, each optional. Both are causal (they look only at
// past rows), so a stream and a file give the same values row for row.
//
//  * 3-sigma despiking, per channel: x_t is an outlier when
//      |x_t - m_t| > sigmas * s_t,
//    m_t and s_t being the mean and (population) standard deviation of the
//    previous `despike_window` raw values of that channel (x_t itself excluded).
//    An outlier is replaced by m_t. The window holds raw values, not cleaned
//    ones, so a lasting level change is accepted after a few rows instead of
//    being erased; the rule is active once half the window has filled.
//  * moving average: the trailing mean of the last `moving_average` (despiked)
//    values, the current one included (window aligned to the right edge).
#pragma once

#include <cstddef>
#include <deque>
#include <vector>

#include "sensor/matrix.h"

namespace mmfuse::sensor {

struct CleaningOptions {
  bool despike = false;
  size_t despike_window = 30;
  double despike_sigmas = 3.0;
  size_t moving_average = 1;  // 1 = off
};

class Cleaner {
 public:
  Cleaner(size_t channels, const CleaningOptions& options);
  // Cleans one row in place; returns how many of its values were replaced.
  size_t push(double* row);
  size_t replaced() const { return replaced_; }

 private:
  CleaningOptions options_;
  size_t channels_;
  std::deque<std::vector<double>> raw_;       // last despike_window raw rows
  std::deque<std::vector<double>> despiked_;  // last moving_average despiked rows
  std::vector<double> ma_sum_;
  size_t replaced_ = 0;
  size_t ma_count_ = 0;
};

// Cleans every row of x in order (the same as pushing them one by one).
Matrix clean(const Matrix& x, const CleaningOptions& options, size_t* replaced = nullptr);

}  // namespace mmfuse::sensor
