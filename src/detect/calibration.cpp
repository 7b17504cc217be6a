#include "detect/calibration.h"

#include <algorithm>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

std::vector<double> trailing_mean(const std::vector<double>& x, size_t window) {
  window = std::max<size_t>(window, 1);
  std::vector<double> out(x.size());
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    sum += x[i];
    if (i >= window) sum -= x[i - window];
    out[i] = sum / static_cast<double>(std::min(i + 1, window));
  }
  return out;
}

std::vector<double> out_of_fold_scores(const Detector& prototype, const Matrix& train, int folds) {
  MMFUSE_CHECK(folds >= 2, bad_input, "calibration needs at least 2 folds");
  const size_t n = train.rows, k = static_cast<size_t>(folds);
  MMFUSE_CHECK(n >= 2 * k, bad_input,
               "too few training rows (" + std::to_string(n) + ") for " + std::to_string(k) +
                   "-fold calibration");
  std::vector<double> scores(n);
  for (size_t f = 0; f < k; ++f) {
    const size_t begin = f * n / k, end = (f + 1) * n / k;
    Matrix rest(0, train.cols);
    rest.data.reserve((n - (end - begin)) * train.cols);
    for (size_t r = 0; r < n; ++r)
      if (r < begin || r >= end) rest.append_row(train.row(r));
    auto detector = prototype.clone_unfitted();
    detector->fit(rest);
    for (size_t r = begin; r < end; ++r) scores[r] = detector->score(train.row(r));
  }
  return scores;
}

double calibrate_threshold(const Detector& prototype, const Matrix& train, size_t smooth, int folds,
                           double margin) {
  const std::vector<double> smoothed =
      trailing_mean(out_of_fold_scores(prototype, train, folds), smooth);
  const size_t first = std::min(std::max<size_t>(smooth, 1) - 1, smoothed.size() - 1);
  double top = smoothed[first];
  for (size_t i = first; i < smoothed.size(); ++i) top = std::max(top, smoothed[i]);
  return top * margin;
}

}  // namespace mmfuse::sensor
