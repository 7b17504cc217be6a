// The inspection store's semantics, the same on every back-end: opening and
// migrations, connections, devices and rounds, recording inspections with their alarm
// and outbox rows (see store.h). SQL engine differences live in the back-ends.
#include "store/store.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "mmfuse/error.h"
#include "store/backend.h"
#include "store/row_writes.h"
#include "store/sql_connection.h"
#include "store/store_reader.h"
#include "store/store_rows.h"
#include "store/sync_rev.h"

namespace fs = std::filesystem;

namespace mmfuse::store {

const char* round_status_name(RoundStatus s) {
  switch (s) {
    case RoundStatus::running: return "running";
    case RoundStatus::finished: return "finished";
    case RoundStatus::aborted: return "aborted";
  }
  return "unknown";
}

RoundStatus parse_round_status(const std::string& s) {
  if (s == "running") return RoundStatus::running;
  if (s == "finished") return RoundStatus::finished;
  if (s == "aborted") return RoundStatus::aborted;
  throw_error(ErrorKind::internal, "unknown round status '" + s + "' in the store");
}

namespace {
void check_sinks(const std::vector<std::string>& sinks);

// Compact JSON text; invalid UTF-8 in strings becomes U+FFFD instead of throwing (a
// detector message with a Latin-1 file name must not cost the whole inspection).
std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

// ---- connections ----

Store::Reader Store::reader() const {
  std::unique_ptr<SqlConnection> c;
  {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    if (!readers_.empty()) {
      c = std::move(readers_.back());
      readers_.pop_back();
    }
  }
  if (!c) {
    try {
      c = backend_->connect(true);
    } catch (const StoreUnavailable& e) {
      // Opened before, so the server is away now: not a configuration error any more.
      throw StoreUnavailable(ErrorKind::internal, e.what());
    }
  }
  return Reader(this, std::move(c));
}

std::unique_ptr<Store> Store::open(const fs::path& data_dir, const StoreOptions& options) {
  MMFUSE_CHECK(!data_dir.empty(), bad_input, "store: the data directory is empty");
  return open(sqlite_location(data_dir), options);
}

std::unique_ptr<Store> Store::open(const StoreLocation& where, const StoreOptions& options) {
  MMFUSE_CHECK(options.retention_days > 0, bad_input, "store: retention_days must be > 0");
  MMFUSE_CHECK(options.unacked_alarm_retention_days > 0, bad_input,
               "store: unacked_alarm_retention_days must be > 0");
  MMFUSE_CHECK(options.dedupe_cooldown_ms >= 0, bad_input,
               "store: dedupe_cooldown_ms must be >= 0");
  check_sinks(options.sinks);
  MMFUSE_CHECK(options.sinks.empty() || options.alarm_payload, bad_input,
               "store: sinks are set but StoreOptions::alarm_payload is not");
  std::unique_ptr<Store> s(new Store());
  std::error_code ec;
  if (!where.data_dir.empty()) {
    s->data_dir_ = fs::absolute(where.data_dir, ec).lexically_normal();
    if (ec) s->data_dir_ = where.data_dir;
    fs::create_directories(s->evidence_dir(), ec);
    if (ec || !fs::is_directory(s->evidence_dir()))
      throw_error(ErrorKind::bad_input,
                  s->evidence_dir().string() + ": cannot create the store folder: " + ec.message());
  }
  s->options_ = options;
  s->clock_ = options.clock ? options.clock : &SystemClock::instance();
  s->sinks_ = options.sinks;
  if (where.kind == StoreKind::postgres) {
    s->backend_ = make_postgres_backend(where.conninfo);
  } else {
    MMFUSE_CHECK(!where.db_file.empty(), bad_input, "store: no SQLite database file given");
    s->db_path_ = fs::absolute(where.db_file, ec).lexically_normal();
    if (ec) s->db_path_ = where.db_file;
    if (s->data_dir_.empty()) s->data_dir_ = s->db_path_.parent_path();
    fs::create_directories(s->db_path_.parent_path(), ec);  // sqlite:///new/dir/store.db
    s->backend_ = make_sqlite_backend(s->db_path_.string(), options.synchronous_full);
  }
  s->writer_ = s->backend_->connect(false);
  {
    std::lock_guard<std::mutex> lock(s->write_mutex_);
    s->backend_->migrate(*s->writer_);
  }
  return s;
}

Store::~Store() {
  readers_.clear();
  // SQLite: closing the last connection checkpoints the WAL into the database file.
  writer_.reset();
}

const char* Store::backend_kind() const {
  return backend_->kind();
}

std::string Store::location() const {
  return backend_->describe();
}

int Store::schema_version() const {
  auto r = reader();
  return backend_->schema_version(r.db());
}

int Store::latest_schema_version() const {
  return backend_->latest_schema_version();
}

int64_t Store::query_int(const std::string& sql) const {
  auto r = reader();
  return sql_scalar(r.db(), sql, -1);
}

StoreCounts Store::counts() const {
  auto r = reader();
  Transaction tx(r.db(), false);
  Stmt s(r.db(),
         "SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM rounds), "
         "(SELECT count(*) FROM inspections), (SELECT count(*) FROM sensor_readings), "
         "(SELECT count(*) FROM alarms), "
         "(SELECT count(*) FROM alarms WHERE acknowledged_at_ms IS NULL), "
         "(SELECT count(*) FROM outbox WHERE delivered_at_ms IS NULL)");
  s.step();
  return {s.i64(0), s.i64(1), s.i64(2), s.i64(3), s.i64(4), s.i64(5), s.i64(6)};
}

void Store::checkpoint() {
  std::lock_guard<std::mutex> lock(write_mutex_);
  backend_->checkpoint(*writer_);
}

std::string Store::integrity_check() const {
  auto r = reader();
  return backend_->integrity_check(r.db());
}

void Store::set_sinks(const std::vector<std::string>& sinks) {
  check_sinks(sinks);
  MMFUSE_CHECK(sinks.empty() || options_.alarm_payload, bad_input,
               "store: sinks are set but StoreOptions::alarm_payload is not");
  std::lock_guard<std::mutex> lock(write_mutex_);
  sinks_ = sinks;
}

// ---- devices ----

void Store::upsert_devices(const std::vector<DeviceInfo>& devices) {
  for (const auto& d : devices)
    MMFUSE_CHECK(!d.id.empty(), bad_input, "store: a device has an empty id");
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  Stmt s(*writer_,
         "INSERT INTO devices(id, name, area, location, points, updated_ms) VALUES(?,?,?,?,?,?) "
         "ON CONFLICT(id) DO UPDATE SET name=excluded.name, area=excluded.area, "
         "location=excluded.location, points=excluded.points, updated_ms=excluded.updated_ms");
  const int64_t now = clock_->now_ms();
  for (const auto& d : devices) {
    s.reset();
    s.bind(1, d.id).bind(2, d.name).bind(3, d.area).bind(4, d.location);
    s.bind(5, d.points.is_null() ? std::string("[]") : json_text(d.points)).bind(6, now).run();
  }
  tx.commit();
}

std::vector<DeviceInfo> Store::list_devices() const {
  auto r = reader();
  return rows::devices(r.db(), "");
}

std::optional<DeviceInfo> Store::find_device(const std::string& id) const {
  auto r = reader();
  auto v = rows::devices(r.db(), id);
  if (v.empty()) return std::nullopt;
  return v.front();
}

// ---- rounds ----

RoundInfo Store::begin_round(int64_t total, const std::string& id) {
  MMFUSE_CHECK(total >= 0, bad_input, "store: a round's total must be >= 0");
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  const int64_t now = clock_->now_ms();
  auto exists = [&](const std::string& rid) {
    Stmt q(*writer_, "SELECT 1 FROM rounds WHERE id = ?");
    q.bind(1, rid);
    return q.step();
  };
  std::string rid = id;
  if (rid.empty()) {
    // round-20261129T075000Z, with -2, -3 ... when two rounds start in one second.
    std::string iso = iso8601_utc(now);
    std::string base = "round-";
    for (char c : iso.substr(0, 19))
      if (c != '-' && c != ':') base.push_back(c);
    base.push_back('Z');
    rid = base;
    for (int n = 2; exists(rid); ++n) rid = base + "-" + std::to_string(n);
  } else if (exists(rid)) {
    throw_error(ErrorKind::bad_input, "store: round '" + rid + "' already exists");
  }
  Stmt ins(*writer_,
           "INSERT INTO rounds(id, started_ms, finished_ms, status, total, position, rev) "
           "VALUES(?, ?, 0, 'running', ?, 0, ?)");
  ins.bind(1, rid).bind(2, now).bind(3, total).bind(4, next_rev(*writer_)).run();
  tx.commit();
  RoundInfo info;
  info.id = rid;
  info.started_ms = now;
  info.total = total;
  return info;
}

void Store::finish_round(const std::string& id, RoundStatus status) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  Stmt s(*writer_, "UPDATE rounds SET status = ?, finished_ms = ?, rev = ? WHERE id = ?");
  s.bind(1, std::string(round_status_name(status))).bind(2, clock_->now_ms());
  if (s.bind(3, next_rev(*writer_)).bind(4, id).run() == 0)
    throw_error(ErrorKind::not_found, "store: no round '" + id + "'");
  tx.commit();
}

RoundInfo Store::round_progress(const std::string& id) const {
  auto r = reader();
  Transaction tx(r.db(), false);
  auto rounds = rows::rounds(r.db(), id, 1);
  if (rounds.empty()) throw_error(ErrorKind::not_found, "store: no round '" + id + "'");
  RoundInfo info = rounds.front();
  rows::round_done(r.db(), &info);
  return info;
}

std::optional<RoundInfo> Store::resume_round() const {
  auto r = reader();
  Transaction tx(r.db(), false);
  Stmt s(r.db(),
         "SELECT id FROM rounds WHERE status = 'running' AND edge_id = '' "
         "ORDER BY started_ms DESC, rowid DESC LIMIT 1");
  if (!s.step()) return std::nullopt;
  auto rounds = rows::rounds(r.db(), s.text(0), 1);
  if (rounds.empty()) return std::nullopt;
  RoundInfo info = rounds.front();
  rows::round_done(r.db(), &info);
  return info;
}

std::vector<RoundInfo> Store::list_rounds(int limit) const {
  auto r = reader();
  return rows::rounds(r.db(), "", limit);
}

// ---- inspections ----

namespace {

void check_sinks(const std::vector<std::string>& sinks) {
  std::set<std::string> seen;
  for (const auto& s : sinks)
    MMFUSE_CHECK(!s.empty() && seen.insert(s).second, bad_input,
                 "store: sink names must be non-empty and distinct ('" + s + "')");
}

void check_record(const inspect::InspectionRecord& rec) {
  MMFUSE_CHECK(!rec.device_id.empty(), bad_input, "store: inspection without a device id");
  MMFUSE_CHECK(std::isfinite(rec.fused_score), bad_input,
               "store: inspection of " + rec.device_id + ": fused_score is not finite");
  std::set<inspect::Modality> seen;
  for (const auto& m : rec.modalities) {
    const std::string name = inspect::modality_name(m.modality);
    MMFUSE_CHECK(seen.insert(m.modality).second, bad_input,
                 "store: inspection of " + rec.device_id + " lists modality " + name + " twice");
    MMFUSE_CHECK(std::isfinite(m.score) && std::isfinite(m.raw_score), bad_input,
                 "store: inspection of " + rec.device_id + ": " + name + " score is not finite");
  }
}

void check_readings(const std::vector<SensorReading>& readings) {
  for (const auto& r : readings) {
    MMFUSE_CHECK(!r.device_id.empty() && !r.channel.empty(), bad_input,
                 "store: a sensor reading lacks its device id or channel");
    MMFUSE_CHECK(std::isfinite(r.value), bad_input,
                 "store: reading " + r.device_id + "/" + r.channel + " is not finite");
  }
}

}  // namespace

void insert_readings(SqlConnection& db, const std::vector<SensorReading>& readings,
                     int64_t inspection_id) {
  // Series ids of this batch, looked up (or created) once per (device, point, channel).
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> series;
  Stmt add(db,
           "INSERT INTO sensor_series(device_id, point_id, channel) VALUES(?,?,?) "
           "ON CONFLICT DO NOTHING");
  Stmt find(db,
            "SELECT id FROM sensor_series WHERE device_id = ? AND channel = ? AND point_id = ?");
  std::vector<int64_t> series_of(readings.size());
  for (size_t i = 0; i < readings.size(); ++i) {
    const auto& r = readings[i];
    auto key = std::make_tuple(r.device_id, r.point_id, r.channel);
    auto it = series.find(key);
    if (it == series.end()) {
      add.reset();
      add.bind(1, r.device_id).bind(2, r.point_id).bind(3, r.channel).run();
      find.reset();
      find.bind(1, r.device_id).bind(2, r.channel).bind(3, r.point_id);
      MMFUSE_ASSERT(find.step());
      it = series.emplace(key, find.i64(0)).first;
    }
    series_of[i] = it->second;
  }
  // Many rows per statement: a minute of samples is hundreds of rows, and a network
  // round trip per row (PostgreSQL) would cost more than the rest of the inspection.
  constexpr size_t kRowsPerInsert = 128;
  auto make_insert = [&](size_t rows) {
    std::string sql = "INSERT INTO sensor_readings(series_id, inspection_id, t_ms, value) VALUES";
    for (size_t k = 0; k < rows; ++k) sql += k ? ",(?,?,?,?)" : "(?,?,?,?)";
    return std::make_unique<Stmt>(db, sql);
  };
  std::unique_ptr<Stmt> full, tail;
  for (size_t begin = 0; begin < readings.size(); begin += kRowsPerInsert) {
    const size_t rows = std::min(kRowsPerInsert, readings.size() - begin);
    std::unique_ptr<Stmt>& st = rows == kRowsPerInsert ? full : tail;
    if (!st) st = make_insert(rows);
    st->reset();
    for (size_t k = 0; k < rows; ++k) {
      const auto& r = readings[begin + k];
      const int base = static_cast<int>(4 * k);
      st->bind(base + 1, series_of[begin + k]);
      if (inspection_id > 0)
        st->bind(base + 2, inspection_id);
      else
        st->bind_null(base + 2);
      st->bind(base + 3, r.t_ms).bind(base + 4, r.value);
    }
    st->run();
  }
}

namespace {

// Absolute, lexically normal form of an evidence path (relative = under data_dir).
std::string evidence_key(const fs::path& data_dir, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = data_dir / p;
  return p.lexically_normal().string();
}

}  // namespace

void insert_evidence_refs(SqlConnection& db, const fs::path& data_dir,
                          const std::vector<std::string>& paths, int64_t inspection_id,
                          int64_t alarm_id) {
  Stmt s(db, "INSERT INTO evidence_refs(path, inspection_id, alarm_id) VALUES(?,?,?)");
  for (const auto& p : paths) {
    s.reset();
    s.bind(1, evidence_key(data_dir, p));
    if (inspection_id > 0)
      s.bind(2, inspection_id);
    else
      s.bind_null(2);
    if (alarm_id > 0)
      s.bind(3, alarm_id);
    else
      s.bind_null(3);
    s.run();
  }
}

namespace {

std::vector<std::string> all_evidence(const inspect::InspectionRecord& rec) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& m : rec.modalities)
    for (const auto& e : m.evidence)
      if (seen.insert(e).second) out.push_back(e);
  return out;
}

}  // namespace

