// Inspects one point: camera, infrared, sound and sensors, each judged by its
// detector, then fused into one InspectionRecord. This is the function the
// CLI rounds and the HTTP server (POST /v1/inspect) share: inputs come either
// from the point's configured sources (gather()) or from memory (uploads).
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/thread_pool.h"
#include "fusion/fusion.h"
#include "inspect/camera_detector.h"
#include "inspect/plant.h"
#include "inspect/sensor_check.h"
#include "inspect/sound_check.h"
#include "record/inspection_record.h"

namespace mmfuse::inspect {

// One modality's data as file bytes; `name` (a path or upload name) is used
// in messages and as the evidence reference when nothing else is saved.
struct ModalityInput {
  std::string name;
  std::string bytes;
};

struct PointInputs {
  std::optional<ModalityInput> camera;        // JPEG/PNG/WebP/BMP
  std::optional<ModalityInput> infrared;      // 8- or 16-bit grey PNG of raw counts
  std::optional<ModalityInput> sound;         // WAV/FLAC/OGG...
  std::optional<ModalityInput> sensors;       // CSV text of the recent window
  std::optional<SensorWindow> sensor_window;  // rows already read (Modbus); wins over `sensors`
  // A source that exists but could not be read: its error (the modality becomes "error").
  std::array<std::string, 4> read_errors;
};

struct InspectOptions {
  std::string round_id = "adhoc";
  std::filesystem::path evidence_dir;  // evidence goes to <dir>/<round>/<device>/; empty = none
  EvidencePolicy evidence = EvidencePolicy::anomaly;
};

class PointInspector {
 public:
  // Prepares every configured modality: golden image, fitted (or cached)
  // sound and sensor models under models_dir/<device>/<point>/. A modality
  // whose preparation fails is kept as a setup error: each inspection then
  // reports it with status "error" and the message (the rest still runs).
  PointInspector(const PlantConfig& plant, const DeviceConfig& device, const PointConfig& point,
                 const std::filesystem::path& models_dir, ThreadPool& pool);

  const std::string& device_id() const { return device_id_; }
  const std::string& point_id() const { return point_.id; }
  const PointConfig& point() const { return point_; }
  // "camera: <why>" for each modality that failed to prepare.
  std::vector<std::string> setup_errors() const;

  // Reads the configured sources (newest file of a folder, a Modbus poll).
  PointInputs gather() const;
  // Judges the inputs and fuses. Single-threaded; safe to call concurrently.
  InspectionRecord inspect(const PointInputs& inputs, const InspectOptions& options) const;

 private:
  ModalityResult run_camera(const PointInputs& in, const std::filesystem::path& ev,
                            bool always) const;
  ModalityResult run_infrared(const PointInputs& in, const std::filesystem::path& ev,
                              bool always) const;
  ModalityResult run_sound(const PointInputs& in, const std::filesystem::path& ev,
                           bool always) const;
  ModalityResult run_sensors(const PointInputs& in, const std::filesystem::path& ev,
                             bool always) const;

  std::string device_id_;
  PointConfig point_;
  std::unique_ptr<fusion::FusionHead> fusion_;
  std::string fusion_rule_;
  std::unique_ptr<DefectDetector> camera_;
  std::unique_ptr<SoundCheck> sound_;
  std::unique_ptr<SensorCheck> sensors_;
  std::array<std::string, 4> setup_errors_;
};

// Milliseconds since the Unix epoch (system clock).
int64_t now_ms();

// The record as JSON (the shape `mmfuse inspect --json` and the server print).
nlohmann::json record_to_json(const InspectionRecord& record);

}  // namespace mmfuse::inspect
