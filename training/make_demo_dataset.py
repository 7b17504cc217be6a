#!/usr/bin/env python3
"""Writes a small synthetic labelled dataset in the layout train_sound.py reads
(DATA/<label>/*.wav), with the chapter's five kinds of sound, so the training
pipeline can be tried end to end without recordings. The sounds are synthetic
(documented below), not a benchmark: train on real plant recordings for use.

  normal          a machine hum (harmonics of 80-160 Hz) with broadband noise
  abnormal_noise  the hum plus a bearing-like click train (2-5 kHz bursts, 5-30 Hz)
  alarm           the hum plus an on/off beeping tone (1-3 kHz, 2-4 beeps/s)
  impact          the hum plus 1-3 loud broadband knocks
  friction        the hum plus band-limited noise (1-4 kHz) swelling at 0.5-2 Hz

  /usr/bin/python3 training/make_demo_dataset.py --out DATA [--per-class 30] [--seconds 3]
"""

import argparse
import os

import numpy as np
import scipy.signal
from scipy.io import wavfile

SR = 16000


def hum(rng, n):
    t = np.arange(n) / SR
    f0 = rng.uniform(80, 160)
    x = sum(rng.uniform(0.1, 0.3) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) for k in range(1, 7))
    return x + rng.uniform(0.02, 0.08) * rng.standard_normal(n)


def make(label, rng, n):
    x = hum(rng, n)
    t = np.arange(n) / SR
    rms = np.sqrt(np.mean(x**2))
    if label == "abnormal_noise":
        period, f = int(SR / rng.uniform(5, 30)), rng.uniform(2000, 5000)
        k = np.arange(int(0.01 * SR))
        burst = 3 * rms * np.exp(-k / (0.002 * SR)) * np.sin(2 * np.pi * f * k / SR)
        for s in range(rng.integers(0, period), n - len(k), period):
            x[s : s + len(k)] += burst
    elif label == "alarm":
        f, rate = rng.uniform(1000, 3000), rng.uniform(2, 4)
        gate = (np.sin(2 * np.pi * rate * t) > 0).astype(float)
        x += rng.uniform(1, 3) * rms * gate * np.sin(2 * np.pi * f * t)
    elif label == "impact":
        for _ in range(rng.integers(1, 4)):
            s = rng.integers(0, n - SR // 10)
            k = np.arange(SR // 10)
            x[s : s + len(k)] += rng.uniform(5, 10) * rms * np.exp(-k / (0.01 * SR)) * rng.standard_normal(len(k))
    elif label == "friction":
        b, a = scipy.signal.butter(4, [1000, 4000], btype="band", fs=SR)
        band = scipy.signal.lfilter(b, a, rng.standard_normal(n))
        band *= rms / np.sqrt(np.mean(band**2))
        x += band * (0.6 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n = int(args.seconds * SR)
    for label in ["normal", "abnormal_noise", "alarm", "impact", "friction"]:
        os.makedirs(os.path.join(args.out, label), exist_ok=True)
        for i in range(args.per_class):
            x = make(label, rng, n)
            x = x / np.abs(x).max() * rng.uniform(0.3, 0.9)
            wavfile.write(os.path.join(args.out, label, f"{label}_{i:03d}.wav"), SR, np.round(x * 32767).astype(np.int16))
    print(f"wrote {5 * args.per_class} clips to {args.out}")


if __name__ == "__main__":
    main()
