// The threshold rule shared by all detectors (documented in docs/sensors.md):
// training rows are cut into `folds` contiguous blocks; each block is scored by
// a detector fitted on the other blocks (out-of-fold, so a method that memorises
// its training rows, like MSET, is not judged on rows it has seen); the
// out-of-fold scores, in time order, are smoothed with the same trailing mean
// used at run time; the threshold is `margin` times their maximum (ignoring the
// first smooth - 1 rows, where the window is still filling).
#pragma once

#include <vector>

#include "detect/detector.h"

namespace mmfuse::sensor {

// Trailing (causal) mean: out[i] = mean(x[max(0, i - window + 1) .. i]).
std::vector<double> trailing_mean(const std::vector<double>& x, size_t window);

// Score of every training row by a detector fitted without that row's block.
std::vector<double> out_of_fold_scores(const Detector& prototype, const Matrix& train, int folds);

// The threshold for `prototype` fitted on `train` (see the rule above).
double calibrate_threshold(const Detector& prototype, const Matrix& train, size_t smooth, int folds,
                           double margin);

}  // namespace mmfuse::sensor
