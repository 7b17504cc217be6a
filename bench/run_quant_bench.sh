#!/usr/bin/env bash
# int8 / bf16 CLIP ViT-B/32 benchmark: mmfuse --dtype f32|bf16|int8 against PyTorch
# (quantize_dynamic, Debian's python3-torch) and ONNX Runtime (onnxruntime-node, the
# quantize_dynamic int8 graph of bench/onnx_clip_vision.py), interleaved in one run.
# See docs/quantization.md.
#
# Usage: bench/run_quant_bench.sh [--out FILE]       (default bench/quant_results.md)
# Environment (all optional):
#   MMFUSE=./build/mmfuse  MODEL=bench/out/vit-b-32  THREADS=2  BATCHES="1 16"
#   ROUNDS=3 (each engine runs once per round, rounds interleave engines; the table
#   shows the best round's median)  ITERATIONS=10
#   ORT_NODE_MODULES=DIR   a node_modules with onnxruntime-node (npm install
#                          --ignore-scripts onnxruntime-node); absent: no ORT column
#   SKIP_TORCH=1  PYTHON=/usr/bin/python3
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPORT=bench/quant_results.md
[[ "${1:-}" == --out ]] && REPORT=${2:?--out needs a file}
PYTHON="${PYTHON:-/usr/bin/python3}"
MMFUSE="${MMFUSE:-./build/mmfuse}"
OUT=bench/out
MODEL="${MODEL:-$OUT/vit-b-32}"
THREADS="${THREADS:-2}"
BATCHES="${BATCHES:-1 16}"
ROUNDS="${ROUNDS:-3}"
ITERATIONS="${ITERATIONS:-10}"
mkdir -p "$OUT/quant"
log() { printf '[run_quant_bench] %s\n' "$*" >&2; }

if [[ ! -f "$MODEL/config.json" ]]; then
  log "generating $MODEL"
  "$PYTHON" scripts/synth_clip_model.py --out "$MODEL" --preset vit-b-32
fi
if [[ -n "${ORT_NODE_MODULES:-}" && ! -f "$OUT/quant/vision_int8.onnx" ]]; then
  log "writing the ONNX graphs"
  "$PYTHON" bench/onnx_clip_vision.py --model "$MODEL" --out "$OUT/quant/vision_f32.onnx" \
    --int8 "$OUT/quant/vision_int8.onnx"
fi

run() {  # name command...: appends one JSON line to $OUT/quant/NAME.jsonl
  local name=$1
  shift
  if "$@" >"$OUT/quant/$name.log" 2>"$OUT/quant/$name.err"; then
    grep -E '^\s*\{' "$OUT/quant/$name.log" | tail -n 1 >>"$OUT/quant/$name.jsonl"
  else
    log "$name failed (see $OUT/quant/$name.err)"
  fi
}

rm -f "$OUT"/quant/*.jsonl
for round in $(seq "$ROUNDS"); do
  for b in $BATCHES; do
    n=$ITERATIONS
    log "round $round, batch $b"
    for d in f32 bf16 int8; do
      run "mmfuse_${d}_b$b" "$MMFUSE" bench --model "$MODEL" --dtype "$d" --batch "$b" \
        --threads "$THREADS" --iterations "$n" --json
    done
    if [[ "${SKIP_TORCH:-0}" != 1 ]]; then
      for d in f32 int8; do
        run "torch_${d}_b$b" "$PYTHON" bench/torch_clip_quant.py --model "$MODEL" --dtype "$d" \
          --batch "$b" --threads "$THREADS" --iterations "$n" --json
      done
    fi
    if [[ -n "${ORT_NODE_MODULES:-}" ]]; then
      for d in f32 int8; do
        run "ort_${d}_b$b" env NODE_PATH="$ORT_NODE_MODULES" node bench/ort_clip_vision.js \
          "$OUT/quant/vision_$d.onnx" "$THREADS" "$b" "$n"
      done
    fi
  done
done

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
CPU_FLAGS=$(sed -n 's/^flags[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
CPU_ISA=""
for f in avx2 fma avx_vnni avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16; do
  [[ " $CPU_FLAGS " == *" $f "* ]] && CPU_ISA+="${CPU_ISA:+, }$f"
done
export CPU_MODEL CPU_ISA CPU_COUNT="$(nproc)" COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo ?)"
export LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" - "$OUT/quant" "$BATCHES" "$THREADS" <<'PYEOF' | tee "$REPORT"
import datetime, json, os, sys
from pathlib import Path
out, batches, threads = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3]

def best(name, key):
    p = out / f"{name}.jsonl"
    vals = [json.loads(l).get(key) for l in p.read_text().splitlines()] if p.exists() else []
    vals = [v for v in vals if v is not None]
    return min(vals) if vals else None

def first(name, key):
    p = out / f"{name}.jsonl"
    if not p.exists():
        return None
    for l in p.read_text().splitlines():
        v = json.loads(l).get(key)
        if v is not None:
            return v
    return None

fmt = lambda x: "n/a" if x is None else f"{x:.2f}"
env = os.environ.get
print(f"Machine: {env('CPU_MODEL')}, {env('CPU_COUNT')} logical CPUs; ISA: {env('CPU_ISA')}; "
      f"mmfuse ISA in use: {first('mmfuse_int8_b1', 'isa') or 'n/a'}.  ")
print(f"mmfuse {env('COMMIT')}, `bench/run_quant_bench.sh`, {threads} threads, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, load average after: {env('LOAD')}.\n")
print("| engine | dtype | image ms/item b=" + " | image ms/item b=".join(batches) +
      " | text ms/item b=" + " | text ms/item b=".join(batches) + " | load ms | peak RSS MiB |")
print("|---|---|" + "---|" * (2 * len(batches) + 2))
rows = [("mmfuse", "f32"), ("mmfuse", "bf16"), ("mmfuse", "int8"), ("torch", "f32"), ("torch", "int8"),
        ("ort", "f32"), ("ort", "int8")]
for eng, d in rows:
    n = f"{eng}_{d}"
    if not any((out / f"{n}_b{b}.jsonl").exists() for b in batches):
        continue
    img = [fmt(best(f"{n}_b{b}", "image_ms_per_item")) for b in batches]
    txt = [fmt(best(f"{n}_b{b}", "text_ms_per_item")) for b in batches]
    label = {"mmfuse": "mmfuse", "torch": "PyTorch (quantize_dynamic for int8)",
             "ort": "ONNX Runtime (quantize_dynamic graph for int8)"}[eng]
    print(f"| {label} | {d} | " + " | ".join(img) + " | " + " | ".join(txt) +
          f" | {fmt(best(f'{n}_b1', 'load_ms'))} | {fmt(best(f'{n}_b1', 'peak_rss_mb'))} |")
print()
for b in batches:
    m8, m32 = best(f"mmfuse_int8_b{b}", "image_ms_per_item"), best(f"mmfuse_f32_b{b}", "image_ms_per_item")
    peers = [x for x in (best(f"torch_int8_b{b}", "image_ms_per_item"), best(f"ort_int8_b{b}", "image_ms_per_item")) if x]
    if m8 and m32:
        line = f"batch {b}: mmfuse int8 image is {m32 / m8:.2f}x its own f32"
        if peers:
            line += f" and {min(peers) / m8:.2f}x the fastest int8 peer ({min(peers):.2f} ms)"
        print(line + ".  ")
print("\nms/item: best over rounds of the median iteration / batch; engines interleaved per round.")
PYEOF
