#!/usr/bin/env bash
# `mmfuse sensor poll` at 10 Hz x 500 channels on one core (issue 18, item 5):
# a small Modbus TCP server (bench/modbus_sim.py, 500 holding registers moving
# like noisy sensors) on one core, `mmfuse sensor poll` pinned to the other,
# polling all 500 registers (4 requests of at most 125 words per row) and
# scoring every row live with the default detector (500 channels: the
# ensemble) after --train-rows. Reports rows received against the schedule,
# the largest gap between rows, and the poller's CPU use (user + system time
# over wall time: 100 % = the core is saturated).
#
#   bench/sensor_poll_bench.sh      (MMFUSE=./build/mmfuse CHANNELS=500 RATE=10 DURATION=150 TRAIN=800)
#
# Writes bench/out/sensor_poll/ (gitignored): poll.csv and results.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" sensor_poll_bench
CHANNELS="${CHANNELS:-500}"
RATE="${RATE:-10}"
SECONDS_RUN="${DURATION:-150}"
TRAIN="${TRAIN:-800}"
PORT="${PORT:-15020}"
OUT=bench/out/sensor_poll
mkdir -p "$OUT"
CORES=$(nproc)
SERVER_CPU=$((CORES > 1 ? 1 : 0))

taskset -c "$SERVER_CPU" "$PYTHON" bench/modbus_sim.py --port "$PORT" --registers "$CHANNELS" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  "$PYTHON" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.2)" "$PORT" 2>/dev/null && break
  sleep 0.1
done

REGS=()
for ((i = 0; i < CHANNELS; i++)); do REGS+=(--register "c$i:$i:holding:u16:0.01"); done
log "poll: $CHANNELS registers at $RATE Hz for $SECONDS_RUN s, scoring after $TRAIN rows, pinned to CPU 0"
/usr/bin/time -f '%U %S %e' -o "$OUT/time.txt" taskset -c 0 "$MMFUSE" sensor poll --port "$PORT" \
  --rate "$RATE" --duration "$SECONDS_RUN" --train-rows "$TRAIN" "${REGS[@]}" >"$OUT/poll.csv"

"$PYTHON" - "$OUT" "$CHANNELS" "$RATE" "$SECONDS_RUN" "$TRAIN" <<'PYEOF'
import datetime, os, sys
out, channels, rate, secs, train = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
user, system, wall = map(float, open(os.path.join(out, "time.txt")).read().split()[-3:])
lines = open(os.path.join(out, "poll.csv")).read().splitlines()
header, rows = lines[0].split(","), lines[1:]
times = [datetime.datetime.fromisoformat(r.split(",", 1)[0].replace("Z", "+00:00")).timestamp() for r in rows]
gaps = [b - a for a, b in zip(times, times[1:])]
scored = [r for r in rows if not r.endswith(",,")]
flagged = sum(1 for r in scored if r.endswith(",1"))
cpu = (user + system) / wall
model = os.popen("lscpu | sed -n 's/^Model name: *//p'").read().strip()
text = "\n".join([
    f"`sensor poll`, {channels} registers at {rate:g} Hz for {secs:g} s on one core ({model}), "
    f"load {open('/proc/loadavg').read().split()[0]}",
    "",
    "| rows expected | rows received | rows scored | flagged | mean gap, ms | max gap, ms | poller CPU (user+sys)/wall |",
    "|---|---|---|---|---|---|---|",
    f"| {int(rate * secs)} | {len(rows)} | {len(scored)} | {flagged} | {1000 * sum(gaps) / max(len(gaps), 1):.1f} | "
    f"{1000 * max(gaps, default=0):.1f} | {100 * cpu:.1f} % |",
]) + "\n"
assert len(header) == channels + 3, "unexpected header"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
PYEOF
