// The store's schema on SQLite as numbered migrations (PRAGMA user_version = number
// applied). schema_postgres.h holds the same schema in PostgreSQL's dialect: a migration
// added here needs its twin there (same number, same meaning).
// Append a migration to change the schema; never edit one that has shipped.
#pragma once

namespace mmfuse::store {

// kSqliteMigrations[i] moves a database from user_version i to i + 1.
inline constexpr const char* kSqliteMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE devices(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  area TEXT NOT NULL DEFAULT '',
  location TEXT NOT NULL DEFAULT '',
  points TEXT NOT NULL DEFAULT '[]',
  updated_ms INTEGER NOT NULL);

CREATE TABLE rounds(
  id TEXT PRIMARY KEY,
  started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL CHECK(status IN ('running', 'finished', 'aborted')),
  total INTEGER NOT NULL DEFAULT 0,
  position INTEGER NOT NULL DEFAULT 0);
CREATE INDEX rounds_by_status ON rounds(status, started_ms);

CREATE TABLE inspections(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  round_id TEXT NOT NULL DEFAULT '',
  device_id TEXT NOT NULL,
  point_id TEXT NOT NULL DEFAULT '',
  started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL,
  fused_score REAL NOT NULL,
  alarm INTEGER NOT NULL CHECK(alarm IN (0, 1)),
  fusion_rule TEXT NOT NULL DEFAULT '',
  alarm_type TEXT NOT NULL DEFAULT '',
  alarm_id INTEGER NOT NULL DEFAULT 0,
  modality_count INTEGER NOT NULL,
  reading_count INTEGER NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX inspections_by_device ON inspections(device_id, id);
CREATE INDEX inspections_by_round ON inspections(round_id, device_id, point_id);
CREATE INDEX inspections_by_created ON inspections(created_ms);

CREATE TABLE inspection_modalities(
  inspection_id INTEGER NOT NULL REFERENCES inspections(id) ON DELETE CASCADE,
  modality TEXT NOT NULL CHECK(modality IN ('camera', 'infrared', 'sound', 'sensors')),
  status TEXT NOT NULL CHECK(status IN ('ok', 'anomaly', 'missing', 'error')),
  score REAL NOT NULL,
  raw_score REAL NOT NULL,
  decision INTEGER NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '{}',
  evidence TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY(inspection_id, modality)) WITHOUT ROWID;

-- One row per (device, point, channel): readings refer to it by a small integer, which
-- keeps a reading at ~50 bytes with its indexes (60 s at 10 Hz per inspection adds up).
CREATE TABLE sensor_series(
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  point_id TEXT NOT NULL DEFAULT '',
  channel TEXT NOT NULL,
  UNIQUE(device_id, channel, point_id));

CREATE TABLE sensor_readings(
  id INTEGER PRIMARY KEY,
  series_id INTEGER NOT NULL REFERENCES sensor_series(id),
  inspection_id INTEGER REFERENCES inspections(id) ON DELETE CASCADE,
  t_ms INTEGER NOT NULL,
  value REAL NOT NULL);
CREATE INDEX readings_by_series ON sensor_readings(series_id, t_ms);
CREATE INDEX readings_by_inspection ON sensor_readings(inspection_id);
CREATE INDEX readings_by_time ON sensor_readings(t_ms) WHERE inspection_id IS NULL;

CREATE TABLE alarms(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  device_id TEXT NOT NULL,
  point_id TEXT NOT NULL DEFAULT '',
  area TEXT NOT NULL DEFAULT '',
  round_id TEXT NOT NULL DEFAULT '',
  inspection_id INTEGER REFERENCES inspections(id) ON DELETE SET NULL,
  fused_score REAL NOT NULL,
  modalities TEXT NOT NULL DEFAULT '{}',
  evidence TEXT NOT NULL DEFAULT '[]',
  created_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  repeats INTEGER NOT NULL DEFAULT 0,
  acknowledged_by TEXT,
  acknowledged_at_ms INTEGER,
  dedupe_key TEXT NOT NULL);
CREATE INDEX alarms_by_key ON alarms(dedupe_key, created_ms);
CREATE INDEX alarms_by_device ON alarms(device_id, id);
CREATE INDEX alarms_by_created ON alarms(created_ms);
CREATE INDEX alarms_by_inspection ON alarms(inspection_id);

CREATE TABLE outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  alarm_id INTEGER NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
  sink TEXT NOT NULL,
  payload TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms INTEGER NOT NULL,
  delivered_at_ms INTEGER,
  last_error TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL);
CREATE INDEX outbox_pending ON outbox(sink, id) WHERE delivered_at_ms IS NULL;
CREATE INDEX outbox_by_alarm ON outbox(alarm_id);
CREATE INDEX outbox_delivered ON outbox(delivered_at_ms) WHERE delivered_at_ms IS NOT NULL;

-- Which rows name which evidence file (absolute, lexically normal paths): retention
-- deletes a file only when no row names it any more.
CREATE TABLE evidence_refs(
  path TEXT NOT NULL,
  inspection_id INTEGER REFERENCES inspections(id) ON DELETE CASCADE,
  alarm_id INTEGER REFERENCES alarms(id) ON DELETE CASCADE);
CREATE INDEX evidence_by_path ON evidence_refs(path);
CREATE INDEX evidence_by_inspection ON evidence_refs(inspection_id);
CREATE INDEX evidence_by_alarm ON evidence_refs(alarm_id);
)sql",
    // 2: work shared by several processes: the devices of a round claimed by workers
    // (a lease, so a dead worker's devices are taken over), and the outbox sinks'
    // dispatch leases (one process delivers a sink at a time).
    R"sql(
