// Parity with Ultralytics' own predictor: tests/fixtures/yolo/cases.json lists
// YOLOv8 exports, images (under ../shared/data) and the detections Ultralytics
// returned; yolov5_cases.json the same for a YOLOv5 export (objectness layout)
// and yolov5's detect.py (see that folder's README for how they were made). Same count and
// classes, boxes within 0.5 px, scores within 1e-4. Skips with a message when
// the fixtures or the images are absent.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/digest.h"
#include "models/yolo.h"
#include "vision/image.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

void check_cases(const std::string& cases_file) {
  const fs::path dir = fs::path(MMFUSE_FIXTURES) / "yolo";
  const fs::path data = fs::path(MMFUSE_FIXTURES) / "../../../shared/data";
  if (!fs::exists(dir / cases_file)) GTEST_SKIP() << "no reference outputs (tests/fixtures/yolo/" << cases_file << ")";
  if (!fs::exists(data)) GTEST_SKIP() << "../shared/data not present (the reference images)";
  std::ifstream in(dir / cases_file);
  const nlohmann::json cases = nlohmann::json::parse(in);
  std::map<std::string, std::unique_ptr<YoloDetector>> models;
  int checked = 0;
  for (const auto& c : cases) {
    const std::string model = c["model"], image_path = c["image"];
    SCOPED_TRACE(model + " on " + image_path);
    if (!fs::exists(data / image_path)) {
      ADD_FAILURE() << "reference image missing: " << (data / image_path);
      continue;
    }
    auto& det = models[model];
    if (!det) det = YoloDetector::open(dir / model);
    DetectOptions o;
    if (c.contains("conf")) o.conf = c["conf"];
    if (c.contains("iou")) o.iou = c["iou"];
    if (c.contains("max_det")) o.max_det = c["max_det"];
    if (c.contains("agnostic")) o.agnostic = c["agnostic"];
    if (c.contains("classes") && c["classes"].is_array()) o.classes = c["classes"].get<std::vector<int>>();
    if (c.contains("imgsz")) {
      o.imgsz_h = c["imgsz"][0];
      o.imgsz_w = c["imgsz"][1];
    }
    const Image image = decode_image_file(data / image_path);
    const std::vector<Detection> got = det->detect(image, o);
    const auto& want = c["detections"];
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      SCOPED_TRACE("detection " + std::to_string(i));
      EXPECT_EQ(got[i].class_id, want[i]["class_id"].get<int>());
      if (want[i].contains("class")) {
        EXPECT_EQ(got[i].class_name, want[i]["class"].get<std::string>());
      }
      EXPECT_NEAR(got[i].score, want[i]["score"].get<float>(), 1e-4f);
      const float box[4] = {got[i].x1, got[i].y1, got[i].x2, got[i].y2};
      for (int k = 0; k < 4; ++k) EXPECT_NEAR(box[k], want[i]["box"][k].get<float>(), 0.5f) << "coordinate " << k;
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(YoloParity, MatchesUltralyticsPredictor) {
  check_cases("cases.json");
}

TEST(YoloParity, MatchesYolov5DetectOnObjectnessExports) {
  check_cases("yolov5_cases.json");
}

// Ultralytics reads images with cv2.imread; mmfuse's decoder must give the same
// pixels (both are libjpeg-turbo with the same IDCT and upsampling).
TEST(YoloParity, DecoderMatchesCv2Imread) {
  const fs::path photos = fs::path(MMFUSE_FIXTURES) / "../../../shared/data/photos";
  if (!fs::exists(photos)) GTEST_SKIP() << "../shared/data/photos not present";
  std::ifstream in(fs::path(MMFUSE_FIXTURES) / "yolo_toy/cv2_photos.json");
  const nlohmann::json digests = nlohmann::json::parse(in);
  for (const auto& [name, want] : digests.items()) {
    const Image img = decode_image_file(photos / name);
    EXPECT_EQ(img.width, want["w"].get<int>()) << name;
    EXPECT_EQ(img.height, want["h"].get<int>()) << name;
    EXPECT_EQ(sha256_hex(img.rgb.data(), img.rgb.size()), want["sha256"].get<std::string>()) << name;
  }
}

}  // namespace
}  // namespace mmfuse
