#!/usr/bin/env bash
# CLI contract of `mmfuse demo` and `mmfuse inspect`: the demo JSON shape on a
# small plant, inspect writing a real SQLite store, a round left open by
# --max-devices (or a crash) resumed by the next run, --forward-to a centre,
# missing/unreadable inputs recorded as such, and plant-file errors with field
# and line (exit 2).
# Usage: inspect_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"
SMALL=(--image-width 320 --image-height 240 --ir-width 160 --ir-height 128 --audio-seconds 1 --sensor-seconds 30)

# --- demo JSON contract (small plant, kept for the inspect checks below).
"$MMFUSE" demo --devices 8 --seed 5 --threads 2 --json --data "$TMP/plant" "${SMALL[@]}" >"$TMP/demo.json"
check "demo runs" $?
$PY - "$TMP/demo.json" "$TMP/plant" <<'PYEOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
assert list(d)[:6] == ["devices", "seed", "precision", "recall", "per_modality", "fused"], list(d)
assert d["devices"] == 8 and d["seed"] == 5
for k in ("precision", "recall"):
    assert 0.0 <= d[k] <= 1.0, d
assert set(d["per_modality"]) == {"camera", "infrared", "sound", "sensors"}, d["per_modality"]
for m, v in d["per_modality"].items():
    assert 0.0 <= v["precision"] <= 1.0 and 0.0 <= v["recall"] <= 1.0, (m, v)
    assert v["tp"] + v["fp"] + v["fn"] + v["tn"] == 8, (m, v)
f = d["fused"]
assert f["tp"] + f["fp"] + f["fn"] + f["tn"] == 8
assert d["latency_ms"]["p50"] > 0 and d["latency_ms"]["p95"] >= d["latency_ms"]["p50"], d["latency_ms"]
assert sum(d["scenarios"].values()) == 8
truth = json.load(open(os.path.join(sys.argv[2], "truth.json")))
assert len(truth) == 8 and sum(t["machine_fault"] for t in truth) == f["tp"] + f["fn"]
# The fused verdict must be good even on this small, low-resolution plant.
assert d["recall"] >= 0.75 and d["precision"] >= 0.75, d
PYEOF
check "demo JSON contract" $?

# Same seed, same plant: the generated files are identical.
"$MMFUSE" demo --devices 2 --seed 9 --threads 2 --data "$TMP/a" "${SMALL[@]}" >/dev/null &&
  "$MMFUSE" demo --devices 2 --seed 9 --threads 1 --data "$TMP/b" "${SMALL[@]}" >/dev/null &&
  diff -r "$TMP/a/devices" "$TMP/b/devices" >/dev/null && cmp -s "$TMP/a/plant.yaml" "$TMP/b/plant.yaml"
check "demo is deterministic for a seed" $?

# --no-inspect: the same plant files, written only (no round, so no store and no
# fitted models); without --data it is exit 2 (the plant would be removed at once).
"$MMFUSE" demo --devices 2 --seed 9 --threads 2 --no-inspect --json --data "$TMP/c" "${SMALL[@]}" >"$TMP/c.json" &&
  diff -r "$TMP/a/devices" "$TMP/c/devices" >/dev/null && cmp -s "$TMP/a/plant.yaml" "$TMP/c/plant.yaml" &&
  [ ! -e "$TMP/c/data/models" ] && [ ! -e "$TMP/c/data/mmfuse.db" ] &&
  $PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['devices'] == 2 and 'precision' not in d and d['data_dir'], d" "$TMP/c.json"
check "demo --no-inspect writes the same plant, nothing else" $?
expect_error "demo --no-inspect without --data" "--no-inspect needs --data" \
  "$MMFUSE" demo --devices 2 --no-inspect "${SMALL[@]}"

# --- inspect: a round left open, then resumed; the store holds every inspection once.
PLANT=$TMP/plant/plant.yaml
"$MMFUSE" inspect --plant "$PLANT" --max-devices 3 --json --threads 2 >"$TMP/r1.json"
check "inspect partial round" $?
"$MMFUSE" inspect --plant "$PLANT" --json --records --threads 2 >"$TMP/r2.json"
check "inspect resumed round" $?
$PY - "$TMP/r1.json" "$TMP/r2.json" "$TMP/plant/data/mmfuse.db" "$TMP/demo.json" <<'PYEOF'
import json, sqlite3, sys
r1, r2 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert r1["devices"] == 3 and not r1["finished"] and not r1["resumed"], r1
assert r2["round_id"] == r1["round_id"] and r2["resumed"] and r2["finished"], r2
assert r2["skipped"] == 3 and r2["devices"] == 5, r2
assert len(r2["records"]) == 5
rec = r2["records"][0]
assert set(rec["modalities"]) == {"camera", "infrared", "sound", "sensors"}
for m in rec["modalities"].values():
    assert m["status"] in ("ok", "anomaly"), m
    assert 0.0 <= m["score"] < 1.0 and (m["score"] >= 0.5) == m["decision"], m
