// Row readers for the store's queries (see store_rows.h).
#include "store/store_rows.h"

#include <map>

#include "mmfuse/error.h"
#include "store/sql_connection.h"

namespace mmfuse::store::rows {

namespace {

nlohmann::json parse_json(const std::string& text, const char* fallback) {
  // Written by the store itself; a hand-edited cell degrades to the fallback, not a crash.
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json::parse(fallback) : j;
}

std::vector<std::string> parse_strings(const std::string& text) {
  std::vector<std::string> out;
  auto j = parse_json(text, "[]");
  if (j.is_array())
    for (const auto& e : j)
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

}  // namespace

std::vector<DeviceInfo> devices(SqlConnection& db, const std::string& id) {
  Stmt s(db,
         "SELECT id, name, area, location, points FROM devices WHERE (?1 = '' OR id = ?1) "
         "ORDER BY id");
  s.bind(1, id);
  std::vector<DeviceInfo> out;
  while (s.step())
    out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), parse_json(s.text(4), "[]")});
  return out;
}

std::vector<RoundInfo> rounds(SqlConnection& db, const std::string& id, int limit) {
  Stmt s(db,
         "SELECT id, started_ms, finished_ms, status, total, position FROM rounds "
         "WHERE (?1 = '' OR id = ?1) ORDER BY started_ms DESC, rowid DESC LIMIT ?2");
  s.bind(1, id).bind(2, limit);
  std::vector<RoundInfo> out;
  while (s.step()) {
    RoundInfo r;
    r.id = s.text(0);
    r.started_ms = s.i64(1);
    r.finished_ms = s.i64(2);
    r.status = parse_round_status(s.text(3));
    r.total = s.i64(4);
    r.position = s.i64(5);
    out.push_back(std::move(r));
  }
  return out;
}

void round_done(SqlConnection& db, RoundInfo* round) {
  Stmt s(db,
         "SELECT DISTINCT device_id, point_id FROM inspections WHERE round_id = ? "
         "ORDER BY device_id, point_id");
  s.bind(1, round->id);
  round->done.clear();
  while (s.step()) round->done.emplace_back(s.text(0), s.text(1));
}

std::vector<InspectionRow> inspections(SqlConnection& db, const InspectionFilter& f, int64_t id) {
  Stmt s(db,
         "SELECT id, round_id, device_id, point_id, started_ms, finished_ms, fused_score, alarm, "
         "fusion_rule, alarm_type, alarm_id, reading_count, created_ms FROM inspections "
         "WHERE (?1 > 0 AND id = ?1) OR (?1 <= 0 AND (?2 = '' OR device_id = ?2) AND "
         "(?3 = '' OR round_id = ?3) AND created_ms >= ?4 AND (?5 <= 0 OR id < ?5)) "
         "ORDER BY id DESC LIMIT ?6");
  s.bind(1, id).bind(2, f.device_id).bind(3, f.round_id).bind(4, f.since_ms);
  s.bind(5, f.before_id).bind(6, id > 0 ? 1 : f.limit);
  std::vector<InspectionRow> out;
  while (s.step()) {
    InspectionRow r;
    r.id = s.i64(0);
    r.record.round_id = s.text(1);
    r.record.device_id = s.text(2);
    r.record.point_id = s.text(3);
    r.record.started_ms = s.i64(4);
    r.record.finished_ms = s.i64(5);
    r.record.fused_score = s.f64(6);
    r.record.alarm = s.i64(7) != 0;
    r.record.fusion_rule = s.text(8);
    r.record.alarm_type = s.text(9);
    r.alarm_id = s.i64(10);
    r.reading_count = s.i64(11);
    r.created_ms = s.i64(12);
    out.push_back(std::move(r));
  }
  Stmt m(db,
         "SELECT modality, status, score, raw_score, decision, message, detail, evidence "
         "FROM inspection_modalities WHERE inspection_id = ?");
  for (auto& r : out) {
    m.reset();
    m.bind(1, r.id);
    std::vector<inspect::ModalityResult> mods;
    while (m.step()) {
      inspect::ModalityResult x;
      x.modality = inspect::parse_modality(m.text(0));
      x.status = inspect::parse_modality_status(m.text(1));
      x.score = m.f64(2);
      x.raw_score = m.f64(3);
      x.decision = m.i64(4) != 0;
      x.message = m.text(5);
      x.detail = parse_json(m.text(6), "{}");
      x.evidence = parse_strings(m.text(7));
      mods.push_back(std::move(x));
    }
    // The order the chapter lists them in (camera, infrared, sound, sensors).
    for (inspect::Modality want : inspect::kAllModalities)
      for (auto& x : mods)
        if (x.modality == want) r.record.modalities.push_back(std::move(x));
  }
  return out;
}

