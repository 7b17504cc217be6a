#!/usr/bin/env bash
# Inspection latency and memory (issue 5 benchmark).
#  1. Per-device latency with the chapter's sensors: a 3840x2160 photo, a 640x512
#     16-bit IR frame, 5 s of 48 kHz audio and 60 s of 10 Hz sensor rows per device,
#     models loaded (fits and golden images prepared before the round): one device
#     at a time on one core (--threads 1) and a round on THREADS cores, with the
#     median time of each modality. Target: p95 <= 300 ms.
#  2. Memory of a MEM_DEVICES-device plant (default 500, demo sizes): peak RSS of
#     `mmfuse inspect` holding every point's golden image and fitted sound and
#     sensor models through one round.
#
#   bench/inspect_bench.sh     (MMFUSE=./build/mmfuse THREADS=2 DEVICES=10 MEM_DEVICES=500;
#                               MEM_DEVICES=0 skips part 2)
#
# No peer: there is no OpenCV for Python here to run the same camera pipeline;
# the sound and sensor detectors have their own peer benchmarks (sound_bench.sh,
# sensor_bench.sh). Writes bench/out/inspect/ (gitignored), results.md last.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-/usr/bin/python3}"
MMFUSE="${MMFUSE:-./build/mmfuse}"
THREADS="${THREADS:-2}"
DEVICES="${DEVICES:-10}"
MEM_DEVICES="${MEM_DEVICES:-500}"
OUT="${OUT:-bench/out/inspect}"
rm -rf "$OUT"
mkdir -p "$OUT"
log() { printf '[inspect_bench] %s\n' "$*" >&2; }
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  log "warning: load average $load on $(nproc) cores; numbers will be high and noisy"
fi

log "generating $DEVICES devices at 3840x2160 / 640x512 / 5 s 48 kHz / 60 s 10 Hz"
"$MMFUSE" demo --devices "$DEVICES" --seed 11 --threads "$THREADS" --data "$OUT/plant4k" \
  --image-width 3840 --image-height 2160 --ir-width 640 --ir-height 512 \
  --audio-seconds 5 --sensor-seconds 60 --json >"$OUT/demo4k.json"
log "round on 1 core (one device at a time)"
"$MMFUSE" inspect --plant "$OUT/plant4k/plant.yaml" --threads 1 --no-deliver --json --records >"$OUT/round_t1.json"
log "round on $THREADS cores"
"$MMFUSE" inspect --plant "$OUT/plant4k/plant.yaml" --threads "$THREADS" --no-deliver --json --records >"$OUT/round_t$THREADS.json"

if [ "$MEM_DEVICES" -gt 0 ]; then
  log "memory: $MEM_DEVICES-device plant (demo sizes)"
  "$MMFUSE" demo --devices "$MEM_DEVICES" --seed 12 --threads "$THREADS" --data "$OUT/plant_mem" --json >"$OUT/demo_mem.json"
  /usr/bin/time -v "$MMFUSE" inspect --plant "$OUT/plant_mem/plant.yaml" --threads "$THREADS" --no-deliver --json \
    >"$OUT/round_mem.json" 2>"$OUT/time_mem.txt"
  rm -rf "$OUT/plant_mem/devices"  # gigabytes of generated sound
fi

"$PYTHON" - "$OUT" "$THREADS" "$DEVICES" "$MEM_DEVICES" <<'PYEOF'
import json, re, statistics, sys
out, threads, devices, mem_devices = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
demo = json.load(open(f"{out}/demo4k.json"))
t1 = json.load(open(f"{out}/round_t1.json"))
tn = json.load(open(f"{out}/round_t{threads}.json"))
import os
has_mem = mem_devices > 0 and os.path.exists(f"{out}/round_mem.json")
if has_mem:
    mem = json.load(open(f"{out}/round_mem.json"))
    demo_mem = json.load(open(f"{out}/demo_mem.json"))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{out}/time_mem.txt").read()).group(1))
def stage_ms(rnd):
    res = {}
    for m in ("camera", "infrared", "sound", "sensors"):
        v = [r["modalities"][m]["detail"].get("ms", 0.0) for r in rnd["records"] if "detail" in r["modalities"][m]]
        res[m] = statistics.median(v) if v else 0.0
    return res
s1 = stage_ms(t1)
lines = [
    "# mmfuse inspect benchmark",
    "",
    f"Per device: 3840x2160 JPEG photo (quality 90), 640x512 16-bit IR PNG, 5 s of 48 kHz audio, 600 sensor rows (60 s at 10 Hz); {devices} devices, models loaded.",
    "",
    "| run | p50 ms | p95 ms | max ms | round ms | devices/s |",
    "|---|---|---|---|---|---|",
]
for name, r in (("1 core, one device at a time", t1), (f"{threads} cores, round", tn)):
    l = r["latency_ms"]
    lines.append(f"| {name} | {l['p50']:.1f} | {l['p95']:.1f} | {l['max']:.1f} | {r['round_ms']:.0f} | {r['devices'] / r['round_ms'] * 1000:.2f} |")
lines += ["", "Median per modality (1 core): " + ", ".join(f"{k} {v:.1f} ms" for k, v in s1.items()),
          "", f"Fused precision/recall on this plant: {demo['precision']}/{demo['recall']}"]
if has_mem:
    lines += ["", f"## {mem_devices}-device plant (640x480 photos, 640x512 IR, 2 s clips, 6 x 5 s sound baseline, 600 s sensor baseline)",
          "", f"Peak RSS of `mmfuse inspect` (plant model, golden images, fitted models, one round): {rss_kb / 1024:.0f} MiB "
          f"({rss_kb / 1024 / mem_devices:.2f} MiB per device)",
          f"Round: {mem['round_ms'] / 1000:.1f} s on {threads} cores, per-device p50 {mem['latency_ms']['p50']:.1f} ms, p95 {mem['latency_ms']['p95']:.1f} ms; "
          f"demo fused precision/recall {demo_mem['precision']}/{demo_mem['recall']}"]
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