db = sqlite3.connect(sys.argv[3])
assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
n = db.execute("SELECT COUNT(*) FROM inspections WHERE round_id = ?", (r1["round_id"],)).fetchone()[0]
assert n == 8, n
dev = db.execute("SELECT COUNT(DISTINCT device_id) FROM inspections").fetchone()[0]
assert dev == 8, dev
status = db.execute("SELECT status FROM rounds WHERE id = ?", (r1["round_id"],)).fetchone()[0]
assert status == "finished", status
alarms = r1["alarms"] + r2["alarms"]
assert db.execute("SELECT COUNT(*) FROM alarms").fetchone()[0] == alarms
assert alarms == json.load(open(sys.argv[4]))["alarms"], alarms
PYEOF
check "store holds the resumed round once" $?

# A new run starts a new round (the last one finished).
"$MMFUSE" inspect --plant "$PLANT" --json --threads 2 >"$TMP/r3.json"
$PY -c "import json,sys; a=json.load(open('$TMP/r1.json')); b=json.load(open('$TMP/r3.json')); assert b['round_id']!=a['round_id'] and not b['resumed'] and b['devices']==8, b"
check "next run starts a new round" $?

# --- edge sync (docs/scale-out.md) into a SQLite centre: the run forwards the
# edge's whole store (earlier rounds included), once.
CENTRE="sqlite://$TMP/centre/c.db"
"$MMFUSE" inspect --plant "$PLANT" --json --threads 2 --forward-to "$CENTRE" --edge-id box >/dev/null
check "inspect --forward-to exits 0" $?
"$MMFUSE" store info --data "$TMP/plant/data" >"$TMP/edge_info.json" &&
  "$MMFUSE" store info --store "$CENTRE" >"$TMP/centre_info.json"
check "store info on edge and centre" $?
$PY - "$TMP/edge_info.json" "$TMP/centre_info.json" <<'PYEOF'
import json, sys
e, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for k in ("devices", "rounds", "inspections", "readings", "alarms"):
    assert e["counts"][k] == c["counts"][k], (k, e["counts"], c["counts"])
assert e["forward"][0]["edge_id"] == "box" and e["forward"][0]["pending_inspections"] == 0, e["forward"]
assert c["edges"][0]["edge_id"] == "box", c["edges"]
PYEOF
check "the centre holds the edge's store" $?

# --- missing and unreadable inputs: recorded, the rest still decides.
cp -r "$TMP/plant" "$TMP/broken"
rm -f "$TMP/broken/devices/dev-001/camera/"*
echo "not a png" >"$TMP/broken/devices/dev-002/ir/ir_0001.png"
rm -rf "$TMP/broken/data"
"$MMFUSE" inspect --plant "$TMP/broken/plant.yaml" --json --records --threads 2 >"$TMP/b.json"
check "inspect with broken inputs exits 0" $?
$PY - "$TMP/b.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
recs = {x["device_id"]: x for x in r["records"]}
c = recs["dev-001"]["modalities"]["camera"]
assert c["status"] == "missing", c
i = recs["dev-002"]["modalities"]["infrared"]
assert i["status"] == "error" and "ir_0001.png" in i["message"], i
assert recs["dev-002"]["modalities"]["sound"]["status"] in ("ok", "anomaly")
assert r["modality_errors"] == 1, r["modality_errors"]
PYEOF
check "missing and error modalities recorded" $?

# --- plant-file errors: field path and line, exit 2, nothing on stdout.
sed 's/hot_threshold_c: 80/hot_threshold_c: hot/' "$PLANT" >"$TMP/bad1.yaml"
LINE=$(grep -n "hot_threshold_c: hot" "$TMP/bad1.yaml" | head -1 | cut -d: -f1)
expect_error "bad number names field and line" "bad1.yaml:$LINE: devices[0].points[0].infrared.hot_threshold_c: expected a number" \
  "$MMFUSE" inspect --plant "$TMP/bad1.yaml"
sed 's/rule: weighted_vote/rule: majority/' "$PLANT" >"$TMP/bad2.yaml"
expect_error "bad rule" "fusion.rule: unknown rule 'majority'" "$MMFUSE" inspect --plant "$TMP/bad2.yaml"
printf 'devices:\n  - id: a\n    points:\n      - id: p\n        camera: {image: x.png}\n' >"$TMP/bad3.yaml"
expect_error "missing golden" "bad3.yaml:5: devices[0].points[0].camera.golden: required" \
  "$MMFUSE" inspect --plant "$TMP/bad3.yaml"
expect_error "missing plant file" "cannot be opened" "$MMFUSE" inspect --plant "$TMP/nope.yaml"
expect_error "demo into a non-empty folder" "is not empty" "$MMFUSE" demo --devices 1 --data "$TMP/plant"
expect_error "demo with zero devices" "devices" "$MMFUSE" demo --devices 0

finish inspect_cli
