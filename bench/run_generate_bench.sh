#!/usr/bin/env bash
# Decoder speed benchmark: mmfuse vs llama.cpp (F16 GGUF) vs PyTorch `generate`, side by side
# in one run, on a random-weight Llama of TinyLlama-1.1B geometry.  See bench/README.md.
# DTYPE=int8: mmfuse --dtype int8 (q8_0 weights) against llama.cpp's q8_0 GGUF instead.
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
#   DTYPE=f16                    f16: weights as stored, llama.cpp F16 GGUF; int8: mmfuse
#                                --dtype int8 against llama.cpp q8_0 (llama-quantize; the
#                                PyTorch peer is skipped unless SKIP_TORCH=0)
#   ROUNDS=1                     mmfuse and llama.cpp alternate this many times (a shared
#                                machine's load moves); the report takes each engine's median
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
DTYPE="${DTYPE:-f16}"
ROUNDS="${ROUNDS:-1}"
case "$DTYPE" in
  f16) MMFUSE_DTYPE=f32 GGUF_TYPE=f16 ;;
  int8) MMFUSE_DTYPE=int8 GGUF_TYPE=q8_0; SKIP_TORCH="${SKIP_TORCH:-1}" ;;
  *) echo "run_generate_bench: DTYPE must be f16 or int8" >&2; exit 2 ;;
esac
while (($#)); do
  case "$1" in
    --llama-cpp) LLAMA_CPP=${2:?--llama-cpp needs a folder}; shift ;;
    --model) MODEL=${2:?--model needs a folder}; shift ;;
    --out) REPORT=${2:?--out needs a file}; shift ;;
    --quick) REPEATS=1 ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
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

# llama.cpp's model: the F16 GGUF (convert_hf_to_gguf.py), quantised to q8_0 for DTYPE=int8.
LLAMA_BENCH="" GGUF=""
if [[ -n "$LLAMA_CPP" && "${SKIP_LLAMA_CPP:-0}" != 1 ]]; then
  LLAMA_BENCH="$LLAMA_CPP/build/bin/llama-bench"
  [[ -x "$LLAMA_BENCH" ]] || { echo "run_generate_bench: no $LLAMA_BENCH (build it: see bench/README.md)" >&2; exit 2; }
  F16_GGUF="$OUT/$NAME-f16.gguf"
  stale=0
  [[ -s "$F16_GGUF" ]] || stale=1
  for f in "$MODEL"/config.json "$MODEL"/model*.safetensors; do [[ "$f" -nt "$F16_GGUF" ]] && stale=1; done
  if ((stale)); then
    log "converting $MODEL to $F16_GGUF (llama.cpp convert_hf_to_gguf.py, F16)"
    "$PYTHON" bench/llama_cpp_convert.py "$LLAMA_CPP" "$MODEL" --outtype f16 --outfile "$F16_GGUF" \
      >"$OUT/gen_llama_convert.log" 2>&1 || { log "conversion failed (see $OUT/gen_llama_convert.log)"; exit 1; }
  fi
  GGUF="$F16_GGUF"
  if [[ "$GGUF_TYPE" == q8_0 ]]; then
    GGUF="$OUT/$NAME-q8_0.gguf"
    if [[ ! -s "$GGUF" || "$F16_GGUF" -nt "$GGUF" ]]; then
      QUANTIZE="$LLAMA_CPP/build/bin/llama-quantize"
      [[ -x "$QUANTIZE" ]] || { echo "run_generate_bench: no $QUANTIZE (build llama-quantize)" >&2; exit 2; }
      log "quantising $F16_GGUF to $GGUF (llama-quantize Q8_0)"
      "$QUANTIZE" "$F16_GGUF" "$GGUF" Q8_0 >"$OUT/gen_llama_quantize.log" 2>&1 \
        || { log "llama-quantize failed (see $OUT/gen_llama_quantize.log)"; exit 1; }
    fi
  fi
