#!/usr/bin/env bash
# Store benchmark (issue 5): inspections recorded per second (each one transaction with
# 4 modality rows, READINGS sensor readings, evidence references and, for 5 %, an alarm
# with two outbox rows), bytes per inspection, dashboard query latency and retention,
# with synchronous=FULL and NORMAL, next to a peer that writes the same rows through
# Python's sqlite3 module (same SQLite, same schema, same fsyncs).
#
#   bench/store_bench.sh                          # 2000 inspections x 600 readings
#   INSPECTIONS=500 READINGS=600 bench/store_bench.sh
#
# Writes bench/out/store_*.json and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
MMFUSE=${MMFUSE:-build/mmfuse}
INSPECTIONS=${INSPECTIONS:-2000}
READINGS=${READINGS:-600}
DEVICES=${DEVICES:-500}
PY=/usr/bin/python3
OUT=bench/out
mkdir -p "$OUT"
echo "load average $(cut -d' ' -f1 /proc/loadavg) (fsync-bound figures swing with other disk and CPU work)" >&2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for mode in full normal; do
  flag=""; [ $mode = normal ] && flag="--normal"
  "$MMFUSE" store bench --inspections "$INSPECTIONS" --readings "$READINGS" --devices "$DEVICES" $flag \
    --dir "$TMP/mmfuse-$mode" >"$OUT/store_mmfuse_$mode.json"
  $PY bench/store_peer.py --schema-from "$TMP/mmfuse-$mode/mmfuse.db" --out "$TMP/peer-$mode" \
    --inspections "$INSPECTIONS" --readings "$READINGS" --devices "$DEVICES" $flag >"$OUT/store_peer_$mode.json"
done

$PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
print("| synchronous | mmfuse insp/s | p50 ms | p95 ms | peer (python sqlite3) insp/s | p50 ms | p95 ms | ratio |")
print("|---|---|---|---|---|---|---|---|")
for mode in ("full", "normal"):
    m = json.load(open(f"{out}/store_mmfuse_{mode}.json"))
    p = json.load(open(f"{out}/store_peer_{mode}.json"))
    mr, pr = m["record"], p["record"]
    print(f"| {m['synchronous']} | {mr['per_s']:.0f} | {mr['p50_ms']:.2f} | {mr['p95_ms']:.2f} | "
          f"{pr['per_s']:.0f} | {pr['p50_ms']:.2f} | {pr['p95_ms']:.2f} | {mr['per_s'] / pr['per_s']:.2f}x |")
m = json.load(open(f"{out}/store_mmfuse_full.json"))
print(f"\n{m['inspections']} inspections x {m['readings_per_inspection']} readings, {m['devices']} devices: "
      f"{m['db_bytes_per_inspection'] / 1024:.1f} KiB per inspection; queries (median ms): " +
      ", ".join(f"{k} {v:.2f}" for k, v in m["queries_ms"].items()) +
      f"; prune of {m['pruned_inspections']} inspections {m['prune_ms']:.0f} ms")
PYEOF
