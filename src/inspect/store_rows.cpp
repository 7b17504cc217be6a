#include "inspect/store_rows.h"

namespace mmfuse::inspect {

std::vector<store::DeviceInfo> device_infos(const PlantConfig& plant) {
  std::vector<store::DeviceInfo> out;
  for (const DeviceConfig& d : plant.devices) {
    store::DeviceInfo info{d.id, d.name, d.area, d.location, nlohmann::json::array()};
    for (const PointConfig& p : d.points) {
      nlohmann::json mods = nlohmann::json::array();
      if (p.camera) mods.push_back("camera");
      if (p.infrared) mods.push_back("infrared");
      if (p.sound) mods.push_back("sound");
      if (p.sensors) mods.push_back("sensors");
      info.points.push_back({{"id", p.id}, {"modalities", mods}});
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<store::SensorReading> readings_of(const InspectionRecord& r) {
  std::vector<store::SensorReading> out;
  for (const ModalityResult& m : r.modalities) {
    if (m.modality != Modality::sensors || !m.detail.contains("channel_means") ||
        !m.detail["channel_means"].is_object())
      continue;
    for (const auto& [name, value] : m.detail["channel_means"].items())
      if (value.is_number())
        out.push_back({r.device_id, r.point_id, name, r.finished_ms, value.get<double>()});
  }
  return out;
}

}  // namespace mmfuse::inspect
