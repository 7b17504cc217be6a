#!/usr/bin/env bash
# CLI contract of `mmfuse store dashboard-bench` (docs/scale-out.md): loads a day of
# synthetic history into an empty SQLite store and prints the load and every dashboard
# query's figures as JSON; a store that already holds inspections is refused (exit 2)
# unless --no-load asks to measure it as it is.
# Usage: store_dashboard_cli.sh MMFUSE_BINARY FIXTURES_DIR
set -uo pipefail
MMFUSE=$1
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/assert.sh"

"$MMFUSE" store dashboard-bench --data "$TMP/s" --days 1 --devices 3 --round-minutes 60 \
  --readings 4 --calls 2 >"$TMP/out.json" 2>"$TMP/err"
rc=$?
check "dashboard-bench loads and measures ($(head -c 300 "$TMP/err"))" $rc
$PY - "$TMP/out.json" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["backend"] == "sqlite"
assert j["load"]["rounds"] == 24 and j["load"]["inspections"] == 72, j["load"]
assert j["load"]["readings"] == 72 * 4, j["load"]
c = j["counts"]
assert c["devices"] == 3 and c["inspections"] == 72 and c["readings"] == 288, c
assert j["db_bytes"] > 0
for name in ("device_status", "round_current", "alarms_open_50", "stats_30d", "device_trend_24h",
             "device_inspections_20", "device_alarms_20", "counts"):
    q = j["queries"][name]
    assert q["p95_ms"] >= q["p50_ms"] >= 0 and q["route"], (name, q)
assert j["queries"]["device_status"]["rows"] == 3
PYEOF
check "dashboard-bench JSON" $?

expect_error "a loaded store is refused" "already holds inspections" \
  "$MMFUSE" store dashboard-bench --data "$TMP/s" --days 1 --devices 3 --calls 1
"$MMFUSE" store dashboard-bench --data "$TMP/s" --no-load --calls 1 >"$TMP/again.json" 2>"$TMP/err"
check "--no-load measures it as it is ($(head -c 300 "$TMP/err"))" $?
expect_error "no store given" "--data DIR or --store URL" env -u MMFUSE_STORE "$MMFUSE" store dashboard-bench

finish store_dashboard_cli
