#!/usr/bin/env python3
"""Trains the CNN+LSTM sound classifier on a folder of labelled clips and writes
a model folder mmfuse loads (`mmfuse sound classify --model OUT AUDIO...`,
`mmfuse sound detect --model OUT AUDIO...`).

  DATA/<label>/*.wav      one sub-folder per class (the chapter's 5 classes, e.g.
                          normal, abnormal_noise, alarm, impact, friction)
  /usr/bin/python3 training/train_sound.py --data DATA --out MODEL [--normal-label normal]

Clips are pre-processed and turned into MFCC-40 as mmfuse does it
(training/sound_features.py: clips at 16 kHz get what mmfuse computes, to float
rounding; other rates are resampled with scipy instead of libsoxr), standardised
per clip (the chapter's StandardScaler), and the network is trained on random
crops of --crop-s seconds. WAV is read with scipy; for FLAC/OGG convert first
(e.g. `sox in.flac out.wav`).
"""

import argparse
import glob
import json
import os
import random
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sound_features as sf  # noqa: E402
from sound_cnn_lstm import SoundCnnLstm, save_pretrained  # noqa: E402


def load_dataset(root, labels, fcfg, pcfg):
    clips = []
    for index, label in enumerate(labels):
        files = sorted(glob.glob(os.path.join(root, label, "*.wav")))
        if not files:
            raise SystemExit(f"{root}/{label}: no .wav files")
        for path in files:
            x, sr = sf.read_wav_mono(path)
            y = sf.preprocess(x, sr, pcfg)
            feats = sf.standardize(sf.mfcc(y, fcfg)).astype(np.float32)
            clips.append((path, index, feats))
    return clips


def batches(clips, crop, batch_size, rng):
    order = list(range(len(clips)))
    rng.shuffle(order)
    for i in range(0, len(order), batch_size):
        xs, ys = [], []
        for j in order[i : i + batch_size]:
            _, label, feats = clips[j]
            if len(feats) > crop:
                start = rng.randrange(len(feats) - crop + 1)
                feats = feats[start : start + crop]
            elif len(feats) < crop:
                feats = np.pad(feats, ((0, crop - len(feats)), (0, 0)), mode="wrap")
            xs.append(feats)
            ys.append(label)
        yield torch.from_numpy(np.stack(xs)), torch.tensor(ys)


def evaluate(model, clips):
    """Accuracy on whole clips, one at a time (as mmfuse classifies them)."""
    if not clips:
        return float("nan")
    model.eval()
    correct = 0
    with torch.no_grad():
        for _, label, feats in clips:
            correct += int(model(torch.from_numpy(feats)[None]).argmax(-1).item() == label)
    model.train()
    return correct / len(clips)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with one sub-folder of .wav clips per class")
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--labels", nargs="*", help="class order (default: sub-folder names, normal first)")
    ap.add_argument("--normal-label", default="normal")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--crop-s", type=float, default=2.0, help="training crop length in seconds")
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--hidden-dim", type=int, default=128)
    ap.add_argument("--conv-channels", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--pooling", default="mean", choices=["last", "final", "mean"],
                    help="clip vector: mean over frames (default; trains best), last (the chapter) or final")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    labels = args.labels or sorted(d for d in os.listdir(args.data) if os.path.isdir(os.path.join(args.data, d)))
    if args.normal_label in labels:
        labels = [args.normal_label] + [l for l in labels if l != args.normal_label]
    fcfg = sf.config()
    pcfg = dict(sf.PREPROCESS_DEFAULTS)
    clips = load_dataset(args.data, labels, fcfg, pcfg)
    rng.shuffle(clips)
    n_val = int(round(args.val_fraction * len(clips))) if len(clips) >= 5 else 0
    val, train = clips[:n_val], clips[n_val:]
    crop = max(1, int(args.crop_s * fcfg["sample_rate"] / fcfg["hop_length"]))

    model = SoundCnnLstm(input_dim=fcfg["n_mfcc"], conv_channels=args.conv_channels, hidden_dim=args.hidden_dim,
                         pooling=args.pooling, num_classes=len(labels))
    crop = max(crop, model.min_frames())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        total, count = 0.0, 0
        for x, y in batches(train, crop, args.batch_size, rng):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            count += len(y)
        print(f"epoch {epoch + 1}: loss {total / max(count, 1):.4f}  train acc {evaluate(model, train):.3f}"
              f"  val acc {evaluate(model, val):.3f}", flush=True)

    accuracy = evaluate(model, val)
    accuracy = None if accuracy != accuracy else accuracy  # NaN (no validation clips) is not JSON
    save_pretrained(model.eval(), args.out, labels, args.normal_label, fcfg, pcfg,
                    extra={"training": {"clips": len(clips), "validation_clips": n_val, "epochs": args.epochs,
                                        "val_accuracy": accuracy}})
    print(json.dumps({"out": args.out, "labels": labels, "val_accuracy": accuracy}))


if __name__ == "__main__":
    main()
