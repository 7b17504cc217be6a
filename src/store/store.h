// The inspection store: one database holding devices, rounds, inspections with their
// per-modality results, sensor readings, alarms and the durable alarm outbox; evidence
// files live under <data_dir>/evidence/. Two back-ends with the same schema and
// semantics: SQLite (<data_dir>/mmfuse.db, WAL mode; the default for one box) and
// PostgreSQL (a server shared by several processes and machines), chosen by a
// StoreLocation (`--store URL`). See docs/store.md for the schema, the transaction
// rules and retention, docs/scale-out.md for several processes on one database.
//
// Thread-safety: a Store is shared by all threads of a process. Writes go through one
// writer connection guarded by a mutex (one transaction at a time); reads use pooled
// connections of their own, so a reader never waits for the writer and sees the last
// committed state. Several processes may open the same store (SQLite serialises their
// writers through its file locks, busy timeout 10 s; PostgreSQL through row and
// advisory locks).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "record/inspection_record.h"
#include "store/clock.h"

namespace mmfuse::store {

class Backend;
class SqlConnection;

// The database server stopped answering (PostgreSQL restarted, network cut): thrown
// by store calls on a connection that broke, and by opening a connection while the
// server is away. Opening a store at start turns it into a configuration error
// (kind bad_input: exit 2); later it is kind internal, and callers that can wait (an
// inspection worker, a dispatcher) retry the call when the server is back. A write
// cut off by it was rolled back by the server, or committed just before: callers
// re-read before redoing work.
class StoreUnavailable : public Error {
 public:
  using Error::Error;
};

enum class StoreKind { sqlite, postgres };

// Where a store lives: `--store URL` or `--data DIR`.
struct StoreLocation {
  StoreKind kind = StoreKind::sqlite;
  std::filesystem::path db_file;   // SQLite: the database file
  std::string conninfo;            // PostgreSQL: a libpq URL ("" = the PG* variables)
  std::filesystem::path data_dir;  // evidence/ lives here (SQLite: default the file's folder)
};

// sqlite:///abs/store.db, sqlite:relative.db, sqlite:///dir (a folder, or a path without
// a .db/.sqlite/.sqlite3 suffix: <dir>/mmfuse.db), postgresql://user:pw@host:port/db
// (or postgres://), and "postgresql:" alone for the PG* environment variables.
// Anything else: Error(bad_input) naming the URL (a password in it is not repeated).
StoreLocation parse_store_url(const std::string& url);
// <data_dir>/mmfuse.db, what `--data DIR` means.
StoreLocation sqlite_location(const std::filesystem::path& data_dir);
// The URL with any password replaced by "***" (for messages and logs).
std::string redact_store_url(const std::string& url);

// A device of the plant as the store keeps it (the plant file is the source of truth;
// upsert_devices mirrors it so the dashboard can list devices without the plant file).
struct DeviceInfo {
  std::string id;
  std::string name;
  std::string area;      // used in the MQTT topic (<prefix>/alarms/<area>/<device>/<type>)
  std::string location;  // free text ("hall 2, row B")
  nlohmann::json points =
      nlohmann::json::array();  // inspection points, as the plant file gives them
};

// One sensor sample taken during an inspection (or streamed outside one).
struct SensorReading {
  std::string device_id;
  std::string point_id;
  std::string channel;  // e.g. "temperature", "vibration_rms"
  int64_t t_ms = 0;     // Unix epoch milliseconds of the sample
  double value = 0.0;
};

struct AlarmRow;

// Builds the text an outbox row carries for a new alarm (the alarm payload of
// docs/alarms.md: alarm::alarm_payload). The store persists it as given, frozen
// with the alarm in the same transaction; it never builds payloads itself.
using AlarmPayloadFn = std::function<std::string(const AlarmRow&)>;

struct StoreOptions {
  // A new alarm of the same (device, type) within this many ms of the last alarm
  // of that key is not raised again: the existing alarm's repeats/last_seen grow.
  int64_t dedupe_cooldown_ms = 10 * 60 * 1000;
  // Every new alarm gets one outbox row per sink name listed here (e.g. "mqtt",
  // "webhook"); the OutboxDispatcher delivers them through the sink of that name.
  std::vector<std::string> sinks;
  // The payload of those outbox rows; needed (bad_input otherwise) whenever sinks
  // are set, here or through set_sinks().
  AlarmPayloadFn alarm_payload;
  // Retention (prune()): inspections, readings, delivered outbox rows and
  // acknowledged alarms older than this are deleted.
  int retention_days = 7;
  // Unacknowledged alarms are kept longer (nobody has looked at them yet).
  int unacked_alarm_retention_days = 30;
  // PRAGMA synchronous=FULL (default): a committed alarm survives power loss, not
  // only a process crash; costs one WAL fsync per commit (see docs/store.md).
  bool synchronous_full = true;
  const Clock* clock = nullptr;  // null = SystemClock::instance(); must outlive the Store
};

enum class RoundStatus { running, finished, aborted };
const char* round_status_name(RoundStatus s);

struct RoundInfo {
  std::string id;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;  // 0 while running
  RoundStatus status = RoundStatus::running;
  int64_t total = 0;     // points the round plans to inspect
  int64_t position = 0;  // inspections recorded in this round so far
  // (device_id, point_id) pairs already recorded in this round: a resumed round skips them.
  std::vector<std::pair<std::string, std::string>> done;
};

// Result of record_inspection.
struct RecordOutcome {
  int64_t inspection_id = 0;
  int64_t alarm_id = 0;       // the alarm raised, or the existing one it was merged into; 0 = none
  bool deduplicated = false;  // true when rec.alarm was merged into an alarm within the cooldown
};

// A stored inspection: the record as given plus the store's id and time.
struct InspectionRow {
  int64_t id = 0;
  int64_t created_ms = 0;     // store clock at record time (retention uses it)
  int64_t reading_count = 0;  // sensor readings stored with it
  int64_t alarm_id = 0;       // alarm raised or merged into by this inspection; 0 = none
  inspect::InspectionRecord record;
};

struct InspectionFilter {
  std::string device_id;  // empty = all devices
  std::string round_id;   // empty = all rounds
  int64_t since_ms = 0;   // created_ms >= since_ms
  int64_t before_id = 0;  // > 0: only ids below it (paging, newest first)
  int limit = 100;        // at most this many rows, newest first
};

struct AlarmRow {
  int64_t id = 0;
  std::string type;  // dominant anomalous modality ("camera", ...)
  std::string device_id;
  std::string point_id;
  std::string area;
  std::string round_id;
  int64_t inspection_id = 0;  // 0 once that inspection has been pruned
  double fused_score = 0.0;
  nlohmann::json modalities =
      nlohmann::json::object();  // {"camera": {"status","score","decision","message"}, ...}
  std::vector<std::string> evidence;
  int64_t created_ms = 0;
  int64_t last_seen_ms = 0;     // latest inspection merged into this alarm by de-duplication
  int64_t repeats = 0;          // inspections merged into this alarm
  std::string acknowledged_by;  // empty = not acknowledged
  int64_t acknowledged_at_ms = 0;
  std::string dedupe_key;  // "<device>|<type>"
};

struct AlarmFilter {
  std::optional<bool> acknowledged;  // unset = both
  std::string device_id;             // empty = all devices
  int64_t since_ms = 0;
  int64_t before_id = 0;  // > 0: only ids below it (paging, newest first)
  int limit = 100;
};

// Latest state of a device for the dashboard.
struct DeviceStatus {
  DeviceInfo device;
  int64_t last_inspection_id = 0;  // 0 = never inspected
  int64_t last_inspected_ms = 0;   // finished_ms of that inspection
  double fused_score = 0.0;
  bool alarm = false;
  std::string alarm_type;
  std::map<std::string, std::string> modality_status;  // modality name -> status name
  int64_t open_alarms = 0;                             // unacknowledged alarms of the device
};

struct AlarmStat {
  std::string day;   // "YYYY-MM-DD" (UTC)
  std::string type;  // modality name
  int64_t count = 0;
};

struct TrendPoint {
  int64_t t_ms = 0;
  double value = 0.0;  // mean of the samples in the bucket
  double min = 0.0;
  double max = 0.0;
  int64_t samples = 0;
};

// One outbox row: an alarm payload waiting for (or delivered to) one sink.
struct OutboxEntry {
  int64_t id = 0;
  int64_t alarm_id = 0;
  std::string sink;
  std::string payload;  // the alarm payload JSON (docs/alarms.md)
  int64_t attempts = 0;
  int64_t next_attempt_at_ms = 0;
  int64_t delivered_at_ms = 0;  // 0 = pending
  int64_t created_ms = 0;
  std::string last_error;
};

struct OutboxBacklog {
  int64_t total = 0;                       // undelivered rows over all sinks
  std::map<std::string, int64_t> by_sink;  // undelivered rows per sink
  int64_t oldest_created_ms = 0;           // of the oldest undelivered row; 0 = none
};

// Row counts for metrics and `mmfuse store info`.
struct StoreCounts {
  int64_t devices = 0;
  int64_t rounds = 0;
  int64_t inspections = 0;
  int64_t readings = 0;
  int64_t alarms = 0;
  int64_t open_alarms = 0;  // unacknowledged
  int64_t outbox_pending = 0;
};

// Synthetic history for benchmarks (`mmfuse store dashboard-bench`): `days` of finished
// rounds every `round_minutes` over `devices` devices ("dev-1000", ...; one point "p1"
// each), every round inspecting every device, written with set-based SQL (no per-row
// round trips). Each inspection has 4 modality rows and `readings` sensor readings
// (channels temperature and vibration); `alarm_rate` of them raise an alarm with two
// delivered outbox rows (mqtt, webhook); alarms older than a day are acknowledged.
// Deterministic: the same spec gives the same rows on every back-end.
struct HistorySpec {
  int days = 30;
  int devices = 500;
  int round_minutes = 5;
  int readings = 2;  // per inspection, split over the two channels
  double alarm_rate = 0.002;
  int64_t end_ms = 0;  // the last round starts before this; 0 = the store clock's now
};

struct HistoryReport {
  int64_t rounds = 0;
  int64_t inspections = 0;
  int64_t alarms = 0;
  int64_t readings = 0;
  int64_t start_ms = 0;  // first round's start
};

struct PruneReport {
  int64_t cutoff_ms = 0;
  int64_t inspections = 0;
  int64_t readings = 0;
  int64_t alarms = 0;
  int64_t outbox = 0;
  int64_t rounds = 0;
  int64_t files = 0;       // evidence files deleted
  int64_t files_kept = 0;  // candidates kept because a remaining row still names them
};

class Store {
 public:
  static constexpr int kSchemaVersion = 4;

