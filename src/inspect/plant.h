// The plant description: devices, their inspection points, each point's data
// sources, detector settings and baselines, the fusion rule and the alarm
// sinks. Read from YAML (docs/inspection.md is the reference); every
// validation error names the field path and the file line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fusion/fusion.h"
#include "sensor/modbus_source.h"

namespace mmfuse::inspect {

namespace fs = std::filesystem;

// A trained defect detector: an Ultralytics YOLO ONNX export (docs/detection.md).
struct YoloCameraConfig {
  fs::path model;
  double conf = 0.25;  // candidates below this are dropped before NMS (Ultralytics' default)
  double iou = 0.7;    // NMS overlap (Ultralytics' default)
  int imgsz = 0;       // network input size; 0 = the export's
  // A box is a defect from this confidence on (the chapter runs its model with conf=0.7);
  // per model class in class_thresholds.
  double threshold = 0.7;
  std::map<std::string, double> class_thresholds;
  // Model class -> alarm type (e.g. "oil leak" -> "oil_leak"); "ignore" drops the class.
  // Unlisted classes keep their own name, lower-cased with '_' for blanks.
  std::map<std::string, std::string> alarm_types;
};

// A detector learned from photos of good parts (issue 17, docs/image_anomaly.md):
// fitted once at plant start on the point's good photos and cached on disk.
struct AnomalyCameraConfig {
  std::vector<fs::path> good_photos;  // files or folders (searched recursively; masks skipped)
  double false_alarm_rate = 0.05;     // share of held-out good photos above the threshold
  fs::path backbone;  // a timm ResNet folder for the patch features; empty = weight-free texture
};

struct CameraConfig {
  fs::path source;  // an image file, or a folder: the newest image in it
  fs::path golden;  // registered known-good image of the point (golden_diff)
  // Detectors that judge each photo; with several, their findings are united.
  std::vector<std::string> detectors = {"golden_diff"};
  std::optional<YoloCameraConfig> yolo;
  std::optional<AnomalyCameraConfig> anomaly;
  int width = 640, height = 480;  // the chapter's size normalisation
  double blur_sigma = 1.0;        // Gaussian denoise (pixels of the full image, scaled)
  double diff_threshold = 0.0;    // grey levels; 0 = automatic (k x the image's noise)
  double noise_k = 6.0;           // automatic threshold = max(min_diff, noise_k x noise sigma)
  double min_diff = 18.0;
  int min_area = 40;      // pixels at width x height
  int tolerance_px = 2;   // residual misalignment ignored by the difference
  int max_shift_px = 40;  // larger estimated shifts are refused (wrong scene)
};

struct InfraredConfig {
  fs::path source;          // a PNG (8- or 16-bit grey), or a folder: the newest PNG
  double a = 1.0, b = 0.0;  // T[degC] = a * pixel + b
  double hot_threshold_c = 80.0;
  int min_area = 9;  // hot regions smaller than this (pixels) are ignored as noise
};

struct SoundConfig {
  fs::path source;                 // an audio file, or a folder: the newest one
  std::vector<fs::path> baseline;  // normal recordings (files or folders)
  double threshold_sigma = 3.0;    // threshold = mean + sigma * std of held-out normal scores
};

struct ModbusSourceConfig {
  sensor::ModbusOptions options;
  double seconds = 3.0;  // how long one inspection polls
};

struct SensorsConfig {
  fs::path csv;                              // a CSV window, or a folder: the newest CSV
  std::optional<ModbusSourceConfig> modbus;  // instead of csv
  fs::path baseline;                         // CSV of normal rows (same channel names)
  std::string method = "ensemble";
  size_t smooth = 10;             // trailing-mean window over row scores
  size_t min_anomalous_rows = 5;  // rows above threshold for an anomaly decision
  size_t flatline_rows = 30;      // a channel unchanged this many rows = stuck sensor (0 = off)
  // The slow-channel rule (docs/sensors.md): channels whose baseline
  // autocorrelation at 1 s is at least this are left out; 0 = off (keep
  // temperatures in when slow heating is the fault to catch).
  double slow_channels = 0.7;
};

struct PointConfig {
  std::string id;
  std::optional<CameraConfig> camera;
  std::optional<InfraredConfig> infrared;
  std::optional<SoundConfig> sound;
  std::optional<SensorsConfig> sensors;
};

struct DeviceConfig {
  std::string id, name, area, location;
  std::vector<PointConfig> points;
};

struct MqttSinkConfig {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string topic_prefix =
      "mmfuse";  // alarms go to <prefix>/alarms/<area>/<device>/<type>, QoS 1
};

struct WebhookSinkConfig {
  std::string url;
  double timeout_s = 5.0;
};

struct AlarmConfig {
  double cooldown_s = 600.0;  // de-duplication window per (device, type)
  std::optional<MqttSinkConfig> mqtt;
  std::optional<WebhookSinkConfig> webhook;
};

enum class EvidencePolicy { always, anomaly, never };

struct PlantConfig {
  fs::path file;  // the YAML file (relative paths inside resolve against its folder)
  std::string name;
  fs::path data_dir;  // store, evidence and cached models
  int retention_days = 7;
  EvidencePolicy evidence = EvidencePolicy::anomaly;
  fusion::FusionConfig fusion;
  AlarmConfig alarms;
  std::vector<DeviceConfig> devices;

  size_t point_count() const;
};

// Parses and validates. Errors are ErrorKind::bad_input with messages like
// "plant.yaml:14: devices[0].points[0].infrared.calibration.a: expected a number";
// a missing file is not_found. Paths are made absolute against the file's folder.
PlantConfig load_plant(const fs::path& file);
PlantConfig parse_plant(const std::string& yaml_text, const fs::path& file);

}  // namespace mmfuse::inspect
