// Names of modalities and statuses as they appear in JSON, the store and alarms.
#include "record/inspection_record.h"

#include "mmfuse/error.h"

namespace mmfuse::inspect {

const char* modality_name(Modality m) {
  switch (m) {
    case Modality::camera: return "camera";
    case Modality::infrared: return "infrared";
    case Modality::sound: return "sound";
    case Modality::sensors: return "sensors";
  }
  return "unknown";
}

const char* modality_status_name(ModalityStatus s) {
  switch (s) {
    case ModalityStatus::ok: return "ok";
    case ModalityStatus::anomaly: return "anomaly";
    case ModalityStatus::missing: return "missing";
    case ModalityStatus::error: return "error";
  }
  return "unknown";
}

Modality parse_modality(const std::string& name) {
  for (Modality m : kAllModalities)
    if (name == modality_name(m)) return m;
  throw Error(ErrorKind::bad_input,
              "unknown modality '" + name + "' (expected camera, infrared, sound or sensors)");
}

ModalityStatus parse_modality_status(const std::string& name) {
  for (ModalityStatus s : {ModalityStatus::ok, ModalityStatus::anomaly, ModalityStatus::missing,
                           ModalityStatus::error})
    if (name == modality_status_name(s)) return s;
  throw Error(ErrorKind::bad_input, "unknown modality status '" + name + "'");
}

}  // namespace mmfuse::inspect
