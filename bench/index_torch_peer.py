#!/usr/bin/python3
"""Peer for the end-to-end indexing benchmark: the chapter's PyTorch + FAISS loop.

Section 3.1.1 of the chapter embeds every image of a folder one at a time with
CLIP (PIL decode, CLIPProcessor-style preprocessing, get_image_features), L2-
normalises it and adds it to a faiss.IndexFlatIP, then writes the index. This
script does exactly that with the PyTorch CLIP of bench/torch_clip.py (the same
math as transformers' eager CLIP, verified against the reference outputs) and
Debian's python3-faiss, and prints one JSON object:
  {"added", "seconds", "items_per_second", "threads"}

Usage: /usr/bin/python3 bench/index_torch_peer.py --model DIR --images DIR --out INDEX [--threads T]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--images", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
# Thread pools are sized when the libraries load (see bench/torch_clip.py).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_clip import CLIP  # noqa: E402

torch.set_num_threads(args.threads)
faiss.omp_set_num_threads(args.threads)

cfg = json.loads((Path(args.model) / "preprocessor_config.json").read_text())
size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"]["shortest_edge"]
crop = cfg["crop_size"] if isinstance(cfg["crop_size"], int) else cfg["crop_size"]["height"]
mean = np.array(cfg["image_mean"], dtype=np.float32)
std = np.array(cfg["image_std"], dtype=np.float32)


def preprocess(path):
    """CLIPImageProcessor: shortest edge -> size (bicubic), centre crop, rescale, normalise."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = im.size
    left, top = (w - crop) // 2, (h - crop) // 2
    im = im.crop((left, top, left + crop, top + crop))
    x = (np.asarray(im, dtype=np.float32) / 255.0 - mean) / std
    return torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)


model = CLIP(args.model)
paths = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
index = None
start = time.perf_counter()
with torch.inference_mode():
    for p in paths:  # one by one, as the chapter does
        feats = model.get_image_features(preprocess(p)).numpy().astype(np.float32)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True)
        if index is None:
            index = faiss.IndexFlatIP(feats.shape[1])
        index.add(feats)
faiss.write_index(index, args.out)
seconds = time.perf_counter() - start
print(json.dumps({"added": len(paths), "seconds": seconds, "items_per_second": len(paths) / seconds,
                  "threads": args.threads}))
