// The anomaly-detector interface every sensor model implements, and the
// factory that makes one by name ("iforest", "t2", "pca", "mset", "ensemble").
//
// A detector is fitted once on a window of normal rows, then scores rows one
// at a time (streaming): score() is const and safe to call from several
// threads at once. Larger scores mean "more anomalous". Turning a score into
// an alarm (smoothing, threshold) is the pipeline's job (detect/pipeline.h),
// except for detectors that define their own fixed limit (the ensemble).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sensor/matrix.h"

namespace mmfuse::sensor {

struct DetectorOptions {
  uint64_t seed = 0;                 // every random choice derives from this
  int trees = 100;                   // Isolation Forest: number of trees
  size_t sample_size = 256;          // Isolation Forest: sub-sample size psi
  double explained_variance = 0.85;  // PCA: keep components up to this share
  size_t mset_memory = 400;          // MSET: most memory vectors kept
  // Used by detectors that calibrate members (ensemble): see pipeline.h.
  size_t smooth = 30;
  int folds = 4;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual std::string name() const = 0;
  // Fits on training rows (rows x channels, all finite). Throws
  // ErrorKind::bad_input when there are too few rows for the method.
  virtual void fit(const Matrix& train) = 0;
  // Raw score of one row of `channels()` values; only valid after fit().
  virtual double score(const double* row) const = 0;
  // An unfitted detector with the same settings (for out-of-fold calibration).
  virtual std::unique_ptr<Detector> clone_unfitted() const = 0;
  // A limit fixed by the method itself, if any; otherwise the pipeline derives
  // one from training scores.
  virtual std::optional<double> fixed_threshold() const { return std::nullopt; }
};

// Makes a detector by name; throws ErrorKind::bad_input for an unknown name.
std::unique_ptr<Detector> make_detector(const std::string& name, const DetectorOptions& options);
// The registered names, in the order `--method all` runs them.
const std::vector<std::string>& detector_names();

}  // namespace mmfuse::sensor
