#include "sensor/cleaning.h"

#include <algorithm>
#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

Cleaner::Cleaner(size_t channels, const CleaningOptions& options)
    : options_(options), channels_(channels), ma_sum_(channels, 0.0) {
  MMFUSE_CHECK(!options.despike || options.despike_window >= 2, bad_input,
               "despike window must be at least 2 rows");
  MMFUSE_CHECK(!options.despike || options.despike_sigmas > 0.0, bad_input,
               "despike sigmas must be positive");
  options_.moving_average = std::max<size_t>(options_.moving_average, 1);
}

size_t Cleaner::push(double* row) {
  size_t n_replaced = 0;
  if (options_.despike) {
    std::vector<double> raw(row, row + channels_);
    const size_t n = raw_.size();
    if (n >= std::max<size_t>(options_.despike_window / 2, 2)) {
      for (size_t c = 0; c < channels_; ++c) {
        double mean = 0.0;
        for (const auto& r : raw_) mean += r[c];
        mean /= static_cast<double>(n);
        double var = 0.0;
        for (const auto& r : raw_) var += (r[c] - mean) * (r[c] - mean);
        const double sd = std::sqrt(var / static_cast<double>(n));
        if (std::fabs(row[c] - mean) > options_.despike_sigmas * sd) {
          row[c] = mean;
          ++n_replaced;
        }
      }
    }
    raw_.push_back(std::move(raw));
    if (raw_.size() > options_.despike_window) raw_.pop_front();
  }
  if (options_.moving_average > 1) {
    despiked_.emplace_back(row, row + channels_);
    for (size_t c = 0; c < channels_; ++c) ma_sum_[c] += row[c];
    if (despiked_.size() > options_.moving_average) {
      for (size_t c = 0; c < channels_; ++c) ma_sum_[c] -= despiked_.front()[c];
      despiked_.pop_front();
    }
    // Recompute the sums now and then so rounding cannot accumulate.
    if (++ma_count_ % 4096 == 0) {
      std::fill(ma_sum_.begin(), ma_sum_.end(), 0.0);
      for (const auto& r : despiked_)
        for (size_t c = 0; c < channels_; ++c) ma_sum_[c] += r[c];
    }
    for (size_t c = 0; c < channels_; ++c)
      row[c] = ma_sum_[c] / static_cast<double>(despiked_.size());
  }
  replaced_ += n_replaced;
  return n_replaced;
}

Matrix clean(const Matrix& x, const CleaningOptions& options, size_t* replaced) {
  Matrix out = x;
  Cleaner cleaner(x.cols, options);
  for (size_t r = 0; r < out.rows; ++r) cleaner.push(out.row(r));
  if (replaced != nullptr) *replaced = cleaner.replaced();
  return out;
}

}  // namespace mmfuse::sensor
