// Edge -> centre forwarding (see edge_sync.h and docs/scale-out.md): read a batch of
// changes after a rev from the edge in one snapshot, apply it to the centre in one
// transaction keyed by (edge id, edge row id), then move the edge's mark.
#include "store/edge_sync.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "mmfuse/error.h"
#include "store/backend.h"
#include "store/row_writes.h"
#include "store/sql_connection.h"
#include "store/store_reader.h"
#include "store/store_rows.h"

namespace mmfuse::store {

namespace {

struct ForwardedInspection {
  InspectionRow row;
  std::vector<SensorReading> readings;
  std::vector<std::string> evidence;  // the edge's evidence_refs paths (absolute)
};

struct ForwardedAlarm {
  AlarmRow row;
  std::vector<std::string> evidence;
};

// The rows changed in revs (from, to] of an edge, read in one snapshot.
struct Batch {
  int64_t from = 0, to = 0;
  std::vector<DeviceInfo> devices;
  std::vector<RoundInfo> rounds;
  std::vector<ForwardedAlarm> alarms;
  std::vector<ForwardedInspection> inspections;
};

std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string host_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) return "edge";
  return host;
}

// The centre URL as the edge keeps it: without a password.
std::string target_key(const std::string& url) {
  std::string key = redact_store_url(url);
  const size_t hidden = key.find(":***@");
  if (hidden != std::string::npos) key.erase(hidden, 4);
  return key;
}

void check_edge_id(const std::string& id) {
  MMFUSE_CHECK(!id.empty() && id.size() <= 128, bad_input,
               "edge sync: the edge id must be 1 to 128 characters");
  for (char c : id)
    MMFUSE_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == ':',
                 bad_input,
                 "edge sync: edge id '" + id + "' may hold only letters, digits and - _ . :");
}

std::string store_identity(SqlConnection& db) {
  Stmt s(db, "SELECT value FROM store_meta WHERE key = 'store_id'");
  return s.step() ? s.text(0) : std::string();
}

std::vector<std::string> paths(SqlConnection& db, const char* column, int64_t id) {
  Stmt s(db, std::string("SELECT DISTINCT path FROM evidence_refs WHERE ") + column +
                 " = ? ORDER BY path");
  s.bind(1, id);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

Batch read_batch(SqlConnection& db, int64_t from, int limit, bool with_devices) {
  Transaction tx(db, false);  // one snapshot: the counter and the rows agree
  Batch b;
  b.from = from;
  {
    // `limit` inspections at most (each has its own rev); else everything up to now.
    Stmt s(db, "SELECT rev FROM inspections WHERE rev > ? ORDER BY rev LIMIT 1 OFFSET ?");
    s.bind(1, from).bind(2, static_cast<int64_t>(std::max(1, limit) - 1));
    b.to = s.step() ? s.i64(0) : sql_scalar(db, "SELECT rev FROM sync_counter");
  }
  b.to = std::max(b.to, from);
  if (with_devices) b.devices = rows::devices(db, "");
  {
    Stmt s(db, "SELECT id FROM rounds WHERE rev > ? AND rev <= ? ORDER BY rev");
    s.bind(1, from).bind(2, b.to);
    std::vector<std::string> ids;
    while (s.step()) ids.push_back(s.text(0));
    for (const auto& id : ids)
      for (auto& r : rows::rounds(db, id, 1)) b.rounds.push_back(std::move(r));
  }
  std::vector<int64_t> inspection_ids;
  {
    Stmt s(db, "SELECT id FROM inspections WHERE rev > ? AND rev <= ? ORDER BY rev");
    s.bind(1, from).bind(2, b.to);
    while (s.step()) inspection_ids.push_back(s.i64(0));
  }
  // Alarms changed in the range, and the alarms those inspections point at (so the
  // centre can link them whatever rev the alarm has now).
  std::set<int64_t> alarm_ids;
  {
    Stmt s(db,
           "SELECT id FROM alarms WHERE rev > ?1 AND rev <= ?2 UNION SELECT alarm_id FROM "
           "inspections WHERE rev > ?1 AND rev <= ?2 AND alarm_id > 0");
    s.bind(1, from).bind(2, b.to);
    while (s.step()) alarm_ids.insert(s.i64(0));
  }
  for (int64_t id : alarm_ids)
    for (auto& a : rows::alarms(db, AlarmFilter{}, id))
      b.alarms.push_back({std::move(a), paths(db, "alarm_id", id)});
  Stmt readings(
      db,
      "SELECT s.device_id, s.point_id, s.channel, r.t_ms, r.value FROM sensor_readings r "
      "JOIN sensor_series s ON s.id = r.series_id WHERE r.inspection_id = ? ORDER BY r.id");
  for (int64_t id : inspection_ids) {
    auto v = rows::inspections(db, InspectionFilter{}, id);
    if (v.empty()) continue;
    ForwardedInspection f;
    f.row = std::move(v.front());
    readings.reset();
    readings.bind(1, id);
    while (readings.step())
      f.readings.push_back(
          {readings.text(0), readings.text(1), readings.text(2), readings.i64(3), readings.f64(4)});
    f.evidence = paths(db, "inspection_id", id);
    b.inspections.push_back(std::move(f));
  }
  tx.commit();
  return b;
}

// (edge_id, edge_row_id) -> the centre's id, 0 when the centre has no such row.
class EdgeRowIndex {
 public:
  EdgeRowIndex(SqlConnection& db, const char* table, std::string edge_id)
      : s_(db, std::string("SELECT id FROM ") + table + " WHERE edge_id = ? AND edge_row_id = ?"),
        edge_id_(std::move(edge_id)) {}
  int64_t find(int64_t edge_row_id) {
    s_.reset();
    s_.bind(1, edge_id_).bind(2, edge_row_id);
    const int64_t id = s_.step() ? s_.i64(0) : 0;
    s_.reset();  // no statement left open at COMMIT
    return id;
  }

 private:
  Stmt s_;
  std::string edge_id_;
};

std::string centre_round(const std::string& edge_id, const std::string& round_id) {
  return round_id.empty() ? round_id : edge_id + "/" + round_id;
}

}  // namespace

