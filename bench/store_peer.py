#!/usr/bin/env python3
"""Peer for `mmfuse store bench`: the same rows per inspection written through Python's
sqlite3 module into a database with the same schema (copied from an mmfuse.db), one
transaction per inspection, same journal mode and synchronous setting. The ratio
mmfuse/peer shows what the C++ store adds (or saves) over driving SQLite directly.

  store_peer.py --schema-from DIR/mmfuse.db --out DIR2 [--inspections N] [--readings R]
                [--devices D] [--normal]
Prints one JSON object like mmfuse store bench's "record" part.
"""
import argparse, json, os, random, sqlite3, time

ap = argparse.ArgumentParser()
ap.add_argument("--schema-from", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--inspections", type=int, default=2000)
ap.add_argument("--readings", type=int, default=600)
ap.add_argument("--devices", type=int, default=500)
ap.add_argument("--alarm-rate", type=float, default=0.05)
ap.add_argument("--normal", action="store_true")
a = ap.parse_args()

src = sqlite3.connect(a.schema_from)
ddl = [r[0] for r in src.execute(
    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
    "ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, rowid")]
src.close()
os.makedirs(a.out, exist_ok=True)
path = os.path.join(a.out, "peer.db")
for suffix in ("", "-wal", "-shm"):
    if os.path.exists(path + suffix):
        os.remove(path + suffix)
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=" + ("NORMAL" if a.normal else "FULL"))
db.execute("PRAGMA foreign_keys=ON")
for stmt in ddl:
    db.execute(stmt)
# Schema 3: the change counter edge sync reads (mmfuse stamps every change with it).
has_revs = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sync_counter'").fetchone()[0] > 0
if has_revs:
    db.execute("INSERT OR IGNORE INTO sync_counter VALUES(1, 0)")
db.execute("BEGIN")
db.executemany("INSERT INTO devices(id, name, area, location, points, updated_ms) VALUES(?,?,?,?,?,0)",
               [(f"dev-{d}", f"Device {d}", f"area-{d % 10}", "", "[]") for d in range(a.devices)])
db.execute("INSERT INTO rounds(id, started_ms, status, total) VALUES('r', 0, 'running', ?)", (a.inspections,))
db.execute("COMMIT")

rng = random.Random(1)
now = 1_700_000_000_000
series = {}
lat = []
t_all = time.perf_counter()
for i in range(a.inspections):
    dev = f"dev-{i % a.devices}"
    alarm = rng.random() < a.alarm_rate
    mods = []
    for m in ("camera", "infrared", "sound", "sensors"):
        bad = alarm and m == "camera"
        s = rng.random()
        mods.append((m, "anomaly" if bad else "ok", s, s * 10, int(bad), "bench", json.dumps({"regions": 1}),
                     json.dumps([f"evidence/r/{dev}/{m}-{i}.png"])))
    readings = [("temperature" if r % 2 else "vibration", now - 60000 + 100 * (r // 2), 20.0 + rng.random())
                for r in range(a.readings)]
    t0 = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    cur = db.execute(
        "INSERT INTO inspections(round_id, device_id, point_id, started_ms, finished_ms, fused_score, alarm, "
        "fusion_rule, alarm_type, modality_count, reading_count, created_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
        ("r", dev, "p1", now, now + 300, 0.4 if alarm else 0.1, int(alarm), "weighted_vote",
         "camera" if alarm else "", 4, len(readings), now))
    iid = cur.lastrowid
    for m in mods:
        db.execute("INSERT INTO inspection_modalities(inspection_id, modality, status, score, raw_score, decision, "
                   "message, detail, evidence) VALUES(?,?,?,?,?,?,?,?,?)", (iid,) + m)
        db.execute("INSERT INTO evidence_refs(path, inspection_id) VALUES(?, ?)", (json.loads(m[7])[0], iid))
    rows = []
    for ch, t, v in readings:
        key = (dev, "p1", ch)
        sid = series.get(key)
        if sid is None:
            db.execute("INSERT INTO sensor_series(device_id, point_id, channel) VALUES(?,?,?) ON CONFLICT DO NOTHING", key)
            sid = db.execute("SELECT id FROM sensor_series WHERE device_id=? AND channel=? AND point_id=?",
                             (dev, ch, "p1")).fetchone()[0]
            series[key] = sid
        rows.append((sid, iid, t, v))
    db.executemany("INSERT INTO sensor_readings(series_id, inspection_id, t_ms, value) VALUES(?,?,?,?)", rows)
    if not has_revs:
        db.execute("UPDATE rounds SET position = position + 1 WHERE id = 'r'")
    if alarm:
        db.execute("SELECT id, created_ms FROM alarms WHERE dedupe_key = ? ORDER BY created_ms DESC, id DESC LIMIT 1",
                   (dev + "|camera",)).fetchone()
        cur = db.execute(
            "INSERT INTO alarms(type, device_id, point_id, area, round_id, inspection_id, fused_score, modalities, "
            "evidence, created_ms, last_seen_ms, repeats, dedupe_key) VALUES(?,?,?,?,?,?,?,?,?,?,?,0,?)",
            ("camera", dev, "p1", "a", "r", iid, 0.4, "{}", "[]", now, now, dev + "|camera"))
        aid = cur.lastrowid
        for sink in ("mqtt", "webhook"):
            db.execute("INSERT INTO outbox(alarm_id, sink, payload, attempts, next_attempt_at_ms, created_ms) "
                       "VALUES(?,?,?,0,?,?)", (aid, sink, json.dumps({"id": aid}), now, now))
        db.execute("UPDATE inspections SET alarm_id = ? WHERE id = ?", (aid, iid))
    if has_revs:  # last, as mmfuse does: the counter, then the rows it stamps
        rev = db.execute("UPDATE sync_counter SET rev = rev + 1 WHERE id = 1 RETURNING rev").fetchone()[0]
        db.execute("UPDATE inspections SET rev = ? WHERE id = ?", (rev, iid))
        if alarm:
            db.execute("UPDATE alarms SET rev = ? WHERE id = ?", (rev, aid))
        db.execute("UPDATE rounds SET position = position + 1, rev = ? WHERE id = 'r'", (rev,))
    db.execute("COMMIT")
    lat.append((time.perf_counter() - t0) * 1000)
    now += 1000
total = time.perf_counter() - t_all
lat.sort()
pick = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(json.dumps({"inspections": a.inspections, "readings_per_inspection": a.readings,
                  "synchronous": "NORMAL" if a.normal else "FULL",
                  "record": {"per_s": a.inspections / total, "p50_ms": pick(0.5), "p95_ms": pick(0.95),
                             "max_ms": lat[-1]}}))
