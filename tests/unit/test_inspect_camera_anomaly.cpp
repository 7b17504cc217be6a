// The plant's "anomaly" camera detector (issue 17): fitted at start on the
// point's good photos (a seeded synthetic texture written here), it raises a
// camera alarm on a frame with a dark blob, boxes the blob, and keeps the
// heat-map as evidence; the fit is cached (same photos: loaded; an edited
// photo: refitted); config mistakes name the field; folders of good photos
// leave masks out.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "inspect/camera_detector.h"
#include "inspect/png_io.h"
#include "inspect/point_inspector.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "vision/image.h"
#include "vision/image_files.h"

namespace mmfuse::inspect {
namespace {

namespace fs = std::filesystem;

constexpr int kSide = 96;

// Diagonal stripes plus per-pixel noise: every photo differs, the texture does not.
Image textured_photo(uint64_t seed, bool blob) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, 6.0);
  Image img;
  img.width = img.height = kSide;
  img.rgb.resize(static_cast<size_t>(kSide) * kSide * 3);
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) {
      double v = 128 + 30 * std::sin((x + y) * 0.5) + noise(rng);
      const double dx = x - 64.0, dy = y - 36.0;
      if (blob && dx * dx + dy * dy < 49.0) v = 25;
      const auto g = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      for (int c = 0; c < 3; ++c) img.rgb[(static_cast<size_t>(y) * kSide + x) * 3 + c] = g;
    }
  return img;
}

void save_photo(const fs::path& path, const Image& img) {
  write_png(path, img.rgb.data(), img.width, img.height, 3, 8);
}