fi
# ---- 2./3. mmfuse and llama.cpp, alternating ROUNDS times --------------------------
run_mmfuse() {  # $1: round
  log "mmfuse bench (--dtype $MMFUSE_DTYPE): $PROMPT_TOKENS-token prompt, $NEW_TOKENS new tokens, $THREADS threads"
  if "${TIME_V[@]}" "$MMFUSE" bench --model "$MODEL" --prompt-tokens "$PROMPT_TOKENS" \
      --new-tokens "$NEW_TOKENS" --threads "$THREADS" --dtype "$MMFUSE_DTYPE" --json \
      >"$OUT/gen_mmfuse.log" 2>"$OUT/gen_mmfuse.err"; then
    last_json_line <"$OUT/gen_mmfuse.log" >"$OUT/gen_mmfuse_$1.json" || true
    peak_rss_of "$OUT/gen_mmfuse.err" >"$OUT/gen_mmfuse_$1.rss"
  else
    log "mmfuse bench failed (see $OUT/gen_mmfuse.err)"
  fi
}
run_llama_cpp() {  # $1: round
  log "llama-bench ($GGUF_TYPE): pp$PROMPT_TOKENS, tg$NEW_TOKENS, $THREADS threads, $REPEATS repetitions"
  if "${TIME_V[@]}" "$LLAMA_BENCH" -m "$GGUF" -p "$PROMPT_TOKENS" -n "$NEW_TOKENS" -t "$THREADS" \
      -r "$REPEATS" -o json >"$OUT/gen_llama_cpp_$1.json" 2>"$OUT/gen_llama_cpp.err"; then
    peak_rss_of "$OUT/gen_llama_cpp.err" >"$OUT/gen_llama_cpp_$1.rss"
  else
    log "llama-bench failed (see $OUT/gen_llama_cpp.err)"
    rm -f "$OUT/gen_llama_cpp_$1.json"
  fi
}
RUN_MMFUSE=0
if [[ "${SKIP_MMFUSE:-0}" == 1 ]]; then
  log "mmfuse skipped (SKIP_MMFUSE=1)"
elif [[ -x "$MMFUSE" ]] && "$MMFUSE" bench --help 2>&1 | grep -q -- '--new-tokens'; then
  RUN_MMFUSE=1
else
  log "'$MMFUSE bench' has no --new-tokens (no generative bench yet): the mmfuse row reads n/a"
fi
LOADS=""
for ((round = 1; round <= ROUNDS; round++)); do
  LOADS+="${LOADS:+, }$(cut -d' ' -f1 /proc/loadavg)"
  ((RUN_MMFUSE)) && run_mmfuse "$round"
  [[ -n "$LLAMA_BENCH" ]] && run_llama_cpp "$round"
done
LLAMA_NOTE=""
[[ -n "$LLAMA_BENCH" ]] && LLAMA_NOTE="${LLAMA_CPP_COMMIT:-$(git -C "$LLAMA_CPP" log -1 --format='%h %cs' 2>/dev/null || echo unknown)}"
export LLAMA_NOTE LOADS

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
export SKIP_TORCH="${SKIP_TORCH:-0}"
export PROMPT_TOKENS NEW_TOKENS THREADS REPEATS TORCH_DTYPES DTYPE GGUF_TYPE ROUNDS
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
rounds = int(env("ROUNDS", "1"))
dtype, gguf_type = env("DTYPE", "f16"), env("GGUF_TYPE", "f16")


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return None if not xs else (xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2)


def per_round(values):
    return ", ".join(fmt(v, 2) for v in values)


