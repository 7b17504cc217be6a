#!/usr/bin/env bash
# BLIP-2 captioning speed: mmfuse vs PyTorch (transformers Blip2ForConditionalGeneration.generate),
# side by side in one run, on random-weight BLIP-2 folders of real geometry (ViT-B-size vision,
# the real Q-Former, an OPT-350m-size and a Flan-T5-base-size language model).  See bench/README.md.
#
# Usage: bench/run_blip2_bench.sh [--scratch DIR] [--image IMG] [--prompt TEXT] [--out FILE | --save] [--quick]
#   --scratch DIR   where the model folders are made and kept, and the raw JSON goes
#                   (default /tmp/mmfuse-blip2-bench); a folder is remade when absent or older
#                   than bench/make_blip2_folder.py
#   --image IMG     default tests/fixtures/photos/bus.jpg
#   --prompt TEXT   default none (pure captioning, what the speed target is about)
#   --out FILE      also write the Markdown report there (it always goes to stdout and to
#                   DIR/blip2_results.md); --save = --out bench/blip2_results.md
#   --quick         1 repetition per engine instead of 3
#
# Environment knobs (all optional):
#   MMFUSE=./build/mmfuse     its rows read n/a without a `bench` taking --image and --new-tokens
#   MODELS="opt t5"           which language models
#   SCALE=real                real | tiny (a seconds-long plumbing check; widths of 16-32)
#   NEW_TOKENS=32 THREADS=2 REPEATS=3
#   TRANSFORMERS_SRC, HUB_SRC transformers / huggingface_hub source trees (their src/ folders) when the
#                             packages are not installed; HUB_SRC defaults to TRANSFORMERS_SRC when that
#                             folder also holds huggingface_hub (e.g. TRANSFORMERS_SRC=/work/peers/hf/src)
#   SKIP_TORCH=1 SKIP_MMFUSE=1
#   PYTHON=/usr/bin/python3   (Debian's python: torch + numpy + PIL)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run_blip2_bench

SCRATCH="/tmp/mmfuse-blip2-bench"
IMAGE="tests/fixtures/photos/bus.jpg"
PROMPT=""
REPORT=""
MODELS="${MODELS:-opt t5}"
SCALE="${SCALE:-real}"
NEW_TOKENS="${NEW_TOKENS:-32}"
THREADS="${THREADS:-2}"
REPEATS="${REPEATS:-3}"
while (($#)); do
  case "$1" in
    --scratch) SCRATCH=${2:?--scratch needs a folder}; shift ;;
    --image) IMAGE=${2:?--image needs a file}; shift ;;
    --prompt) PROMPT=${2?--prompt needs a text}; shift ;;
    --out) REPORT=${2:?--out needs a file}; shift ;;
    --save) REPORT="bench/blip2_results.md" ;;
    --quick) REPEATS=1 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "run_blip2_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -f "$IMAGE" ]] || { echo "run_blip2_bench: no image $IMAGE" >&2; exit 2; }
SCRATCH="${SCRATCH%/}"
RAW="$SCRATCH/results"
mkdir -p "$RAW"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

SRC_ARGS=()
[[ -n "${TRANSFORMERS_SRC:-}" ]] && SRC_ARGS+=(--transformers-src "$TRANSFORMERS_SRC")
[[ -n "${HUB_SRC:-}" ]] && SRC_ARGS+=(--hub-src "$HUB_SRC")

# Peak RSS (MiB) of a finished command from /usr/bin/time -v's report, or empty.
peak_rss_of() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1" 2>/dev/null; }
last_json_line() { grep -E '^\s*[\[{]' | tail -n 1; }
TIME_V=()
[[ -x /usr/bin/time ]] && TIME_V=(/usr/bin/time -v)

folder_name() {  # language model -> folder name
  case "$1:$SCALE" in
    opt:real) echo blip2-opt-350m ;;
    t5:real) echo blip2-flan-t5-base ;;
    opt:*) echo "blip2-opt-$SCALE" ;;
    t5:*) echo "blip2-flan-t5-$SCALE" ;;
  esac
}

MMFUSE_OK=0
if [[ "${SKIP_MMFUSE:-0}" == 1 ]]; then
  log "mmfuse skipped (SKIP_MMFUSE=1)"
elif [[ -x "$MMFUSE" ]] && help=$("$MMFUSE" bench --help 2>&1 || true) && grep -q -- '--image' <<<"$help" \
    && grep -q -- '--new-tokens' <<<"$help"; then
  MMFUSE_OK=1
else
  log "'$MMFUSE bench' takes no --image/--new-tokens (no BLIP-2 bench yet): the mmfuse rows read n/a"
fi