int64_t Store::insert_alarm(const inspect::InspectionRecord& rec, int64_t inspection_id,
                            int64_t now, bool* deduplicated) {
  const std::string type = rec.alarm_type.empty() ? std::string("fused") : rec.alarm_type;
  const std::string key = rec.device_id + "|" + type;
  *deduplicated = false;
  // Other processes may record the same key at the same time (PostgreSQL): the check
  // and the insert below happen under the key's lock.
  backend_->lock_key(*writer_, key);
  {
    Stmt last(*writer_,
              "SELECT id, created_ms FROM alarms WHERE dedupe_key = ? "
              "ORDER BY created_ms DESC, id DESC LIMIT 1");
    last.bind(1, key);
    if (last.step() && now - last.i64(1) < options_.dedupe_cooldown_ms) {
      const int64_t id = last.i64(0);
      Stmt up(*writer_,
              "UPDATE alarms SET repeats = repeats + 1, last_seen_ms = CASE WHEN "
              "last_seen_ms > ?1 THEN last_seen_ms ELSE ?1 END WHERE id = ?2");
      up.bind(1, now).bind(2, id).run();
      *deduplicated = true;
      return id;
    }
  }
  AlarmRow a;
  a.type = type;
  a.device_id = rec.device_id;
  a.point_id = rec.point_id;
  a.round_id = rec.round_id;
  a.inspection_id = inspection_id;
  a.fused_score = rec.fused_score;
  a.evidence = all_evidence(rec);
  a.created_ms = now;
  a.last_seen_ms = now;
  a.dedupe_key = key;
  {
    Stmt area(*writer_, "SELECT area FROM devices WHERE id = ?");
    area.bind(1, rec.device_id);
    if (area.step()) a.area = area.text(0);
  }
  for (const auto& m : rec.modalities)
    a.modalities[inspect::modality_name(m.modality)] = {
        {"status", inspect::modality_status_name(m.status)},
        {"score", m.score},
        {"decision", m.decision},
        {"message", m.message}};
  Stmt ins(*writer_,
           "INSERT INTO alarms(type, device_id, point_id, area, round_id, inspection_id, "
           "fused_score, modalities, evidence, created_ms, last_seen_ms, repeats, dedupe_key) "
           "VALUES(?,?,?,?,?,?,?,?,?,?,?,0,?) RETURNING id");
  ins.bind(1, a.type).bind(2, a.device_id).bind(3, a.point_id).bind(4, a.area);
  ins.bind(5, a.round_id).bind(6, inspection_id).bind(7, a.fused_score);
  ins.bind(8, json_text(a.modalities)).bind(9, json_text(nlohmann::json(a.evidence)));
  ins.bind(10, now).bind(11, now).bind(12, key);
  MMFUSE_ASSERT(ins.step());
  a.id = ins.i64(0);
  ins.run();  // to completion: SQLite keeps an unfinished INSERT open (COMMIT would fail)
  insert_evidence_refs(*writer_, data_dir_, a.evidence, 0, a.id);
  if (sinks_.empty()) return a.id;
  // The payload is frozen now: what each sink gets is what was committed with the alarm.
  const std::string payload = options_.alarm_payload(a);
  // Outbox ids in commit order: with several writers (PostgreSQL) an id taken before
  // another transaction's smaller one commits would let a dispatcher deliver past it,
  // out of order. Held to commit, after the key's lock (always in that order).
  backend_->lock_key(*writer_, "mmfuse:outbox");
  Stmt out(*writer_,
           "INSERT INTO outbox(alarm_id, sink, payload, attempts, next_attempt_at_ms, created_ms) "
           "VALUES(?,?,?,0,?,?)");
  for (const auto& sink : sinks_) {
    out.reset();
    out.bind(1, a.id).bind(2, sink).bind(3, payload).bind(4, now).bind(5, now).run();
  }
  return a.id;
}

