#!/usr/bin/env python3
"""Writes the small sound fixtures in tests/fixtures/sound/ (deterministic):

  features/cases.json, features/reference.safetensors
      test signals and their log-mel / MFCC computed by the NumPy definition in
      training/sound_features.py for several feature configurations; the C++
      test Mfcc.MatchesNumpyReference compares against them (1e-4).
  clips/*.wav
      short synthetic machine sounds (16-bit PCM): a hum with broadband noise
      ("normal") and the same with a bearing-like click train or a whine added
      ("anomaly"), plus a stereo 44.1 kHz clip, a float WAV and a clip with
      silence at both ends, used by the decode/trim tests and tests/cli/sound_cli.sh.

Run with Debian's python: /usr/bin/python3 tests/tools/make_sound_fixtures.py
"""

import json
import os
import sys

import numpy as np
from scipy.io import wavfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "training"))
import sound_features as sf  # noqa: E402
import safetensors_io  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "sound")


def machine_hum(rng, seconds, sr, fundamental=120.0, noise=0.05):
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.3 / k * np.sin(2 * np.pi * fundamental * k * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 6))
    return x + noise * rng.standard_normal(len(t))


def add_clicks(x, sr, rate_hz=12.0, freq=3000.0, level=0.6):
    y = x.copy()
    k = np.arange(int(0.01 * sr))
    burst = level * np.exp(-k / (0.002 * sr)) * np.sin(2 * np.pi * freq * k / sr)
    for start in range(0, len(x) - len(k), int(sr / rate_hz)):
        y[start : start + len(k)] += burst
    return y


def add_whine(x, sr, freq=2500.0, level=0.15):
    t = np.arange(len(x)) / sr
    return x + level * np.sin(2 * np.pi * freq * t)


def to_int16(x):
    x = x / max(1.0, np.abs(x).max() / 0.9)
    return np.round(x * 32767).astype(np.int16)


def feature_cases(rng):
    sr = 16000
    t = np.arange(sr // 2) / sr
    chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 3000 * t**2))
    signals = {
        "hum_noise_0p5s": machine_hum(rng, 0.5, sr),
        "chirp_noise_0p5s": chirp + 0.02 * rng.standard_normal(sr // 2),
        # silence (exact zeros) in the middle exercises amin and the top_db floor
        "gap_0p6s": np.concatenate([machine_hum(rng, 0.2, sr), np.zeros(int(0.2 * sr)), machine_hum(rng, 0.2, sr)]),
        "short_150": 0.5 * rng.standard_normal(150),
        "tone_22k_0p5s": 0.4 * np.sin(2 * np.pi * 1000 * np.arange(11025) / 22050)
        + 0.05 * rng.standard_normal(11025),
    }
    signals = {k: v.astype(np.float32) for k, v in signals.items()}
    configs = {
        "default": sf.config(),
        "librosa_mfcc_like": sf.config(pre_emphasis=0.0, frame_length=512, n_fft=512, n_mels=128, top_db=0.0),
        "htk_lifter_reflect": sf.config(
            mel_scale="htk", mel_norm="none", lifter=22.0, pad_mode="reflect", fmin=20.0, fmax=7600.0,
            n_mels=40, n_mfcc=13, frame_length=400, hop_length=100, n_fft=1024),
        "dcase_logmel": sf.config(pre_emphasis=0.0, frame_length=1024, hop_length=512, n_fft=1024, n_mels=128,
                                  top_db=0.0, amin=1e-10),
        "no_center": sf.config(center=False, ref=10.0, top_db=60.0),
        "sr22050": sf.config(sample_rate=22050, frame_length=551, hop_length=220, n_fft=1024, n_mels=80),
    }
    pairs = [
        ("hum_noise_0p5s", "default"), ("chirp_noise_0p5s", "default"), ("gap_0p6s", "default"),
        ("short_150", "default"), ("hum_noise_0p5s", "librosa_mfcc_like"), ("chirp_noise_0p5s", "htk_lifter_reflect"),
        ("short_150", "htk_lifter_reflect"), ("gap_0p6s", "dcase_logmel"), ("hum_noise_0p5s", "no_center"),
        ("tone_22k_0p5s", "sr22050"),
    ]
    tensors = {f"signal.{k}": v for k, v in signals.items()}
    cases = []
    for i, (sig, cfg_name) in enumerate(pairs):
        cfg = configs[cfg_name]
        x = signals[sig].astype(np.float64)
        tensors[f"case{i}.log_mel"] = sf.log_mel(x, cfg).astype(np.float32)
        tensors[f"case{i}.mfcc"] = sf.mfcc(x, cfg).astype(np.float32)
        cases.append({"name": f"case{i}", "signal": f"signal.{sig}", "config_name": cfg_name, "config": cfg})
    # The chapter's per-clip standardisation, on case 0's MFCCs.
    tensors["case0.mfcc_standardized"] = sf.standardize(sf.mfcc(signals["hum_noise_0p5s"].astype(np.float64), configs["default"])).astype(np.float32)
    os.makedirs(os.path.join(OUT, "features"), exist_ok=True)
    safetensors_io.save_file(tensors, os.path.join(OUT, "features", "reference.safetensors"))
    with open(os.path.join(OUT, "features", "cases.json"), "w") as f:
        json.dump({"generator": "tests/tools/make_sound_fixtures.py", "cases": cases}, f, indent=1)
        f.write("\n")


def clips(rng):
    d = os.path.join(OUT, "clips")
    os.makedirs(d, exist_ok=True)
    sr = 16000
    for i in range(4):
        x = machine_hum(rng, 0.5, sr, fundamental=120.0 + rng.uniform(-2, 2))
        wavfile.write(os.path.join(d, f"normal_{i}.wav"), sr, to_int16(x))
    wavfile.write(os.path.join(d, "anomaly_clicks.wav"), sr, to_int16(add_clicks(machine_hum(rng, 0.5, sr), sr)))
    wavfile.write(os.path.join(d, "anomaly_whine.wav"), sr, to_int16(add_whine(machine_hum(rng, 0.5, sr), sr)))
    # 44.1 kHz stereo: left a 440 Hz tone, right its negation -> the mean down-mix is silence.
    t = np.arange(int(0.25 * 44100)) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    wavfile.write(os.path.join(d, "stereo_44k_cancel.wav"), 44100, to_int16(np.stack([tone, -tone], 1)))
    wavfile.write(os.path.join(d, "stereo_44k_tone.wav"), 44100, to_int16(np.stack([tone, tone], 1)))
    wavfile.write(os.path.join(d, "float_8k.wav"), 8000, (0.25 * np.sin(2 * np.pi * 500 * np.arange(4000) / 8000)).astype(np.float32))
    # 0.3 s silence, 0.4 s hum, 0.3 s silence.
    x = np.concatenate([np.zeros(4800), machine_hum(rng, 0.4, sr), np.zeros(4800)])
    wavfile.write(os.path.join(d, "silence_edges.wav"), sr, to_int16(x))
    with open(os.path.join(d, "not_audio.wav"), "wb") as f:
        f.write(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    open(os.path.join(d, "empty.wav"), "wb").close()


def main():
    rng = np.random.default_rng(20240607)
    feature_cases(rng)
    clips(rng)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
