// The sensors modality of an inspection point: the sensor pipeline
// (src/detect/pipeline.h, Isolation Forest / T2 / PCA / MSET / ensemble) fitted
// on the point's normal rows, plus a stuck-sensor check (a channel that repeats
// one value far longer than it ever did in the baseline). A window of recent
// rows (CSV from the robot, or polled over Modbus) is judged as one reading.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "detect/pipeline.h"
#include "inspect/plant.h"
#include "sensor/csv_source.h"

namespace mmfuse::inspect {

struct SensorWindow {
  std::string source;  // for messages
  std::vector<std::string> channels;
  sensor::Matrix values;  // rows x channels
};

struct SensorFinding {
  size_t rows = 0, anomalous_rows = 0;
  double max_score = 0.0, threshold = 0.0;
  std::string stuck_channel;  // empty when none
  size_t stuck_rows = 0;
  double raw_score = 0.0;  // >= 1 exactly when anomaly
  bool anomaly = false;
};

class SensorCheck {
 public:
  // Reads config.baseline and fits (bad_input / not_found on problems).
  explicit SensorCheck(const SensorsConfig& config);

  const std::vector<std::string>& channels() const { return channels_; }
  // Judges a window; its channels are matched to the baseline's by name (extra
  // ones ignored, a missing one is bad_input). Thread-safe.
  SensorFinding judge(const SensorWindow& window) const;

 private:
  SensorsConfig config_;
  std::vector<std::string> channels_;
  std::unique_ptr<sensor::SensorModel> model_;
  std::unique_ptr<sensor::StreamScorer> warm_;  // online method: state after the baseline
  std::vector<size_t> stuck_limit_;  // per channel
};

// A CSV text (the whole window) as a SensorWindow; bad rows are skipped.
SensorWindow parse_sensor_window(const std::string& csv_text, const std::string& name);
// Polls Modbus for config.seconds at its rate.
SensorWindow poll_sensor_window(const ModbusSourceConfig& config);

}  // namespace mmfuse::inspect
