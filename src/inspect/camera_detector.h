// Camera defect detection behind one interface. The default detector needs no
// trained weights: it compares each photo with the point's registered golden
// (known-good) image. A learned detector (YOLO-family weights, a later issue)
// registers under its own name in make_defect_detector().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "inspect/plant.h"
#include "vision/image.h"

namespace mmfuse::inspect {

struct Defect {
  std::string type = "difference";  // golden_diff cannot name the kind; a learned detector can
  int x = 0, y = 0, width = 0, height = 0;  // box in the input image's pixels
  double confidence = 0.0;                  // in [0, 1)
  double area = 0.0;                        // pixels at the normalised size
  double mean_diff = 0.0;                   // grey levels (golden_diff)
};

struct CameraFinding {
  std::vector<Defect> defects;  // only the ones that passed the detector's limits
  double raw_score = 0.0;       // detector score; >= 1 exactly when defects is non-empty
  Image annotated;              // the normalised photo with the boxes drawn (evidence)
  nlohmann::json detail = nlohmann::json::object();  // alignment, threshold, noise...
};

class DefectDetector {
 public:
  virtual ~DefectDetector() = default;
  virtual std::string name() const = 0;
  // Thread-safe (const, no shared mutable state).
  virtual CameraFinding detect(const Image& photo) const = 0;
};

// Builds config.detector ("golden_diff"); the golden image is read and prepared
// here, once. Unknown names: bad_input; a missing golden: not_found.
std::unique_ptr<DefectDetector> make_defect_detector(const CameraConfig& config);
const std::vector<std::string>& defect_detector_names();

// The chapter's pre-processing as used by every detector: RGB -> grey, resize to
// width x height (area averaging), Gaussian denoise. Returns a CV_32F image
// packed in a vector (width * height) to keep OpenCV out of this header.
std::vector<float> preprocess_gray(const Image& photo, const CameraConfig& config);

}  // namespace mmfuse::inspect
