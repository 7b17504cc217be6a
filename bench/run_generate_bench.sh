#!/usr/bin/env bash
# Decoder speed benchmark: mmfuse vs llama.cpp (F16 GGUF) vs PyTorch `generate`, side by side
# in one run, on a random-weight Llama of TinyLlama-1.1B geometry.  See bench/README.md.
#
# Usage: bench/run_generate_bench.sh [--llama-cpp DIR] [--model DIR] [--out FILE] [--quick]
#   --llama-cpp DIR  a llama.cpp checkout built with `llama-bench` (DIR/build/bin/llama-bench);
#                    without it the llama.cpp row reads n/a
#   --model DIR      Llama folder (default bench/out/tinyllama-1.1b; generated with
#                    scripts/synth_llama_model.py --preset $PRESET if absent)
#   --out FILE       also write the Markdown report there (default bench/generate_results.md);
#                    it always goes to stdout, headed by the machine (CPU model, ISA extensions)
#   --quick          1 repetition per engine instead of 3
#
# Environment knobs (all optional):
#   MMFUSE=./build/mmfuse        mmfuse binary (its row reads n/a without a generative `bench`)
#   PRESET=tinyllama-1.1b        preset used when generating the model (tiny: a 4M-parameter one)
#   PROMPT_TOKENS=128 NEW_TOKENS=64 THREADS=2 REPEATS=3
#   TORCH_DTYPES="float32"       compute dtypes of the PyTorch peer; the first one is the
#                                reference for the 2x target (float32 = from_pretrained's default);
#                                e.g. "float32 bfloat16"
#   TORCH_IMPL=auto              auto | hf | plain (see bench/generate_peer_torch.py)
#   TRANSFORMERS_SRC, HUB_SRC    transformers / huggingface_hub source trees (their src/ folders)
#                                when the packages are not installed
#   SKIP_TORCH=1 SKIP_LLAMA_CPP=1 SKIP_MMFUSE=1
#   PYTHON=/usr/bin/python3      (Debian's python: torch + numpy)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run_generate_bench

OUT="bench/out"
PRESET="${PRESET:-tinyllama-1.1b}"
MODEL="$OUT/$PRESET"
REPORT="bench/generate_results.md"
LLAMA_CPP=""
PROMPT_TOKENS="${PROMPT_TOKENS:-128}"
NEW_TOKENS="${NEW_TOKENS:-64}"
THREADS="${THREADS:-2}"
REPEATS="${REPEATS:-3}"
TORCH_DTYPES="${TORCH_DTYPES:-float32}"
TORCH_IMPL="${TORCH_IMPL:-auto}"
while (($#)); do
  case "$1" in
    --llama-cpp) LLAMA_CPP=${2:?--llama-cpp needs a folder}; shift ;;
    --model) MODEL=${2:?--model needs a folder}; shift ;;
    --out) REPORT=${2:?--out needs a file}; shift ;;
    --quick) REPEATS=1 ;;
    -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "run_generate_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
MODEL="${MODEL%/}"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

