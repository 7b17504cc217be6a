// Writes the demo plant: per device a golden image, one inspection photo, an
// infrared frame (16-bit, every fifth device 8-bit), normal recordings plus
// the live clip, baseline and live sensor CSVs, and plant.yaml describing it
// all exactly as a user would. Scenarios are spread so that each kind occurs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "audio/audio_encode.h"
#include "inspect/jpeg_io.h"
#include "inspect/png_io.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "tools/demo.h"

namespace mmfuse::inspect {

namespace fs = std::filesystem;

const char* scenario_name(Scenario s) {
  switch (s) {
    case Scenario::normal: return "normal";
    case Scenario::scratch: return "scratch";
    case Scenario::oil_leak: return "oil_leak";
    case Scenario::missing_part: return "missing_part";
    case Scenario::hot_bearing: return "hot_bearing";
    case Scenario::overheating: return "overheating";
    case Scenario::knock: return "knock";
    case Scenario::squeal: return "squeal";
    case Scenario::stuck_sensor: return "stuck_sensor";
  }
  return "unknown";
}

std::array<bool, 4> scenario_modalities(Scenario s) {
  // camera, infrared, sound, sensors
  switch (s) {
    case Scenario::normal: return {false, false, false, false};
    case Scenario::scratch: return {true, false, false, false};
    case Scenario::oil_leak: return {true, false, false, true};
    case Scenario::missing_part: return {true, false, false, false};
    case Scenario::hot_bearing: return {false, true, true, true};
    case Scenario::overheating: return {false, true, false, true};
    case Scenario::knock: return {false, false, true, true};
    case Scenario::squeal: return {false, false, true, true};
    case Scenario::stuck_sensor: return {false, false, false, true};
  }
  return {};
}

bool scenario_is_machine_fault(Scenario s) {
  return s != Scenario::normal && s != Scenario::stuck_sensor;
}

namespace {

std::string csv_text(const sensor::Matrix& m) {
  std::string out = "timestamp";
  for (const std::string& c : kDemoSensorChannels) out += "," + c;
  out += "\n";
  char buf[160];
  for (size_t r = 0; r < m.rows; ++r) {
    std::snprintf(buf, sizeof buf, "%.1f,%.2f,%.2f,%.2f,%.3f\n", static_cast<double>(r) / 10.0,
                  m(r, 0), m(r, 1), m(r, 2), m(r, 3));
    out += buf;
  }
  return out;
}

struct IrCalibration {
  double a, b;
  int bits;
};

void write_ir(const fs::path& path, const std::vector<float>& celsius, int w, int h,
              const IrCalibration& cal) {
  const double maxv = cal.bits == 16 ? 65535.0 : 255.0;
  if (cal.bits == 16) {
    std::vector<uint16_t> px(celsius.size());
    for (size_t i = 0; i < px.size(); ++i)
      px[i] =
          static_cast<uint16_t>(std::clamp(std::round((celsius[i] - cal.b) / cal.a), 0.0, maxv));
    write_png(path, px.data(), w, h, 1, 16);
  } else {
    std::vector<uint8_t> px(celsius.size());
    for (size_t i = 0; i < px.size(); ++i)
      px[i] = static_cast<uint8_t>(std::clamp(std::round((celsius[i] - cal.b) / cal.a), 0.0, maxv));
    write_png(path, px.data(), w, h, 1, 8);
  }
}

}  // namespace

DemoPlant generate_demo_plant(const DemoOptions& o, ThreadPool& pool) {
  MMFUSE_CHECK(o.devices >= 1 && o.devices <= 100000, bad_input,
               "demo: --devices must be in [1, 100000]");
  std::error_code ec;
  if (fs::exists(o.dir)) {
    MMFUSE_CHECK(fs::is_directory(o.dir) && fs::is_empty(o.dir, ec), bad_input,
                 "demo: data folder '" + o.dir.string() + "' exists and is not empty");
  }
  fs::create_directories(o.dir);
  // Scenario per device: round(fault_share * N) faults cycling through every
  // kind, placed at random devices.
  const std::vector<Scenario> kinds = {
      Scenario::scratch,      Scenario::hot_bearing, Scenario::oil_leak, Scenario::knock,
      Scenario::missing_part, Scenario::overheating, Scenario::squeal,   Scenario::stuck_sensor};
  const auto n = static_cast<size_t>(o.devices);
  const auto faults = std::min(n, static_cast<size_t>(std::lround(o.fault_share * o.devices)));
  std::vector<Scenario> scen(n, Scenario::normal);
  std::mt19937_64 rng(o.seed * 0x2545F4914F6CDD1DULL + 1);
  const size_t offset = static_cast<size_t>(rng() % kinds.size());
  for (size_t i = 0; i < faults; ++i) scen[i] = kinds[(i + offset) % kinds.size()];
  for (size_t i = n - 1; i > 0; --i) std::swap(scen[i], scen[static_cast<size_t>(rng() % (i + 1))]);

  DemoPlant plant;
  plant.plant_file = o.dir / "plant.yaml";
  std::vector<IrCalibration> cals(n);
  const size_t base_rows = static_cast<size_t>(o.baseline_seconds * 10),
               live_rows = static_cast<size_t>(o.sensor_seconds * 10);
  pool.parallel_tasks(n, [&](size_t i, int) {
    char id[32];
    std::snprintf(id, sizeof id, "dev-%03zu", i + 1);
    const fs::path d = o.dir / "devices" / id;
    const uint64_t dseed = o.seed * 1000003ULL + i;
    std::mt19937_64 r(dseed ^ 0xA5A5A5A5ULL);
    for (const char* sub : {"camera", "ir", "sound/baseline", "sound/live", "sensors/live"})
      fs::create_directories(d / sub);
    const Image golden =
        render_camera(dseed, Scenario::normal, true, r, o.image_width, o.image_height);
    write_png(d / "golden.png", golden.rgb.data(), golden.width, golden.height, 3, 8);
    const Image photo = render_camera(dseed, scen[i], false, r, o.image_width, o.image_height);
    // Cameras deliver JPEG; quality 90 adds the usual compression artefacts.
    write_file_atomic(d / "camera" / "shot_0001.jpg", encode_jpeg(photo, 90));
    IrCalibration cal = i % 5 == 4
                            ? IrCalibration{0.5, -10.0, 8}
                            : IrCalibration{0.01 + 0.03 * static_cast<double>(r() % 1000) / 1000.0,
                                            -40.0 + static_cast<double>(r() % 200) / 10.0, 16};
    cals[i] = cal;
    write_ir(d / "ir" / "ir_0001.png",
             render_infrared_c(dseed, scen[i], r, o.ir_width, o.ir_height), o.ir_width, o.ir_height,
             cal);
    for (int k = 0; k < o.baseline_clips; ++k)
      write_audio_file(
          d / "sound" / "baseline" / ("normal_" + std::to_string(k) + ".wav"),
          render_sound(dseed, Scenario::normal, r, o.baseline_clip_seconds, o.audio_rate), 1,
          o.audio_rate, SampleEncoding::pcm16);
    write_audio_file(d / "sound" / "live" / "clip_0001.wav",
                     render_sound(dseed, scen[i], r, o.audio_seconds, o.audio_rate), 1,
                     o.audio_rate, SampleEncoding::pcm16);
    write_file_atomic(d / "sensors" / "baseline.csv",
                      csv_text(render_sensors(dseed, Scenario::normal, r, base_rows)));
    write_file_atomic(d / "sensors" / "live" / "window_0001.csv",
                      csv_text(render_sensors(dseed, scen[i], r, live_rows)));
  });

  std::string y =
      "# Synthetic plant written by `mmfuse demo` (ground truth in truth.json).\n"
      "plant: demo\n"
      "data_dir: data\n"
      "retention_days: 7\n"
      "evidence: anomaly\n"
      "fusion:\n  rule: weighted_vote\n  weights: {camera: 0.4, infrared: 0.3, sound: 0.2, "
      "sensors: 0.1}\n"
      "  threshold: 0.3\n"
      "devices:\n";
  nlohmann::json truth = nlohmann::json::array();
  const char* areas[] = {"Hall A", "Hall B", "Hall C", "Pump house"};
  for (size_t i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "dev-%03zu", i + 1);
    const std::string dp = std::string("devices/") + id + "/";
    char cal[160];
    std::snprintf(cal, sizeof cal, "{a: %.6g, b: %.6g}", cals[i].a, cals[i].b);
    y += std::string("  - id: ") + id + "\n    name: Pump set " + std::to_string(i + 1) +
         "\n    area: " + areas[i % 4] + "\n    location: line " + std::to_string(i / 10 + 1) +
         ", bay " + std::to_string(i % 10 + 1) + "\n    points:\n      - id: drive\n" +
         "        camera:\n          image: " + dp + "camera\n          golden: " + dp +
         "golden.png\n" + "        infrared:\n          image: " + dp +
         "ir\n          calibration: " + cal + "\n          hot_threshold_c: 80\n" +
         "        sound:\n          audio: " + dp + "sound/live\n          baseline: " + dp +
         "sound/baseline\n" + "        sensors:\n          csv: " + dp +
         "sensors/live\n          baseline: " + dp + "sensors/baseline.csv\n" +
         // The demo's faults include slow heating: keep the thermal channel in.
         "          slow_channels: 0\n";
    plant.truth.push_back({id, scen[i]});
    const auto mods = scenario_modalities(scen[i]);
    truth.push_back({{"device", id},
                     {"scenario", scenario_name(scen[i])},
                     {"machine_fault", scenario_is_machine_fault(scen[i])},
                     {"camera", mods[0]},
                     {"infrared", mods[1]},
                     {"sound", mods[2]},
                     {"sensors", mods[3]}});
  }
  write_file_atomic(plant.plant_file, y);
  write_file_atomic(o.dir / "truth.json", truth.dump(1) + "\n");
  return plant;
}

}  // namespace mmfuse::inspect