std::vector<AlarmRow> alarms(SqlConnection& db, const AlarmFilter& f, int64_t id) {
  Stmt s(db,
         "SELECT id, type, device_id, point_id, area, round_id, coalesce(inspection_id, 0), "
         "fused_score, modalities, evidence, created_ms, last_seen_ms, repeats, "
         "coalesce(acknowledged_by, ''), coalesce(acknowledged_at_ms, 0), dedupe_key FROM alarms "
         "WHERE (?1 > 0 AND id = ?1) OR (?1 <= 0 AND (?2 < 0 OR (acknowledged_at_ms IS NOT NULL) "
         "= (?2 = 1)) AND (?3 = '' OR device_id = ?3) AND created_ms >= ?4 AND (?5 <= 0 OR id < ?5)) "
         "ORDER BY id DESC LIMIT ?6");
  s.bind(1, id).bind(2, f.acknowledged ? (*f.acknowledged ? 1 : 0) : -1).bind(3, f.device_id);
  s.bind(4, f.since_ms).bind(5, f.before_id).bind(6, id > 0 ? 1 : f.limit);
  std::vector<AlarmRow> out;
  while (s.step()) {
    AlarmRow a;
    a.id = s.i64(0);
    a.type = s.text(1);
    a.device_id = s.text(2);
    a.point_id = s.text(3);
    a.area = s.text(4);
    a.round_id = s.text(5);
    a.inspection_id = s.i64(6);
    a.fused_score = s.f64(7);
    a.modalities = parse_json(s.text(8), "{}");
    a.evidence = parse_strings(s.text(9));
    a.created_ms = s.i64(10);
    a.last_seen_ms = s.i64(11);
    a.repeats = s.i64(12);
    a.acknowledged_by = s.text(13);
    a.acknowledged_at_ms = s.i64(14);
    a.dedupe_key = s.text(15);
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<DeviceStatus> device_status(SqlConnection& db) {
  std::map<std::string, DeviceStatus> by_id;
  for (auto& d : devices(db, "")) {
    DeviceStatus st;
    st.device = d;
    by_id[d.id] = std::move(st);
  }
  {
    Stmt s(db, "SELECT DISTINCT device_id FROM inspections");
    while (s.step()) {
      const std::string id = s.text(0);
      if (!by_id.count(id)) by_id[id].device.id = id;
    }
  }
  Stmt last(db,
            "SELECT id, finished_ms, fused_score, alarm, alarm_type FROM inspections "
            "WHERE device_id = ? ORDER BY id DESC LIMIT 1");
  Stmt mods(db, "SELECT modality, status FROM inspection_modalities WHERE inspection_id = ?");
  for (auto& [id, st] : by_id) {
    last.reset();
    last.bind(1, id);
    if (!last.step()) continue;
    st.last_inspection_id = last.i64(0);
    st.last_inspected_ms = last.i64(1);
    st.fused_score = last.f64(2);
    st.alarm = last.i64(3) != 0;
    st.alarm_type = last.text(4);
    mods.reset();
    mods.bind(1, st.last_inspection_id);
    while (mods.step()) st.modality_status[mods.text(0)] = mods.text(1);
  }
  Stmt open(db,
            "SELECT device_id, count(*) FROM alarms WHERE acknowledged_at_ms IS NULL "
            "GROUP BY device_id");
  while (open.step()) {
    auto it = by_id.find(open.text(0));
    if (it != by_id.end()) it->second.open_alarms = open.i64(1);
  }
  std::vector<DeviceStatus> out;
  for (auto& [id, st] : by_id) out.push_back(std::move(st));
  return out;
}

std::vector<OutboxEntry> outbox(SqlConnection& db, const std::string& sink, int64_t alarm_id,
                                bool pending_only, int limit) {
  constexpr const char* kColumns =
      "SELECT id, alarm_id, sink, payload, attempts, next_attempt_at_ms, "
      "coalesce(delivered_at_ms, 0), created_ms, last_error FROM outbox ";
  // The pending query is the dispatcher's hot path: written so it uses outbox_pending.
  const std::string sql =
      std::string(kColumns) +
      (pending_only && !sink.empty() && alarm_id <= 0
           ? "WHERE sink = ?1 AND delivered_at_ms IS NULL AND ?2 <= 0 AND ?3 = 1 "
           : "WHERE (?1 = '' OR sink = ?1) AND (?2 <= 0 OR alarm_id = ?2) AND "
             "(?3 = 0 OR delivered_at_ms IS NULL) ") +
      "ORDER BY id LIMIT ?4";
  Stmt s(db, sql);
  s.bind(1, sink).bind(2, alarm_id).bind(3, pending_only ? 1 : 0).bind(4, limit);
  std::vector<OutboxEntry> out;
  while (s.step())
    out.push_back({s.i64(0), s.i64(1), s.text(2), s.text(3), s.i64(4), s.i64(5), s.i64(6), s.i64(7),
                   s.text(8)});
  return out;
}

}  // namespace mmfuse::store::rows
