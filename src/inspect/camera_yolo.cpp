// The "yolo" camera detector: a trained Ultralytics YOLO export finds defects and
// names their kind. As in the chapter (§6.3.1), a box is a defect when its
// confidence reaches the threshold (per class when given), the camera's score
// follows the highest defect confidence, and the alarm type is the strongest
// defect's class mapped to the plant's alarm types.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "inspect/camera_detector.h"
#include "models/yolo.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {

namespace {

// "Oil leak" -> "oil_leak": the alarm type a class keeps when the plant maps it to nothing.
std::string default_alarm_type(const std::string& class_name) {
  std::string out;
  for (unsigned char ch : class_name)
    out += std::isspace(ch) || ch == '-' ? '_' : static_cast<char>(std::tolower(ch));
  return out;
}

std::string list_classes(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

class YoloDefectDetector : public DefectDetector {
 public:
  YoloDefectDetector(const YoloCameraConfig& config, ThreadPool& pool) : config_(config) {
    YoloOpenOptions open;
    // The plant's pool outlives its detectors: share it without owning it.
    open.pool = std::shared_ptr<ThreadPool>(&pool, [](ThreadPool*) {});
    model_ = YoloDetector::open(config.model, open);
    const std::vector<std::string>& names = model_->class_names();
    const std::string where = config.model.string() + ": camera.yolo.";
    auto class_id = [&](const std::string& field, const std::string& name) {
      const auto it = std::find(names.begin(), names.end(), name);
      MMFUSE_CHECK(it != names.end(), bad_input,
                   where + field + "." + name + ": the model has no class '" + name +
                       "' (its classes: " + list_classes(names) + ")");
      return static_cast<size_t>(it - names.begin());
    };
    thresholds_.assign(names.size(), config.threshold);
    alarm_types_.resize(names.size());
    for (size_t i = 0; i < names.size(); ++i) alarm_types_[i] = default_alarm_type(names[i]);
    for (const auto& [name, t] : config.class_thresholds)
      thresholds_[class_id("class_thresholds", name)] = t;
    for (const auto& [name, type] : config.alarm_types)
      alarm_types_[class_id("alarm_types", name)] = type == "ignore" ? "" : type;
    options_.conf = static_cast<float>(config.conf);
    options_.iou = static_cast<float>(config.iou);
    options_.imgsz_h = options_.imgsz_w = config.imgsz;
  }

  std::string name() const override { return "yolo"; }
  bool wants_full_resolution() const override { return true; }

  CameraFinding detect(const Image& photo) const override {
    CameraFinding out;
    const std::vector<Detection> found = model_->detect(photo, options_);
    nlohmann::json boxes = nlohmann::json::array();
    double best_confidence = 0.0;
    for (const Detection& det : found) {
      const size_t c = static_cast<size_t>(det.class_id);
      const std::string& type = alarm_types_[c];
      const double threshold = thresholds_[c];
      const bool defect = !type.empty() && det.score >= threshold;
      boxes.push_back({{"class", det.class_name},
                       {"type", type.empty() ? nlohmann::json(nullptr) : nlohmann::json(type)},
                       {"score", det.score},
                       {"box", {det.x1, det.y1, det.x2, det.y2}},
                       {"defect", defect}});
      if (type.empty()) continue;  // a class the plant ignores
      // Below its threshold a box still raises the score towards the threshold
      // (a calibrated 0.4 at 80 % of it), but only defects decide.
      const double ratio = det.score / std::max(threshold, 1e-6);
      if (ratio > out.raw_score) {  // defects have ratio >= 1, the rest < 1
        out.raw_score = ratio;
        if (defect) out.alarm_type = type;
      }
      if (!defect) continue;
      best_confidence = std::max(best_confidence, static_cast<double>(det.score));
      Defect d;
      d.type = type;
      d.model_class = det.class_name;
      d.confidence = det.score;
      d.x = std::clamp(static_cast<int>(std::floor(det.x1)), 0, std::max(0, photo.width - 1));
      d.y = std::clamp(static_cast<int>(std::floor(det.y1)), 0, std::max(0, photo.height - 1));
      d.width = std::clamp(static_cast<int>(std::ceil(det.x2)) - d.x, 1, photo.width - d.x);
      d.height = std::clamp(static_cast<int>(std::ceil(det.y2)) - d.y, 1, photo.height - d.y);
      d.area = static_cast<double>(d.width) * d.height;
      out.defects.push_back(d);
    }
    out.detail["model"] = config_.model.string();
    out.detail["detections"] = std::move(boxes);
    out.detail["max_defect_confidence"] = best_confidence;
    out.annotated = evidence_picture(photo);
    draw_defects(out.annotated, out.defects, static_cast<double>(photo.width) / out.annotated.width,
                 static_cast<double>(photo.height) / out.annotated.height);
    return out;
  }

 private:
  YoloCameraConfig config_;
  std::unique_ptr<YoloDetector> model_;
  DetectOptions options_;
  std::vector<double> thresholds_;        // per class id
  std::vector<std::string> alarm_types_;  // per class id; "" = ignored
};

}  // namespace

std::unique_ptr<DefectDetector> make_yolo_defect_detector(const YoloCameraConfig& config,
                                                          ThreadPool& pool) {
  return std::make_unique<YoloDefectDetector>(config, pool);
}

}  // namespace mmfuse::inspect
