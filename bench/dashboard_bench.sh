#!/usr/bin/env bash
# Dashboard queries over weeks of history (issue 20: "<= 50 ms p95 with 30 days of history
# for 500 devices at 5-minute rounds"), on SQLite and on PostgreSQL 15. `mmfuse store
# dashboard-bench` loads the history with set-based SQL (Store::generate_history), then
# times the store calls of every API route the web dashboard polls (p50/p95 over CALLS
# calls). PostgreSQL is a throw-away server (initdb in WORK, 127.0.0.1, a free port,
# default settings; as root it runs as the postgres user) on the same machine.
#
#   bench/dashboard_bench.sh                                  # 30 days x 500 devices, 5-min rounds
#   DAYS=2 DEVICES=100 CALLS=50 bench/dashboard_bench.sh      # a quick look
#   WORK=/var/tmp/dash bench/dashboard_bench.sh               # keep the loaded stores there ...
#   WORK=/var/tmp/dash LOAD=0 bench/dashboard_bench.sh        # ... and measure them again
#
# Writes bench/out/dashboard_{sqlite,postgresql}.json and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
MMFUSE=${MMFUSE:-build/mmfuse}
DAYS=${DAYS:-30}
DEVICES=${DEVICES:-500}
ROUND_MINUTES=${ROUND_MINUTES:-5}
READINGS=${READINGS:-2}
CALLS=${CALLS:-200}
LOAD=${LOAD:-1}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
OUT=bench/out
mkdir -p "$OUT"
[ -x "$PGBIN/initdb" ] || { echo "dashboard_bench: $PGBIN/initdb missing (apt-get install postgresql)" >&2; exit 2; }

KEEP=1
if [ -z "${WORK:-}" ]; then WORK=$(mktemp -d); KEEP=0; fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
AS=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$WORK"
  AS=(runuser -u postgres --)
fi
PGPID=
cleanup() {
  if [ -n "$PGPID" ]; then
    (cd "$WORK" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1) || kill "$PGPID" 2>/dev/null || true
    wait "$PGPID" 2>/dev/null || true
  fi
  [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

[ -d "$WORK/pg" ] || (cd "$WORK" && "${AS[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U mmfuse -A trust -E UTF8 --locale=C >/dev/null)
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$WORK" && exec "${AS[@]}" "$PGBIN/postgres" -D "$WORK/pg" -p "$PORT" -k "$WORK" \
   -c listen_addresses=127.0.0.1 >"$WORK/pg.log" 2>&1) &
PGPID=$!
for _ in $(seq 150); do
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.2
done
PG_URL="postgresql://mmfuse@127.0.0.1:$PORT/dash"
SQ_DIR="$WORK/sqlite"
FLAGS=(--days "$DAYS" --devices "$DEVICES" --round-minutes "$ROUND_MINUTES" --readings "$READINGS" --calls "$CALLS")
if [ "$LOAD" = 1 ]; then
  psql -q -h 127.0.0.1 -p "$PORT" -U mmfuse -d postgres -c "DROP DATABASE IF EXISTS dash" -c "CREATE DATABASE dash"
  rm -rf "$SQ_DIR"
else
  FLAGS+=(--no-load)
fi
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$MMFUSE" store dashboard-bench --data "$SQ_DIR" "${FLAGS[@]}" >"$OUT/dashboard_sqlite.json"
echo "sqlite done; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$MMFUSE" store dashboard-bench --store "$PG_URL" "${FLAGS[@]}" >"$OUT/dashboard_postgresql.json"
echo "postgresql done; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

$PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
sq = json.load(open(f"{out}/dashboard_sqlite.json"))
pg = json.load(open(f"{out}/dashboard_postgresql.json"))
c = sq["counts"]
print(f"{c['inspections']} inspections, {c['readings']} readings, {c['alarms']} alarms "
      f"({c['open_alarms']} open), {c['rounds']} rounds, {c['devices']} devices; on disk: "
      f"SQLite {sq['db_bytes'] / 2**30:.2f} GiB, PostgreSQL {pg['db_bytes'] / 2**30:.2f} GiB")
for r in (sq, pg):
    if "load" in r:
        print(f"load into {r['backend']}: {r['load']['seconds']:.0f} s")
print("\n| query (route) | rows | SQLite p50 ms | p95 ms | client cpu ms | PostgreSQL p50 ms | p95 ms | client cpu ms |")
print("|---|---|---|---|---|---|---|---|")
for name, q in sq["queries"].items():
    p = pg["queries"][name]
    print(f"| {name} (`{q['route']}`) | {q['rows']} | {q['p50_ms']:.2f} | {q['p95_ms']:.2f} | "
          f"{q['client_cpu_p50_ms']:.2f} | {p['p50_ms']:.2f} | {p['p95_ms']:.2f} | {p['client_cpu_p50_ms']:.2f} |")
PYEOF
