// PCA-based T-squared + Q (squared prediction error), the SKAB leaderboard's
// "T-squared+Q (PCA-based)": rows are z-scored with training statistics; the
// principal components of the training z-scores are kept up to the smallest
// count whose cumulative explained variance exceeds `explained_variance` (as
// scikit-learn's PCA(n_components=0.85) picks them). For a row z with
// projections t_i on the kept components (variances l_i):
//   T2 = sum_i t_i^2 / l_i          (distance inside the model plane)
//   Q  = |z - P P' z|^2             (distance off the plane)
// The score is T2 / mean_train(T2) + Q / mean_train(Q): each statistic over its
// own training mean, so both count equally whatever the channel count. When
// every component is kept (no residual space) the score is T2 / mean_train(T2).
#pragma once

#include "detect/detector.h"
#include "sensor/linalg.h"

namespace mmfuse::sensor {

class PcaT2Q : public Detector {
 public:
  explicit PcaT2Q(const DetectorOptions& options) : options_(options) {}
  std::string name() const override { return "pca"; }
  void fit(const Matrix& train) override;
  double score(const double* row) const override;
  std::unique_ptr<Detector> clone_unfitted() const override {
    return std::make_unique<PcaT2Q>(options_);
  }

  // T2 and Q of one row (for tests and diagnostics).
  void statistics(const double* row, double* t2, double* q) const;
  size_t components() const { return k_; }

 private:
  DetectorOptions options_;
  Standardizer scaler_;
  Matrix components_;           // d x k, unit columns
  std::vector<double> lambda_;  // k variances
  size_t k_ = 0;
  double t2_mean_ = 1.0, q_mean_ = 1.0;
  bool use_q_ = true;
};

}  // namespace mmfuse::sensor