std::string EdgeSync::register_target(Store& edge, const std::string& target,
                                      const std::string& edge_id) {
  const std::string key = target_key(target);
  if (!edge_id.empty()) check_edge_id(edge_id);
  std::lock_guard<std::mutex> lock(edge.write_mutex_);
  Transaction tx(*edge.writer_, true);
  Stmt s(*edge.writer_, "SELECT edge_id FROM forward_marks WHERE target = ?");
  s.bind(1, key);
  if (s.step()) {
    const std::string kept = s.text(0);
    s.reset();
    MMFUSE_CHECK(edge_id.empty() || edge_id == kept, bad_input,
                 "edge sync: " + edge.location() + " forwards to " + key + " as edge '" + kept +
                     "'; another id ('" + edge_id +
                     "') would duplicate its history there (mmfuse store sync --forget first)");
    tx.commit();
    return kept;
  }
  s.reset();
  const std::string id = edge_id.empty() ? host_name() : edge_id;
  check_edge_id(id);
  Stmt(*edge.writer_, "INSERT INTO forward_marks(target, edge_id, rev) VALUES(?, ?, 0)")
      .bind(1, key)
      .bind(2, id)
      .run();
  tx.commit();
  return id;
}

void EdgeSync::note_failure(Store& edge, const std::string& target, const std::string& error) {
  std::lock_guard<std::mutex> lock(edge.write_mutex_);
  Transaction tx(*edge.writer_, true);
  Stmt(*edge.writer_,
       "UPDATE forward_marks SET last_attempt_ms = ?, last_error = ? WHERE target = ?")
      .bind(1, edge.clock_->now_ms())
      .bind(2, error.substr(0, 500))
      .bind(3, target_key(target))
      .run();
  tx.commit();
}

bool EdgeSync::forget_target(Store& edge, const std::string& target) {
  std::lock_guard<std::mutex> lock(edge.write_mutex_);
  Transaction tx(*edge.writer_, true);
  const bool gone = Stmt(*edge.writer_, "DELETE FROM forward_marks WHERE target = ?")
                        .bind(1, target_key(target))
                        .run() > 0;
  tx.commit();
  return gone;
}

