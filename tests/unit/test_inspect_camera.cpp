// Golden-image defect detection: a constructed scene with a known defect is
// found at its place through a shift and a lighting change; lighting and pose
// changes alone give nothing; the demo's rendered faults are found and its
// normal photos (varied pose, light, noise) are clean.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "inspect/camera_detector.h"
#include "inspect/png_io.h"
#include "mmfuse/error.h"
#include "tools/demo.h"

namespace mmfuse::inspect {
namespace {

namespace fs = std::filesystem;

ThreadPool& pool() {
  static ThreadPool one(1);
  return one;
}

class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("mmfuse_cam_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

// A textured scene: smooth background, a few blocks and stripes.
Image scene(int w, int h) {
  Image im;
  im.width = w;
  im.height = h;
  im.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double v = 110 + 30 * std::sin(x * 0.02) * std::cos(y * 0.015);
      if (x > 100 && x < 260 && y > 120 && y < 300) v = 60 + ((y / 12) % 2) * 25;  // finned body
      if (x > 380 && x < 520 && y > 80 && y < 200) v = 190;                        // plate
      if ((x - 450) * (x - 450) + (y - 350) * (y - 350) < 900) v = 150;            // round part
      for (int c = 0; c < 3; ++c)
        im.rgb[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(v);
    }
  return im;
}

// Shifts by (dx, dy) whole pixels and applies gain/offset/gradient plus noise.
Image photograph(const Image& s, int dx, int dy, double gain, double offset, double grad,
                 uint32_t seed) {
  Image out = s;
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 2.0);
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width; ++x) {
      const int sx = std::clamp(x - dx, 0, s.width - 1), sy = std::clamp(y - dy, 0, s.height - 1);
      for (int c = 0; c < 3; ++c) {
        const double v = s.rgb[(static_cast<size_t>(sy) * s.width + sx) * 3 + c] * gain + offset +
                         grad * (2.0 * x / s.width - 1.0) + noise(rng);
        out.rgb[(static_cast<size_t>(y) * s.width + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  return out;
}

CameraConfig config_for(const fs::path& golden) {
  CameraConfig c;
  c.golden = golden;
  return c;
}

TEST(InspectCamera, FindsADefectThroughShiftAndLightChange) {
  TempDir dir;
  const Image golden = scene(640, 480);
  write_png(dir.path() / "golden.png", golden.rgb.data(), 640, 480, 3, 8);
  const auto det = make_defect_detector(config_for(dir.path() / "golden.png"), pool());
  EXPECT_EQ(det->name(), "golden_diff");
  Image damaged = golden;
  // A dark 30 x 10 stain on the plate, at x 420..449, y 150..159 of the scene.
  for (int y = 150; y < 160; ++y)
    for (int x = 420; x < 450; ++x)
      for (int c = 0; c < 3; ++c) damaged.rgb[(static_cast<size_t>(y) * 640 + x) * 3 + c] = 90;
  const Image photo = photograph(damaged, 6, -4, 1.2, -12.0, 15.0, 1);
  const CameraFinding f = det->detect(photo);
  ASSERT_EQ(f.defects.size(), 1u) << f.detail.dump();
  const Defect& d = f.defects[0];
  // In photo coordinates the stain sits at x 426..455, y 146..155 (shift +6, -4).
  EXPECT_NEAR(d.x, 426, 3);
  EXPECT_NEAR(d.y, 146, 3);
  EXPECT_NEAR(d.width, 30, 5);
  EXPECT_NEAR(d.height, 10, 5);
  EXPECT_GT(d.confidence, 0.5);
  EXPECT_GE(f.raw_score, 1.0);
  EXPECT_NEAR(f.detail["shift_px"][0].get<double>(), 6.0, 0.3);
  EXPECT_NEAR(f.detail["shift_px"][1].get<double>(), -4.0, 0.3);
  EXPECT_NEAR(f.detail["light"]["gain"].get<double>(), 1.2, 0.05);
  EXPECT_EQ(f.annotated.width, 640);
  EXPECT_EQ(f.annotated.rgb.size(), 640u * 480u * 3u);
}

TEST(InspectCamera, LightingAndPoseChangesAloneAreNotDefects) {
  TempDir dir;
  const Image golden = scene(640, 480);
  write_png(dir.path() / "golden.png", golden.rgb.data(), 640, 480, 3, 8);
  const auto det = make_defect_detector(config_for(dir.path() / "golden.png"), pool());
  struct Light {
    int dx, dy;
    double gain, offset, grad;
  };
  const Light lights[] = {{0, 0, 1.0, 0.0, 0.0},
                          {5, 3, 0.7, 10.0, -20.0},
                          {-8, 6, 1.25, -15.0, 20.0},
                          {3, -7, 0.8, 20.0, 0.0},
                          {0, 0, 1.1, -20.0, 10.0}};
  uint32_t seed = 10;
  for (const Light& l : lights) {
    const CameraFinding f =
        det->detect(photograph(golden, l.dx, l.dy, l.gain, l.offset, l.grad, seed++));
    EXPECT_TRUE(f.defects.empty())
        << "gain " << l.gain << " shift " << l.dx << "," << l.dy << ": " << f.detail.dump();
    EXPECT_LT(f.raw_score, 1.0);
  }
}

TEST(InspectCamera, RenderedFaultsAreFoundAndNormalsAreClean) {
  TempDir dir;
  int found = 0, clean = 0;
  const int devices = 4;
  for (int d = 0; d < devices; ++d) {
    const uint64_t dseed = 7000 + d;
    std::mt19937_64 rng(dseed);
    const Image golden = render_camera(dseed, Scenario::normal, true, rng, 640, 480);
    const fs::path g = dir.path() / ("golden" + std::to_string(d) + ".png");
    write_png(g, golden.rgb.data(), 640, 480, 3, 8);
    const auto det = make_defect_detector(config_for(g), pool());
    for (Scenario s : {Scenario::scratch, Scenario::oil_leak, Scenario::missing_part})
      found += det->detect(render_camera(dseed, s, false, rng, 640, 480)).defects.empty() ? 0 : 1;
    for (int k = 0; k < 2; ++k)
      clean +=
          det->detect(render_camera(dseed, Scenario::normal, false, rng, 640, 480)).defects.empty()
              ? 1
              : 0;
  }
  EXPECT_EQ(found, 3 * devices);
  EXPECT_EQ(clean, 2 * devices);
}

TEST(InspectCamera, ErrorsAreClear) {
  CameraConfig c = config_for("/nonexistent/golden.png");
  try {
    make_defect_detector(c, pool());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_NE(std::string(e.what()).find("golden.png"), std::string::npos);
  }
  c.detectors = {"yolo"};  // without its yolo settings
  EXPECT_THROW(make_defect_detector(c, pool()), Error);
  c.detectors = {"cnn"};
  EXPECT_THROW(make_defect_detector(c, pool()), Error);
  // A photo of another resolution is resized like the golden: still comparable.
  TempDir dir;
  const Image golden = scene(640, 480);
  write_png(dir.path() / "golden.png", golden.rgb.data(), 640, 480, 3, 8);
  const auto det = make_defect_detector(config_for(dir.path() / "golden.png"), pool());
  Image empty;
  EXPECT_THROW(det->detect(empty), Error);
}

}  // namespace
}  // namespace mmfuse::inspect
