#!/usr/bin/python3
"""Write a random-weight BERT model folder in the Hugging Face layout.

The folder has the file set, tensor names and shapes of a checkpoint saved by
``transformers.BertModel.save_pretrained`` (config.json, model.safetensors) plus
the tokenizer files of the test fixture (the real 21,128-token Chinese BERT /
Chinese-CLIP vocab.txt). It is meant for benchmarks: the weights are random
(normal, std 0.02, LayerNorm gains ~1), so embeddings are meaningless but
activations stay in a sane range.

Only numpy and the standard library are used; the safetensors file is written
per the format spec (little-endian u64 header length, JSON header padded with
spaces to a multiple of 8, then the contiguous tensor data).

Example:
    /usr/bin/python3 scripts/synth_bert_model.py --out bench/out/bert-base-chinese --preset bert-base
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_SOURCE = REPO_ROOT / "tests" / "fixtures" / "bert" / "models" / "bert-tiny-chinese"
COPIED_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json")

# hidden / layers / heads / ffn; vocab 21128 (bert-base-chinese, Chinese-CLIP).
PRESETS = {
    "bert-base": dict(hidden=768, layers=12, heads=12, ffn=3072),
    "bert-large": dict(hidden=1024, layers=24, heads=16, ffn=4096),
    "tiny": dict(hidden=32, layers=2, heads=4, ffn=64),  # the test fixture's geometry
}
VOCAB_SIZE = 21128
MAX_POSITIONS = 512


def tensor_specs(cfg):
    h, f = cfg["hidden"], cfg["ffn"]
    specs = [
        ("embeddings.word_embeddings.weight", (VOCAB_SIZE, h), ("normal", 0.02)),
        ("embeddings.position_embeddings.weight", (MAX_POSITIONS, h), ("normal", 0.02)),
        ("embeddings.token_type_embeddings.weight", (2, h), ("normal", 0.02)),
        ("embeddings.LayerNorm.weight", (h,), ("ln_weight", 0.02)),
        ("embeddings.LayerNorm.bias", (h,), ("normal", 0.02)),
        ("pooler.dense.weight", (h, h), ("normal", 0.02)),
        ("pooler.dense.bias", (h,), ("normal", 0.02)),
    ]
    for i in range(cfg["layers"]):
        p = f"encoder.layer.{i}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            specs.append((f"{p}.{name}.weight", (h, h), ("normal", 0.02)))
            specs.append((f"{p}.{name}.bias", (h,), ("normal", 0.02)))
        specs.append((f"{p}.intermediate.dense.weight", (f, h), ("normal", 0.02)))
        specs.append((f"{p}.intermediate.dense.bias", (f,), ("normal", 0.02)))
        specs.append((f"{p}.output.dense.weight", (h, f), ("normal", 0.02)))
        specs.append((f"{p}.output.dense.bias", (h,), ("normal", 0.02)))
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            specs.append((f"{p}.{ln}.weight", (h,), ("ln_weight", 0.02)))
            specs.append((f"{p}.{ln}.bias", (h,), ("normal", 0.02)))
    specs.sort(key=lambda s: s[0])
    return specs


def make_tensor(rng, shape, init):
    kind, std = init
    x = rng.standard_normal(size=shape, dtype=np.float32) * np.float32(std)
    if kind == "ln_weight":
        x += np.float32(1.0)
    return x


def write_safetensors(path: Path, specs, rng) -> None:
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in specs:
        nbytes = int(np.prod(shape, dtype=np.int64)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for _, shape, init in specs:
            f.write(np.ascontiguousarray(make_tensor(rng, shape, init), dtype="<f4").tobytes())
    os.replace(tmp, path)


def config_json(cfg):
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": cfg["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": cfg["ffn"],
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": MAX_POSITIONS,
        "model_type": "bert",
        "num_attention_heads": cfg["heads"],
        "num_hidden_layers": cfg["layers"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "type_vocab_size": 2,
        "vocab_size": VOCAB_SIZE,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder to write")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="bert-base")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = PRESETS[args.preset]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(out / "model.safetensors", tensor_specs(cfg), np.random.default_rng(args.seed))
    (out / "config.json").write_text(json.dumps(config_json(cfg), indent=2) + "\n")
    for name in COPIED_FILES:
        shutil.copyfile(TOKENIZER_SOURCE / name, out / name)
    print(f"wrote {out} ({args.preset}: hidden {cfg['hidden']}, {cfg['layers']} layers)")


if __name__ == "__main__":
    main()