rm -f "$RAW"/blip2_*.json "$RAW"/blip2_*.rss
for lm in $MODELS; do
  [[ "$lm" == opt || "$lm" == t5 ]] || { echo "run_blip2_bench: MODELS: unknown '$lm' (opt, t5)" >&2; exit 2; }
  MODEL="$SCRATCH/$(folder_name "$lm")"

  # ---- 1. model folder ---------------------------------------------------------
  if [[ ! -f "$MODEL/config.json" || ! -f "$MODEL/model.safetensors" \
        || bench/make_blip2_folder.py -nt "$MODEL/config.json" ]]; then
    log "making $MODEL ($lm, scale $SCALE)"
    "$PYTHON" bench/make_blip2_folder.py --language-model "$lm" --scale "$SCALE" --out "$MODEL" \
      "${SRC_ARGS[@]}" >"$RAW/make_$lm.log" 2>&1 || { log "making $MODEL failed (see $RAW/make_$lm.log)"; exit 1; }
  fi

  # ---- 2. mmfuse -------------------------------------------------------------------
  if ((MMFUSE_OK)); then
    log "mmfuse bench ($lm): $NEW_TOKENS new tokens, $THREADS threads"
    MM_ARGS=(bench --model "$MODEL" --image "$IMAGE" --new-tokens "$NEW_TOKENS" --threads "$THREADS" --json)
    [[ -n "$PROMPT" ]] && MM_ARGS+=(--prompt "$PROMPT")
    if "${TIME_V[@]}" "$MMFUSE" "${MM_ARGS[@]}" >"$RAW/blip2_mmfuse_$lm.log" 2>"$RAW/blip2_mmfuse_$lm.err"; then
      last_json_line <"$RAW/blip2_mmfuse_$lm.log" >"$RAW/blip2_mmfuse_$lm.json" || true
      peak_rss_of "$RAW/blip2_mmfuse_$lm.err" >"$RAW/blip2_mmfuse_$lm.rss"
    else
      log "mmfuse bench ($lm) failed (see $RAW/blip2_mmfuse_$lm.err)"
    fi
  fi

  # ---- 3. PyTorch --------------------------------------------------------------------
  if [[ "${SKIP_TORCH:-0}" != 1 ]]; then
    log "torch peer ($lm): $NEW_TOKENS new tokens, $THREADS threads, $REPEATS repetitions"
    if "$PYTHON" bench/torch_blip2_generate.py --model "$MODEL" --image "$IMAGE" --prompt "$PROMPT" \
        --new-tokens "$NEW_TOKENS" --threads "$THREADS" --repeats "$REPEATS" "${SRC_ARGS[@]}" --json \
        >"$RAW/blip2_torch_$lm.log" 2>"$RAW/blip2_torch_$lm.err"; then
      last_json_line <"$RAW/blip2_torch_$lm.log" >"$RAW/blip2_torch_$lm.json" || true
    else
      log "torch peer ($lm) failed (see $RAW/blip2_torch_$lm.err)"
    fi
  fi
done

# ---- 4. report -----------------------------------------------------------------------
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
CPU_FLAGS=$(sed -n 's/^flags[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
CPU_ISA=""
for f in avx2 fma f16c avx_vnni avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_int8 amx_bf16; do
  [[ " $CPU_FLAGS " == *" $f "* ]] && CPU_ISA+="${CPU_ISA:+, }$f"
done
export CPU_MODEL CPU_ISA
export CPU_COUNT="$(nproc)"
export OS_NAME="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")"
export COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
export NEW_TOKENS THREADS REPEATS MODELS IMAGE PROMPT
FOLDERS=()
for lm in $MODELS; do FOLDERS+=("$lm=$SCRATCH/$(folder_name "$lm")"); done
TEE=("$SCRATCH/blip2_results.md")
if [[ -n "$REPORT" ]]; then
  mkdir -p "$(dirname "$REPORT")"
  TEE+=("$REPORT")
fi
"$PYTHON" - "$RAW" "$LOAD_BEFORE" "$LOAD_AFTER" "${FOLDERS[@]}" <<'PYEOF' | tee "${TEE[@]}"
import datetime, json, os, sys
from pathlib import Path

raw, load_before, load_after = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
folders = [a.split("=", 1) for a in sys.argv[4:]]
env = os.environ.get
new, threads = int(env("NEW_TOKENS")), int(env("THREADS"))


def load_json(name):
    try:
        return json.loads((raw / name).read_text())
    except Exception:
        return None


def read_rss(name):
    try:
        return float((raw / name).read_text())
    except Exception:
        return None


def num(r, k):
    return None if r is None or r.get(k) is None else float(r[k])


