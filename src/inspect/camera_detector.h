// Camera defect detection behind one interface. The default detector needs no
// trained weights: it compares each photo with the point's registered golden
// (known-good) image. A trained detector ("yolo": an Ultralytics ONNX export)
// names the kind of each defect; "anomaly" learns normal from photos of good
// parts (detect/image_anomaly.h); several detectors on one point are united.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "inspect/plant.h"
#include "vision/image.h"

namespace mmfuse::inspect {

struct Defect {
  std::string type = "difference";  // golden_diff cannot name the kind; a learned detector can
  std::string model_class;          // the trained model's own class name (yolo)
  int x = 0, y = 0, width = 0, height = 0;  // box in the input image's pixels
  double confidence = 0.0;                  // in [0, 1]
  double area = 0.0;                        // pixels at the normalised size
  double mean_diff = 0.0;                   // grey levels (golden_diff)
};

struct CameraFinding {
  std::vector<Defect> defects;  // only the ones that passed the detector's limits
  double raw_score = 0.0;       // detector score; >= 1 exactly when defects is non-empty
  std::string alarm_type;       // the strongest defect's type when a detector can name it
  Image annotated;              // the normalised photo with the boxes drawn (evidence)
  std::string heatmap_png;      // encoded anomaly heat-map (evidence), "" when none
  nlohmann::json detail = nlohmann::json::object();  // alignment, threshold, noise...
};

class DefectDetector {
 public:
  virtual ~DefectDetector() = default;
  virtual std::string name() const = 0;
  // Thread-safe (const, no shared mutable state).
  virtual CameraFinding detect(const Image& photo) const = 0;
  // True when the detector needs the photo at full resolution (a trained network
  // reproduces its training pre-processing); otherwise JPEGs may arrive reduced.
  virtual bool wants_full_resolution() const { return false; }
};

// Builds config.detectors (one, or the union of several); golden images and
// models are read and prepared here, once, and computed on `pool`. Unknown
// names and models that do not fit the config: bad_input naming the field; a
// missing golden or model: not_found. Fitted models (anomaly) are cached under
// `cache_dir` (empty: fitted in memory every time).
std::unique_ptr<DefectDetector> make_defect_detector(const CameraConfig& config, ThreadPool& pool,
                                                     const std::filesystem::path& cache_dir = {});
const std::vector<std::string>& defect_detector_names();

// The single detectors make_defect_detector() combines.
std::unique_ptr<DefectDetector> make_golden_diff_detector(const CameraConfig& config);
std::unique_ptr<DefectDetector> make_yolo_defect_detector(const YoloCameraConfig& config,
                                                          ThreadPool& pool);
// Loads the model cached in cache_dir when it was fitted on photos with the
// same content and settings; otherwise fits on the good photos (on `pool`) and
// caches it there.
std::unique_ptr<DefectDetector> make_anomaly_defect_detector(const AnomalyCameraConfig& config,
                                                             const std::filesystem::path& cache_dir,
                                                             ThreadPool& pool);

// The photo for an evidence file, at most 1280 pixels on its long side (a
// full-resolution PNG of a 12-megapixel photo would cost more than the detection).
Image evidence_picture(const Image& photo);

// Draws the defects' boxes and labels onto `image` (RGB); boxes are in pixels of
// an image `scale_x`/`scale_y` times larger than `image`.
void draw_defects(Image& image, const std::vector<Defect>& defects, double scale_x = 1.0,
                  double scale_y = 1.0);

// The chapter's pre-processing as used by every detector: RGB -> grey, resize to
// width x height (area averaging), Gaussian denoise. Returns a CV_32F image
// packed in a vector (width * height) to keep OpenCV out of this header.
std::vector<float> preprocess_gray(const Image& photo, const CameraConfig& config);

}  // namespace mmfuse::inspect
