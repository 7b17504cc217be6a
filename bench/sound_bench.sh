#!/usr/bin/env bash
# Sound scoring throughput: clips/s for 10 s clips scored end to end (decode,
# resample, normalise, trim, features, model) by `mmfuse sound bench`, for the
# unsupervised Gaussian detector and for the chapter-sized CNN+LSTM classifier
# (random weights: 40 MFCC -> Conv1d 64 -> Conv1d 128 -> biLSTM 128 -> 5), on 1
# and 2 threads, next to the NumPy + PyTorch peer doing the same per clip.
#
#   bench/sound_bench.sh                 (MMFUSE=./build/mmfuse CLIPS=40 THREADS="1 2")
#
# Writes bench/out/sound/ (gitignored): the clip, the models, one JSON per run
# and results.md. Run it on an idle machine (see bench/README.md).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" sound_bench
CLIPS="${CLIPS:-40}"
THREADS="${THREADS:-1 2}"
OUT=bench/out/sound
mkdir -p "$OUT"

# A 10 s machine-like clip and 4 normal clips to fit the Gaussian detector on.
"$PYTHON" - "$OUT" <<'PYEOF'
import os, sys
import numpy as np
from scipy.io import wavfile
out = sys.argv[1]
sr = 16000
for name, seed in [("clip", 7), ("normal_0", 100), ("normal_1", 101), ("normal_2", 102), ("normal_3", 103)]:
    rng = np.random.default_rng(seed)
    t = np.arange(10 * sr) / sr
    x = sum(0.3 / k * np.sin(2 * np.pi * 120 * k * t) for k in range(1, 6)) + 0.05 * rng.standard_normal(len(t))
    x *= 1 + 0.1 * np.sin(2 * np.pi * 0.5 * t)
    d = os.path.join(out, "normal") if name.startswith("normal") else out
    os.makedirs(d, exist_ok=True)
    wavfile.write(os.path.join(d, name + ".wav"), sr, np.round(x / np.abs(x).max() * 0.9 * 32767).astype(np.int16))
PYEOF

# The chapter-sized classifier with random weights.
"$PYTHON" - "$OUT/cnn_lstm" <<'PYEOF'
import os, sys
sys.path.insert(0, "training")
import torch
import sound_features as sf
from sound_cnn_lstm import SoundCnnLstm, save_pretrained
torch.manual_seed(0)
m = SoundCnnLstm().eval()
save_pretrained(m, sys.argv[1], ["normal", "abnormal_noise", "alarm", "impact", "friction"], "normal",
                sf.config(), dict(sf.PREPROCESS_DEFAULTS))
PYEOF

"$MMFUSE" sound fit --normal "$OUT/normal" --out "$OUT/gaussian" >"$OUT/fit.json"

rows=()
for t in $THREADS; do
  for kind in gaussian cnn_lstm; do
    log "mmfuse $kind, $t thread(s)"
    "$MMFUSE" sound bench --model "$OUT/$kind" --audio "$OUT/clip.wav" --clips "$CLIPS" --threads "$t" --json \
      >"$OUT/mmfuse_${kind}_t$t.json"
  done
  log "numpy+torch peer (cnn_lstm), $t thread(s)"
  "$PYTHON" bench/sound_torch_peer.py --model "$OUT/cnn_lstm" --audio "$OUT/clip.wav" \
    --clips "$(( CLIPS / 4 > 5 ? CLIPS / 4 : 5 ))" --threads "$t" >"$OUT/torch_cnn_lstm_t$t.json"
done

"$PYTHON" - "$OUT" "$THREADS" <<'PYEOF'
import json, os, sys
out, threads = sys.argv[1], sys.argv[2].split()
lines = ["| model | threads | mmfuse clips/s | ms/clip | x real time | numpy+torch clips/s | mmfuse / peer |",
         "|---|---|---|---|---|---|---|"]
for t in threads:
    for kind in ("gaussian", "cnn_lstm"):
        m = json.load(open(os.path.join(out, f"mmfuse_{kind}_t{t}.json")))
        peer, ratio = "n/a", ""
        if kind == "cnn_lstm":
            p = json.load(open(os.path.join(out, f"torch_cnn_lstm_t{t}.json")))
            peer, ratio = f"{p['clips_per_s']:.1f}", f"{m['clips_per_s'] / p['clips_per_s']:.1f}x"
        lines.append(f"| {kind} | {t} | {m['clips_per_s']:.1f} | {m['ms_per_clip']:.1f} | "
                     f"{m['realtime_factor']:.0f} | {peer} | {ratio} |")
text = "\n".join(lines) + "\n\n10 s clips at 16 kHz, scored end to end (decode, pre-process, MFCC-40, model).\n"
open(os.path.join(out, "results.md"), "w").write(text)
print(text)
PYEOF