# Peak RSS (MiB) of a finished command from /usr/bin/time -v's report, or empty.
peak_rss_of() { awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$1" 2>/dev/null; }
last_json_line() { grep -E '^\s*[\[{]' | tail -n 1; }
TIME_V=()
[[ -x /usr/bin/time ]] && TIME_V=(/usr/bin/time -v)

# ---- 1. model ---------------------------------------------------------------
if [[ ! -f "$MODEL/config.json" ]] || ! compgen -G "$MODEL/model*.safetensors" >/dev/null; then
  log "generating $MODEL (preset $PRESET)"
  "$PYTHON" scripts/synth_llama_model.py --out "$MODEL" --preset "$PRESET"
fi
NAME=$(basename "$MODEL")
rm -f "$OUT"/gen_*.json "$OUT"/gen_*.rss

# ---- 2. mmfuse -----------------------------------------------------------------
if [[ "${SKIP_MMFUSE:-0}" == 1 ]]; then
  log "mmfuse skipped (SKIP_MMFUSE=1)"
elif [[ -x "$MMFUSE" ]] && "$MMFUSE" bench --help 2>&1 | grep -q -- '--new-tokens'; then
  log "mmfuse bench: $PROMPT_TOKENS-token prompt, $NEW_TOKENS new tokens, $THREADS threads"
  if "${TIME_V[@]}" "$MMFUSE" bench --model "$MODEL" --prompt-tokens "$PROMPT_TOKENS" \
      --new-tokens "$NEW_TOKENS" --threads "$THREADS" --json \
      >"$OUT/gen_mmfuse.log" 2>"$OUT/gen_mmfuse.err"; then
    last_json_line <"$OUT/gen_mmfuse.log" >"$OUT/gen_mmfuse.json" || true
    peak_rss_of "$OUT/gen_mmfuse.err" >"$OUT/gen_mmfuse.rss"
  else
    log "mmfuse bench failed (see $OUT/gen_mmfuse.err)"
  fi
else
  log "'$MMFUSE bench' has no --new-tokens (no generative bench yet): the mmfuse row reads n/a"
fi

# ---- 3. llama.cpp ----------------------------------------------------------------
LLAMA_NOTE=""
if [[ -n "$LLAMA_CPP" && "${SKIP_LLAMA_CPP:-0}" != 1 ]]; then
  LLAMA_BENCH="$LLAMA_CPP/build/bin/llama-bench"
  [[ -x "$LLAMA_BENCH" ]] || { echo "run_generate_bench: no $LLAMA_BENCH (build it: see bench/README.md)" >&2; exit 2; }
  GGUF="$OUT/$NAME-f16.gguf"
  stale=0
  [[ -s "$GGUF" ]] || stale=1
  for f in "$MODEL"/config.json "$MODEL"/model*.safetensors; do [[ "$f" -nt "$GGUF" ]] && stale=1; done
  if ((stale)); then
    log "converting $MODEL to $GGUF (llama.cpp convert_hf_to_gguf.py, F16)"
    "$PYTHON" bench/llama_cpp_convert.py "$LLAMA_CPP" "$MODEL" --outtype f16 --outfile "$GGUF" \
      >"$OUT/gen_llama_convert.log" 2>&1 || { log "conversion failed (see $OUT/gen_llama_convert.log)"; exit 1; }
  fi
  log "llama-bench: pp$PROMPT_TOKENS, tg$NEW_TOKENS, $THREADS threads, $REPEATS repetitions"
  if "${TIME_V[@]}" "$LLAMA_BENCH" -m "$GGUF" -p "$PROMPT_TOKENS" -n "$NEW_TOKENS" -t "$THREADS" \
      -r "$REPEATS" -o json >"$OUT/gen_llama_cpp.json" 2>"$OUT/gen_llama_cpp.err"; then
    peak_rss_of "$OUT/gen_llama_cpp.err" >"$OUT/gen_llama_cpp.rss"
  else
    log "llama-bench failed (see $OUT/gen_llama_cpp.err)"
    rm -f "$OUT/gen_llama_cpp.json"
  fi
  LLAMA_NOTE="$(git -C "$LLAMA_CPP" log -1 --format='%h %cs' 2>/dev/null || echo unknown)"
fi
export LLAMA_NOTE

# ---- 4. PyTorch -----------------------------------------------------------------
if [[ "${SKIP_TORCH:-0}" != 1 ]]; then
  TORCH_ARGS=()
  [[ -n "${TRANSFORMERS_SRC:-}" ]] && TORCH_ARGS+=(--transformers-src "$TRANSFORMERS_SRC")
  [[ -n "${HUB_SRC:-}" ]] && TORCH_ARGS+=(--hub-src "$HUB_SRC")
  for dt in $TORCH_DTYPES; do
    log "torch peer ($TORCH_IMPL, $dt): $REPEATS repetitions"
    if "$PYTHON" bench/generate_peer_torch.py --model "$MODEL" --prompt-tokens "$PROMPT_TOKENS" \
        --new-tokens "$NEW_TOKENS" --threads "$THREADS" --repeats "$REPEATS" --dtype "$dt" \
        --impl "$TORCH_IMPL" "${TORCH_ARGS[@]}" --json \
        >"$OUT/gen_torch_$dt.log" 2>"$OUT/gen_torch_$dt.err"; then
      last_json_line <"$OUT/gen_torch_$dt.log" >"$OUT/gen_torch_$dt.json" || true
    else
      log "torch peer failed (see $OUT/gen_torch_$dt.err)"
    fi
  done
fi

# ---- 5. report ---------------------------------------------------------------------
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
export PROMPT_TOKENS NEW_TOKENS THREADS REPEATS TORCH_DTYPES
mkdir -p "$(dirname "$REPORT")"
"$PYTHON" - "$MODEL" "$OUT" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PYEOF' | tee "$OUT/generate_results.md" "$REPORT"
import datetime, json, os, sys
from pathlib import Path

model, out = Path(sys.argv[1]), Path(sys.argv[2])
env = os.environ.get
cfg = json.loads((model / "config.json").read_text())
prompt, new, threads = int(env("PROMPT_TOKENS")), int(env("NEW_TOKENS")), int(env("THREADS"))
weights_mib = sum(p.stat().st_size for p in model.glob("model*.safetensors")) / 2**20
head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
kv_heads = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
# K and V, every layer, prompt + new tokens, F32 (the larger of the usual cache dtypes).
kv_mib = 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * (prompt + new) * 4 / 2**20
rss_budget = 1.2 * weights_mib + kv_mib


def load_json(name):
    try:
        return json.loads((out / name).read_text())
    except Exception:
        return None


def read_rss(name):
    try:
        return float((out / name).read_text())
    except Exception:
        return None


def fmt(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def num(r, k):
    return None if r is None or r.get(k) is None else float(r[k])


rows = []  # (engine, prefill, decode, peak rss, load ms, note)
m = load_json("gen_mmfuse.json")
m_rss = num(m, "peak_rss_mb") or read_rss("gen_mmfuse.rss")
rows.append(("mmfuse", num(m, "prefill_tokens_per_s"), num(m, "decode_tokens_per_s"), m_rss,
             num(m, "load_ms"), f"commit {env('COMMIT')}" if m else "no generative `mmfuse bench` in this build"))

lc = load_json("gen_llama_cpp.json")
lc_pp = lc_tg = None
lc_note = "not run (pass --llama-cpp DIR)"
if lc:
    for r in lc:
        if r.get("n_prompt") == prompt and r.get("n_gen") == 0:
            lc_pp = float(r["avg_ts"])
        if r.get("n_prompt") == 0 and r.get("n_gen") == new:
            lc_tg = float(r["avg_ts"])
    r0 = lc[0]
    lc_note = (f"llama-bench {r0.get('build_commit', '?')} ({env('LLAMA_NOTE') or '?'}), {r0.get('type_k', '?')} KV cache, "
               f"tg{new} from an empty context; {r0.get('cpu_info', '')}")
rows.append(("llama.cpp f16", lc_pp, lc_tg, read_rss("gen_llama_cpp.rss"), None, lc_note))

torch_rows = []
for dt in env("TORCH_DTYPES", "float32").split():
    t = load_json(f"gen_torch_{dt}.json")
    note = "failed or skipped"
    if t:
        note = (f"{t['engine']}, torch {t['torch']}" + (f", transformers {t['transformers']}" if t.get("transformers") else "")
                + f", {t.get('attn_implementation')} attention")
    row = (f"PyTorch {dt}", num(t, "prefill_tokens_per_s"), num(t, "decode_tokens_per_s"), num(t, "peak_rss_mb"),
           num(t, "load_ms"), note)
    rows.append(row)
    torch_rows.append(row)

print(f"Machine: {env('CPU_MODEL') or 'unknown CPU'}, {env('CPU_COUNT')} logical CPUs; "
      f"ISA: {env('CPU_ISA') or 'none of the listed'}; {env('OS_NAME') or 'unknown OS'}.  ")
print(f"mmfuse {env('COMMIT')}, `bench/run_generate_bench.sh`, {env('REPEATS')} repetitions, "
      f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.\n")
print(f"### Greedy decoding: {model.name} ({cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
      f"{cfg['num_attention_heads']}/{kv_heads} heads, F16 weights {weights_mib:.0f} MiB), "
      f"{prompt}-token prompt, {new} new tokens, {threads} threads\n")
print("| engine | prefill tok/s | decode tok/s | peak RSS MiB | load ms | notes |")
print("|---|---|---|---|---|---|")
for name, pp, tg, rss, load_ms, note in rows:
    print(f"| {name} | {fmt(pp)} | {fmt(tg, 2)} | {fmt(rss, 0)} | {fmt(load_ms, 0)} | {note} |")
print()


def check(label, value, target, op):
    if value is None:
        return f"- {label}: n/a (target {op} {target})"
    ok = value >= target if op == ">=" else value <= target
    return f"- {label}: **{value:.2f}** (target {op} {target}) {'PASS' if ok else 'FAIL'}"


m_pp, m_tg = rows[0][1], rows[0][2]
ref = torch_rows[0] if torch_rows else None
ratio = lambda a, b: None if a is None or b is None or b == 0 else a / b
print("Targets (issue 14):")
print(check("mmfuse decode / llama.cpp tg", ratio(m_tg, lc_tg), 1.0, ">="))
print(check(f"mmfuse decode / {ref[0] if ref else 'PyTorch'} decode", ratio(m_tg, ref[2] if ref else None), 2.0, ">="))
print(check("mmfuse prefill / llama.cpp pp", ratio(m_pp, lc_pp), 1.0, ">="))
print(check(f"mmfuse peak RSS / (1.2 x weight file + KV cache = {rss_budget:.0f} MiB)", ratio(m_rss, rss_budget), 1.0, "<="))
print()
print(f"KV cache = 2 x {cfg['num_hidden_layers']} layers x {kv_heads} KV heads x {head_dim} x "
      f"{prompt + new} positions x 4 bytes = {kv_mib:.1f} MiB. "
      "prefill tok/s = prompt tokens / time to the first new token; decode tok/s = tokens per second over the "
      "single-token steps after it (PyTorch: (new - 1) / time from first to last token; llama-bench tg: "
      f"{new} single-token steps from an empty context, mean of the repetitions). Peak RSS: the engine's own report, "
      "else /usr/bin/time -v (llama-bench's includes its mmap'd GGUF pages).")
print(f"Load average (1 min) before / after: {sys.argv[3]} / {sys.argv[4]}.")
PYEOF
