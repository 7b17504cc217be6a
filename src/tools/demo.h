// `mmfuse demo`: a synthetic plant with recorded ground truth. Each device gets
// a rendered machine scene (camera), an infrared frame, motor sound and sensor
// streams, with one fault scenario or none; the plant file written next to the
// data is then inspected by the same code as `mmfuse inspect`, and the
// decisions are scored against the truth. Deterministic for a seed (on one platform).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "inspect/round_runner.h"
#include "record/inspection_record.h"
#include "sensor/matrix.h"
#include "vision/image.h"

namespace mmfuse::inspect {

struct DemoOptions {
  int devices = 20;
  uint64_t seed = 1;
  std::filesystem::path dir;  // where the plant (files + plant.yaml) is written
  int image_width = 640, image_height = 480;
  int ir_width = 640, ir_height = 512;
  double audio_seconds = 2.0;
  int audio_rate = 48000;
  int baseline_clips = 6;
  double baseline_clip_seconds = 5.0;  // normal recordings the sound detector is fitted on
  double sensor_seconds = 60.0;        // the inspected window, 10 Hz
  double baseline_seconds = 600.0;
  double fault_share = 0.45;  // devices with a fault scenario
};

// Machine faults raise an alarm; an instrument fault (stuck sensor) must not.
enum class Scenario {
  normal,
  scratch,       // camera
  oil_leak,      // camera + sensors (pressure falls)
  missing_part,  // camera
  hot_bearing,   // infrared + sound (whine) + sensors (temperature rises)
  overheating,   // infrared + sensors (temperature rises)
  knock,         // sound (impacts) + sensors (vibration spikes)
  squeal,        // sound (tone) + sensors (current bursts)
  stuck_sensor,  // sensors only: a channel freezes (instrument fault, not a machine fault)
};
const char* scenario_name(Scenario s);
// Which modalities carry the fault, indexed by Modality.
std::array<bool, 4> scenario_modalities(Scenario s);
bool scenario_is_machine_fault(Scenario s);

struct DemoTruth {
  std::string device;
  Scenario scenario = Scenario::normal;
};

struct DemoPlant {
  std::filesystem::path plant_file;
  std::vector<DemoTruth> truth;  // one per device, plant order
};

// Writes the plant under options.dir (created; must be empty or absent), one
// device per task of `pool`.
DemoPlant generate_demo_plant(const DemoOptions& options, ThreadPool& pool);

// --- scene pieces (also used by tests) ---

struct SceneLook;  // per-device appearance, defined in demo_scene.cpp
// Camera photo of device `index` (golden = the registered reference: nominal
// pose and light; otherwise pose/light/noise vary with `rng`), with the scenario's defect.
Image render_camera(uint64_t device_seed, Scenario scenario, bool golden, std::mt19937_64& rng,
                    int width, int height);
// Infrared frame in degrees C (row-major width x height).
std::vector<float> render_infrared_c(uint64_t device_seed, Scenario scenario, std::mt19937_64& rng,
                                     int width, int height);
// Motor sound (mono, [-1, 1]) of the device, with the scenario's fault mixed in.
std::vector<float> render_sound(uint64_t device_seed, Scenario scenario, std::mt19937_64& rng,
                                double seconds, int rate);
// Sensor rows (10 Hz): temperature_c, vibration_mm_s, current_a, pressure_bar.
sensor::Matrix render_sensors(uint64_t device_seed, Scenario scenario, std::mt19937_64& rng,
                              size_t rows);
extern const std::vector<std::string> kDemoSensorChannels;

// --- scoring ---

struct Counts {
  size_t tp = 0, fp = 0, fn = 0, tn = 0;
  double precision() const;  // 1 when nothing was flagged
  double recall() const;     // 1 when there was nothing to find
};

struct DemoScore {
  Counts fused;
  std::array<Counts, 4> modality;     // indexed by Modality
  std::vector<std::string> mistakes;  // "device (scenario): what went wrong"
};

DemoScore score_demo(const std::vector<DemoTruth>& truth, const RoundSummary& round);

}  // namespace mmfuse::inspect