def fmt(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def describe(lm, folder):
    """One line of geometry from the folder's config.json."""
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except Exception:
        return f"{folder.name}: no config.json"
    v, q, t = cfg["vision_config"], cfg["qformer_config"], cfg["text_config"]
    mib = sum(p.stat().st_size for p in folder.glob("model*.safetensors")) / 2**20
    vis = (f"vision {v['hidden_size']}x{v['num_hidden_layers']} ({v['num_attention_heads']} heads, MLP "
           f"{v['intermediate_size']}, {v['image_size']}/{v['patch_size']})")
    qf = (f"Q-Former {q['hidden_size']}x{q['num_hidden_layers']} ({cfg['num_query_tokens']} queries, "
          f"cross-attention every {q['cross_attention_frequency']})")
    if t["model_type"] == "opt":
        lmtxt = (f"OPT {t['hidden_size']}x{t['num_hidden_layers']} ({t['num_attention_heads']} heads, FFN {t['ffn_dim']}, "
                 f"{'pre' if t.get('do_layer_norm_before', True) else 'post'}-LN, vocab {t['vocab_size']})")
    else:
        lmtxt = (f"T5 {t['d_model']}x{t['num_layers']}+{t['num_decoder_layers']} ({t['num_heads']} heads x {t['d_kv']}, "
                 f"{t['feed_forward_proj']} {t['d_ff']}, vocab {t['vocab_size']})")
    return f"{folder.name}: {vis}; {qf}; {lmtxt}; F16 weights {mib:.0f} MiB"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def check(label, value, target):
    if value is None:
        return f"- {label}: n/a (target >= {target})"
    return f"- {label}: **{value:.2f}** (target >= {target}) {'PASS' if value >= target else 'FAIL'}"


print(f"Machine: {env('CPU_MODEL') or 'unknown CPU'}, {env('CPU_COUNT')} logical CPUs; "
      f"ISA: {env('CPU_ISA') or 'none of the listed'}; {env('OS_NAME') or 'unknown OS'}.  ")
print(f"mmfuse {env('COMMIT')}, `bench/run_blip2_bench.sh`, {env('REPEATS')} repetitions, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n")
prompt = env("PROMPT") or ""
print(f"### BLIP-2 captioning: {Path(env('IMAGE')).name}, "
      f"{'prompt ' + json.dumps(prompt, ensure_ascii=False) if prompt else 'no prompt'}, "
      f"{new} new tokens (greedy, EOS suppressed), batch 1, {threads} threads\n")
for lm, folder in folders:
    print(f"- {describe(lm, Path(folder))}")
print()
print("| model | engine | caption ms | first token ms | decode tok/s | peak RSS MiB | load ms | notes |")
print("|---|---|---|---|---|---|---|---|")
targets = []
for lm, folder in folders:
    name = Path(folder).name
    m = load_json(f"blip2_mmfuse_{lm}.json")
    t = load_json(f"blip2_torch_{lm}.json")
    m_rss = num(m, "peak_rss_mb") or read_rss(f"blip2_mmfuse_{lm}.rss")
    m_note = f"commit {env('COMMIT')}" if m else "no BLIP-2 `mmfuse bench` in this build (or it failed)"
    t_note = "failed or skipped"
    if t:
        t_note = (f"{t['engine']}, torch {t['torch']}, transformers {t['transformers']}, {t['dtype']}, "
                  f"{t['attn_implementation']} attention, {t.get('tokenizer', '?')}")
    for engine, r, rss, note in (("mmfuse", m, m_rss, m_note), ("PyTorch", t, num(t, "peak_rss_mb"), t_note)):
        print(f"| {name} | {engine} | {fmt(num(r, 'caption_ms'), 0)} | {fmt(num(r, 'first_token_ms'), 0)} | "
              f"{fmt(num(r, 'decode_tokens_per_s'), 2)} | {fmt(rss, 0)} | {fmt(num(r, 'load_ms'), 0)} | {note} |")
    targets.append(check(f"{name}: PyTorch caption ms / mmfuse caption ms",
                         ratio(num(t, "caption_ms"), num(m, "caption_ms")), 2.0))
    targets.append(check(f"{name}: mmfuse decode tok/s / PyTorch decode tok/s",
                         ratio(num(m, "decode_tokens_per_s"), num(t, "decode_tokens_per_s")), 2.0))
    ftt = ratio(num(t, "first_token_ms"), num(m, "first_token_ms"))
    targets.append(f"- {name}: PyTorch first token ms / mmfuse first token ms: "
                   f"{'n/a' if ftt is None else f'{ftt:.2f}'} (no target)")
print()
print("Targets (issue 15, item 7):")
print("\n".join(targets))
print()
print("caption ms = image file to the last token: decoding the JPEG, preprocessing (resize, normalise; prompt tokenisation), "
      "vision tower, Q-Former, language projection, the language model's prefill over [queries ; prompt] "
      "(T5: the encoder, then the decoder start), then greedy single-token steps with the KV cache; median of the "
      "repetitions after one warm-up. first token ms = the same start to the first new token. decode tok/s = "
      f"(N - 1) / time from the first to the last new token, N = {new}; EOS cannot end a run early (PyTorch: "
      "min_new_tokens = max_new_tokens = N). Peak RSS: the engine's own report, else /usr/bin/time -v "
      "(PyTorch: ru_maxrss, which includes from_pretrained's F16 -> F32 upcast). load ms: PyTorch = "
      "Blip2Processor + Blip2ForConditionalGeneration.from_pretrained.")
print(f"Load average (1 min) before / after: {load_before} / {load_after}.")
PYEOF
