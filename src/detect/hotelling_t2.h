// Hotelling's T-squared on all channels: each row is z-scored with the
// training mean and standard deviation, and scored by its squared Mahalanobis
// distance z' S^+ z, where S is the training covariance of the z-scores and S^+
// its pseudo-inverse (so exactly collinear channels do not blow up).
// The SKAB leaderboard's "T-squared" entry.
#pragma once

#include "detect/detector.h"
#include "sensor/linalg.h"

namespace mmfuse::sensor {

class HotellingT2 : public Detector {
 public:
  explicit HotellingT2(const DetectorOptions& options) : options_(options) {}
  std::string name() const override { return "t2"; }
  void fit(const Matrix& train) override;
  double score(const double* row) const override;
  std::unique_ptr<Detector> clone_unfitted() const override {
    return std::make_unique<HotellingT2>(options_);
  }

 private:
  DetectorOptions options_;
  Standardizer scaler_;
  Matrix inv_cov_;
};

}  // namespace mmfuse::sensor
