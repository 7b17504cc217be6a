// Slow channels: ones whose training rows are dominated by slow, persistent
// variation (temperatures warming up over a run). A short training window shows
// only a sliver of their normal range, so a level-based detector fitted on it
// raises false alarms for the rest of the run. The pipeline can leave them out
// (PipelineOptions::slow_channel_autocorr), decided from the training rows alone:
// a channel is slow when its lag-1 autocorrelation over those rows is at least
// the given value (white noise ~ 0, a smooth trend ~ 1), the lag being a time
// (1 s by default) turned into rows with the series' sampling interval, so the
// rule means the same at 1 Hz and at 10 Hz (rows when there is no time column).
#pragma once

#include <vector>

#include "sensor/matrix.h"

namespace mmfuse::sensor {

// Lag-k autocorrelation of each column of x: sum (x_t - m)(x_{t-k} - m) / sum (x_t - m)^2
// (0 for a constant column or fewer than k + 2 rows; k = 0 is taken as 1).
std::vector<double> lag_autocorrelation(const Matrix& x, size_t lag);

}  // namespace mmfuse::sensor
