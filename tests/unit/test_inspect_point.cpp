// One inspection point end to end on files written here: the record has all
// four modalities (sound not configured), in-memory inputs (the server's
// path) give the same verdicts as the files, unreadable inputs become "error"
// while the rest still decides, and evidence is written for anomalies.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "inspect/jpeg_io.h"
#include "inspect/png_io.h"
#include "inspect/point_inspector.h"
#include "inspect/sources.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "tools/demo.h"

namespace mmfuse::inspect {
namespace {

namespace fs = std::filesystem;

std::string csv(const sensor::Matrix& m) {
  std::string out = "temperature_c,vibration_mm_s,current_a,pressure_bar\n";
  char buf[128];
  for (size_t r = 0; r < m.rows; ++r) {
    std::snprintf(buf, sizeof buf, "%.2f,%.2f,%.2f,%.3f\n", m(r, 0), m(r, 1), m(r, 2), m(r, 3));
    out += buf;
  }
  return out;
}

class InspectPoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mmfuse_point_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cam");
    std::mt19937_64 rng(3);
    const Image golden = render_camera(42, Scenario::normal, true, rng, 320, 240);
    write_png(dir_ / "golden.png", golden.rgb.data(), 320, 240, 3, 8);
    const Image photo = render_camera(42, Scenario::oil_leak, false, rng, 320, 240);
    write_png(dir_ / "cam" / "shot.png", photo.rgb.data(), 320, 240, 3, 8);
    std::vector<uint16_t> ir(64 * 48, 280);  // 20 C with a = 0.25, b = -50
    write_png(dir_ / "ir.png", ir.data(), 64, 48, 1, 16);
    write_file_atomic(dir_ / "normal.csv", csv(render_sensors(42, Scenario::normal, rng, 1500)));
    write_file_atomic(dir_ / "window.csv",
                      csv(render_sensors(42, Scenario::stuck_sensor, rng, 300)));
    const std::string yaml =
        "data_dir: data\n"
        "evidence: anomaly\n"
        "devices:\n"
        "  - id: d1\n"
        "    points:\n"
        "      - id: p1\n"
        "        camera: {image: cam, golden: golden.png}\n"
        "        infrared: {image: ir.png, calibration: {a: 0.25, b: -50}, hot_threshold_c: 80}\n"
        "        sensors: {csv: window.csv, baseline: normal.csv}\n";
    plant_ = parse_plant(yaml, dir_ / "plant.yaml");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
  PlantConfig plant_;
};

const ModalityResult& find(const InspectionRecord& r, Modality m) {
  for (const ModalityResult& x : r.modalities)
    if (x.modality == m) return x;
  throw std::runtime_error("modality not in record");
}

TEST_F(InspectPoint, FilesAndMemoryGiveTheSameRecord) {
  ThreadPool pool(1);
  const PointInspector p(plant_, plant_.devices[0], plant_.devices[0].points[0],
                         plant_.data_dir / "models", pool);
  EXPECT_TRUE(p.setup_errors().empty());
  InspectOptions opt{"round-1", plant_.data_dir / "evidence", EvidencePolicy::anomaly};
  const InspectionRecord a = p.inspect(p.gather(), opt);
  ASSERT_EQ(a.modalities.size(), 4u);
  EXPECT_EQ(a.device_id, "d1");
  EXPECT_EQ(a.point_id, "p1");
  EXPECT_EQ(a.round_id, "round-1");
  EXPECT_EQ(find(a, Modality::camera).status, ModalityStatus::anomaly);  // the oil stain
  EXPECT_EQ(find(a, Modality::infrared).status, ModalityStatus::ok);
  EXPECT_EQ(find(a, Modality::sound).status, ModalityStatus::missing);
  EXPECT_EQ(find(a, Modality::sound).message, "not configured");
  EXPECT_EQ(find(a, Modality::sensors).status, ModalityStatus::anomaly);  // stuck channel
  EXPECT_NEAR(a.fused_score, 0.5, 1e-12);                                 // 0.4 + 0.1
  EXPECT_TRUE(a.alarm);
  EXPECT_EQ(a.alarm_type, "camera");
  EXPECT_GE(a.finished_ms, a.started_ms);
  // The annotated photo was saved as evidence.
  const auto& ev = find(a, Modality::camera).evidence;
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(fs::exists(ev[1])) << ev[1];
  EXPECT_NE(ev[1].find("round-1/d1/p1_camera.png"), std::string::npos);

  PointInputs mem;
  mem.camera = ModalityInput{"upload.png", read_file_bytes(dir_ / "cam" / "shot.png")};
  mem.infrared = ModalityInput{"ir-upload.png", read_file_bytes(dir_ / "ir.png")};
  mem.sensors = ModalityInput{"window-upload.csv", read_file_bytes(dir_ / "window.csv")};
  const InspectionRecord b =
      p.inspect(mem, InspectOptions{"round-2", dir_ / "ev2", EvidencePolicy::anomaly});
  for (Modality m : kAllModalities) {
    EXPECT_EQ(find(b, m).status, find(a, m).status) << modality_name(m);
    EXPECT_DOUBLE_EQ(find(b, m).score, find(a, m).score) << modality_name(m);
  }
  EXPECT_EQ(b.alarm, a.alarm);
  // An upload has no file of its own: the CSV is kept as evidence.
  const auto& sev = find(b, Modality::sensors).evidence;
  ASSERT_EQ(sev.size(), 1u);
  EXPECT_TRUE(fs::exists(sev[0]));
}

TEST_F(InspectPoint, UnreadableInputsAreErrorsAndTheRestDecides) {
  ThreadPool pool(1);
  const PointInspector p(plant_, plant_.devices[0], plant_.devices[0].points[0], fs::path(), pool);
  PointInputs in = p.gather();
  in.infrared->bytes = "garbage";
  in.sensors->bytes =
      "temperature_c,vibration_mm_s\n1,2\n";  // the baseline's channels are not all there
  const InspectionRecord r = p.inspect(in, InspectOptions{"r", fs::path(), EvidencePolicy::never});
  EXPECT_EQ(find(r, Modality::infrared).status, ModalityStatus::error);
  EXPECT_NE(find(r, Modality::infrared).message.find("not a PNG"), std::string::npos);
  EXPECT_EQ(find(r, Modality::sensors).status, ModalityStatus::error);
  EXPECT_NE(find(r, Modality::sensors).message.find("current_a"), std::string::npos);
  EXPECT_EQ(find(r, Modality::camera).status, ModalityStatus::anomaly);
  EXPECT_NEAR(r.fused_score, 0.4, 1e-12);
  EXPECT_TRUE(r.alarm);
  // Nothing at all: every configured modality is missing, no alarm.
  const InspectionRecord none = p.inspect(PointInputs{}, InspectOptions{});
  EXPECT_FALSE(none.alarm);
  EXPECT_EQ(none.fused_score, 0.0);
  for (const ModalityResult& m : none.modalities) EXPECT_EQ(m.status, ModalityStatus::missing);
}

TEST_F(InspectPoint, SetupErrorsAreReportedPerModality) {
  fs::remove(dir_ / "normal.csv");
  fs::remove(dir_ / "golden.png");
  ThreadPool pool(1);
  const PointInspector p(plant_, plant_.devices[0], plant_.devices[0].points[0], fs::path(), pool);
  const auto errors = p.setup_errors();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("camera: "), std::string::npos);
  EXPECT_NE(errors[1].find("normal.csv"), std::string::npos);
  const InspectionRecord r = p.inspect(p.gather(), InspectOptions{});
  EXPECT_EQ(find(r, Modality::camera).status, ModalityStatus::error);
  EXPECT_EQ(find(r, Modality::sensors).status, ModalityStatus::error);
  EXPECT_EQ(find(r, Modality::infrared).status, ModalityStatus::ok);
}

