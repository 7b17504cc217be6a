// Ultralytics YOLO detectors from their ONNX exports (`yolo export
// format=onnx`): YOLOv8-style (1, 4 + nc, anchors) and YOLOv5-style
// (1, boxes, 5 + nc) outputs, run by mmfuse's own executor (onnx_graph.h),
// with Ultralytics' predictor pre-processing (letterbox.h) and NMS
// (yolo_postprocess.h). Class names, stride, input size and task come from the
// export's metadata; a file without them is refused.
//
// Thread-safety: detect() may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/onnx_model.h"
#include "models/onnx_graph.h"
#include "models/yolo_postprocess.h"
#include "vision/image.h"

namespace mmfuse {

struct Detection {
  int class_id = 0;
  std::string class_name;
  float score = 0;
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // original-image pixels, clipped to the image
};

struct DetectOptions {
  float conf = 0.25f;        // Ultralytics' defaults
  float iou = 0.7f;
  int max_det = 300;
  bool agnostic = false;     // one NMS over all classes
  std::vector<int> classes;  // keep only these class ids (empty = all)
  // Network input size; 0 = the model's (its static input shape, else the
  // metadata's imgsz). A model exported with a static shape takes only that.
  int imgsz_h = 0, imgsz_w = 0;
};

// Where the time of one detect() call went (benchmarks).
struct DetectTimings {
  double letterbox_ms = 0, network_ms = 0, nms_ms = 0;
};

struct YoloOpenOptions {
  std::shared_ptr<ThreadPool> pool;  // its size() = the threads a call uses; null = all cores
};

class YoloDetector {
 public:
  // Throws Error(not_found) for a missing file, Error(bad_input) for a file that
  // is not ONNX, and Error(unsupported) for an ONNX graph that is not a
  // recognised Ultralytics detection export (the message names the field or op).
  static std::unique_ptr<YoloDetector> open(const std::filesystem::path& path, const YoloOpenOptions& options = {});

  std::vector<Detection> detect(const Image& image, const DetectOptions& options = {},
                                DetectTimings* timings = nullptr) const;

  const std::vector<std::string>& class_names() const { return names_; }
  YoloLayout layout() const { return layout_; }
  int stride() const { return stride_; }
  int input_height() const { return default_h_; }
  int input_width() const { return default_w_; }
  const std::string& task() const { return task_; }
  // What the executor runs per call (see OnnxGraphRunner::summary).
  std::string summary() const;

 private:
  YoloDetector() = default;
  const OnnxGraphRunner& runner_for(int h, int w) const;

  std::string source_;
  OnnxModel model_;
  std::vector<std::string> names_;
  std::string task_;
  YoloLayout layout_ = YoloLayout::anchor_free;
  int stride_ = 32, default_h_ = 640, default_w_ = 640;
  bool dynamic_ = false;
  std::shared_ptr<ThreadPool> pool_;
  mutable std::mutex runners_mutex_;
  mutable std::map<std::pair<int, int>, std::unique_ptr<OnnxGraphRunner>> runners_;
};

// Parses Ultralytics' `names` metadata: a Python dict repr ("{0: 'person',
// 1: \"it's\"}") or list repr; ids must be 0..n-1. Throws Error(bad_input).
std::vector<std::string> parse_yolo_names(const std::string& text, const std::string& where);

// Parses "[640, 640]", "(640, 640)", "[640]" or "640" into {h, w}.
std::pair<int, int> parse_yolo_imgsz(const std::string& text, const std::string& where);

}  // namespace mmfuse
