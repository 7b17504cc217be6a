// What the store keeps from a plant and from an inspection: one DeviceInfo per
// configured device, and the sensor readings of a record (the per-channel
// window means the sensors modality reports). Shared by `mmfuse inspect` and
// the server's plant routes so both write the same rows.
#pragma once

#include <vector>

#include "inspect/plant.h"
#include "record/inspection_record.h"
#include "store/store.h"

namespace mmfuse::inspect {

std::vector<store::DeviceInfo> device_infos(const PlantConfig& plant);
std::vector<store::SensorReading> readings_of(const InspectionRecord& record);

}  // namespace mmfuse::inspect
