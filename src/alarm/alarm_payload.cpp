// Alarm payload JSON and MQTT topic scheme (see alarm_payload.h, docs/alarms.md).
#include "alarm/alarm_payload.h"

#include "core/utc_time.h"

namespace mmfuse::alarm {

nlohmann::ordered_json alarm_payload_json(const store::AlarmRow& a) {
  return {{"id", a.id},
          {"type", a.type},
          {"device", a.device_id},
          {"point", a.point_id},
          {"area", a.area},
          {"fused_score", a.fused_score},
          {"modalities", a.modalities},
          {"evidence", a.evidence},
          {"created", iso8601_utc(a.created_ms)},
          {"created_ms", a.created_ms},
          {"round_id", a.round_id},
          {"inspection_id", a.inspection_id}};
}

std::string alarm_payload(const store::AlarmRow& a) {
  // Invalid UTF-8 (say, a Latin-1 file name in a message) becomes U+FFFD, not an exception.
  return alarm_payload_json(a).dump(-1, ' ', false,
                                    nlohmann::ordered_json::error_handler_t::replace);
}

std::string topic_level(const std::string& s) {
  if (s.empty()) return "_";
  std::string out = s;
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '+' || c == '#' || u < 0x20 || u == 0x7f) c = '_';
  }
  return out;
}

std::string alarm_topic(const std::string& prefix, const std::string& area,
                        const std::string& device, const std::string& type) {
  // The prefix may have levels of its own ("plant-1/mmfuse"); wildcards are replaced.
  std::string pre;
  for (char c : prefix) pre.push_back(c == '+' || c == '#' ? '_' : c);
  while (!pre.empty() && pre.back() == '/') pre.pop_back();
  if (pre.empty()) pre = "mmfuse";
  return pre + "/alarms/" + topic_level(area) + "/" + topic_level(device) + "/" + topic_level(type);
}

}  // namespace mmfuse::alarm
