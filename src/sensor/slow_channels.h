// Slow channels: ones whose training rows are dominated by slow, persistent
// variation (temperatures warming up over a run). A short training window shows
// only a sliver of their normal range, so a level-based detector fitted on it
// raises false alarms for the rest of the run. The pipeline can leave them out
// (PipelineOptions::slow_channel_autocorr), decided from the training rows alone:
// a channel is slow when its lag-1 autocorrelation over those rows is at least
// the given value (white noise ~ 0, a smooth trend ~ 1).
#pragma once

#include <vector>

#include "sensor/matrix.h"

namespace mmfuse::sensor {

// Lag-1 autocorrelation of each column of x: sum (x_t - m)(x_{t-1} - m) / sum (x_t - m)^2
// (0 for a constant column or fewer than 3 rows).
std::vector<double> lag1_autocorrelation(const Matrix& x);

}  // namespace mmfuse::sensor