class CameraAnomalyPlant : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mmfuse_cam_anomaly_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "good");
    fs::create_directories(dir_ / "cam");
    for (int i = 0; i < 6; ++i) {
      // Appended piecewise: GCC 12's -Wrestrict misfires on "g" + to_string(i) + ".png".
      std::string name = std::to_string(i);
      name.insert(0, 1, 'g');
      name.append(".png");
      save_photo(dir_ / "good" / name, textured_photo(10 + static_cast<uint64_t>(i), false));
    }
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
  ModalityResult inspect_camera(const PlantConfig& p, ThreadPool& pool, const fs::path& ev,
                                InspectionRecord* record = nullptr) const {
    const PointInspector inspector(p, p.devices[0], p.devices[0].points[0], dir_ / "models", pool);
    EXPECT_TRUE(inspector.setup_errors().empty()) << inspector.setup_errors()[0];
    const InspectionRecord r = inspector.inspect(
        inspector.gather(), InspectOptions{"r1", ev, EvidencePolicy::anomaly});
    EXPECT_EQ(r.modalities[0].modality, Modality::camera);
    if (record) *record = r;
    return r.modalities[0];
  }
  std::string error_of(const std::string& camera) const {
    try {
      plant(camera);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
  fs::path dir_;
};

TEST_F(CameraAnomalyPlant, DefectiveFrameRaisesAnAlarmWithHeatmapEvidence) {
  ThreadPool pool(2);
  save_photo(dir_ / "cam" / "shot.png", textured_photo(99, true));
  const PlantConfig p = plant("{image: cam, detector: anomaly, anomaly: {good_photos: good}}");
  InspectionRecord record;
  const ModalityResult cam = inspect_camera(p, pool, dir_ / "ev", &record);
  EXPECT_EQ(cam.status, ModalityStatus::anomaly) << cam.message;
  // The score feeds fusion like the other camera detectors: a camera alarm.
  EXPECT_TRUE(record.alarm);
  EXPECT_EQ(record.alarm_type, "camera");
  EXPECT_EQ(cam.detail["detector"], "anomaly");
  EXPECT_GE(cam.raw_score, 1.0);
  EXPECT_EQ(cam.detail["model_cached"], false);
  ASSERT_EQ(cam.detail["defects"].size(), 1u);
  // The box holds the blob's centre (64, 36).
  const auto box = cam.detail["defects"][0]["box"];
  EXPECT_LE(box[0].get<int>(), 64);
  EXPECT_GE(box[0].get<int>() + box[2].get<int>(), 64);
  EXPECT_LE(box[1].get<int>(), 36);
  EXPECT_GE(box[1].get<int>() + box[3].get<int>(), 36);
  EXPECT_NE(cam.message.find("vs good photos"), std::string::npos) << cam.message;
  // Evidence: the photo, the annotated picture and the heat-map, hottest at the blob.
  ASSERT_EQ(cam.evidence.size(), 3u);
  const Image heat = decode_image_file(cam.evidence[2]);
  ASSERT_EQ(heat.width, kSide);
  ASSERT_EQ(heat.height, kSide);
  auto grey = [&](int x, int y) { return heat.rgb[(static_cast<size_t>(y) * kSide + x) * 3]; };
  EXPECT_GE(grey(64, 36), 128);  // 128 = the threshold
  EXPECT_LT(grey(16, 80), grey(64, 36));

  // A good photo of the fit scores below the threshold; the model now comes from the cache.
  fs::remove(dir_ / "cam" / "shot.png");
  save_photo(dir_ / "cam" / "shot.png", textured_photo(10, false));
  const ModalityResult ok = inspect_camera(p, pool, dir_ / "ev2");
  EXPECT_EQ(ok.status, ModalityStatus::ok) << ok.message;
  EXPECT_LT(ok.raw_score, 1.0);
  EXPECT_EQ(ok.detail["model_cached"], true);
  EXPECT_EQ(ok.detail["threshold"], cam.detail["threshold"]);
  EXPECT_TRUE(ok.evidence.size() == 1u);  // evidence: anomaly only

  // An edited good photo makes the cache stale: refitted.
  save_photo(dir_ / "good" / "g0.png", textured_photo(50, false));
  EXPECT_EQ(inspect_camera(p, pool, "").detail["model_cached"], false);
  EXPECT_EQ(inspect_camera(p, pool, "").detail["model_cached"], true);
}

TEST_F(CameraAnomalyPlant, UnitesWithTheGoldenDifference) {
  ThreadPool pool(2);
  save_photo(dir_ / "cam" / "shot.png", textured_photo(99, true));
  save_photo(dir_ / "golden.png", textured_photo(99, true));  // identical: no difference
  const PlantConfig p = plant(
      "{image: cam, golden: golden.png, detector: [golden_diff, anomaly], anomaly: {good_photos: "
      "[good/g0.png, good/g1.png, good/g2.png, good/g3.png]}}");
  const ModalityResult cam = inspect_camera(p, pool, "");
  EXPECT_EQ(cam.detail["detector"], "golden_diff+anomaly");
  EXPECT_TRUE(cam.detail.contains("golden_diff"));
  EXPECT_EQ(cam.detail["anomaly"]["good_photos"], 4);
  EXPECT_EQ(cam.status, ModalityStatus::anomaly);
  for (const auto& d : cam.detail["defects"]) EXPECT_EQ(d["type"], "anomaly") << d.dump();
}

TEST_F(CameraAnomalyPlant, ConfigErrorsNameTheField) {
  fs::create_directories(dir_ / "empty");
  EXPECT_NE(error_of("{image: cam, detector: anomaly}").find("camera.anomaly: required"),
            std::string::npos);
  EXPECT_NE(error_of("{image: cam, detector: anomaly, anomaly: {good_photos: nowhere}}")
                .find("camera.anomaly.good_photos: no such file or folder"),
            std::string::npos);
  EXPECT_NE(error_of("{image: cam, detector: anomaly, anomaly: {good_photos: empty}}")
                .find("camera.anomaly.good_photos: no image files found"),
            std::string::npos);
  EXPECT_NE(error_of("{image: cam, detector: anomaly, anomaly: {good_photos: good/g0.png}}")
                .find("at least 2 good photos"),
            std::string::npos);
  EXPECT_NE(error_of("{image: cam, detector: anomaly, anomaly: {good_photos: good, "
                     "false_alarm_rate: 0.9}}")
                .find("camera.anomaly.false_alarm_rate"),
            std::string::npos);
  EXPECT_NE(error_of("{image: cam, golden: g.png, anomaly: {good_photos: good}}")
                .find("does not list anomaly"),
            std::string::npos);
  EXPECT_NE(error_of("{image: cam, detector: cnn}").find("golden_diff, yolo, anomaly"),
            std::string::npos);
}

TEST(ImageFiles, FoldersLeaveMasksOut) {
  const fs::path dir =
      fs::temp_directory_path() / ("mmfuse_image_files_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "tiles");
  fs::create_directories(dir / "ground_truth");
  for (const char* name : {"tiles/a.jpg", "tiles/a.png", "tiles/b.png", "tiles/c.JPG",
                           "tiles/C.png", "ground_truth/000_mask.png", "ground_truth/001.png"})
    write_file_atomic(dir / name, "x");
  const auto files = collect_image_files({dir.string()}, "photos");
  std::vector<std::string> names;
  for (const fs::path& f : files) names.push_back(fs::relative(f, dir).string());
  // a.png and C.png are the masks of a.jpg and c.JPG; b.png has no photo beside it.
  EXPECT_EQ(names, (std::vector<std::string>{"ground_truth/001.png", "tiles/a.jpg", "tiles/b.png",
                                             "tiles/c.JPG"}));
  // A file named explicitly is always kept.
  EXPECT_EQ(collect_image_files({(dir / "tiles" / "a.png").string()}, "photos").size(), 1u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mmfuse::inspect