std::vector<ForwardMark> EdgeSync::marks(const Store& edge) {
  auto r = edge.reader();
  Transaction tx(r.db(), false);
  Stmt s(
      r.db(),
      "SELECT target, edge_id, rev, forwarded, last_ok_ms, last_attempt_ms, last_error, "
      "(SELECT count(*) FROM inspections i WHERE i.rev > f.rev), "
      "(SELECT count(*) FROM alarms a WHERE a.rev > f.rev) FROM forward_marks f ORDER BY target");
  std::vector<ForwardMark> out;
  while (s.step()) {
    ForwardMark m;
    m.target = s.text(0);
    m.edge_id = s.text(1);
    m.rev = s.i64(2);
    m.forwarded = s.i64(3);
    m.last_ok_ms = s.i64(4);
    m.last_attempt_ms = s.i64(5);
    m.last_error = s.text(6);
    m.pending_inspections = s.i64(7);
    m.pending_alarms = s.i64(8);
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<EdgeMark> EdgeSync::edges(const Store& centre) {
  auto r = centre.reader();
  Stmt s(r.db(), "SELECT edge_id, rev, updated_ms FROM edge_marks ORDER BY edge_id");
  std::vector<EdgeMark> out;
  while (s.step()) out.push_back({s.text(0), s.i64(1), s.i64(2)});
  return out;
}

ForwardReport EdgeSync::forward(Store& edge, Store& centre, const std::string& target,
                                const ForwardOptions& options) {
  MMFUSE_CHECK(edge.location() != centre.location(), bad_input,
               "edge sync: the edge and the centre are the same store (" + edge.location() + ")");
  MMFUSE_CHECK(options.batch_inspections > 0, bad_input,
               "edge sync: batch_inspections must be > 0");
  ForwardReport rep;
  rep.edge_id = register_target(edge, target, options.edge_id);
  rep.centre = centre.location();
  const std::string key = target_key(target);
  std::string identity;
  {
    auto r = edge.reader();
    identity = store_identity(r.db());
  }
  MMFUSE_CHECK(!identity.empty(), internal, "edge sync: the edge store has no store_id");
  // Start from what the centre says it has (the edge's own mark may lag by one batch
  // when it died between the centre's commit and its own).
  int64_t from = 0;
  {
    auto r = centre.reader();
    Stmt s(r.db(), "SELECT store_id, rev FROM edge_marks WHERE edge_id = ?");
    s.bind(1, rep.edge_id);
    if (s.step()) {
      MMFUSE_CHECK(s.text(0) == identity, bad_input,
                   "edge sync: " + rep.centre + " already holds edge '" + rep.edge_id +
                       "' from another store; give this edge its own --edge-id");
      from = s.i64(1);
    }
  }
  rep.from_rev = from;
  for (bool first = true;; first = false) {
    Batch b;
    {
      auto r = edge.reader();
      b = read_batch(r.db(), from, options.batch_inspections, first);
    }
    if (b.to <= from && b.devices.empty()) break;
    int64_t added = 0;
    {
      std::lock_guard<std::mutex> lock(centre.write_mutex_);
      SqlConnection& db = *centre.writer_;
      Transaction tx(db, true);
      // One forwarder per edge at a time (two started by mistake queue here).
      centre.backend_->lock_key(db, "mmfuse:edge|" + rep.edge_id);
      const int64_t now = centre.clock_->now_ms();
      {
        Stmt m(db, "SELECT store_id, rev FROM edge_marks WHERE edge_id = ?");
        m.bind(1, rep.edge_id);
        if (m.step()) {
          MMFUSE_CHECK(m.text(0) == identity, bad_input,
                       "edge sync: " + rep.centre + " already holds edge '" + rep.edge_id +
                           "' from another store; give this edge its own --edge-id");
        }
        m.reset();
      }
      if (!b.devices.empty()) {
        Stmt s(db,
               "INSERT INTO devices(id, name, area, location, points, updated_ms) "
               "VALUES(?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET name=excluded.name, "
               "area=excluded.area, location=excluded.location, points=excluded.points, "
               "updated_ms=excluded.updated_ms");
        for (const auto& d : b.devices) {
          s.reset();
          s.bind(1, d.id).bind(2, d.name).bind(3, d.area).bind(4, d.location);
          s.bind(5, json_text(d.points)).bind(6, now).run();
        }
        rep.devices += static_cast<int64_t>(b.devices.size());
      }
      {
        Stmt s(db,
               "INSERT INTO rounds(id, started_ms, finished_ms, status, total, position, edge_id) "
               "VALUES(?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
               "finished_ms=excluded.finished_ms, status=excluded.status, total=excluded.total, "
               "position=excluded.position");
        for (const auto& r : b.rounds) {
          s.reset();
          s.bind(1, centre_round(rep.edge_id, r.id)).bind(2, r.started_ms).bind(3, r.finished_ms);
          s.bind(4, std::string(round_status_name(r.status))).bind(5, r.total);
          s.bind(6, r.position).bind(7, rep.edge_id).run();
        }
        rep.rounds += static_cast<int64_t>(b.rounds.size());
      }
      EdgeRowIndex alarm_index(db, "alarms", rep.edge_id);
      EdgeRowIndex inspection_index(db, "inspections", rep.edge_id);
      std::map<int64_t, int64_t> alarm_ids;               // edge -> centre
      std::vector<std::pair<int64_t, int64_t>> unlinked;  // centre alarm, edge inspection
      {
        // An alarm changes on the edge (repeats, last seen, acknowledgement): the centre
        // takes the newer counts, and the first acknowledgement wins on either side, so
        // one made at the centre is never overwritten by the edge.
        Stmt update(db,
                    "UPDATE alarms SET repeats = CASE WHEN repeats > ?1 THEN repeats ELSE ?1 END, "
                    "last_seen_ms = CASE WHEN last_seen_ms > ?2 THEN last_seen_ms ELSE ?2 END, "
                    "acknowledged_by = coalesce(acknowledged_by, ?3), "
                    "acknowledged_at_ms = coalesce(acknowledged_at_ms, ?4) WHERE id = ?5");
        Stmt insert(db,
                    "INSERT INTO alarms(type, device_id, point_id, area, round_id, inspection_id, "
                    "fused_score, modalities, evidence, created_ms, last_seen_ms, repeats, "
                    "acknowledged_by, acknowledged_at_ms, dedupe_key, edge_id, edge_row_id) "
                    "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
        for (const auto& fa : b.alarms) {
          const AlarmRow& a = fa.row;
          const bool acked = a.acknowledged_at_ms > 0;
          int64_t id = alarm_index.find(a.id);
          if (id > 0) {
            update.reset();
            update.bind(1, a.repeats).bind(2, a.last_seen_ms);
            if (acked)
              update.bind(3, a.acknowledged_by).bind(4, a.acknowledged_at_ms);
            else
              update.bind_null(3).bind_null(4);
            update.bind(5, id).run();
          } else {
            const int64_t inspection =
                a.inspection_id > 0 ? inspection_index.find(a.inspection_id) : 0;
            insert.reset();
            insert.bind(1, a.type).bind(2, a.device_id).bind(3, a.point_id).bind(4, a.area);
            insert.bind(5, centre_round(rep.edge_id, a.round_id));
            if (inspection > 0)
              insert.bind(6, inspection);
            else
              insert.bind_null(6);
            insert.bind(7, a.fused_score).bind(8, json_text(a.modalities));
            insert.bind(9, json_text(nlohmann::json(a.evidence)));
            insert.bind(10, a.created_ms).bind(11, a.last_seen_ms).bind(12, a.repeats);
            if (acked)
              insert.bind(13, a.acknowledged_by).bind(14, a.acknowledged_at_ms);
            else
              insert.bind_null(13).bind_null(14);
            insert.bind(15, a.dedupe_key).bind(16, rep.edge_id).bind(17, a.id);
            MMFUSE_ASSERT(insert.step());
            id = insert.i64(0);
            insert.run();
            insert_evidence_refs(db, centre.data_dir_, fa.evidence, 0, id);
            if (inspection == 0 && a.inspection_id > 0) unlinked.emplace_back(id, a.inspection_id);
          }
          alarm_ids[a.id] = id;
        }
        rep.alarms += static_cast<int64_t>(b.alarms.size());
      }
      {
        Stmt ins(db,
                 "INSERT INTO inspections(round_id, device_id, point_id, started_ms, finished_ms, "
                 "fused_score, alarm, fusion_rule, alarm_type, alarm_id, modality_count, "
                 "reading_count, created_ms, edge_id, edge_row_id) "
                 "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
        Stmt mod(db,
                 "INSERT INTO inspection_modalities(inspection_id, modality, status, score, "
                 "raw_score, decision, message, detail, evidence) VALUES(?,?,?,?,?,?,?,?,?)");
        for (const auto& fi : b.inspections) {
          if (inspection_index.find(fi.row.id) > 0) continue;  // sent before: immutable
          const inspect::InspectionRecord& rec = fi.row.record;
          int64_t alarm = 0;
          if (fi.row.alarm_id > 0) {
            auto it = alarm_ids.find(fi.row.alarm_id);
            alarm = it != alarm_ids.end() ? it->second : alarm_index.find(fi.row.alarm_id);
          }
          ins.reset();
          ins.bind(1, centre_round(rep.edge_id, rec.round_id)).bind(2, rec.device_id);
          ins.bind(3, rec.point_id).bind(4, rec.started_ms).bind(5, rec.finished_ms);
          ins.bind(6, rec.fused_score).bind(7, rec.alarm ? 1 : 0).bind(8, rec.fusion_rule);
          ins.bind(9, rec.alarm_type).bind(10, alarm);
          ins.bind(11, static_cast<int64_t>(rec.modalities.size()));
          ins.bind(12, fi.row.reading_count).bind(13, fi.row.created_ms);
          ins.bind(14, rep.edge_id).bind(15, fi.row.id);
          MMFUSE_ASSERT(ins.step());
          const int64_t id = ins.i64(0);
          ins.run();
          for (const auto& m : rec.modalities) {
            mod.reset();
            mod.bind(1, id).bind(2, std::string(inspect::modality_name(m.modality)));
            mod.bind(3, std::string(inspect::modality_status_name(m.status)));
            mod.bind(4, m.score).bind(5, m.raw_score).bind(6, m.decision ? 1 : 0);
            mod.bind(7, m.message)
                .bind(8, m.detail.is_null() ? std::string("{}") : json_text(m.detail));
            mod.bind(9, json_text(nlohmann::json(m.evidence))).run();
          }
          insert_evidence_refs(db, centre.data_dir_, fi.evidence, id, 0);
          insert_readings(db, fi.readings, id);
          ++added;
        }
      }
      // Alarms that arrived before their inspection (same batch) get their link now.
      for (const auto& [alarm, edge_inspection] : unlinked) {
        const int64_t inspection = inspection_index.find(edge_inspection);
        if (inspection > 0)
          Stmt(db, "UPDATE alarms SET inspection_id = ? WHERE id = ? AND inspection_id IS NULL")
              .bind(1, inspection)
              .bind(2, alarm)
              .run();
      }
      Stmt(db,
           "INSERT INTO edge_marks(edge_id, store_id, rev, updated_ms) VALUES(?,?,?,?) "
           "ON CONFLICT(edge_id) DO UPDATE SET rev = CASE WHEN edge_marks.rev > excluded.rev "
           "THEN edge_marks.rev ELSE excluded.rev END, updated_ms = excluded.updated_ms")
          .bind(1, rep.edge_id)
          .bind(2, identity)
          .bind(3, b.to)
          .bind(4, now)
          .run();
      tx.commit();
    }
    ++rep.batches;
    rep.inspections += added;
    {
      std::lock_guard<std::mutex> lock(edge.write_mutex_);
      Transaction tx(*edge.writer_, true);
      const int64_t now = edge.clock_->now_ms();
      Stmt(*edge.writer_,
           "UPDATE forward_marks SET rev = ?, forwarded = forwarded + ?, last_ok_ms = ?, "
           "last_attempt_ms = ?, last_error = '' WHERE target = ?")
          .bind(1, b.to)
          .bind(2, added)
          .bind(3, now)
          .bind(4, now)
          .bind(5, key)
          .run();
      tx.commit();
    }
    const bool progressed = b.to > from;
    from = std::max(from, b.to);
    if (!progressed) break;  // a devices-only pass
  }
  rep.to_rev = from;
  {
    // Caught up (or nothing to send): the edge's mark is the centre's.
    std::lock_guard<std::mutex> lock(edge.write_mutex_);
    Transaction tx(*edge.writer_, true);
    const int64_t now = edge.clock_->now_ms();
    Stmt(*edge.writer_,
         "UPDATE forward_marks SET rev = ?, last_ok_ms = ?, last_attempt_ms = ?, last_error = '' "
         "WHERE target = ?")
        .bind(1, from)
        .bind(2, now)
        .bind(3, now)
        .bind(4, key)
        .run();
    tx.commit();
  }
  return rep;
}

// ---- EdgeForwarder ----

EdgeForwarder::EdgeForwarder(Store& edge, std::string centre_url, ForwardOptions options,
                             int64_t interval_ms, Log log)
    : edge_(edge),
      url_(std::move(centre_url)),
      options_(std::move(options)),
      interval_ms_(std::max<int64_t>(100, interval_ms)),
      log_(std::move(log)) {
  // Bad configuration is an error now, not in the background: the URL's form and an
  // edge id that contradicts the one kept. The centre itself may well be down.
  const StoreLocation where = parse_store_url(url_);
  MMFUSE_CHECK(where.kind == StoreKind::postgres || !where.db_file.empty(), bad_input,
               "--forward-to " + redact_store_url(url_) + ": not a store URL");
  options_.edge_id = EdgeSync::register_target(edge_, url_, options_.edge_id);
}

EdgeForwarder::~EdgeForwarder() {
  stop(false);
}

void EdgeForwarder::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  poke_ = true;  // a first pass at once
  thread_ = std::thread([this] { run(); });
}

void EdgeForwarder::notify() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    poke_ = true;
  }
  wake_.notify_all();
}

void EdgeForwarder::stop(bool flush) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (flush) pass();
}

