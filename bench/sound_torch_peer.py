#!/usr/bin/env python3
"""PyTorch/NumPy peer for `mmfuse sound bench`: the same work per clip done the
Python way (scipy WAV read, NumPy pre-processing and MFCC-40 from
training/sound_features.py, per-clip standardisation, the CNN+LSTM module in
PyTorch), on the same clip, model and thread count. Prints one JSON line.

  /usr/bin/python3 bench/sound_torch_peer.py --model DIR --audio CLIP.wav --clips N --threads T
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "training"))
import sound_features as sf  # noqa: E402
from sound_cnn_lstm import load_pretrained  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--audio", required=True)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, config = load_pretrained(args.model)
    fcfg = sf.config(**{k: v for k, v in config["features"].items() if k in sf.DEFAULTS})

    def one():
        x, sr = sf.read_wav_mono(args.audio)
        y = sf.preprocess(x, sr, config["preprocess"])
        feats = sf.standardize(sf.mfcc(y, fcfg)).astype(np.float32)
        with torch.no_grad():
            return model(torch.from_numpy(feats)[None]), len(y) / fcfg["sample_rate"], feats

    _, seconds, feats = one()  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.clips):
        one()
    total = time.perf_counter() - t0
    x = torch.from_numpy(feats)[None]
    with torch.no_grad():
        t1 = time.perf_counter()
        for _ in range(args.clips):
            model(x)
        model_ms = (time.perf_counter() - t1) * 1000 / args.clips
    print(json.dumps({"peer": "numpy+torch", "torch": torch.__version__, "threads": args.threads,
                      "clips": args.clips, "clip_seconds": seconds, "clips_per_s": args.clips / total,
                      "ms_per_clip": total * 1000 / args.clips, "model_ms_per_clip": model_ms}))


if __name__ == "__main__":
    main()
