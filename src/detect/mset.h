// MSET-style similarity model (multivariate state estimation, as in SKAB's
// MSET entry): a memory D of m training states (z-scored rows) and the
// similarity s(x, y) = 1 - |x - y| / (|x| + |y|) (1 when x = y). A row z is
// estimated as a weighted sum of memory states,
//   w = G^-1 s(D, z),  G = s(D, D) + ridge I,   z_hat = D' w,
// and scored by the squared estimation error |z - z_hat|^2 in z-units.
// Memory: the rows holding each channel's training minimum and maximum, then
// evenly spaced rows up to `mset_memory`; exact duplicates are dropped so G
// stays invertible. D' G^-1 is precomputed, so a row costs O(m d).
#pragma once

#include "detect/detector.h"
#include "sensor/linalg.h"

namespace mmfuse::sensor {

class Mset : public Detector {
 public:
  explicit Mset(const DetectorOptions& options) : options_(options) {}
  std::string name() const override { return "mset"; }
  void fit(const Matrix& train) override;
  double score(const double* row) const override;
  std::unique_ptr<Detector> clone_unfitted() const override {
    return std::make_unique<Mset>(options_);
  }

  // The estimate z_hat of a row's z-scores (d values written to out).
  void estimate(const double* row, double* z, double* out) const;
  size_t memory_size() const { return memory_.rows; }

 private:
  DetectorOptions options_;
  Standardizer scaler_;
  Matrix memory_;             // m x d z-scored states
  std::vector<double> norm_;  // |memory row|
  Matrix projection_;         // d x m: D' G^-1
};

}  // namespace mmfuse::sensor
