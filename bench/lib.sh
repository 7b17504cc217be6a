# Shared preamble of the bench/*.sh scripts: `source bench/lib.sh NAME` moves to
# the repository root, sets PYTHON and MMFUSE (overridable), defines log(), and
# warns when the machine is busy (figures are then low and noisy).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-/usr/bin/python3}"
MMFUSE="${MMFUSE:-./build/mmfuse}"
BENCH_NAME="$1"
log() { printf '[%s] %s\n' "$BENCH_NAME" "$*" >&2; }
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  log "warning: load average $load on $(nproc) cores; numbers will be low and noisy"
fi
