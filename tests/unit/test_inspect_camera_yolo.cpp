// The plant's "yolo" camera detector on a real Ultralytics export (the tiny
// random-weight reference model of tests/fixtures/yolo): it reports exactly the
// model's boxes that reach their thresholds, names them through the plant's
// alarm types, scores by the highest defect confidence, unites with the golden
// difference, and refuses configs that do not fit the model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "inspect/camera_detector.h"
#include "inspect/point_inspector.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "models/yolo.h"
#include "vision/image.h"

namespace mmfuse::inspect {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = MMFUSE_FIXTURES;
const fs::path kModel = kFixtures / "yolo" / "yolov8t-photo-640-op12.onnx";
const fs::path kPhoto = kFixtures / "photos" / "coco_000000039769.jpg";

std::vector<Detection> model_boxes(ThreadPool& pool) {
  YoloOpenOptions o;
  o.pool = std::shared_ptr<ThreadPool>(&pool, [](ThreadPool*) {});
  return YoloDetector::open(kModel, o)->detect(decode_image_file(kPhoto));
}

YoloCameraConfig config_at(double threshold) {
  YoloCameraConfig c;
  c.model = kModel;
  c.threshold = threshold;
  return c;
}

TEST(CameraYolo, DefectsAreTheModelsBoxesAtTheirThreshold) {
  ThreadPool pool(1);
  const std::vector<Detection> boxes = model_boxes(pool);
  ASSERT_GE(boxes.size(), 2u) << "the reference model finds several boxes on this photo";
  // A threshold between the two strongest boxes: exactly one defect.
  const double threshold = (boxes[0].score + boxes[1].score) / 2;
  const auto detector = make_yolo_defect_detector(config_at(threshold), pool);
  EXPECT_TRUE(detector->wants_full_resolution());
  const Image photo = decode_image_file(kPhoto);
  const CameraFinding f = detector->detect(photo);
  ASSERT_EQ(f.defects.size(), 1u);
  EXPECT_EQ(f.defects[0].model_class, boxes[0].class_name);
  EXPECT_EQ(f.defects[0].type, boxes[0].class_name);  // the reference names are already snake_case
  EXPECT_FLOAT_EQ(static_cast<float>(f.defects[0].confidence), boxes[0].score);
  EXPECT_NEAR(f.defects[0].x, boxes[0].x1, 1.0);
  EXPECT_NEAR(f.defects[0].x + f.defects[0].width, boxes[0].x2, 1.0);
  EXPECT_DOUBLE_EQ(f.raw_score, boxes[0].score / threshold);
  EXPECT_EQ(f.alarm_type, boxes[0].class_name);
  EXPECT_EQ(f.detail["detections"].size(), boxes.size());
  EXPECT_EQ(f.annotated.width, photo.width);  // 640x480: under the evidence size cap

  // Above every box: nothing decides, the score stays below the threshold.
  const CameraFinding none = make_yolo_defect_detector(config_at(0.999), pool)->detect(photo);
  EXPECT_TRUE(none.defects.empty());
  EXPECT_LT(none.raw_score, 1.0);
  EXPECT_TRUE(none.alarm_type.empty());
}

TEST(CameraYolo, ClassThresholdsAndAlarmTypesFollowThePlant) {
  ThreadPool pool(1);
  const std::vector<Detection> boxes = model_boxes(pool);
  ASSERT_FALSE(boxes.empty());
  const std::string top = boxes[0].class_name;
  YoloCameraConfig c = config_at(0.01);
  c.alarm_types[top] = "Surface Flaw";
  CameraFinding f = make_yolo_defect_detector(c, pool)->detect(decode_image_file(kPhoto));
  EXPECT_EQ(f.alarm_type, "Surface Flaw");
  // The strongest class ignored: the alarm type comes from another class.
  c.alarm_types[top] = "ignore";
  f = make_yolo_defect_detector(c, pool)->detect(decode_image_file(kPhoto));
  for (const Defect& d : f.defects) EXPECT_NE(d.model_class, top);
  EXPECT_NE(f.alarm_type, top);
  // A per-class threshold above the top box keeps that class out.
  c.alarm_types.clear();
  c.class_thresholds[top] = 1.0;
  f = make_yolo_defect_detector(c, pool)->detect(decode_image_file(kPhoto));
  for (const Defect& d : f.defects) EXPECT_NE(d.model_class, top);
}

TEST(CameraYolo, NamesThatTheModelDoesNotHaveAreRefused) {
  ThreadPool pool(1);
  YoloCameraConfig c = config_at(0.5);
  c.class_thresholds["rust_stain"] = 0.5;
  try {
    make_yolo_defect_detector(c, pool);
    FAIL() << "expected bad_input";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    const std::string m = e.what();
    EXPECT_NE(m.find(kModel.string()), std::string::npos) << m;
    EXPECT_NE(m.find("class_thresholds.rust_stain"), std::string::npos) << m;
    EXPECT_NE(m.find("scratch"), std::string::npos) << m;  // lists the model's classes
  }
}

class CameraYoloPlant : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mmfuse_cam_yolo_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cam");
    fs::copy_file(kPhoto, dir_ / "cam" / "shot.jpg");
    fs::copy_file(kPhoto, dir_ / "golden.jpg");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  PlantConfig plant(const std::string& camera) const {
    return parse_plant("data_dir: data\nevidence: anomaly\ndevices:\n  - id: d1\n    points:\n"
                       "      - id: p1\n        camera: " +
                           camera + "\n",
                       dir_ / "plant.yaml");
  }
  fs::path dir_;
};

