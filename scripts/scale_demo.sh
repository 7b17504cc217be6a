#!/usr/bin/env bash
# Several inspection workers on one PostgreSQL store (docs/scale-out.md): starts a
# throw-away PostgreSQL 15 (initdb in a temporary folder, 127.0.0.1, a free port; as
# root it runs as the postgres user), generates a demo plant, and runs one round with
# 1, 2 and 3 `mmfuse inspect --store URL --once` workers started together, each round
# in a fresh database, then the same round on SQLite. Prints the devices each worker
# took, checks every device was inspected exactly once, and reports inspections/s.
# Then `mmfuse store bench` writes into PostgreSQL from 1, 2, 3 writers and into SQLite.
# Last, the failure scenario of the StoreFailover test over a plant of the same size:
# 3 workers and 2 `serve` replicas on one database with a webhook receiver, a worker
# killed (kill -9) mid-round and restarted, then the database killed mid-round and
# restarted; every (device, point) once per round and every alarm delivered once, in
# order (FAILOVER=0 skips it, FAILOVER_DEVICES=N sizes it; it builds
# build/tests/mmfuse_slow_tests when missing).
#   DEVICES=500 THREADS=1 scripts/scale_demo.sh        (MMFUSE=path/to/mmfuse to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
MMFUSE=${MMFUSE:-build/mmfuse}
DEVICES=${DEVICES:-500}
THREADS=${THREADS:-1}
BENCH_N=${BENCH_N:-1000}
FAILOVER=${FAILOVER:-1}
FAILOVER_DEVICES=${FAILOVER_DEVICES:-$DEVICES}
FAILOVER_TESTS=${FAILOVER_TESTS:-build/tests/mmfuse_slow_tests}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
[ -x "$MMFUSE" ] || { scripts/setup.sh >/dev/null; }
[ -x "$PGBIN/initdb" ] || { echo "scale_demo: $PGBIN/initdb missing (apt-get install postgresql)" >&2; exit 2; }

TMP=$(mktemp -d)
AS=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$TMP"
  AS=(runuser -u postgres --)