bool EdgeForwarder::pass(bool throw_config_errors) {
  std::lock_guard<std::mutex> lock(pass_mutex_);
  bool reached = centre_ != nullptr;
  try {
    if (!centre_) {
      StoreOptions so;
      so.clock = &edge_.clock();
      centre_ = Store::open(parse_store_url(url_), so);
      reached = true;
    }
    const ForwardReport rep = EdgeSync::forward(edge_, *centre_, url_, options_);
    if (!last_error_.empty() && log_)
      log_("forwarding to " + rep.centre + " works again (" + std::to_string(rep.inspections) +
           " inspections sent)");
    last_error_.clear();
    return true;
  } catch (const std::exception& e) {
    centre_.reset();  // reopened (and its schema re-checked) on the next pass
    const auto* err = dynamic_cast<const Error*>(&e);
    // A centre that answers but is refused (schema newer than this build, another
    // store under this edge id) is bad configuration, not an outage.
    if (throw_config_errors && err && (err->kind() == ErrorKind::unsupported || reached)) throw;
    const std::string msg = e.what();
    if (last_error_.empty() && log_)  // once per outage; the mark keeps the latest
      log_("forwarding to " + redact_store_url(url_) + " failed, will retry: " + msg);
    last_error_ = msg;
    try {
      EdgeSync::note_failure(edge_, url_, msg);
    } catch (const std::exception&) {
    }
    return false;
  }
}

