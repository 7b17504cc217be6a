// Row readers for the store's queries (see store_rows.h).
#include "store/store_rows.h"

#include <algorithm>
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
  // Without an id: the newest rounds through rounds_by_started (no scan and sort).
  Stmt s(db, std::string("SELECT id, started_ms, finished_ms, status, total, position FROM rounds ") +
                 (id.empty() ? "WHERE ?1 = ''" : "WHERE id = ?1") +
                 " ORDER BY started_ms DESC, rowid DESC LIMIT ?2");
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

namespace {

// A WHERE clause holding only the conditions a filter uses, with their binds: SQLite
// plans a statement without looking at bound values, so "(?2 = '' OR device_id = ?2)"
// would scan the whole table where "device_id = ?" walks an index.
class Where {
 public:
  Where& add(const char* condition, int64_t v) {
    text_ += text_.empty() ? " WHERE " : " AND ";
    text_ += condition;
    binds_.push_back({v, {}, false});
    return *this;
  }
  Where& add(const char* condition, const std::string& v) {
    text_ += text_.empty() ? " WHERE " : " AND ";
    text_ += condition;
    binds_.push_back({0, v, true});
    return *this;
  }
  // One more value for a condition with several placeholders (bound in order).
  Where& arg(int64_t v) {
    binds_.push_back({v, {}, false});
    return *this;
  }
  Where& arg(const std::string& v) {
    binds_.push_back({0, v, true});
    return *this;
  }
  Where& add(const char* condition) {
    text_ += text_.empty() ? " WHERE " : " AND ";
    text_ += condition;
    return *this;
  }
  const std::string& text() const { return text_; }
  // Binds the conditions' values in order, then `limit` after them.
  void bind(Stmt& s, int64_t limit) const {
    int i = 1;
    for (const auto& b : binds_) {
      if (b.is_text)
        s.bind(i++, b.text);
      else
        s.bind(i++, b.i64);
    }
    s.bind(i, limit);
  }

 private:
  struct Bind {
    int64_t i64;
    std::string text;
    bool is_text;
  };
  std::string text_;
  std::vector<Bind> binds_;
};

// The modality rows of these inspections, in one statement per 500 (not one per
// inspection: on PostgreSQL each statement is a network round trip).
void add_modalities(SqlConnection& db, std::vector<InspectionRow>& rows) {
  constexpr size_t kChunk = 500;
  for (size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const size_t end = std::min(rows.size(), begin + kChunk);
    std::map<int64_t, std::vector<inspect::ModalityResult>> by_id;
    std::string ids;
    for (size_t k = begin; k < end; ++k) {
      if (k != begin) ids += ',';
      ids += std::to_string(rows[k].id);  // integers from the store
      by_id[rows[k].id];
    }
    Stmt m(db,
           "SELECT inspection_id, modality, status, score, raw_score, decision, message, detail, "
           "evidence FROM inspection_modalities WHERE inspection_id IN (" + ids + ")");
    while (m.step()) {
      inspect::ModalityResult x;
      x.modality = inspect::parse_modality(m.text(1));
      x.status = inspect::parse_modality_status(m.text(2));
      x.score = m.f64(3);
      x.raw_score = m.f64(4);
      x.decision = m.i64(5) != 0;
      x.message = m.text(6);
      x.detail = parse_json(m.text(7), "{}");
      x.evidence = parse_strings(m.text(8));
      by_id[m.i64(0)].push_back(std::move(x));
    }
    for (size_t k = begin; k < end; ++k) {
      auto& mods = by_id[rows[k].id];
      // The order the chapter lists them in (camera, infrared, sound, sensors).
      for (inspect::Modality want : inspect::kAllModalities)
        for (auto& x : mods)
          if (x.modality == want) rows[k].record.modalities.push_back(std::move(x));
    }
  }
}

}  // namespace

