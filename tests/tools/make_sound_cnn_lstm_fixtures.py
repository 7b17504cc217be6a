#!/usr/bin/env python3
"""Writes tests/fixtures/sound/cnn_lstm/: small random-weight CNN+LSTM models
(training/sound_cnn_lstm.py, saved with save_pretrained) and the logits PyTorch
computes for random inputs and for the MFCCs of a fixture clip, which
tests/unit/test_sound_cnn_lstm.cpp compares against the C++ forward pass (1e-4).

  /usr/bin/python3 tests/tools/make_sound_cnn_lstm_fixtures.py
"""

import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "training"))
import safetensors_io  # noqa: E402
import sound_features as sf  # noqa: E402
from sound_cnn_lstm import SoundCnnLstm, save_pretrained  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "sound", "cnn_lstm")
LABELS = ["normal", "abnormal_noise", "alarm", "impact", "friction"]

MODELS = {
    # The chapter's layout (two conv blocks, one bidirectional layer, last step), narrower.
    "chapter_small": dict(input_dim=40, conv_channels=[16, 32], kernel_size=3, hidden_dim=24,
                          num_layers=1, bidirectional=True, pooling="last", num_classes=5),
    # Everything else the C++ code supports: 3 blocks, kernel 5, 2 layers, one direction, mean.
    "deep_mean": dict(input_dim=40, conv_channels=[8, 12, 16], kernel_size=5, hidden_dim=10,
                      num_layers=2, bidirectional=False, pooling="mean", num_classes=3),
    # Two bidirectional layers pooled by their final states.
    "bi2_final": dict(input_dim=13, conv_channels=[12], kernel_size=3, pool_size=3, hidden_dim=9,
                      num_layers=2, bidirectional=True, pooling="final", num_classes=4),
}


def main():
    torch.manual_seed(1234)
    rng = np.random.default_rng(1234)
    fcfg = sf.config()
    pcfg = dict(sf.PREPROCESS_DEFAULTS)
    manifest = {"generator": "tests/tools/make_sound_cnn_lstm_fixtures.py", "torch": torch.__version__, "models": {}}
    for name, kwargs in MODELS.items():
        model = SoundCnnLstm(**kwargs).eval()
        # Spread the weights a little wider than the default init so gates saturate sometimes.
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.5)
        labels = LABELS[: kwargs["num_classes"]]
        feats = dict(fcfg, n_mfcc=kwargs["input_dim"], n_mels=max(64, kwargs["input_dim"]))
        save_pretrained(model, os.path.join(OUT, name), labels, "normal", feats, pcfg)
        tensors = {}
        lengths = [57, 8 * model.min_frames() + 3, model.min_frames()]
        for i, frames in enumerate(lengths):
            x = rng.standard_normal((frames, kwargs["input_dim"])).astype(np.float32)
            with torch.no_grad():
                logits = model(torch.from_numpy(x)[None])[0].numpy()
            tensors[f"input{i}"] = x
            tensors[f"logits{i}"] = logits.astype(np.float32)
        # End to end: a 16 kHz fixture clip through pre-processing, MFCC, per-clip
        # standardisation and the network.
        wav, sr = sf.read_wav_mono(os.path.join(ROOT, "tests", "fixtures", "sound", "clips", "anomaly_clicks.wav"))
        mf = sf.standardize(sf.mfcc(sf.preprocess(wav, sr, pcfg), feats)).astype(np.float32)
        with torch.no_grad():
            tensors["clip.logits"] = model(torch.from_numpy(mf)[None])[0].numpy().astype(np.float32)
        tensors["clip.features"] = mf
        safetensors_io.save_file(tensors, os.path.join(OUT, name, "expected.safetensors"))
        manifest["models"][name] = {"inputs": len(lengths), "frames": lengths, **kwargs}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
