// The alarm payload (the JSON that MQTT and webhook sinks deliver, one per alarm id)
// and the MQTT topic scheme. Documented in docs/alarms.md; change only by adding fields.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "store/store.h"

namespace mmfuse::alarm {

// {"id", "type", "device", "point", "area", "fused_score", "modalities": {...},
//  "evidence": [...], "created" (ISO-8601 UTC), "created_ms", "round_id", "inspection_id"}
nlohmann::ordered_json alarm_payload_json(const store::AlarmRow& alarm);
std::string alarm_payload(const store::AlarmRow& alarm);  // compact JSON text

// One topic level: '/', '+', '#', NUL and control characters become '_'; empty becomes "_".
std::string topic_level(const std::string& s);
// "<prefix>/alarms/<area>/<device>/<type>": area, device and type pass through
// topic_level(); the prefix may contain '/' (empty = "mmfuse"), '+' and '#' become '_'.
std::string alarm_topic(const std::string& prefix, const std::string& area,
                        const std::string& device, const std::string& type);

}  // namespace mmfuse::alarm