TEST_F(CameraYoloPlant, TheFusedAlarmCarriesTheDefectKind) {
  ThreadPool pool(1);
  const PlantConfig p = plant("{image: cam, detector: yolo, yolo: {model: " + kModel.string() +
                              ", threshold: 0.01}}");
  const PointInspector inspector(p, p.devices[0], p.devices[0].points[0], "", pool);
  ASSERT_TRUE(inspector.setup_errors().empty()) << inspector.setup_errors()[0];
  const InspectionRecord r = inspector.inspect(
      inspector.gather(), InspectOptions{"r1", dir_ / "ev", EvidencePolicy::anomaly});
  ASSERT_EQ(r.modalities[0].modality, Modality::camera);
  const ModalityResult& cam = r.modalities[0];
  EXPECT_EQ(cam.status, ModalityStatus::anomaly);
  EXPECT_EQ(cam.detail["detector"], "yolo");
  EXPECT_EQ(r.alarm_type, model_boxes(pool)[0].class_name);
  EXPECT_EQ(cam.alarm_type, r.alarm_type);
  ASSERT_EQ(cam.evidence.size(), 2u);
  EXPECT_TRUE(fs::exists(cam.evidence[1]));
}

TEST_F(CameraYoloPlant, BothDetectorsUniteTheirFindings) {
  ThreadPool pool(1);
  const PlantConfig p =
      plant("{image: cam, golden: golden.jpg, detector: [golden_diff, yolo], yolo: {model: " +
            kModel.string() + ", threshold: 0.01}}");
  const PointInspector inspector(p, p.devices[0], p.devices[0].points[0], "", pool);
  ASSERT_TRUE(inspector.setup_errors().empty()) << inspector.setup_errors()[0];
  const InspectionRecord r =
      inspector.inspect(inspector.gather(), InspectOptions{"r1", "", EvidencePolicy::anomaly});
  const ModalityResult& cam = r.modalities[0];
  EXPECT_EQ(cam.detail["detector"], "golden_diff+yolo");
  EXPECT_TRUE(cam.detail.contains("golden_diff"));
  EXPECT_TRUE(cam.detail.contains("yolo"));
  // The photo is its own golden: every defect is the model's.
  EXPECT_EQ(cam.status, ModalityStatus::anomaly);
  for (const auto& d : cam.detail["defects"]) EXPECT_TRUE(d.contains("class")) << d.dump();
}

TEST_F(CameraYoloPlant, ConfigErrorsNameTheField) {
  auto message = [&](const std::string& camera) {
    try {
      plant(camera);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{image: cam, detector: yolo}").find("camera.yolo: required"),
            std::string::npos);
  EXPECT_NE(message("{image: cam, detector: yolo, yolo: {model: missing.onnx}}")
                .find("camera.yolo.model: no such file"),
            std::string::npos);
  EXPECT_NE(message("{image: cam, golden: golden.jpg, yolo: {model: x.onnx}}")
                .find("does not list yolo"),
            std::string::npos);
  EXPECT_NE(message("{image: cam, detector: [yolo, yolo], yolo: {model: " + kModel.string() + "}}")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(message("{image: cam, detector: cnn}").find("unknown detector 'cnn'"),
            std::string::npos);
}

}  // namespace
}  // namespace mmfuse::inspect