std::vector<InspectionRow> inspections(SqlConnection& db, const InspectionFilter& f, int64_t id,
                                       bool with_modalities) {
  Where w;
  if (id > 0) {
    w.add("id = ?", id);
  } else {
    if (!f.device_id.empty()) w.add("device_id = ?", f.device_id);
    if (!f.round_id.empty()) w.add("round_id = ?", f.round_id);
    if (!f.device_id.empty() && f.since_ms > 0) {
      // A device's newest rows since a time (the trend): no row in range has an id below
      // the range's first, found in inspections_by_device_created; then the walk down
      // inspections_by_device stops at the LIMIT. (+created_ms keeps SQLite from fetching
      // and sorting every row in range through the other index; min(id + 0) keeps
      // PostgreSQL from finding the minimum by walking the device's ids from its oldest.)
      w.add("id >= (SELECT min(id + 0) FROM inspections WHERE device_id = ? AND "
            "created_ms >= ?)",
            f.device_id)
          .arg(f.since_ms);
      w.add("+created_ms >= ?", f.since_ms);
    } else if (f.since_ms > 0) {
      w.add("created_ms >= ?", f.since_ms);  // created_ms is never negative
    }
    if (f.before_id > 0) w.add("id < ?", f.before_id);
  }
  Stmt s(db,
         "SELECT id, round_id, device_id, point_id, started_ms, finished_ms, fused_score, alarm, "
         "fusion_rule, alarm_type, alarm_id, reading_count, created_ms FROM inspections" +
             w.text() + " ORDER BY id DESC LIMIT ?");
  w.bind(s, id > 0 ? 1 : f.limit);
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
  if (with_modalities) add_modalities(db, out);
  return out;
}

std::vector<AlarmRow> alarms(SqlConnection& db, const AlarmFilter& f, int64_t id) {
  Where w;
  if (id > 0) {
    w.add("id = ?", id);
  } else {
    if (f.acknowledged) w.add(*f.acknowledged ? "acknowledged_at_ms IS NOT NULL" : "acknowledged_at_ms IS NULL");
    if (!f.device_id.empty()) w.add("device_id = ?", f.device_id);
    if (f.since_ms > 0) w.add("created_ms >= ?", f.since_ms);  // created_ms is never negative
    if (f.before_id > 0) w.add("id < ?", f.before_id);
  }
  Stmt s(db,
         "SELECT id, type, device_id, point_id, area, round_id, coalesce(inspection_id, 0), "
         "fused_score, modalities, evidence, created_ms, last_seen_ms, repeats, "
         "coalesce(acknowledged_by, ''), coalesce(acknowledged_at_ms, 0), dedupe_key FROM alarms" +
             w.text() + " ORDER BY id DESC LIMIT ?");
  w.bind(s, id > 0 ? 1 : f.limit);
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
  // One statement for all devices, each step an index probe (never a scan of
  // inspections): `seen` walks the distinct inspected device ids through
  // inspections_by_device (a loose index scan, for devices no longer in the plant),
  // `latest` takes each device's newest inspection from the same index, the open
  // alarms come from alarms_open_by_device. One row per modality of that inspection.
  Stmt s(db,
         "WITH RECURSIVE seen(device_id) AS ("
         " SELECT min(device_id) FROM inspections"
         " UNION ALL SELECT (SELECT min(i.device_id) FROM inspections i WHERE i.device_id > "
         "seen.device_id) FROM seen WHERE seen.device_id IS NOT NULL), "
         "ids(device_id) AS (SELECT id FROM devices UNION SELECT device_id FROM seen WHERE "
         "device_id IS NOT NULL), "
         "latest(device_id, last_id) AS (SELECT device_id, (SELECT max(i.id) FROM inspections i "
         "WHERE i.device_id = ids.device_id) FROM ids) "
         "SELECT l.device_id, coalesce(d.name, ''), coalesce(d.area, ''), coalesce(d.location, ''), "
         "coalesce(d.points, '[]'), coalesce(i.id, 0), i.finished_ms, i.fused_score, i.alarm, "
         "i.alarm_type, (SELECT count(*) FROM alarms a WHERE a.device_id = l.device_id AND "
         "a.acknowledged_at_ms IS NULL), m.modality, m.status "
         "FROM latest l LEFT JOIN devices d ON d.id = l.device_id "
         "LEFT JOIN inspections i ON i.id = l.last_id "
         "LEFT JOIN inspection_modalities m ON m.inspection_id = l.last_id");
  std::map<std::string, DeviceStatus> by_id;  // byte order of ids, as before
  while (s.step()) {
    const std::string id = s.text(0);
    auto [it, fresh] = by_id.try_emplace(id);
    DeviceStatus& st = it->second;
    if (fresh) {
      st.device = {id, s.text(1), s.text(2), s.text(3), parse_json(s.text(4), "[]")};
      st.last_inspection_id = s.i64(5);
      if (st.last_inspection_id > 0) {
        st.last_inspected_ms = s.i64(6);
        st.fused_score = s.f64(7);
        st.alarm = s.i64(8) != 0;
        st.alarm_type = s.text(9);
      }
      st.open_alarms = s.i64(10);
    }
    if (!s.is_null(11)) st.modality_status[s.text(11)] = s.text(12);
  }
  std::vector<DeviceStatus> out;
  out.reserve(by_id.size());
  for (auto& entry : by_id) out.push_back(std::move(entry.second));
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