void EdgeForwarder::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(interval_ms_),
                   [this] { return stop_ || poke_; });
    if (stop_) break;
    poke_ = false;
    lock.unlock();
    pass();
    lock.lock();
  }
}

}  // namespace mmfuse::store

namespace mmfuse::store {

nlohmann::ordered_json to_json(const ForwardReport& r) {
  return {{"edge_id", r.edge_id},         {"centre", r.centre},     {"batches", r.batches},
          {"inspections", r.inspections}, {"alarms", r.alarms},     {"rounds", r.rounds},
          {"devices", r.devices},         {"from_rev", r.from_rev}, {"to_rev", r.to_rev}};
}

nlohmann::ordered_json to_json(const EdgeMark& m) {
  return {{"edge_id", m.edge_id}, {"rev", m.rev}, {"updated_ms", m.updated_ms}};
}

nlohmann::ordered_json to_json(const ForwardMark& m) {
  return {{"target", m.target},
          {"edge_id", m.edge_id},
          {"rev", m.rev},
          {"forwarded", m.forwarded},
          {"pending_inspections", m.pending_inspections},
          {"pending_alarms", m.pending_alarms},
          {"last_ok_ms", m.last_ok_ms},
          {"last_attempt_ms", m.last_attempt_ms},
          {"last_error", m.last_error}};
}

}  // namespace mmfuse::store
