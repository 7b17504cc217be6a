#!/usr/bin/env bash
# End-to-end CLIP ViT-B/32 benchmark: mmfuse vs. a PyTorch peer vs. the OpenBLAS
# sgemm ceiling.  See bench/README.md.
#
# Usage: bench/run_bench.sh [--quick] [--out FILE]
#   --out FILE   also write the Markdown report there (default bench/results.md); it always
#                goes to stdout, headed by the machine: CPU model, cores, ISA extensions
#                (avx2, fma, avx512f, avx512_vnni, avx512_bf16, amx_tile, ...), OS, commit
#   --quick      batch 1 only, 3 iterations per configuration (a few minutes on a busy
#                2-core machine); the same table, with fewer rows and more noise
#
# Environment knobs (all optional):
#   MMFUSE=./build/mmfuse      mmfuse binary ("n/a" columns when it has no working `bench`)
#   MODEL=bench/out/vit-b-32   model folder (generated with scripts/synth_clip_model.py if absent)
#   PRESET=vit-b-32            preset used when generating MODEL
#   BATCHES="1 16"  THREADS="1 2"
#   ITEMS=20                   iterations per config = max(MIN_ITERS, ITEMS / batch)
#   MIN_ITERS=3
#   ITERATIONS=N               fixed iteration count for every config (overrides ITEMS)
#   REUSE_SGEMM=1              reuse bench/out/sgemm.jsonl if it exists
#   SKIP_TORCH=1               skip the PyTorch peer (reuse old results if present)
#   PYTHON=/usr/bin/python3    (Debian's python: torch + numpy)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

REPORT="bench/results.md"
QUICK=0
while (($#)); do
  case "$1" in
    --out)
      REPORT=${2:?--out needs a file}
      shift
      ;;
    --quick) QUICK=1 ;;
    -h | --help)
      sed -n '2,22p' "$0"
      exit 0
      ;;
    *)
      echo "run_bench: unknown argument $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done
if ((QUICK)); then
  BATCHES="${BATCHES:-1}"
  ITERATIONS="${ITERATIONS:-3}"
fi

PYTHON="${PYTHON:-/usr/bin/python3}"
OUT="bench/out"
PRESET="${PRESET:-vit-b-32}"
MODEL="${MODEL:-$OUT/$PRESET}"
MMFUSE="${MMFUSE:-./build/mmfuse}"
BATCHES="${BATCHES:-1 16}"
THREADS="${THREADS:-1 2}"
ITEMS="${ITEMS:-20}"
MIN_ITERS="${MIN_ITERS:-3}"
mkdir -p "$OUT"

log() { printf '[run_bench] %s\n' "$*" >&2; }

iters_for() {
  if [[ -n "${ITERATIONS:-}" ]]; then echo "$ITERATIONS"; return; fi
  local n=$((ITEMS / $1))
  (( n < MIN_ITERS )) && n=$MIN_ITERS
  echo "$n"
}

load1() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0; }
LOAD_BEFORE=$(load1)
if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l > 0.5) }'; then
  log "WARNING: load average is $LOAD_BEFORE; timings are only meaningful on an idle machine"
fi

# ---- 1. model ---------------------------------------------------------------
if [[ ! -f "$MODEL/config.json" ]] || ! compgen -G "$MODEL/model*.safetensors" >/dev/null; then
  log "generating $MODEL (preset $PRESET)"
  "$PYTHON" scripts/synth_clip_model.py --out "$MODEL" --preset "$PRESET"
fi

# ---- 2. sgemm ceiling --------------------------------------------------------
SGEMM_BIN="$OUT/sgemm_ceiling"
SGEMM_JSON="$OUT/sgemm.jsonl"
if [[ ! -x "$SGEMM_BIN" || bench/sgemm_ceiling.cpp -nt "$SGEMM_BIN" ]]; then
  log "building $SGEMM_BIN"
  g++ -O3 -march=native -std=c++20 bench/sgemm_ceiling.cpp \
    -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas -o "$SGEMM_BIN"
fi
max_threads=$(tr ' ' '\n' <<<"$THREADS" | sort -n | tail -1)
if [[ "${REUSE_SGEMM:-0}" == 1 && -s "$SGEMM_JSON" ]]; then
  log "reusing $SGEMM_JSON"
else
  log "measuring the sgemm ceiling (about a minute)"
  "$SGEMM_BIN" --threads "$(tr ' ' ',' <<<"$THREADS")" --batches "$(tr ' ' ',' <<<"$BATCHES")" >"$SGEMM_JSON"
fi

# ---- 3. mmfuse + torch grid -------------------------------------------------
have_mmfuse=0
if [[ -x "$MMFUSE" ]] && "$MMFUSE" bench --help >/dev/null 2>&1; then
  have_mmfuse=1
else
  log "no working '$MMFUSE bench': the mmfuse columns will read n/a"
fi

last_json_line() { grep -E '^\s*\{' | tail -n 1; }

