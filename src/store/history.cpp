// Synthetic history for benchmarks (Store::generate_history, store.h): weeks of rounds
// written with set-based INSERT ... SELECT statements, so 4 million inspections load in
// minutes instead of the hours one transaction per inspection would take. The SQL is
// the dialect both engines share (recursive CTEs, integer hashing instead of random());
// the PostgreSQL back-end only rewrites the placeholders.
#include <algorithm>
#include <cmath>

#include "mmfuse/error.h"
#include "store/backend.h"
#include "store/sql_connection.h"
#include "store/store.h"

namespace mmfuse::store {

namespace {

// Every (round n, device k) pair of rounds [?1, ?2) with h, a hash in [0, 100000) that
// decides alarms and scores (Knuth's multiplicative hash: alarms spread over devices
// and rounds instead of repeating on one device).
constexpr const char* kPairs =
    "WITH RECURSIVE r(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM r WHERE n + 1 < ?2), "
    "d(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM d WHERE k + 1 < ?3), "
    "g AS (SELECT n, k, ((n * 2654435761 + k * 40503 + 12345) % 4294967296) % 100000 AS h "
    "FROM r CROSS JOIN d) ";

int64_t last_id(SqlConnection& db, const char* table) {
  return sql_scalar(db, std::string("SELECT coalesce(max(id), 0) FROM ") + table, 0);
}

}  // namespace

HistoryReport Store::generate_history(const HistorySpec& spec) {
  MMFUSE_CHECK(spec.days >= 1 && spec.days <= 3660, bad_input,
               "history: days must be 1..3660");
  MMFUSE_CHECK(spec.devices >= 1 && spec.devices <= 100000, bad_input,
               "history: devices must be 1..100000");
  MMFUSE_CHECK(spec.round_minutes >= 1 && spec.round_minutes <= 1440, bad_input,
               "history: round_minutes must be 1..1440");
  MMFUSE_CHECK(spec.readings >= 0 && spec.readings <= 10000, bad_input,
               "history: readings must be 0..10000");
  MMFUSE_CHECK(spec.alarm_rate >= 0.0 && spec.alarm_rate <= 1.0, bad_input,
               "history: alarm_rate must be 0..1");
  const int64_t round_ms = int64_t{spec.round_minutes} * 60'000;
  const int64_t rounds_per_day = kMsPerDay / round_ms;
  const int64_t total_rounds = rounds_per_day * spec.days;
  const int64_t end_ms = spec.end_ms > 0 ? spec.end_ms : clock_->now_ms();
  const int64_t start_ms = end_ms - total_rounds * round_ms;
  const int64_t alarm_below = std::llround(spec.alarm_rate * 100000.0);
  const int64_t samples = spec.readings / 2 + spec.readings % 2;  // per channel (temperature first)

  std::vector<DeviceInfo> devices;
  for (int k = 0; k < spec.devices; ++k) {
    const std::string id = "dev-" + std::to_string(1000 + k);
    devices.push_back({id, "Device " + std::to_string(1000 + k), "area-" + std::to_string(k % 10),
                       "hall " + std::to_string(k % 4 + 1),
                       nlohmann::json::array({{{"id", "p1"}, {"modalities", {"camera", "infrared",
                                                                             "sound", "sensors"}}}})});
  }
  upsert_devices(devices);

  std::lock_guard<std::mutex> lock(write_mutex_);
  SqlConnection& db = *writer_;
  {
    Transaction tx(db, true);
    Stmt series(db,
                "INSERT INTO sensor_series(device_id, point_id, channel) SELECT d.id, 'p1', c.channel "
                "FROM devices d CROSS JOIN (SELECT 'temperature' AS channel UNION ALL "
                "SELECT 'vibration') c WHERE d.id LIKE 'dev-%' ORDER BY d.id, c.channel "
                "ON CONFLICT DO NOTHING");
    series.run();
    tx.commit();
  }
  HistoryReport rep;
  rep.start_ms = start_ms;
  for (int64_t first = 0; first < total_rounds; first += rounds_per_day) {
    const int64_t last = std::min(total_rounds, first + rounds_per_day);
    Transaction tx(db, true);
    const int64_t insp0 = last_id(db, "inspections"), alarm0 = last_id(db, "alarms");
    Stmt rounds(db,
                "INSERT INTO rounds(id, started_ms, finished_ms, status, total, position) "
                "WITH RECURSIVE r(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM r WHERE n + 1 < ?2) "
                "SELECT 'hist-' || CAST(n AS TEXT), ?3 + n * ?4, ?3 + n * ?4 + ?4 * 9 / 10, "
                "'finished', ?5, ?5 FROM r ORDER BY n");
    rounds.bind(1, first).bind(2, last).bind(3, start_ms).bind(4, round_ms);
    rounds.bind(5, int64_t{spec.devices}).run();
    // Device k is inspected k/devices of the way into the round, finished 300 ms later.
    Stmt insp(db,
              std::string("INSERT INTO inspections(round_id, device_id, point_id, started_ms, "
                          "finished_ms, fused_score, alarm, fusion_rule, alarm_type, alarm_id, "
                          "modality_count, reading_count, created_ms) ") +
                  kPairs +
                  "SELECT 'hist-' || CAST(n AS TEXT), 'dev-' || CAST(1000 + k AS TEXT), 'p1', "
                  "?4 + n * ?5 + k * (?5 * 8 / 10) / ?3, ?4 + n * ?5 + k * (?5 * 8 / 10) / ?3 + 300, "
                  "CASE WHEN h < ?6 THEN 0.55 + (h % 40) * 0.01 ELSE 0.02 + (h % 30) * 0.01 END, "
                  "CASE WHEN h < ?6 THEN 1 ELSE 0 END, 'weighted_vote', "
                  "CASE WHEN h < ?6 THEN 'camera' ELSE '' END, 0, 4, ?7, "
                  "?4 + n * ?5 + k * (?5 * 8 / 10) / ?3 + 350 FROM g ORDER BY n, k");
    insp.bind(1, first).bind(2, last).bind(3, int64_t{spec.devices}).bind(4, start_ms);
    insp.bind(5, round_ms).bind(6, alarm_below).bind(7, int64_t{spec.readings});
    rep.inspections += insp.run();
    Stmt mods(db,
              "INSERT INTO inspection_modalities(inspection_id, modality, status, score, "
              "raw_score, decision, message, detail, evidence) "
              "SELECT i.id, m.modality, CASE WHEN i.alarm = 1 AND m.o = 0 THEN 'anomaly' "
              "WHEN (i.id + m.o) % 997 = 0 THEN 'missing' ELSE 'ok' END, i.fused_score * m.w, "
              "i.fused_score * m.w * 10, CASE WHEN i.alarm = 1 AND m.o = 0 THEN 1 ELSE 0 END, "
              "'', '{}', CASE WHEN i.alarm = 1 AND m.o = 0 THEN '[\"evidence/' || i.round_id || "
              "'/' || i.device_id || '/camera.png\"]' ELSE '[]' END "
              "FROM inspections i CROSS JOIN (SELECT 'camera' AS modality, 0 AS o, 1.0 AS w "
              "UNION ALL SELECT 'infrared', 1, 0.8 UNION ALL SELECT 'sound', 2, 0.6 "
              "UNION ALL SELECT 'sensors', 3, 0.4) m WHERE i.id > ?1 ORDER BY i.id, m.o");
    mods.bind(1, insp0).run();
    if (samples > 0) {
      // One sample per second from the inspection's start; the vibration channel gets
      // readings - samples of them (none when readings is 1).
      Stmt readings(db,
                    "INSERT INTO sensor_readings(series_id, inspection_id, t_ms, value) "
                    "WITH RECURSIVE q(s) AS (SELECT 0 UNION ALL SELECT s + 1 FROM q WHERE s + 1 < ?2) "
                    "SELECT ss.id, i.id, i.started_ms + q.s * 1000, CASE WHEN ss.channel = "
                    "'temperature' THEN 40 + (i.id % 17) * 0.5 + q.s * 0.01 ELSE 2 + (i.id % 13) * 0.1 "
                    "END FROM inspections i JOIN sensor_series ss ON ss.device_id = i.device_id AND "
                    "ss.point_id = i.point_id CROSS JOIN q WHERE i.id > ?1 AND (ss.channel = "
                    "'temperature' OR q.s < ?3) ORDER BY i.id, ss.id, q.s");
      readings.bind(1, insp0).bind(2, samples).bind(3, int64_t{spec.readings} - samples);
      rep.readings += readings.run();
    }
    // Alarms (no de-duplication needed: a device's alarms are hours apart), acknowledged
    // an hour after they were raised unless raised within the last day.
    Stmt alarms(db,
                "INSERT INTO alarms(type, device_id, point_id, area, round_id, inspection_id, "
                "fused_score, modalities, evidence, created_ms, last_seen_ms, repeats, "
                "acknowledged_by, acknowledged_at_ms, dedupe_key) "
                "SELECT 'camera', i.device_id, i.point_id, coalesce(d.area, ''), i.round_id, i.id, "
                "i.fused_score, '{\"camera\":{\"decision\":true,\"message\":\"\",\"score\":0.9,"
                "\"status\":\"anomaly\"}}', '[\"evidence/' || i.round_id || '/' || i.device_id || "
                "'/camera.png\"]', i.created_ms, i.created_ms, 0, "
                "CASE WHEN i.created_ms < ?2 THEN 'operator' ELSE NULL END, "
                "CASE WHEN i.created_ms < ?2 THEN i.created_ms + 3600000 ELSE NULL END, "
                "i.device_id || '|camera' FROM inspections i LEFT JOIN devices d ON d.id = "
                "i.device_id WHERE i.id > ?1 AND i.alarm = 1 ORDER BY i.id");
    alarms.bind(1, insp0).bind(2, end_ms - kMsPerDay);
    rep.alarms += alarms.run();
    Stmt link(db,
              "UPDATE inspections SET alarm_id = (SELECT a.id FROM alarms a WHERE "
              "a.inspection_id = inspections.id) WHERE id > ?1 AND alarm = 1");
    link.bind(1, insp0).run();
    Stmt outbox(db,
                "INSERT INTO outbox(alarm_id, sink, payload, attempts, next_attempt_at_ms, "
                "delivered_at_ms, last_error, created_ms) SELECT a.id, s.sink, '{\"id\":' || "
                "CAST(a.id AS TEXT) || '}', 1, a.created_ms, a.created_ms + 40, '', a.created_ms "
                "FROM alarms a CROSS JOIN (SELECT 'mqtt' AS sink UNION ALL SELECT 'webhook') s "
                "WHERE a.id > ?1 ORDER BY a.id, s.sink");
    outbox.bind(1, alarm0).run();
    rep.rounds += last - first;
    tx.commit();
  }
  // PostgreSQL's autovacuum analyses and vacuums a table after bulk inserts; do it now
  // rather than leave plans to the minute before it runs. SQLite is left as a store
  // has it (the store never runs ANALYZE there).
  if (std::string(backend_->kind()) == "postgresql") db.exec("VACUUM ANALYZE");
  return rep;
}

}  // namespace mmfuse::store
