// What one inspection of one point produced: per-modality results and the fused
// decision. Shared by the inspection pipeline (which fills it), the store (which
// persists it) and the alarm service (which turns anomalies into alarms).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmfuse::inspect {

enum class Modality { camera, infrared, sound, sensors };
inline constexpr Modality kAllModalities[] = {Modality::camera, Modality::infrared, Modality::sound,
                                              Modality::sensors};

// ok = judged normal, anomaly = judged abnormal, missing = no data this round,
// error = data present but unreadable (the message says why). Missing and error
// modalities do not vote in fusion (see docs/inspection.md).
enum class ModalityStatus { ok, anomaly, missing, error };

const char* modality_name(Modality m);               // "camera", "infrared", "sound", "sensors"
const char* modality_status_name(ModalityStatus s);  // "ok", "anomaly", "missing", "error"
Modality parse_modality(const std::string& name);    // throws bad_input naming the value
ModalityStatus parse_modality_status(const std::string& name);

struct ModalityResult {
  Modality modality = Modality::camera;
  ModalityStatus status = ModalityStatus::missing;
  double score = 0.0;      // calibrated anomaly score in [0, 1] (0.5 = at the threshold)
  double raw_score = 0.0;  // the detector's own score, before calibration
  bool decision = false;   // binary vote for the chapter's late fusion
  std::string message;     // short human-readable finding or error text
  std::string alarm_type;  // the finding's kind when the detector names it ("scratch"); "" = the modality
  nlohmann::json detail = nlohmann::json::object();  // boxes, hot regions, per-channel scores...
  std::vector<std::string> evidence;                 // paths of saved evidence files
};

struct InspectionRecord {
  std::string round_id;  // one round covers all devices once
  std::string device_id;
  std::string point_id;
  int64_t started_ms = 0;  // Unix epoch milliseconds
  int64_t finished_ms = 0;
  std::vector<ModalityResult> modalities;
  double fused_score = 0.0;  // weighted fusion score in [0, 1]
  bool alarm = false;        // fused_score >= the plant's alarm threshold
  std::string fusion_rule;   // "weighted_vote" (chapter) or "weighted_score"
  std::string alarm_type;    // dominant anomalous modality, e.g. "camera"; empty when no alarm
};

}  // namespace mmfuse::inspect
