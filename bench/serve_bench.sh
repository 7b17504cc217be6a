#!/usr/bin/env bash
# HTTP serving benchmark: wrk against POST /v1/embeddings of `mmfuse serve` on
# loopback, texts and 224x224 PNG images, at 1, 8 and 64 connections, with
# dynamic batching on and off. Reports throughput, p50/p99 latency, non-2xx and
# 5xx counts, and the server's peak RSS; and, as the peer, the engine's own
# throughput (`mmfuse bench`, batch 16, same cores) so the HTTP + batching
# overhead shows as a ratio. Results: bench/out/serve/results.md (+ .jsonl).
#
# Environment knobs (all optional):
#   MMFUSE=./build/mmfuse   MODEL=bench/out/vit-b-32 (generated if absent)
#   THREADS=2 (inference cores)   DURATION=10 (seconds per text run)
#   DURATION_IMAGE=30 (seconds per image run: 64 connections need time to reach a steady state)
#   CONNS="1 8 64"   KINDS="text image"   MODES="on off"
#   MAX_BATCH=32  MAX_WAIT_MS=5
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=/usr/bin/python3
MMFUSE="${MMFUSE:-./build/mmfuse}"
MODEL="${MODEL:-bench/out/vit-b-32}"
THREADS="${THREADS:-2}"
DURATION="${DURATION:-10}"
DURATION_IMAGE="${DURATION_IMAGE:-30}"
CONNS="${CONNS:-1 8 64}"
KINDS="${KINDS:-text image}"
MODES="${MODES:-on off}"
MAX_BATCH="${MAX_BATCH:-32}"
MAX_WAIT_MS="${MAX_WAIT_MS:-5}"
OUT=bench/out/serve
mkdir -p "$OUT"
log() { printf '[serve_bench] %s\n' "$*" >&2; }
command -v wrk >/dev/null || { log "wrk is not installed (apt-get install wrk)"; exit 1; }

if [[ ! -f "$MODEL/config.json" ]]; then
  log "generating $MODEL"
  "$PY" scripts/synth_clip_model.py --out "$MODEL" --preset vit-b-32
fi

# Request bodies.
printf '{"input":"a photo of a pump with an oil leak next to the motor"}' >"$OUT/text.json"
"$PY" - "$OUT/image.json" tests/fixtures/images/img2_square_224x224_rgb.png <<'PYEOF'
import base64, json, sys
data = base64.b64encode(open(sys.argv[2], "rb").read()).decode()
json.dump({"input": [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}}]}, open(sys.argv[1], "w"))
PYEOF

# wrk script: POST the body file, count 5xx per thread, print one JSON line.
cat >"$OUT/post.lua" <<'LUAEOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  local f = io.open(args[1], "rb"); wrk.body = f:read("*a"); f:close()
  wrk.method = "POST"; wrk.headers["Content-Type"] = "application/json"
  fivexx = 0
end
function response(status, headers, body) if status >= 500 then fivexx = fivexx + 1 end end
function done(summary, latency, requests)
  local f5 = 0
  for _, t in ipairs(threads) do f5 = f5 + t:get("fivexx") end
  io.write(string.format('WRKJSON {"requests":%d,"seconds":%.3f,"rps":%.2f,"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,"non2xx":%d,"fivexx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, f5, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUAEOF

# Engine peer: items per second at batch 16 on the same cores.
log "engine peer: mmfuse bench --batch 16 --threads $THREADS"
"$MMFUSE" bench --model "$MODEL" --batch 16 --threads "$THREADS" --iterations 3 --warmup 1 --json >"$OUT/engine.json"

: >"$OUT/results.jsonl"
for mode in $MODES; do
  extra=(--max-batch "$MAX_BATCH" --max-wait-ms "$MAX_WAIT_MS")
  [[ $mode == off ]] && extra=(--no-batching --max-batch "$MAX_BATCH")
  "$MMFUSE" serve --model "$MODEL" --model-name clip --threads "$THREADS" --port 0 --http-threads 128 \
    --queue-size 1024 "${extra[@]}" >"$OUT/serve_$mode.out" 2>"$OUT/serve_$mode.err" &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null' EXIT
  PORT=
  for _ in $(seq 1 600); do
    PORT=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$OUT/serve_$mode.out")
    [[ -n $PORT ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz") == 200 ]] && break
    sleep 0.1
  done
  for kind in $KINDS; do
    # Warm-up (first calls pack weights, fill caches).
    for _ in 1 2 3; do curl -s -o /dev/null -d @"$OUT/$kind.json" "http://127.0.0.1:$PORT/v1/embeddings"; done
    for c in $CONNS; do
      t=$((c < 2 ? 1 : 2))
      d=$DURATION
      [[ $kind == image ]] && d=$DURATION_IMAGE
      log "batching $mode, $kind, $c connections, ${d}s"
      line=$(wrk -t"$t" -c"$c" -d"${d}s" --timeout 60s -s "$OUT/post.lua" \
        "http://127.0.0.1:$PORT/v1/embeddings" -- "$OUT/$kind.json" | sed -n 's/^WRKJSON //p')
      rss=$(awk '/VmHWM/ {print $2}' /proc/$SERVER/status)
      echo "{\"batching\":\"$mode\",\"kind\":\"$kind\",\"connections\":$c,\"peak_rss_kb\":$rss,\"wrk\":$line}" >>"$OUT/results.jsonl"
    done
  done
  curl -s "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics_$mode.txt"
  kill -TERM $SERVER
  wait $SERVER || true
  trap - EXIT
done

"$PY" - "$OUT" <<'PYEOF'
import json, re, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(out + "/results.jsonl")]
eng = json.load(open(out + "/engine.json"))
peer = {"text": 1000.0 / eng["text_ms_per_item"], "image": 1000.0 / eng["image_ms_per_item"]}
lines = ["| batching | input | conns | req/s | p50 ms | p99 ms | non-2xx | 5xx | req/s ÷ engine | peak RSS MB |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    w = r["wrk"]
    lines.append(f"| {r['batching']} | {r['kind']} | {r['connections']} | {w['rps']:.1f} | {w['p50_ms']:.1f} | {w['p99_ms']:.1f} | "
                 f"{w['non2xx']} | {w['fivexx']} | {w['rps'] / peer[r['kind']]:.2f} | {r['peak_rss_kb'] / 1024:.0f} |")
batches = {}
for mode in ("on", "off"):
    try:
        text = open(f"{out}/metrics_{mode}.txt").read()
    except OSError:
        continue
    s = sum(float(v) for v in re.findall(r'^mmfuse_batch_size_sum\{[^}]*\} (\S+)', text, re.M))
    n = sum(float(v) for v in re.findall(r'^mmfuse_batch_size_count\{[^}]*\} (\S+)', text, re.M))
    batches[mode] = s / n if n else 0
report = "\n".join(lines)
report += f"\n\nEngine peer (`mmfuse bench --batch 16`): text {peer['text']:.1f} items/s, image {peer['image']:.1f} items/s.\n"
load = open("/proc/loadavg").read().split()[0]
report += f"Load average at the end: {load} (on {__import__('os').cpu_count()} cores).\n"
report += "Mean inputs per model call: " + ", ".join(f"batching {k}: {v:.2f}" for k, v in batches.items()) + "\n"
open(out + "/results.md", "w").write(report)
print(report)
PYEOF