fi
PGPID=
cleanup() {
  if [ -n "$PGPID" ]; then
    (cd "$TMP" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$TMP/pg" -m fast -w stop >/dev/null 2>&1) || kill "$PGPID" 2>/dev/null || true
    wait "$PGPID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$TMP" && "${AS[@]}" "$PGBIN/initdb" -D "$TMP/pg" -U mmfuse -A trust -E UTF8 --locale=C >/dev/null)
(cd "$TMP" && exec "${AS[@]}" "$PGBIN/postgres" -D "$TMP/pg" -p "$PORT" -k "$TMP" \
   -c listen_addresses=127.0.0.1 -c max_connections=200 >"$TMP/pg.log" 2>&1) &
PGPID=$!
for _ in $(seq 100); do
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.2
done
PSQL=(psql -q -h 127.0.0.1 -p "$PORT" -U mmfuse -d postgres -v ON_ERROR_STOP=1)
echo "postgres 15 on 127.0.0.1:$PORT ($TMP/pg)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, \
$(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$TMP/plant"
"$MMFUSE" demo --devices "$DEVICES" --seed 11 --threads 2 --data "$TMP/plant" \
  --image-width 320 --image-height 240 --ir-width 160 --ir-height 128 \
  --audio-seconds 1 --sensor-seconds 30 >/dev/null
echo "demo plant: $DEVICES devices"

# One round with N workers started together; prints "<inspections> <seconds>".
round() {
  local n=$1 url=$2 w
  local t0 t1
  local pids=()
  t0=$(date +%s.%N)
  for w in $(seq "$n"); do
    "$MMFUSE" inspect --plant "$TMP/plant/plant.yaml" --store "$url" --once --json --no-deliver \
      --threads "$THREADS" >"$TMP/w$w.json" 2>"$TMP/w$w.err" &
    pids+=($!)
  done
  wait "${pids[@]}"  # the workers only (the server is a background job too)
  t1=$(date +%s.%N)
  $PY - "$n" "$t0" "$t1" "$DEVICES" "$TMP" <<'PYEOF'
import json, sys
n, t0, t1, devices, tmp = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
runs = [json.load(open(f"{tmp}/w{w}.json")) for w in range(1, n + 1)]
assert len({r["round_id"] for r in runs}) == 1, "workers ran different rounds"
assert sum(r["devices"] for r in runs) == devices, [r["devices"] for r in runs]
points = sum(r["points"] for r in runs)
print(f"  {n} worker(s): devices per worker {[r['devices'] for r in runs]}, "
      f"{points} inspections in {t1 - t0:.1f} s = {points / (t1 - t0):.2f} inspections/s")
PYEOF
}

for n in 1 2 3; do
  "${PSQL[@]}" -c "CREATE DATABASE scale_$n"
  round "$n" "postgresql://mmfuse@127.0.0.1:$PORT/scale_$n"
  # Exactly once: no (device, point) twice and every device there.
  "${PSQL[@]}" -d "scale_$n" -At -c "SELECT count(*), count(DISTINCT device_id), \
     (SELECT count(*) FROM (SELECT 1 FROM inspections GROUP BY device_id, point_id HAVING count(*) > 1) d) \
     FROM inspections" | {
    IFS='|' read -r rows devs dups
    [ "$devs" = "$DEVICES" ] && [ "$dups" = 0 ] || { echo "exactly-once check failed: $rows $devs $dups" >&2; exit 1; }
    echo "    database: $rows inspections, $devs devices, $dups duplicates"
  }
  # The round itself (started -> finished in the store), without the workers' start-up.
  "${PSQL[@]}" -d "scale_$n" -At -c "SELECT finished_ms - started_ms, \
     (SELECT count(*) FROM inspections) FROM rounds" | {
    IFS='|' read -r ms rows
    $PY -c "print(f'    round in the store: {$rows} inspections in {$ms / 1000:.1f} s = {$rows * 1000 / $ms:.2f} inspections/s')"
  }
done
echo "  SQLite (one process, --threads $THREADS):"
t0=$(date +%s.%N)
"$MMFUSE" inspect --plant "$TMP/plant/plant.yaml" --store "sqlite://$TMP/lite/mmfuse.db" --once --json \
  --no-deliver --threads "$THREADS" >"$TMP/lite.json" 2>/dev/null
t1=$(date +%s.%N)
$PY -c "import json,sys; r=json.load(open('$TMP/lite.json')); print(f\"    {r['points']} inspections in {$t1-$t0:.1f} s = {r['points']/($t1-$t0):.2f} inspections/s; round alone {r['round_ms']/1000:.1f} s = {r['points']*1000/r['round_ms']:.2f} inspections/s\")"

echo "store bench ($BENCH_N inspections, 600 readings each):"
for n in 1 2 3; do
  "${PSQL[@]}" -c "CREATE DATABASE bench_$n"
  "$MMFUSE" store bench --inspections "$BENCH_N" --writers "$n" \
    --store "postgresql://mmfuse@127.0.0.1:$PORT/bench_$n" --dir "$TMP/bench_pg_$n" |
    $PY -c "import json,sys; r=json.load(sys.stdin); print(f\"  postgresql, {r['writers']} writer(s): {r['record']['per_s']:.0f} inspections/s (p50 {r['record']['p50_ms']:.1f} ms, p95 {r['record']['p95_ms']:.1f} ms); device_status {r['queries_ms']['device_status']:.1f} ms\")"
done
for n in 1 3; do
  "$MMFUSE" store bench --inspections "$BENCH_N" --writers "$n" --dir "$TMP/bench_lite_$n" |
    $PY -c "import json,sys; r=json.load(sys.stdin); print(f\"  sqlite,     {r['writers']} writer(s): {r['record']['per_s']:.0f} inspections/s (p50 {r['record']['p50_ms']:.1f} ms, p95 {r['record']['p95_ms']:.1f} ms); device_status {r['queries_ms']['device_status']:.1f} ms\")"
done
echo "load average after the rounds and benches: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$FAILOVER" = 1 ]; then
  [ -x "$FAILOVER_TESTS" ] || nice -n 10 ninja -C build mmfuse_slow_tests >/dev/null
  echo "failure scenario ($FAILOVER_DEVICES devices: 3 workers, 2 serve replicas, a worker and the database killed):"
  t0=$(date +%s)
  MMFUSE_FAILOVER_DEVICES=$FAILOVER_DEVICES "$FAILOVER_TESTS" --gtest_filter='StoreFailover.*' |
    grep -E '^(setup|round|[0-9]+ alarms)|OK \]|FAILED|Failure' | sed 's/^/  /'
  echo "  ($(($(date +%s) - t0)) s; load average $(cut -d' ' -f1-3 /proc/loadavg))"
fi
