// The sound modality of an inspection point: an unsupervised Gaussian detector
// (src/detect/gaussian_detector.h, MFCC-40) fitted on the point's normal
// recordings, cached as a model folder so later runs do not refit.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "detect/gaussian_detector.h"
#include "inspect/plant.h"

namespace mmfuse::inspect {

struct SoundFinding {
  double score = 0.0, threshold = 0.0;
  double seconds = 0.0;  // audio judged (after silence removal)
  bool anomaly = false;
};

class SoundCheck {
 public:
  // Loads the cached model in cache_dir when its baseline key (files, sizes,
  // times, settings) matches; otherwise fits on the baseline (one clip per core
  // of `pool`), calibrates the threshold and saves it there (cache_dir empty:
  // no cache). Baseline problems throw (bad_input / not_found).
  SoundCheck(const SoundConfig& config, const std::filesystem::path& cache_dir, ThreadPool& pool);

  bool loaded_from_cache() const { return from_cache_; }
  double threshold() const { return det_->threshold(); }
  // Judges one clip (file bytes); single-threaded, thread-safe.
  SoundFinding judge(const std::string& bytes, const std::string& name) const;

 private:
  std::shared_ptr<GaussianDetector> det_;
  bool from_cache_ = false;
};

}  // namespace mmfuse::inspect