for b in $BATCHES; do
  for t in $THREADS; do
    n=$(iters_for "$b")
    if (( have_mmfuse )); then
      log "mmfuse bench: batch $b, threads $t, $n iterations"
      if "$MMFUSE" bench --model "$MODEL" --batch "$b" --threads "$t" --iterations "$n" --json \
          >"$OUT/mmfuse_b${b}_t${t}.log" 2>"$OUT/mmfuse_b${b}_t${t}.err"; then
        last_json_line <"$OUT/mmfuse_b${b}_t${t}.log" >"$OUT/mmfuse_b${b}_t${t}.json" || true
      else
        log "mmfuse bench failed (see $OUT/mmfuse_b${b}_t${t}.err)"
        rm -f "$OUT/mmfuse_b${b}_t${t}.json"
      fi
    else
      rm -f "$OUT/mmfuse_b${b}_t${t}.json"
    fi
    if [[ "${SKIP_TORCH:-0}" != 1 ]]; then
      log "torch peer:   batch $b, threads $t, $n iterations"
      if "$PYTHON" bench/torch_clip.py --model "$MODEL" --batch "$b" --threads "$t" --iterations "$n" --json \
          >"$OUT/torch_b${b}_t${t}.log" 2>"$OUT/torch_b${b}_t${t}.err"; then
        last_json_line <"$OUT/torch_b${b}_t${t}.log" >"$OUT/torch_b${b}_t${t}.json" || true
      else
        log "torch peer failed (see $OUT/torch_b${b}_t${t}.err)"
        rm -f "$OUT/torch_b${b}_t${t}.json"
      fi
    fi
  done
done

# ---- 4. table ------------------------------------------------------------------
LOAD_AFTER=$(load1)
# The machine, for the report's header: CPU model and the ISA extensions that matter to the
# GEMM kernels (oneDNN picks AVX2 / AVX-512 / VNNI / AMX code paths from these).
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
CPU_FLAGS=$(sed -n 's/^flags[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
CPU_ISA=""
for f in sse4_2 avx avx2 fma f16c avx_vnni avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_int8 amx_bf16; do
  [[ " $CPU_FLAGS " == *" $f "* ]] && CPU_ISA+="${CPU_ISA:+, }$f"
done
export CPU_MODEL CPU_ISA
export CPU_COUNT="$(nproc)"
export OS_NAME="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")"
export COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
RUN_MODE=$( ((QUICK)) && echo "--quick (batch 1, 3 iterations)" || echo full)
[[ "${REUSE_SGEMM:-0}" == 1 ]] && RUN_MODE+=", sgemm ceiling reused from an earlier run"
[[ "${SKIP_TORCH:-0}" == 1 ]] && RUN_MODE+=", PyTorch peer skipped"
export RUN_MODE
mkdir -p "$(dirname "$REPORT")"
"$PYTHON" - "$MODEL" "$OUT" "$BATCHES" "$THREADS" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PYEOF' | tee "$OUT/results.md" "$REPORT"
import datetime, json, os, sys
from pathlib import Path

model, out, batches, threads = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
cfg = json.loads((model / "config.json").read_text())
vc, tc = cfg.get("vision_config", {}), cfg.get("text_config", {})
proj = cfg.get("projection_dim", 512)


def tower_flops(seq, hidden, ffn, layers):
    # per layer: q,k,v,out projections + fc1/fc2 + QK^T and PV (2 FLOPs per MAC)
    per_layer = 2 * seq * hidden * (4 * hidden + 2 * ffn) + 2 * 2 * seq * seq * hidden
    return layers * per_layer