RecordOutcome Store::record_inspection(const inspect::InspectionRecord& rec,
                                       const std::vector<SensorReading>& readings) {
  check_record(rec);
  check_readings(readings);
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  const int64_t now = clock_->now_ms();
  RecordOutcome out;
  Stmt ins(*writer_,
           "INSERT INTO inspections(round_id, device_id, point_id, started_ms, finished_ms, "
           "fused_score, alarm, fusion_rule, alarm_type, modality_count, reading_count, "
           "created_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
  ins.bind(1, rec.round_id).bind(2, rec.device_id).bind(3, rec.point_id);
  ins.bind(4, rec.started_ms).bind(5, rec.finished_ms).bind(6, rec.fused_score);
  ins.bind(7, rec.alarm ? 1 : 0).bind(8, rec.fusion_rule).bind(9, rec.alarm_type);
  ins.bind(10, static_cast<int64_t>(rec.modalities.size()));
  ins.bind(11, static_cast<int64_t>(readings.size())).bind(12, now);
  MMFUSE_ASSERT(ins.step());
  out.inspection_id = ins.i64(0);
  ins.run();

  Stmt mod(*writer_,
           "INSERT INTO inspection_modalities(inspection_id, modality, status, score, raw_score, "
           "decision, message, detail, evidence) VALUES(?,?,?,?,?,?,?,?,?)");
  for (const auto& m : rec.modalities) {
    mod.reset();
    mod.bind(1, out.inspection_id).bind(2, std::string(inspect::modality_name(m.modality)));
    mod.bind(3, std::string(inspect::modality_status_name(m.status)));
    mod.bind(4, m.score).bind(5, m.raw_score).bind(6, m.decision ? 1 : 0).bind(7, m.message);
    mod.bind(8, m.detail.is_null() ? std::string("{}") : json_text(m.detail));
    mod.bind(9, json_text(nlohmann::json(m.evidence))).run();
    insert_evidence_refs(*writer_, data_dir_, m.evidence, out.inspection_id, 0);
  }
  insert_readings(*writer_, readings, out.inspection_id);
  if (rec.alarm) {
    out.alarm_id = insert_alarm(rec, out.inspection_id, now, &out.deduplicated);
    Stmt link(*writer_, "UPDATE inspections SET alarm_id = ? WHERE id = ?");
    link.bind(1, out.alarm_id).bind(2, out.inspection_id).run();
  }
  // Last: with several processes on one database the change counter and the round's
  // row are the locks they all take, so they are held for as short a time as possible.
  const int64_t rev = next_rev(*writer_);
  Stmt(*writer_, "UPDATE inspections SET rev = ? WHERE id = ?")
      .bind(1, rev)
      .bind(2, out.inspection_id)
      .run();
  if (out.alarm_id > 0)
    Stmt(*writer_, "UPDATE alarms SET rev = ? WHERE id = ?")
        .bind(1, rev)
        .bind(2, out.alarm_id)
        .run();
  if (!rec.round_id.empty()) {
    Stmt pos(*writer_, "UPDATE rounds SET position = position + 1, rev = ? WHERE id = ?");
    pos.bind(1, rev).bind(2, rec.round_id).run();
  }
  tx.commit();
  return out;
}

void Store::record_readings(const std::vector<SensorReading>& readings) {
  check_readings(readings);
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  insert_readings(*writer_, readings, 0);
  tx.commit();
}

std::vector<InspectionRow> Store::list_inspections(const InspectionFilter& filter) const {
  auto r = reader();
  Transaction tx(r.db(), false);
  return rows::inspections(r.db(), filter, 0);
}

std::optional<InspectionRow> Store::find_inspection(int64_t id) const {
  auto r = reader();
  Transaction tx(r.db(), false);
  auto v = rows::inspections(r.db(), InspectionFilter{}, id);
  if (v.empty()) return std::nullopt;
  return v.front();
}

// ---- alarms ----

std::vector<AlarmRow> Store::list_alarms(const AlarmFilter& filter) const {
  auto r = reader();
  return rows::alarms(r.db(), filter, 0);
}

std::optional<AlarmRow> Store::find_alarm(int64_t id) const {
  auto r = reader();
  auto v = rows::alarms(r.db(), AlarmFilter{}, id);
  if (v.empty()) return std::nullopt;
  return v.front();
}

AlarmRow Store::acknowledge_alarm(int64_t id, const std::string& user) {
  MMFUSE_CHECK(!user.empty(), bad_input,
               "store: acknowledging alarm " + std::to_string(id) + " needs a user name");
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  // Only the first acknowledgement counts; a repeat changes nothing.
  Stmt s(*writer_,
         "UPDATE alarms SET acknowledged_by = ?, acknowledged_at_ms = ? "
         "WHERE id = ? AND acknowledged_at_ms IS NULL");
  if (s.bind(1, user).bind(2, clock_->now_ms()).bind(3, id).run() > 0)
    Stmt(*writer_, "UPDATE alarms SET rev = ? WHERE id = ?")
        .bind(1, next_rev(*writer_))
        .bind(2, id)
        .run();
  auto v = rows::alarms(*writer_, AlarmFilter{}, id);
  if (v.empty()) throw_error(ErrorKind::not_found, "no alarm " + std::to_string(id));
  tx.commit();
  return v.front();
}

std::vector<DeviceStatus> Store::device_status() const {
  auto r = reader();
  Transaction tx(r.db(), false);
  return rows::device_status(r.db());
}

std::vector<AlarmStat> Store::alarm_stats(int64_t since_ms) const {
  auto r = reader();
  Stmt s(r.db(),
         "SELECT created_ms / 86400000 AS day, type, count(*) FROM alarms WHERE created_ms >= ? "
         "GROUP BY day, type ORDER BY day, type");
  s.bind(1, since_ms);
  std::vector<AlarmStat> out;
  while (s.step()) out.push_back({utc_day(s.i64(0) * kMsPerDay), s.text(1), s.i64(2)});
  return out;
}

// ---- sensor trends ----

std::vector<TrendPoint> Store::sensor_trend(const std::string& device_id,
                                            const std::string& channel, int64_t since_ms,
                                            int max_points) const {
  auto r = reader();
  Transaction tx(r.db(), false);
  std::vector<TrendPoint> out;
  if (max_points <= 0) {
    Stmt s(r.db(),
           "SELECT t_ms, value FROM sensor_readings WHERE series_id IN (SELECT id FROM "
           "sensor_series WHERE device_id = ? AND channel = ?) AND t_ms >= ? ORDER BY t_ms");
    s.bind(1, device_id).bind(2, channel).bind(3, since_ms);
    while (s.step()) out.push_back({s.i64(0), s.f64(1), s.f64(1), s.f64(1), 1});
    return out;
  }
  Stmt range(r.db(),
             "SELECT min(t_ms), max(t_ms) FROM sensor_readings WHERE series_id IN (SELECT id FROM "
             "sensor_series WHERE device_id = ? AND channel = ?) AND t_ms >= ?");
  range.bind(1, device_id).bind(2, channel).bind(3, since_ms);
  if (!range.step() || range.is_null(0)) return out;
  const int64_t lo = range.i64(0), hi = range.i64(1);
  const int64_t width = std::max<int64_t>(1, (hi - lo) / max_points + 1);
  Stmt s(r.db(),
         "SELECT (t_ms - ?1) / ?2 AS b, min(t_ms), avg(value), min(value), max(value), count(*) "
         "FROM sensor_readings WHERE series_id IN (SELECT id FROM sensor_series WHERE "
         "device_id = ?3 AND channel = ?4) AND t_ms >= ?5 "
         "GROUP BY b ORDER BY b");
  s.bind(1, lo).bind(2, width).bind(3, device_id).bind(4, channel).bind(5, since_ms);
  while (s.step()) out.push_back({s.i64(1), s.f64(2), s.f64(3), s.f64(4), s.i64(5)});
  return out;
}

std::vector<TrendPoint> Store::fused_trend(const std::string& device_id, int64_t since_ms,
                                           int limit) const {
  InspectionFilter f;
  f.device_id = device_id;
  f.since_ms = since_ms;
  f.limit = limit;
  auto r = reader();
  Transaction tx(r.db(), false);
  const std::vector<InspectionRow> rows = rows::inspections(r.db(), f, 0, false);
  std::vector<TrendPoint> out;
  for (auto it = rows.rbegin(); it != rows.rend(); ++it)  // newest first -> oldest first
    out.push_back({it->record.finished_ms, it->record.fused_score, it->record.fused_score,
                   it->record.fused_score, 1});
  return out;
}

std::vector<std::string> Store::sensor_channels(const std::string& device_id) const {
  auto r = reader();
  Stmt s(r.db(),
         "SELECT DISTINCT channel FROM sensor_series s WHERE device_id = ? AND EXISTS (SELECT 1 "
         "FROM sensor_readings r WHERE r.series_id = s.id) ORDER BY channel");
  s.bind(1, device_id);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

// ---- outbox ----

std::vector<OutboxEntry> Store::pending_outbox(const std::string& sink, int limit) const {
  auto r = reader();
  return rows::outbox(r.db(), sink, 0, true, limit);
}

std::vector<std::string> Store::pending_sinks() const {
  auto r = reader();
  Stmt s(r.db(), "SELECT DISTINCT sink FROM outbox WHERE delivered_at_ms IS NULL ORDER BY sink");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

void Store::mark_delivered(int64_t outbox_id, int64_t at_ms) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  Stmt s(*writer_,
         "UPDATE outbox SET delivered_at_ms = ?, attempts = attempts + 1, last_error = '' "
         "WHERE id = ? AND delivered_at_ms IS NULL");
  s.bind(1, at_ms).bind(2, outbox_id).run();
  tx.commit();
}

void Store::mark_failed(int64_t outbox_id, const std::string& error, int64_t next_attempt_at_ms) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  Stmt s(*writer_,
         "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at_ms = ? "
         "WHERE id = ? AND delivered_at_ms IS NULL");
  s.bind(1, error).bind(2, next_attempt_at_ms).bind(3, outbox_id).run();
  tx.commit();
}

OutboxBacklog Store::outbox_backlog() const {
  auto r = reader();
  Transaction tx(r.db(), false);
  OutboxBacklog b;
  Stmt s(r.db(),
         "SELECT sink, count(*), min(created_ms) FROM outbox WHERE delivered_at_ms IS NULL "
         "GROUP BY sink ORDER BY sink");
  while (s.step()) {
    b.by_sink[s.text(0)] = s.i64(1);
    b.total += s.i64(1);
    const int64_t oldest = s.i64(2);
    if (b.oldest_created_ms == 0 || oldest < b.oldest_created_ms) b.oldest_created_ms = oldest;
  }
  return b;
}

std::vector<OutboxEntry> Store::list_outbox(int64_t alarm_id, int limit) const {
  auto r = reader();
  return rows::outbox(r.db(), "", alarm_id, false, limit);
}

}  // namespace mmfuse::store
