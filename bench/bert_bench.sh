#!/usr/bin/env bash
# BERT-base text encoder benchmark: mmfuse vs a PyTorch peer (bench/torch_bert.py,
# Debian's torch, torch.inference_mode) on the same random-weight BERT-base
# geometry (12 layers, hidden 768, 12 heads, ffn 3072, vocab 21128), sequences
# of SEQ_LEN tokens, batch 1 and 32, 1 and 2 threads. Both time the full
# BertModel forward (last_hidden_state of every position + pooler).
#
# Environment knobs (all optional):
#   MMFUSE=./build/mmfuse   MODEL=bench/out/bert-base-chinese (generated if absent)
#   BATCHES="1 32"  THREADS="1 2"  SEQ_LEN=64  ITEMS=64 (iterations = max(MIN_ITERS, ITEMS / batch))
#   MIN_ITERS=3  PYTHON=/usr/bin/python3
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-/usr/bin/python3}"
OUT="bench/out"
MODEL="${MODEL:-$OUT/bert-base-chinese}"
MMFUSE="${MMFUSE:-./build/mmfuse}"
BATCHES="${BATCHES:-1 32}"
THREADS="${THREADS:-1 2}"
SEQ_LEN="${SEQ_LEN:-64}"
ITEMS="${ITEMS:-64}"
MIN_ITERS="${MIN_ITERS:-3}"
mkdir -p "$OUT"
log() { printf '[bert_bench] %s\n' "$*" >&2; }

if [[ ! -f "$MODEL/config.json" || ! -f "$MODEL/model.safetensors" ]]; then
  log "generating $MODEL (bert-base geometry, random weights)"
  "$PYTHON" scripts/synth_bert_model.py --out "$MODEL" --preset bert-base
fi
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

for b in $BATCHES; do
  n=$((ITEMS / b)); (( n < MIN_ITERS )) && n=$MIN_ITERS
  for t in $THREADS; do
    log "mmfuse: batch $b, threads $t, $n iterations"
    "$MMFUSE" bench --model "$MODEL" --batch "$b" --threads "$t" --seq-len "$SEQ_LEN" --iterations "$n" --json \
      | tail -n 1 >"$OUT/bert_mmfuse_b${b}_t${t}.json" || rm -f "$OUT/bert_mmfuse_b${b}_t${t}.json"
    log "torch:  batch $b, threads $t, $n iterations"
    "$PYTHON" bench/torch_bert.py --model "$MODEL" --batch "$b" --threads "$t" --seq-len "$SEQ_LEN" \
      --iterations "$n" --json | tail -n 1 >"$OUT/bert_torch_b${b}_t${t}.json" || rm -f "$OUT/bert_torch_b${b}_t${t}.json"
  done
done

"$PYTHON" - "$OUT" "$BATCHES" "$THREADS" "$SEQ_LEN" "$LOAD_BEFORE" "$(cut -d' ' -f1 /proc/loadavg)" <<'PYEOF' | tee "$OUT/bert_results.md"
import json, sys
from pathlib import Path
out, batches, threads, seq = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]

def load(who, b, t):
    try:
        return json.loads((out / f"bert_{who}_b{b}_t{t}.json").read_text())
    except Exception:
        return None

def f(r, k, nd=1):
    return "n/a" if r is None or r.get(k) is None else f"{r[k]:.{nd}f}"

print(f"### BERT-base (12x768, vocab 21128), sequence length {seq}, full BertModel forward\n")
print("| batch x threads | mmfuse sequences/s | torch sequences/s | speed-up (mmfuse/torch) | "
      "mmfuse ms/sequence | torch ms/sequence | mmfuse [CLS]-only embed ms/sequence |")
print("|---|---|---|---|---|---|---|")
for b in batches:
    for t in threads:
        m, p = load("mmfuse", b, t), load("torch", b, t)
        su = "n/a" if not m or not p else f"{m['sequences_per_s'] / p['sequences_per_s']:.2f}x"
        print(f"| {b} x {t} | {f(m, 'sequences_per_s')} | {f(p, 'sequences_per_s')} | {su} | "
              f"{f(m, 'text_ms_per_item', 2)} | {f(p, 'text_ms_per_item', 2)} | {f(m, 'cls_embed_ms_per_item', 2)} |")
rows = [(b, load("mmfuse", b, 1), load("torch", b, 1)) for b in batches if "1" in threads]
rows = [(b, m, p) for b, m, p in rows if m and p and m.get("text_cpu_ms_per_item") and p.get("text_cpu_ms_per_item")]
if rows:
    print("\nThreads = 1, CPU-time view (process CPU ms per sequence; hardly moved by other jobs on the machine):\n")
    print("| batch x threads | mmfuse cpu ms/sequence | torch cpu ms/sequence | speed-up |")
    print("|---|---|---|---|")
    for b, m, p in rows:
        print(f"| {b} x 1 | {m['text_cpu_ms_per_item']:.1f} | {p['text_cpu_ms_per_item']:.1f} | "
              f"{p['text_cpu_ms_per_item'] / m['text_cpu_ms_per_item']:.2f}x |")
print(f"\nLoad average (1 min) before / after: {sys.argv[5]} / {sys.argv[6]}.")
PYEOF