def image_flops():
    h, f, l = vc.get("hidden_size", 768), vc.get("intermediate_size", 3072), vc.get("num_hidden_layers", 12)
    size, p = vc.get("image_size", 224), vc.get("patch_size", 32)
    patches = (size // p) ** 2
    return 2 * patches * 3 * p * p * h + tower_flops(patches + 1, h, f, l) + 2 * h * proj


def text_flops(seq=77):
    h, f, l = tc.get("hidden_size", 512), tc.get("intermediate_size", 2048), tc.get("num_hidden_layers", 12)
    return tower_flops(seq, h, f, l) + 2 * h * proj


weights_mb = sum(p.stat().st_size for p in model.glob("model*.safetensors")) / 2**20

ceiling = {}  # (group, threads) -> best GFLOP/s over modes
ceiling_cpu = {}  # (group, 1) -> GFLOP/s from CPU time
for line in (out / "sgemm.jsonl").read_text().splitlines() if (out / "sgemm.jsonl").exists() else []:
    r = json.loads(line)
    if r.get("kind") == "forward":
        key = (r["group"], int(r["threads"]))
        ceiling[key] = max(ceiling.get(key, 0.0), r["gflops"])
        if "gflops_cpu" in r:
            ceiling_cpu[key] = max(ceiling_cpu.get(key, 0.0), r["gflops_cpu"])


def load(prefix, b, t):
    p = out / f"{prefix}_b{b}_t{t}.json"
    try:
        return json.loads(p.read_text())
    except Exception:
        return None


def fmt(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def get(r, k):
    return None if r is None or r.get(k) is None else float(r[k])


def ratio(a, b):
    return None if a is None or b is None or a == 0 else b / a


def frac(flops, ms, ceil):
    if ms is None or not ceil:
        return "n/a"
    return f"{100.0 * flops / (ms * 1e-3) * 1e-9 / ceil:.0f}%"


fi, ft = image_flops(), text_flops()
env = os.environ.get
print(f"Machine: {env('CPU_MODEL') or 'unknown CPU'}, {env('CPU_COUNT')} logical CPUs; "
      f"ISA: {env('CPU_ISA') or 'none of the listed'}; {env('OS_NAME') or 'unknown OS'}.  ")
print(f"mmfuse {env('COMMIT')}, `bench/run_bench.sh` {env('RUN_MODE')}, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n")
print(f"### CLIP benchmark: {model.name}  (image forward {fi / 1e9:.2f} GFLOP, text forward at 77 tokens "
      f"{ft / 1e9:.2f} GFLOP, weights {weights_mb:.0f} MiB)\n")
print("| batch x threads | image ms/item mmfuse | image ms/item torch | image speed-up | "
      "text ms/item mmfuse | text ms/item torch | text speed-up | mmfuse image % of sgemm ceiling | "
      "torch image % of ceiling | sgemm ceiling GFLOP/s | load ms mmfuse / torch | "
      "peak RSS MiB mmfuse / torch (weights MiB) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for b in batches:
    for t in threads:
        m, p = load("mmfuse", b, t), load("torch", b, t)
        mi, pi = get(m, "image_ms_per_item"), get(p, "image_ms_per_item")
        mt, pt = get(m, "text_ms_per_item"), get(p, "text_ms_per_item")
        ceil = ceiling.get((f"vision_b{b}", int(t)))
        su_i, su_t = ratio(mi, pi), ratio(mt, pt)
        print(f"| {b} x {t} | {fmt(mi, 2)} | {fmt(pi, 2)} | {fmt(su_i, 2) + ('x' if su_i else '')} | "
              f"{fmt(mt, 2)} | {fmt(pt, 2)} | {fmt(su_t, 2) + ('x' if su_t else '')} | "
              f"{frac(fi, mi, ceil)} | {frac(fi, pi, ceil)} | {fmt(ceil)} | "
              f"{fmt(get(m, 'load_ms'), 0)} / {fmt(get(p, 'load_ms'), 0)} | "
              f"{fmt(get(m, 'peak_rss_mb'), 0)} / {fmt(get(p, 'peak_rss_mb'), 0)} ({weights_mb:.0f}) |")
print()
print("speed-up = torch ms / mmfuse ms (>1: mmfuse faster). % of ceiling = image-forward FLOPs / time / "
      "(OpenBLAS sgemm GFLOP/s over the ViT GEMM shapes at the same batch and thread count, best of "
      "openblas-threaded and split modes, cold weights). ms/item = median iteration / batch.")
if all(load("torch", b, t) is None for b in batches for t in threads):
    print("PyTorch peer: no results (see bench/out/torch_*.err; it needs torch in "
          f"{sys.executable}, e.g. Debian's python3-torch).")
text_ceils = [f"b{b}xt{t}: {fmt(ceiling.get((f'text77_b{b}', int(t))))}" for b in batches for t in threads]
print(f"Text sgemm ceiling at 77 tokens (GFLOP/s): {', '.join(text_ceils)}.")
print(f"Load average (1 min) before / after: {sys.argv[5]} / {sys.argv[6]}.")

# CPU-time view: at 1 thread, process CPU time per item hardly moves when other
# processes share the cores, unlike wall time.  Shown when the runs report it.
rows = []
for b in batches:
    if "1" not in threads:
        continue
    m, p = load("mmfuse", b, 1), load("torch", b, 1)
    mi, pi = get(m, "image_cpu_ms_per_item"), get(p, "image_cpu_ms_per_item")
    mt, pt = get(m, "text_cpu_ms_per_item"), get(p, "text_cpu_ms_per_item")
    if all(x is None for x in (mi, pi, mt, pt)):
        continue
    ceil = ceiling_cpu.get((f"vision_b{b}", 1))
    su_i, su_t = ratio(mi, pi), ratio(mt, pt)
    rows.append(f"| {b} x 1 | {fmt(mi, 2)} | {fmt(pi, 2)} | {fmt(su_i, 2) + ('x' if su_i else '')} | "
                f"{fmt(mt, 2)} | {fmt(pt, 2)} | {fmt(su_t, 2) + ('x' if su_t else '')} | "
                f"{frac(fi, mi, ceil)} | {frac(fi, pi, ceil)} | {fmt(ceil)} |")
if rows:
    print()
    print("#### Threads = 1, CPU-time view (process CPU ms per item; ceiling from sgemm CPU time)\n")
    print("| batch x threads | image cpu ms mmfuse | image cpu ms torch | image speed-up | text cpu ms mmfuse | "
          "text cpu ms torch | text speed-up | mmfuse image % of ceiling | torch image % of ceiling | "
          "sgemm ceiling GFLOP/s (CPU time) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
PYEOF
