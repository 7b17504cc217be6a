// The camera detector factory, the union of several detectors on one point, and
// the evidence drawing they share.
#include "inspect/camera_detector.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "mmfuse/error.h"

namespace mmfuse::inspect {

namespace {

// Runs every detector on the photo: all their defects, the strongest score. The
// evidence is the first detector's picture with the others' boxes drawn on it.
class UnionDetector : public DefectDetector {
 public:
  explicit UnionDetector(std::vector<std::unique_ptr<DefectDetector>> parts)
      : parts_(std::move(parts)) {}

  std::string name() const override {
    std::string n;
    for (const auto& p : parts_) {
      if (!n.empty()) n += '+';
      n += p->name();
    }
    return n;
  }

  bool wants_full_resolution() const override {
    return std::any_of(parts_.begin(), parts_.end(),
                       [](const auto& p) { return p->wants_full_resolution(); });
  }

  CameraFinding detect(const Image& photo) const override {
    CameraFinding out;
    for (const auto& part : parts_) {
      CameraFinding f = part->detect(photo);
      if (out.heatmap_png.empty()) out.heatmap_png = std::move(f.heatmap_png);
      if (out.annotated.rgb.empty()) {
        out.annotated = std::move(f.annotated);
      } else {
        draw_defects(out.annotated, f.defects, static_cast<double>(photo.width) / out.annotated.width,
                     static_cast<double>(photo.height) / out.annotated.height);
      }
      if (f.raw_score > out.raw_score) {
        out.raw_score = f.raw_score;
        out.alarm_type = f.alarm_type;
      }
      out.defects.insert(out.defects.end(), f.defects.begin(), f.defects.end());
      out.detail[part->name()] = std::move(f.detail);
    }
    std::stable_sort(out.defects.begin(), out.defects.end(),
                     [](const Defect& a, const Defect& b) { return a.confidence > b.confidence; });
    return out;
  }

 private:
  std::vector<std::unique_ptr<DefectDetector>> parts_;
};

}  // namespace

const std::vector<std::string>& defect_detector_names() {
  static const std::vector<std::string> names = {"golden_diff", "yolo", "anomaly"};
  return names;
}

std::unique_ptr<DefectDetector> make_defect_detector(const CameraConfig& config, ThreadPool& pool,
                                                     const std::filesystem::path& cache_dir) {
  // mmfuse's pool owns the cores: OpenCV must not start threads of its own.
  static const bool sequential = [] {
    cv::setNumThreads(0);
    return true;
  }();
  (void)sequential;
  std::vector<std::unique_ptr<DefectDetector>> parts;
  for (const std::string& name : config.detectors) {
    if (name == "golden_diff") {
      parts.push_back(make_golden_diff_detector(config));
    } else if (name == "yolo") {
      MMFUSE_CHECK(config.yolo.has_value(), bad_input, "camera.yolo: required by detector yolo");
      parts.push_back(make_yolo_defect_detector(*config.yolo, pool));
    } else if (name == "anomaly") {
      MMFUSE_CHECK(config.anomaly.has_value(), bad_input,
                   "camera.anomaly: required by detector anomaly");
      parts.push_back(make_anomaly_defect_detector(*config.anomaly, cache_dir, pool));
    } else {
      throw_error(ErrorKind::bad_input, "camera.detector: unknown detector '" + name +
                                            "' (available: golden_diff, yolo, anomaly)");
    }
  }
  MMFUSE_CHECK(!parts.empty(), bad_input, "camera.detector: no detector given");
  if (parts.size() == 1) return std::move(parts.front());
  return std::make_unique<UnionDetector>(std::move(parts));
}

Image evidence_picture(const Image& photo) {
  constexpr int kEvidenceSide = 1280;
  const double shrink = static_cast<double>(std::max(photo.width, photo.height)) / kEvidenceSide;
  if (shrink <= 1.0) return photo;
  Image out;
  out.width = std::max(1, static_cast<int>(std::lround(photo.width / shrink)));
  out.height = std::max(1, static_cast<int>(std::lround(photo.height / shrink)));
  out.rgb.resize(static_cast<size_t>(out.width) * out.height * 3);
  const cv::Mat src(photo.height, photo.width, CV_8UC3, const_cast<uint8_t*>(photo.rgb.data()));
  cv::Mat dst(out.height, out.width, CV_8UC3, out.rgb.data());
  cv::resize(src, dst, dst.size(), 0, 0, cv::INTER_AREA);
  return out;
}

void draw_defects(Image& image, const std::vector<Defect>& defects, double scale_x,
                  double scale_y) {
  if (defects.empty() || image.rgb.empty()) return;
  cv::Mat canvas(image.height, image.width, CV_8UC3, image.rgb.data());
  // Line and text sizes follow the picture so labels stay legible on large photos.
  const int thickness =
      std::max(1, static_cast<int>(std::lround(std::max(image.width, image.height) / 640.0)));
  const double font = 0.45 * thickness;
  for (const Defect& d : defects) {
    const cv::Rect r(static_cast<int>(d.x / scale_x), static_cast<int>(d.y / scale_y),
                     std::max(1, static_cast<int>(d.width / scale_x)),
                     std::max(1, static_cast<int>(d.height / scale_y)));
    cv::rectangle(canvas, r, cv::Scalar(255, 0, 0), thickness + 1);
    char label[96];
    if (d.model_class.empty())
      std::snprintf(label, sizeof label, "%.2f", d.confidence);
    else
      std::snprintf(label, sizeof label, "%s %.2f", d.type.c_str(), d.confidence);
    cv::putText(canvas, label, cv::Point(r.x, std::max(10 * thickness, r.y - 4)),
                cv::FONT_HERSHEY_SIMPLEX, font, cv::Scalar(255, 0, 0), thickness);
  }
}

}  // namespace mmfuse::inspect