ms = [load_json(f"gen_mmfuse_{i}.json") for i in range(1, rounds + 1)]
m_ok = [m for m in ms if m]
m = m_ok[0] if m_ok else None
m_rss = median([num(x, "peak_rss_mb") or read_rss(f"gen_mmfuse_{i + 1}.rss") for i, x in enumerate(ms) if x])
m_tg_rounds = [num(x, "decode_tokens_per_s") for x in m_ok]
m_note = (f"commit {env('COMMIT')}, `--dtype {m.get('dtype', 'f32')}`, {m.get('kernel_isa', '?')} kernels"
          + (f"; decode per round: {per_round(m_tg_rounds)}" if rounds > 1 else "")) if m else "no generative `mmfuse bench` in this build"
mmfuse_name = "mmfuse int8 (q8_0)" if dtype == "int8" else "mmfuse"
rows.append((mmfuse_name, median([num(x, "prefill_tokens_per_s") for x in m_ok]), median(m_tg_rounds), m_rss,
             median([num(x, "load_ms") for x in m_ok]), m_note))

lc_pp_rounds, lc_tg_rounds = [], []
lc_note = "not run (pass --llama-cpp DIR)"
for i in range(1, rounds + 1):
    lc = load_json(f"gen_llama_cpp_{i}.json")
    if not lc:
        continue
    for r in lc:
        if r.get("n_prompt") == prompt and r.get("n_gen") == 0:
            lc_pp_rounds.append(float(r["avg_ts"]))
        if r.get("n_prompt") == 0 and r.get("n_gen") == new:
            lc_tg_rounds.append(float(r["avg_ts"]))
    r0 = lc[0]
    lc_note = (f"llama-bench {r0.get('build_commit', '?')} ({env('LLAMA_NOTE') or '?'}), {r0.get('type_k', '?')} KV cache, "
               f"tg{new} from an empty context; {r0.get('cpu_info', '')}"
               + (f"; decode per round: {per_round(lc_tg_rounds)}" if rounds > 1 else ""))
lc_pp, lc_tg = median(lc_pp_rounds), median(lc_tg_rounds)
lc_rss = median([read_rss(f"gen_llama_cpp_{i}.rss") for i in range(1, rounds + 1)])
rows.append((f"llama.cpp {gguf_type}", lc_pp, lc_tg, lc_rss, None, lc_note))

torch_rows = []
for dt in [] if env("SKIP_TORCH") == "1" else env("TORCH_DTYPES", "float32").split():
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
print(f"mmfuse {env('COMMIT')}, `DTYPE={dtype} bench/run_generate_bench.sh`, {env('REPEATS')} repetitions"
      + (f" x {rounds} alternating rounds (medians)" if rounds > 1 else "") + ", "
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
print("Targets (issue 19, 8-bit decoder weights):" if dtype == "int8" else "Targets (issue 14):")
print(check(f"mmfuse decode / llama.cpp {gguf_type} tg", ratio(m_tg, lc_tg), 1.0, ">="))
if ref:
    print(check(f"mmfuse decode / {ref[0]} decode", ratio(m_tg, ref[2]), 2.0, ">="))
print(check("mmfuse prefill / llama.cpp pp", ratio(m_pp, lc_pp), 1.0, ">="))
print(check(f"mmfuse peak RSS / (1.2 x weight file + KV cache = {rss_budget:.0f} MiB)", ratio(m_rss, rss_budget), 1.0, "<="))
print()
print(f"KV cache = 2 x {cfg['num_hidden_layers']} layers x {kv_heads} KV heads x {head_dim} x "
      f"{prompt + new} positions x 4 bytes = {kv_mib:.1f} MiB. "
      "prefill tok/s = prompt tokens / time to the first new token; decode tok/s = tokens per second over the "
      "single-token steps after it (PyTorch: (new - 1) / time from first to last token; llama-bench tg: "
      f"{new} single-token steps from an empty context, mean of the repetitions). Peak RSS: the engine's own report, "
      "else /usr/bin/time -v (llama-bench's includes its mmap'd GGUF pages).")
print(f"Load average (1 min) before / after: {sys.argv[3]} / {sys.argv[4]}"
      + (f"; at the start of each round: {env('LOADS')}." if rounds > 1 else "."))
PYEOF
