// JSON forms of the store's rows for the CLI and the HTTP API (keys in docs/store.md).
#include "store/store.h"

namespace mmfuse::store {

using OJson = nlohmann::ordered_json;

OJson to_json(const DeviceInfo& d) {
  return {{"id", d.id},
          {"name", d.name},
          {"area", d.area},
          {"location", d.location},
          {"points", d.points}};
}

OJson to_json(const RoundInfo& r) {
  OJson j = {{"id", r.id},
             {"status", round_status_name(r.status)},
             {"started", iso8601_utc(r.started_ms)},
             {"started_ms", r.started_ms},
             {"finished_ms", r.finished_ms},
             {"total", r.total},
             {"position", r.position}};
  if (!r.done.empty()) {
    OJson done = OJson::array();
    for (const auto& [device, point] : r.done)
      done.push_back({{"device", device}, {"point", point}});
    j["done"] = std::move(done);
  }
  return j;
}

OJson to_json(const InspectionRow& r) {
  const auto& rec = r.record;
  OJson mods = OJson::object();
  for (const auto& m : rec.modalities)
    mods[inspect::modality_name(m.modality)] = {{"status", inspect::modality_status_name(m.status)},
                                                {"score", m.score},
                                                {"raw_score", m.raw_score},
                                                {"decision", m.decision},
                                                {"message", m.message},
                                                {"detail", m.detail},
                                                {"evidence", m.evidence}};
  return {{"id", r.id},
          {"round_id", rec.round_id},
          {"device", rec.device_id},
          {"point", rec.point_id},
          {"started", iso8601_utc(rec.started_ms)},
          {"started_ms", rec.started_ms},
          {"finished_ms", rec.finished_ms},
          {"fused_score", rec.fused_score},
          {"alarm", rec.alarm},
          {"alarm_type", rec.alarm_type},
          {"alarm_id", r.alarm_id},
          {"fusion_rule", rec.fusion_rule},
          {"modalities", std::move(mods)},
          {"reading_count", r.reading_count},
          {"created_ms", r.created_ms}};
}

OJson to_json(const AlarmRow& a) {
  return {{"id", a.id},
          {"type", a.type},
          {"device", a.device_id},
          {"point", a.point_id},
          {"area", a.area},
          {"round_id", a.round_id},
          {"inspection_id", a.inspection_id},
          {"fused_score", a.fused_score},
          {"modalities", a.modalities},
          {"evidence", a.evidence},
          {"created", iso8601_utc(a.created_ms)},
          {"created_ms", a.created_ms},
          {"last_seen_ms", a.last_seen_ms},
          {"repeats", a.repeats},
          {"acknowledged", !a.acknowledged_by.empty()},
          {"acknowledged_by", a.acknowledged_by},
          {"acknowledged_at_ms", a.acknowledged_at_ms}};
}

OJson to_json(const DeviceStatus& s) {
  OJson mods = OJson::object();
  for (const auto& [k, v] : s.modality_status) mods[k] = v;
  return {{"device", to_json(s.device)},
          {"last_inspection_id", s.last_inspection_id},
          {"last_inspected_ms", s.last_inspected_ms},
          {"fused_score", s.fused_score},
          {"alarm", s.alarm},
          {"alarm_type", s.alarm_type},
          {"modalities", std::move(mods)},
          {"open_alarms", s.open_alarms}};
}

OJson to_json(const OutboxBacklog& b) {
  OJson by = OJson::object();
  for (const auto& [k, v] : b.by_sink) by[k] = v;
  return {
      {"total", b.total}, {"by_sink", std::move(by)}, {"oldest_created_ms", b.oldest_created_ms}};
}

OJson to_json(const PruneReport& p) {
  return {{"cutoff", iso8601_utc(p.cutoff_ms)},
          {"cutoff_ms", p.cutoff_ms},
          {"inspections", p.inspections},
          {"readings", p.readings},
          {"alarms", p.alarms},
          {"outbox", p.outbox},
          {"rounds", p.rounds},
          {"files", p.files},
          {"files_kept", p.files_kept}};
}

OJson to_json(const StoreCounts& c) {
  return {{"devices", c.devices},
          {"rounds", c.rounds},
          {"inspections", c.inspections},
          {"readings", c.readings},
          {"alarms", c.alarms},
          {"open_alarms", c.open_alarms},
          {"outbox_pending", c.outbox_pending}};
}

}  // namespace mmfuse::store