CREATE TABLE round_claims(
  round_id TEXT NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  worker TEXT NOT NULL DEFAULT '',
  lease_until_ms INTEGER NOT NULL DEFAULT 0,
  claims INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0 CHECK(done IN (0, 1)),
  PRIMARY KEY(round_id, device_id));
CREATE INDEX round_claims_open ON round_claims(round_id, seq) WHERE done = 0;

CREATE TABLE sink_leases(
  sink TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  lease_until_ms INTEGER NOT NULL);
)sql",
    // 3: edge -> centre forwarding (docs/scale-out.md, "Edge to centre"; edge_sync.cpp).
    // Edge side: each transaction that changes an inspection, alarm or round stamps
    // those rows with the next sync_counter value (taken last, so revs commit in
    // order): a forwarder reads "everything after rev R". forward_marks holds per
    // centre the rev forwarded so far (retention keeps what is newer). Centre side:
    // rows received from an edge carry (edge_id, edge_row_id), unique, so a resent
    // batch never duplicates; edge_marks holds per edge what has arrived.
    R"sql(
ALTER TABLE inspections ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alarms ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rounds ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rounds ADD COLUMN edge_id TEXT NOT NULL DEFAULT '';
ALTER TABLE inspections ADD COLUMN edge_id TEXT NOT NULL DEFAULT '';
ALTER TABLE inspections ADD COLUMN edge_row_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alarms ADD COLUMN edge_id TEXT NOT NULL DEFAULT '';
ALTER TABLE alarms ADD COLUMN edge_row_id INTEGER NOT NULL DEFAULT 0;
CREATE TABLE sync_counter(id INTEGER PRIMARY KEY CHECK(id = 1), rev INTEGER NOT NULL);
INSERT INTO sync_counter VALUES(1, (SELECT coalesce(max(id), 0) FROM inspections) +
                                   (SELECT coalesce(max(id), 0) FROM alarms) + 1);
UPDATE inspections SET rev = id;
UPDATE alarms SET rev = (SELECT coalesce(max(id), 0) FROM inspections) + id;
UPDATE rounds SET rev = (SELECT rev FROM sync_counter);
CREATE INDEX inspections_by_rev ON inspections(rev);
CREATE INDEX alarms_by_rev ON alarms(rev);
CREATE INDEX rounds_by_rev ON rounds(rev);
CREATE UNIQUE INDEX inspections_by_edge ON inspections(edge_id, edge_row_id) WHERE edge_id != '';
CREATE UNIQUE INDEX alarms_by_edge ON alarms(edge_id, edge_row_id) WHERE edge_id != '';
CREATE TABLE forward_marks(
  target TEXT PRIMARY KEY,
  edge_id TEXT NOT NULL,
  rev INTEGER NOT NULL DEFAULT 0,
  forwarded INTEGER NOT NULL DEFAULT 0,
  last_ok_ms INTEGER NOT NULL DEFAULT 0,
  last_attempt_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '');
CREATE TABLE edge_marks(
  edge_id TEXT PRIMARY KEY,
  store_id TEXT NOT NULL,
  rev INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE TABLE store_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO store_meta VALUES('store_id', lower(hex(randomblob(16))));
)sql",
};

inline constexpr int kSqliteMigrationCount =
    static_cast<int>(sizeof(kSqliteMigrations) / sizeof(kSqliteMigrations[0]));

}  // namespace mmfuse::store