  // Opens (creating when needed) <data_dir>/mmfuse.db and <data_dir>/evidence/, and
  // migrates the schema to kSchemaVersion. Throws Error(bad_input) when the folder
  // cannot be created or the file is not a usable database, Error(unsupported) when
  // it was written by a newer schema.
  static std::unique_ptr<Store> open(const std::filesystem::path& data_dir,
                                     const StoreOptions& options = {});
  // The same for any back-end. PostgreSQL: Error(bad_input) when the server cannot be
  // reached or refuses the login (never a fallback to SQLite); the evidence folder is
  // where.data_dir/evidence, none when data_dir is empty.
  static std::unique_ptr<Store> open(const StoreLocation& where, const StoreOptions& options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& data_dir() const { return data_dir_; }
  // SQLite: the database file; PostgreSQL: empty.
  const std::filesystem::path& db_path() const { return db_path_; }
  // <data_dir>/evidence; empty for a PostgreSQL store opened without a data folder.
  std::filesystem::path evidence_dir() const {
    return data_dir_.empty() ? std::filesystem::path() : data_dir_ / "evidence";
  }
  const char* backend_kind() const;  // "sqlite" or "postgresql"
  std::string location() const;      // sqlite:///abs/mmfuse.db or postgresql://user@host:port/db
  const StoreOptions& options() const { return options_; }
  const Clock& clock() const { return *clock_; }
  // Sinks that new alarms are queued for (replaces StoreOptions::sinks; thread-safe).
  // Non-empty sinks need StoreOptions::alarm_payload (bad_input otherwise).
  void set_sinks(const std::vector<std::string>& sinks);

  // ---- devices ----
  // Inserts or updates the devices by id (one transaction). Devices not listed stay.
  void upsert_devices(const std::vector<DeviceInfo>& devices);
  std::vector<DeviceInfo> list_devices() const;
  std::optional<DeviceInfo> find_device(const std::string& id) const;

  // ---- rounds ----
  // Starts a round over `total` points. id empty = generated ("round-<ms>[-n]").
  // Throws bad_input when a round with that id exists.
  RoundInfo begin_round(int64_t total, const std::string& id = "");
  // Marks the round finished (or aborted). Unknown id -> not_found.
  void finish_round(const std::string& id, RoundStatus status = RoundStatus::finished);
  // The round with its position and done pairs. Unknown id -> not_found.
  RoundInfo round_progress(const std::string& id) const;
  // The newest round still running (what a restarted `inspect` resumes), if any.
  std::optional<RoundInfo> resume_round() const;
  std::vector<RoundInfo> list_rounds(int limit = 20) const;  // newest first, without `done`

  // ---- work shared by several processes (docs/scale-out.md) ----
  // The newest running round, or (none running) a new one with id `new_id` (empty =
  // generated) over `total` points whose `devices` (plant order) wait to be claimed.
  // Callers in any number of processes at once all get the same round. *joined: true
  // when it was already running. A running round begun without claims gets them.
  RoundInfo join_round(int64_t total, const std::vector<std::string>& devices,
                       const std::string& new_id = "", bool* joined = nullptr);
  // Claims up to `limit` devices of the round that are neither done nor under a live
  // lease (a dead worker's devices come back when their lease runs out) for `worker`
  // until now + lease_ms; plant order. Empty when none is free right now. Concurrent
  // claimers never get the same device (PostgreSQL: FOR UPDATE SKIP LOCKED).
  std::vector<std::string> claim_devices(const std::string& round_id, const std::string& worker,
                                         int limit, int64_t lease_ms);
  // Marks a device of the round done (idempotent) and extends the leases `worker`
  // still holds in the round to now + lease_ms (it is alive and working).
  void complete_device(const std::string& round_id, const std::string& device_id,
                       const std::string& worker, int64_t lease_ms);
  // Gives back the devices `worker` holds in the round and has not done (lease ended
  // now), so any worker claims them at once: after a call failed mid-batch because
  // the database went away. Returns how many.
  int64_t release_claims(const std::string& round_id, const std::string& worker);
  // Devices of the round not done yet (0 for a round without claims).
  int64_t open_devices(const std::string& round_id) const;
  // Finishes the round when no device is open; true when it is finished (now or before).
  bool finish_round_when_done(const std::string& round_id);
  // The outbox dispatch lease of a sink: true when `holder` holds it until now +
  // lease_ms (taken when free or expired, renewed when already its own).
  bool acquire_sink_lease(const std::string& sink, const std::string& holder, int64_t lease_ms);
  // Gives the lease up (when `holder` has it), so another process takes over at once.
  void release_sink_lease(const std::string& sink, const std::string& holder);
  // Any other named lease, in the same table (names like "index-writer:/data/index"
  // never collide with sink names): true when `holder` now holds `name` until
  // now + lease_ms. When another holder has it, false, and *current (if given)
  // says who and until when (Unix ms).
  bool acquire_lease(const std::string& name, const std::string& holder, int64_t lease_ms,
                     std::pair<std::string, int64_t>* current = nullptr);
  void release_lease(const std::string& name, const std::string& holder);

  // ---- inspections ----
  // In ONE transaction: the inspection, its modality results, the readings, the
  // round's position, and when rec.alarm the alarm (or its de-duplication into an
  // alarm within the cooldown) plus one outbox row per configured sink. Either all of
  // it is committed or none. Throws bad_input for an empty device id or a modality
  // listed twice.
  RecordOutcome record_inspection(const inspect::InspectionRecord& rec,
                                  const std::vector<SensorReading>& readings = {});
  // Readings outside an inspection (a sensor stream); one transaction.
  void record_readings(const std::vector<SensorReading>& readings);
  std::vector<InspectionRow> list_inspections(const InspectionFilter& filter = {}) const;
  std::optional<InspectionRow> find_inspection(int64_t id) const;

  // ---- alarms ----
  std::vector<AlarmRow> list_alarms(const AlarmFilter& filter = {}) const;
  std::optional<AlarmRow> find_alarm(int64_t id) const;
  // Records who acknowledged the alarm. Idempotent: acknowledging again keeps the first
  // user and time and returns them. Unknown id -> not_found; empty user -> bad_input.
  AlarmRow acknowledge_alarm(int64_t id, const std::string& user);
  std::vector<DeviceStatus> device_status()
      const;  // one per known device (and per inspected unknown one)
  // Alarm counts per UTC day and type, for alarms created at or after since_ms.
  std::vector<AlarmStat> alarm_stats(int64_t since_ms = 0) const;

  // ---- sensor trends ----
  // Samples of one channel of a device since since_ms, oldest first, averaged into at
  // most max_points equal time buckets (max_points <= 0: raw samples).
  std::vector<TrendPoint> sensor_trend(const std::string& device_id, const std::string& channel,
                                       int64_t since_ms = 0, int max_points = 500) const;
  std::vector<std::string> sensor_channels(const std::string& device_id) const;
  // The fused score of a device's newest `limit` inspections created at or after
  // since_ms, oldest first (t_ms = finished_ms, samples = 1): the dashboard's trend,
  // without the modality rows list_inspections reads for each inspection.
  std::vector<TrendPoint> fused_trend(const std::string& device_id, int64_t since_ms,
                                      int limit = 500) const;

  // ---- outbox (used by alarm::OutboxDispatcher) ----
  // Up to `limit` undelivered rows of `sink`, in id order (due or not: the caller
  // keeps order by stopping at the first row that is not due).
  std::vector<OutboxEntry> pending_outbox(const std::string& sink, int limit = 32) const;
  // Sink names that have undelivered rows.
  std::vector<std::string> pending_sinks() const;
  void mark_delivered(int64_t outbox_id, int64_t at_ms);
  // Counts a failed attempt and schedules the next one.
  void mark_failed(int64_t outbox_id, const std::string& error, int64_t next_attempt_at_ms);
  OutboxBacklog outbox_backlog() const;
  std::vector<OutboxEntry> list_outbox(int64_t alarm_id = 0, int limit = 100) const;

  // ---- retention ----
  // Deletes what is older than now - days (days <= 0: options().retention_days):
  // inspections (with their modality rows and readings), readings, delivered outbox
  // rows, acknowledged alarms (unacknowledged ones after unacked_alarm_retention_days,
  // never while an outbox row of theirs is undelivered), finished rounds; then the
  // evidence files under evidence_dir() that no remaining row names. Rows go first in
  // one transaction, files after the commit (a crash in between leaves unreferenced
  // files, which the next prune sweeps; never a row naming a deleted file).
  PruneReport prune(int days = 0);

  StoreCounts counts() const;  // one read snapshot

  // Appends the synthetic history of `spec` (HistorySpec) to this store, one write
  // transaction per simulated day; for benchmarks, on a store made for them.
  HistoryReport generate_history(const HistorySpec& spec);

  // Copies the WAL into the database file and truncates it (SQLite also does this by
  // itself every ~4 MB of WAL; call it before measuring or copying the file).
  void checkpoint();

  // "ok" when the back-end's check passes (SQLite: PRAGMA integrity_check), else its
  // first message.
  std::string integrity_check() const;
  int schema_version() const;
  int latest_schema_version() const;  // what this build migrates to
  // One integer from a read-only query (tests and diagnostics); -1 when no row.
  int64_t query_int(const std::string& sql) const;

 private:
  friend class EdgeSync;  // edge -> centre forwarding (edge_sync.cpp) reads and writes rows
  class Reader;  // a pooled read connection, returned on destruction
  Store() = default;
  Reader reader() const;
  int64_t insert_alarm(const inspect::InspectionRecord& rec, int64_t inspection_id, int64_t now,
                       bool* deduplicated);

  std::filesystem::path data_dir_;
  std::filesystem::path db_path_;
  StoreOptions options_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<SqlConnection> writer_;
  mutable std::mutex write_mutex_;  // one write transaction at a time
  mutable std::mutex pool_mutex_;   // guards readers_
  mutable std::vector<std::unique_ptr<SqlConnection>> readers_;  // idle read connections
  std::vector<std::string> sinks_;         // guarded by write_mutex_
};

// JSON forms used by the CLI and the HTTP API (keys documented in docs/store.md).
nlohmann::ordered_json to_json(const DeviceInfo& d);
nlohmann::ordered_json to_json(const RoundInfo& r);
nlohmann::ordered_json to_json(const InspectionRow& r);
nlohmann::ordered_json to_json(const AlarmRow& a);
nlohmann::ordered_json to_json(const DeviceStatus& s);
nlohmann::ordered_json to_json(const OutboxBacklog& b);
nlohmann::ordered_json to_json(const PruneReport& p);
nlohmann::ordered_json to_json(const StoreCounts& c);

}  // namespace mmfuse::store
