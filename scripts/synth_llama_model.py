#!/usr/bin/python3
"""Write a random-weight Llama model folder in the Hugging Face layout.

The folder has the file set, tensor names and shapes of a checkpoint saved by
``transformers.LlamaForCausalLM.save_pretrained``: config.json,
generation_config.json, model.safetensors (F16), plus the Llama SentencePiece
tokenizer of the LLaVA test fixture (the real 32,000-piece Llama vocabulary)
with the LLaVA-only added tokens (<image>, <pad>) removed. It is meant for the
decoder speed benchmark: the weights are random (normal, std 0.02; RMSNorm
gains 1 + N(0, 0.02)), so the text is gibberish but activations stay in a sane
range, and every engine reads the same bytes.

Only numpy and the standard library are used; the safetensors file is written
per the format spec (little-endian u64 header length, JSON header padded with
spaces to a multiple of 8, then the contiguous tensor data sorted by name).
The output depends only on --preset and --seed.

Example:
    /usr/bin/python3 scripts/synth_llama_model.py --out bench/out/tinyllama-1.1b --preset tinyllama-1.1b
"""

from __future__ import annotations

import argparse
import json
import os
import struct
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_SOURCE = REPO_ROOT / "tests" / "fixtures" / "llava" / "models" / "llava-1.5-tiny"
VOCAB_SIZE = 32000  # the pieces in tokenizer.model; no added tokens

# TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T geometry, and a small one for tests.
PRESETS = {
    "tinyllama-1.1b": dict(hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632),
    "tiny": dict(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128),
}
MAX_POSITIONS = 2048
INIT_STD = 0.02
# Random numbers are drawn in blocks so a 1.1B-parameter model never needs more
# than one block of float32 scratch at a time.
BLOCK_ELEMENTS = 1 << 24


def tensor_specs(cfg):
    """(name, shape, is_norm) for every parameter of LlamaForCausalLM, sorted by name."""
    h, inter = cfg["hidden"], cfg["intermediate"]
    head_dim = h // cfg["heads"]
    kv = cfg["kv_heads"] * head_dim
    specs = [
        ("model.embed_tokens.weight", (VOCAB_SIZE, h), False),
        ("model.norm.weight", (h,), True),
        ("lm_head.weight", (VOCAB_SIZE, h), False),  # untied, as TinyLlama
    ]
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}"
        specs += [
            (f"{p}.input_layernorm.weight", (h,), True),
            (f"{p}.post_attention_layernorm.weight", (h,), True),
            (f"{p}.self_attn.q_proj.weight", (h, h), False),
            (f"{p}.self_attn.k_proj.weight", (kv, h), False),
            (f"{p}.self_attn.v_proj.weight", (kv, h), False),
            (f"{p}.self_attn.o_proj.weight", (h, h), False),
            (f"{p}.mlp.gate_proj.weight", (inter, h), False),
            (f"{p}.mlp.up_proj.weight", (inter, h), False),
            (f"{p}.mlp.down_proj.weight", (h, inter), False),
        ]
    specs.sort(key=lambda s: s[0])
    return specs


def write_tensor_f16(f, rng, shape, is_norm) -> None:
    count = int(np.prod(shape, dtype=np.int64))
    for start in range(0, count, BLOCK_ELEMENTS):
        n = min(BLOCK_ELEMENTS, count - start)
        x = rng.standard_normal(size=n, dtype=np.float32)
        x *= np.float32(INIT_STD)
        if is_norm:
            x += np.float32(1.0)
        f.write(x.astype("<f2").tobytes())


def write_safetensors(path: Path, specs, seed: int) -> None:
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in specs:
        nbytes = int(np.prod(shape, dtype=np.int64)) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for _, shape, is_norm in specs:
            write_tensor_f16(f, rng, shape, is_norm)
    os.replace(tmp, path)


def config_json(cfg):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": cfg["hidden"],
        "initializer_range": INIT_STD,
        "intermediate_size": cfg["intermediate"],
        "max_position_embeddings": MAX_POSITIONS,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": cfg["heads"],
        "num_hidden_layers": cfg["layers"],
        "num_key_value_heads": cfg["kv_heads"],
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.44.0",
        "use_cache": True,
        "vocab_size": VOCAB_SIZE,
    }


def generation_config_json():
    return {
        "bos_token_id": 1,
        "eos_token_id": 2,
        "max_length": MAX_POSITIONS,
        "pad_token_id": 0,
        "transformers_version": "4.44.0",
    }


def tokenizer_config_json():
    """The fixture's LlamaTokenizer config without LLaVA's <image>/<pad> and processor keys."""
    cfg = json.loads((TOKENIZER_SOURCE / "tokenizer_config.json").read_text())
    cfg["added_tokens_decoder"] = {
        k: v for k, v in cfg["added_tokens_decoder"].items() if int(k) < VOCAB_SIZE
    }
    for key in ("additional_special_tokens", "processor_class", "padding_side"):
        cfg.pop(key, None)
    cfg["pad_token"] = None  # Llama ships without a pad token
    cfg["model_max_length"] = MAX_POSITIONS
    return cfg


def special_tokens_map_json():
    cfg = json.loads((TOKENIZER_SOURCE / "special_tokens_map.json").read_text())
    for key in ("additional_special_tokens", "pad_token"):
        cfg.pop(key, None)
    return cfg


def dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder to write")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tinyllama-1.1b")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = PRESETS[args.preset]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = tensor_specs(cfg)
    write_safetensors(out / "model.safetensors", specs, args.seed)
    dump(out / "config.json", config_json(cfg))
    dump(out / "generation_config.json", generation_config_json())
    dump(out / "tokenizer_config.json", tokenizer_config_json())
    dump(out / "special_tokens_map.json", special_tokens_map_json())
    (out / "tokenizer.model").write_bytes((TOKENIZER_SOURCE / "tokenizer.model").read_bytes())
    params = sum(int(np.prod(s, dtype=np.int64)) for _, s, _ in specs)
    print(f"wrote {out} ({args.preset}: {params:,} parameters, hidden {cfg['hidden']}, "
          f"{cfg['layers']} layers, F16)")


if __name__ == "__main__":
    main()
