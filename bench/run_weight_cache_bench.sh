#!/usr/bin/env bash
# Load time and peak RSS with and without the packed-weight cache
# (io/packed_weight_cache.h; docs/quantization.md), per dtype, interleaved:
# each round runs, per dtype, a load with --no-weight-cache ("pack"), a load
# into an empty cache folder ("first": packs and writes the file) and a load
# from the warm cache ("cached"). Prints one JSON line per run and a summary
# of medians (wall and process CPU ms of the load). The weight file should be in the page cache (the first round warms it).
#
# Usage: bench/run_weight_cache_bench.sh
# Environment: MMFUSE=./build/mmfuse  MODEL=bench/out/vit-b-32  THREADS=2
#   DTYPES="f32 int8"  ROUNDS=3  CACHE=$(mktemp -d)  PYTHON=/usr/bin/python3
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MMFUSE="${MMFUSE:-./build/mmfuse}"
MODEL="${MODEL:-bench/out/vit-b-32}"
THREADS="${THREADS:-2}"
DTYPES="${DTYPES:-f32 int8}"
ROUNDS="${ROUNDS:-3}"
PYTHON="${PYTHON:-/usr/bin/python3}"
CACHE="${CACHE:-$(mktemp -d)}"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

bench() {  # kind dtype [flags...]: one load + one batch-1 pass, appends a JSON line
  local kind=$1 dtype=$2
  shift 2
  MMFUSE_CACHE_DIR="$CACHE/$dtype" "$MMFUSE" bench --model "$MODEL" --dtype "$dtype" \
    --threads "$THREADS" --batch 1 --iterations 1 --warmup 0 --json "$@" 2>/dev/null |
    grep -E '^\s*\{' | tail -n 1 |
    "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"kind":sys.argv[1],"dtype":sys.argv[2],"load_ms":d["load_ms"],"load_cpu_ms":d.get("load_cpu_ms"),"peak_rss_mb":d.get("peak_rss_mb")}))' \
      "$kind" "$dtype" | tee -a "$LOG"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
  for d in $DTYPES; do
    bench pack "$d" --no-weight-cache
    rm -rf "${CACHE:?}/$d"
    bench first "$d"
    bench cached "$d"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$PYTHON" - "$LOG" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for d in dict.fromkeys(r["dtype"] for r in rows):
    med = {}
    for k in ("pack", "first", "cached"):
        sel = [r for r in rows if r["dtype"] == d and r["kind"] == k]
        med[k] = (statistics.median(r["load_ms"] for r in sel),
                  statistics.median(r["peak_rss_mb"] or 0 for r in sel),
                  statistics.median(r["load_cpu_ms"] or 0 for r in sel))
    print(f"{d}: load ms pack {med['pack'][0]:.0f}, first (writes cache) {med['first'][0]:.0f}, "
          f"cached {med['cached'][0]:.0f} ({med['cached'][0] / med['pack'][0]:.2f}x); "
          f"load CPU ms pack {med['pack'][2]:.0f}, cached {med['cached'][2]:.0f} "
          f"({med['cached'][2] / max(med['pack'][2], 1e-9):.2f}x); "
          f"peak RSS MiB pack {med['pack'][1]:.0f}, cached {med['cached'][1]:.0f}")
PY
