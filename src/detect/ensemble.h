// Ensemble of the four single detectors (iforest, t2, pca, mset). Each member
// is calibrated with the shared threshold rule (detect/calibration.h) and
// fitted on all training rows; the ensemble score of a row is the mean over
// members of member_score / member_threshold, so 1.0 means "the average member
// sits at its own alarm limit" and is the ensemble's fixed threshold.
#pragma once

#include <memory>
#include <vector>

#include "detect/detector.h"

namespace mmfuse::sensor {

class Ensemble : public Detector {
 public:
  explicit Ensemble(const DetectorOptions& options) : options_(options) {}
  std::string name() const override { return "ensemble"; }
  void fit(const Matrix& train) override;
  double score(const double* row) const override;
  std::unique_ptr<Detector> clone_unfitted() const override {
    return std::make_unique<Ensemble>(options_);
  }
  std::optional<double> fixed_threshold() const override { return 1.0; }

  static const std::vector<std::string>& member_names();

 private:
  DetectorOptions options_;
  std::vector<std::unique_ptr<Detector>> members_;
  std::vector<double> thresholds_;
};

}  // namespace mmfuse::sensor
