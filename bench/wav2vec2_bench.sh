#!/usr/bin/env bash
# wav2vec2-CTC transcription speed: real-time factor (seconds of compute per
# second of audio) of `mmfuse transcribe` for the wav2vec2-base geometry
# (random weights, 94.4M params: 7 conv layers of 512 channels, hidden 768,
# 12 layers, 12 heads, ffn 3072, vocab 32) on 1 and 2 threads, next to a
# PyTorch peer with the same eager math as HF Wav2Vec2ForCTC (verified against
# the reference logits first), and the peak RSS of both on a 10-minute file
# (30 s chunks with 5 s strides, as the HF pipeline would be asked to do).
#
#   bench/wav2vec2_bench.sh        (MMFUSE=./build/mmfuse THREADS="1 2" SECONDS_CLIP=20 REPEAT=3 LONG=600)
#   LONG=0 skips the 10-minute runs (they take ~4 and ~8 minutes on an idle 2-core machine).
#
# Writes bench/out/wav2vec2/ (gitignored): the model folder, the clips, one
# JSON per run and results.md. Run it on an idle machine (see bench/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-/usr/bin/python3}"
MMFUSE="${MMFUSE:-./build/mmfuse}"
THREADS="${THREADS:-1 2}"
SECONDS_CLIP="${SECONDS_CLIP:-20}"
REPEAT="${REPEAT:-3}"
LONG="${LONG:-600}"
OUT=bench/out/wav2vec2
MODEL=$OUT/base-random
PEER=bench/wav2vec2_torch_peer.py
mkdir -p "$OUT"
log() { printf '[wav2vec2_bench] %s\n' "$*" >&2; }

load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > 0.5 * n) }'; then
  log "warning: load average $load on $(nproc) cores; numbers will be low and noisy"
fi

log "checking the PyTorch peer against the HF reference logits"
"$PYTHON" "$PEER" verify tests/fixtures/wav2vec2 | tee "$OUT/peer_verify.json"
[ -f "$MODEL/model.safetensors" ] || "$PYTHON" "$PEER" make-model "$MODEL"

# Speech-like clips: harmonic voiced sound with a moving pitch, syllable-rate
# amplitude modulation and a little noise.
"$PYTHON" - "$OUT" "$SECONDS_CLIP" "$LONG" <<'PYEOF'
import sys, wave
import numpy as np
out, short, long_ = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
sr = 16000
for name, seconds in [("clip", short), ("long", long_)]:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 110 + 20 * np.sin(0.7 * t)
    x = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 8))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2) + 0.02 * rng.standard_normal(len(t))
    with wave.open(f"{out}/{name}.wav", "wb") as f:
        f.setnchannels(1); f.setsampwidth(2); f.setframerate(sr)
        f.writeframes((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes())
PYEOF

for t in $THREADS; do
  log "threads $t: mmfuse"
  "$MMFUSE" transcribe --model "$MODEL" "$OUT/clip.wav" --threads "$t" --repeat "$REPEAT" --timing \
    --timestamps word >"$OUT/mmfuse_t$t.json"
  log "threads $t: pytorch"
  "$PYTHON" "$PEER" run "$MODEL" "$OUT/clip.wav" --threads "$t" --repeat "$REPEAT" >"$OUT/torch_t$t.json"
done

if [ "$LONG" != 0 ]; then
  log "peak RSS on a ${LONG} s file (2 threads)"
  /usr/bin/time -f '%M' -o "$OUT/mmfuse_long_rss_kb" "$MMFUSE" transcribe --model "$MODEL" "$OUT/long.wav" \
    --threads 2 --timing --format json --timestamps word --chunk-length 30 --stride-length 5 >"$OUT/mmfuse_long.json"
  /usr/bin/time -f '%M' -o "$OUT/torch_long_rss_kb" "$PYTHON" "$PEER" run "$MODEL" "$OUT/long.wav" --threads 2 \
    --chunk 30 --stride 5 >"$OUT/torch_long.json"
fi

"$PYTHON" - "$OUT" "$THREADS" "$SECONDS_CLIP" "$LONG" <<'PYEOF' | tee "$OUT/results.md"
import json, sys
out, threads, short, long_ = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
print(f"wav2vec2-base geometry (random weights), {short} s clip in one piece, median of runs.")
print("RTF = wall seconds / audio seconds; CPU = process CPU seconds (all threads) / audio seconds, which")
print("other load on the machine disturbs much less than wall time. Lower is better.\n")
print("| threads | mmfuse RTF | PyTorch RTF | speed-up (wall) | mmfuse CPU | PyTorch CPU | CPU ratio |")
print("|---|---|---|---|---|---|---|")
for t in threads:
    m = json.load(open(f"{out}/mmfuse_t{t}.json"))["timing"]
    p = json.load(open(f"{out}/torch_t{t}.json"))
    sec = m["transcribe_ms"] / 1000 / m["real_time_factor"]
    mc, pc = m["transcribe_cpu_ms"] / 1000 / sec, p["transcribe_cpu_ms"] / 1000 / sec
    print(f"| {t} | {m['real_time_factor']:.3f} | {p['real_time_factor']:.3f} | {p['real_time_factor'] / m['real_time_factor']:.2f}x "
          f"| {mc:.3f} | {pc:.3f} | {pc / mc:.2f}x |")
import os
if not os.path.exists(f"{out}/torch_long.json"):
    sys.exit(0)
ml = json.load(open(f"{out}/mmfuse_long.json"))
pl = json.load(open(f"{out}/torch_long.json"))
mr = int(open(f"{out}/mmfuse_long_rss_kb").read()) / 1024
pr = int(open(f"{out}/torch_long_rss_kb").read()) / 1024
print(f"\n{ml['duration']:.0f} s file, 30 s chunks / 5 s strides, 2 threads:\n")
print("| | peak RSS (MB) | RTF | frames |")
print("|---|---|---|---|")
print(f"| mmfuse | {mr:.0f} | {ml['timing']['real_time_factor']:.3f} | {ml['frames']} |")
print(f"| PyTorch | {pr:.0f} | {pl['real_time_factor']:.3f} | {pl['frames']} |")
PYEOF