TEST(InspectSources, NewestFileOfAFolder) {
  const fs::path d = fs::temp_directory_path() / ("mmfuse_src_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  EXPECT_FALSE(resolve_source(d, SourceKind::image).has_value());
  EXPECT_FALSE(resolve_source(d / "absent.png", SourceKind::image).has_value());
  std::ofstream(d / "a.png") << "x";
  std::ofstream(d / "b.png") << "x";
  std::ofstream(d / "c.txt") << "x";
  std::ofstream(d / ".d.png") << "x";  // a writer's temporary file
  const auto now = fs::file_time_type::clock::now();
  fs::last_write_time(d / "a.png", now);
  fs::last_write_time(d / "b.png", now - std::chrono::hours(1));
  fs::last_write_time(d / "c.txt", now + std::chrono::hours(1));
  fs::last_write_time(d / ".d.png", now + std::chrono::hours(1));
  EXPECT_EQ(resolve_source(d, SourceKind::image)->filename(), "a.png");
  EXPECT_EQ(resolve_source(d / "b.png", SourceKind::image)->filename(), "b.png");
  fs::remove_all(d);
}

}  // namespace
}  // namespace mmfuse::inspect

namespace mmfuse::inspect {
namespace {

TEST_F(InspectPoint, LargeJpegDecodesScaledAndBoxesMapBack) {
  std::mt19937_64 rng(5);
  // A golden at 640x480 and a 1280x960 JPEG photo with an oil stain: decoded at
  // 1/2 (DCT scaling) since 640x480 is all the detector looks at.
  const Image golden = render_camera(77, Scenario::normal, true, rng, 640, 480);
  write_png(dir_ / "golden.png", golden.rgb.data(), 640, 480, 3, 8);
  const Image photo = render_camera(77, Scenario::oil_leak, false, rng, 1280, 960);
  const std::string jpeg = encode_jpeg(photo, 90);
  ASSERT_TRUE(is_jpeg(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size()));
  const ScaledJpeg s =
      decode_jpeg_scaled(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(), "p", 640, 480);
  EXPECT_EQ(s.image.width, 640);
  EXPECT_EQ(s.image.height, 480);
  EXPECT_EQ(s.full_width, 1280);
  const ScaledJpeg s8 =
      decode_jpeg_scaled(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size(), "p", 100, 100);
  EXPECT_EQ(s8.image.width, 160);  // 1/8
  EXPECT_THROW(decode_jpeg_scaled(reinterpret_cast<const uint8_t*>(jpeg.data()), jpeg.size() / 3,
                                  "cut.jpg", 1, 1),
               Error);

  ThreadPool pool(1);
  const PointInspector p(plant_, plant_.devices[0], plant_.devices[0].points[0], fs::path(), pool);
  PointInputs in;
  in.camera = ModalityInput{"photo.jpg", jpeg};
  const InspectionRecord r = p.inspect(in, InspectOptions{});
  const ModalityResult& cam = find(r, Modality::camera);
  ASSERT_EQ(cam.status, ModalityStatus::anomaly) << cam.detail.dump();
  EXPECT_EQ(cam.detail["decoded_size"][0], 640);
  EXPECT_EQ(cam.detail["image_size"][0], 1280);
  for (const auto& d : cam.detail["defects"]) {
    const auto& b = d["box"];
    EXPECT_GE(b[0].get<int>(), 0);
    EXPECT_LE(b[0].get<int>() + b[2].get<int>(), 1280);
    EXPECT_LE(b[1].get<int>() + b[3].get<int>(), 960);
  }
  // The stain is on the plate, in the lower half of the photo.
  EXPECT_GT(cam.detail["defects"][0]["box"][1].get<int>(), 400);
}

}  // namespace
}  // namespace mmfuse::inspect
