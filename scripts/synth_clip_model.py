#!/usr/bin/python3
"""Write a random-weight CLIP model folder in the Hugging Face layout.

The folder has the same file set, tensor names and shapes as a checkpoint
saved by ``transformers.CLIPModel.save_pretrained`` (config.json,
model.safetensors or sharded model-0000i-of-0000N.safetensors plus
model.safetensors.index.json, and the tokenizer / preprocessor files copied
from the tiny test fixture, whose vocabulary is the real 49408-token CLIP
BPE vocabulary).  It is meant for benchmarks and shape tests: the weights
are random (normal, std ~0.02, LayerNorm gains ~1), so embeddings are
meaningless but activations stay in a sane range.

Only numpy and the standard library are used; safetensors files are written
directly per the format spec (little-endian u64 header length, JSON header
padded with spaces to a multiple of 8, then the contiguous tensor data).

Example:
    /usr/bin/python3 scripts/synth_clip_model.py --out bench/out/vit-b-32 --preset vit-b-32
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKENIZER_SOURCE = REPO_ROOT / "tests" / "fixtures" / "clip" / "models" / "clip-tiny-quickgelu-p32"
COPIED_FILES = (
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
)

# text: hidden / layers / heads / ffn; vision: hidden / layers / heads / ffn.
PRESETS = {
    "vit-b-32": dict(text_hidden=512, text_layers=12, text_heads=8, text_ffn=2048,
                     vision_hidden=768, vision_layers=12, vision_heads=12, vision_ffn=3072,
                     patch=32, image_size=224, proj=512, act="quick_gelu"),
    "vit-b-16": dict(text_hidden=512, text_layers=12, text_heads=8, text_ffn=2048,
                     vision_hidden=768, vision_layers=12, vision_heads=12, vision_ffn=3072,
                     patch=16, image_size=224, proj=512, act="quick_gelu"),
    "vit-l-14": dict(text_hidden=768, text_layers=12, text_heads=12, text_ffn=3072,
                     vision_hidden=1024, vision_layers=24, vision_heads=16, vision_ffn=4096,
                     patch=14, image_size=224, proj=768, act="quick_gelu"),
    # Same dimensions as tests/fixtures/clip/models/clip-tiny-quickgelu-p32.
    "tiny": dict(text_hidden=32, text_layers=2, text_heads=2, text_ffn=128,
                 vision_hidden=64, vision_layers=2, vision_heads=4, vision_ffn=256,
                 patch=32, image_size=224, proj=16, act="quick_gelu"),
}

VOCAB_SIZE = 49408
MAX_POSITIONS = 77
DTYPE_NAMES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}


# --------------------------------------------------------------------------
# Tensor list
# --------------------------------------------------------------------------

def _encoder_tensors(prefix: str, hidden: int, layers: int, ffn: int):
    """(name, shape, init) for a CLIP encoder stack; init is a (kind, std) pair."""
    out = []
    # Same scaling as HF's CLIPPreTrainedModel._init_weights (factor 1), with
    # small non-zero biases so that a bias that is dropped by an engine shows.
    in_std = (hidden ** -0.5) * ((2 * layers) ** -0.5)
    out_std = hidden ** -0.5
    fc_std = (2 * hidden) ** -0.5
    for i in range(layers):
        p = f"{prefix}.encoder.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj"):
            out.append((f"{p}.self_attn.{proj}.weight", (hidden, hidden), ("normal", in_std)))
            out.append((f"{p}.self_attn.{proj}.bias", (hidden,), ("normal", 0.02)))
        out.append((f"{p}.self_attn.out_proj.weight", (hidden, hidden), ("normal", out_std)))
        out.append((f"{p}.self_attn.out_proj.bias", (hidden,), ("normal", 0.02)))
        for ln in ("layer_norm1", "layer_norm2"):
            out.append((f"{p}.{ln}.weight", (hidden,), ("ln_weight", 0.02)))
            out.append((f"{p}.{ln}.bias", (hidden,), ("normal", 0.02)))
        out.append((f"{p}.mlp.fc1.weight", (ffn, hidden), ("normal", fc_std)))
        out.append((f"{p}.mlp.fc1.bias", (ffn,), ("normal", 0.02)))
        out.append((f"{p}.mlp.fc2.weight", (hidden, ffn), ("normal", in_std)))
        out.append((f"{p}.mlp.fc2.bias", (hidden,), ("normal", 0.02)))
    return out


def tensor_specs(cfg: dict):
    th, vh = cfg["text_hidden"], cfg["vision_hidden"]
    patch, size, proj = cfg["patch"], cfg["image_size"], cfg["proj"]
    if size % patch != 0:
        raise SystemExit(f"--image-size {size} is not a multiple of --patch {patch}")
    num_positions = (size // patch) ** 2 + 1
    specs = [("logit_scale", (), ("const", 2.6592))]
    # text tower
    specs.append(("text_model.embeddings.token_embedding.weight", (cfg["vocab"], th), ("normal", 0.02)))
    specs.append(("text_model.embeddings.position_embedding.weight", (MAX_POSITIONS, th), ("normal", 0.01)))
    specs += _encoder_tensors("text_model", th, cfg["text_layers"], cfg["text_ffn"])
    specs.append(("text_model.final_layer_norm.weight", (th,), ("ln_weight", 0.02)))
    specs.append(("text_model.final_layer_norm.bias", (th,), ("normal", 0.02)))
    specs.append(("text_projection.weight", (proj, th), ("normal", th ** -0.5)))
    # vision tower
    specs.append(("vision_model.embeddings.class_embedding", (vh,), ("normal", vh ** -0.5)))
    specs.append(("vision_model.embeddings.patch_embedding.weight", (vh, 3, patch, patch), ("normal", 0.02)))
    specs.append(("vision_model.embeddings.position_embedding.weight", (num_positions, vh), ("normal", 0.02)))
    specs.append(("vision_model.pre_layrnorm.weight", (vh,), ("ln_weight", 0.02)))
    specs.append(("vision_model.pre_layrnorm.bias", (vh,), ("normal", 0.02)))
    specs += _encoder_tensors("vision_model", vh, cfg["vision_layers"], cfg["vision_ffn"])
    specs.append(("vision_model.post_layernorm.weight", (vh,), ("ln_weight", 0.02)))
    specs.append(("vision_model.post_layernorm.bias", (vh,), ("normal", 0.02)))
    specs.append(("visual_projection.weight", (proj, vh), ("normal", vh ** -0.5)))
    # safetensors writers (and HF) store keys sorted; data follows the same order.
    specs.sort(key=lambda s: s[0])
    return specs


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------

def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even float32 -> bfloat16, returned as uint16 bits."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    out = ((bits + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def encode(x: np.ndarray, dtype: str) -> bytes:
    if dtype == "F32":
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(x, dtype="<f2").tobytes()
    if dtype == "BF16":
        return f32_to_bf16_bits(x).astype("<u2").tobytes()
    raise ValueError(dtype)


def make_tensor(rng: np.random.Generator, shape, init) -> np.ndarray:
    kind, val = init
    if kind == "const":
        return np.full(shape, val, dtype=np.float32)
    x = rng.standard_normal(size=shape, dtype=np.float32)
    x *= np.float32(val)
    if kind == "ln_weight":
        x += np.float32(1.0)
    return x


def write_safetensors(path: Path, entries, dtype: str, rng: np.random.Generator) -> int:
    """Write (name, shape, init) entries to one safetensors file; returns data size."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in entries:
        nbytes = int(np.prod(shape, dtype=np.int64)) * DTYPE_BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for name, shape, init in entries:
            f.write(encode(make_tensor(rng, shape, init), dtype))
    os.replace(tmp, path)
    return offset


def split_shards(specs, dtype: str, shards: int):
    """Split the (sorted) tensor list into `shards` contiguous, non-empty groups of ~equal bytes."""
    if shards > len(specs):
        raise SystemExit(f"cannot split {len(specs)} tensors into {shards} shards")
    sizes = [int(np.prod(s, dtype=np.int64)) * DTYPE_BYTES[dtype] for _, s, _ in specs]
    total = sum(sizes)
    cum = np.cumsum([0] + sizes)  # cum[i] = bytes before tensor i
    starts = [0]
    for k in range(1, shards):
        # first tensor whose start offset reaches k/shards of the data, but keep
        # every group non-empty and leave one tensor per remaining group.
        idx = int(np.searchsorted(cum, k * total / shards, side="left"))
        idx = max(idx, starts[-1] + 1)
        idx = min(idx, len(specs) - (shards - k))
        starts.append(idx)
    starts.append(len(specs))
    return [specs[starts[i]:starts[i + 1]] for i in range(shards)]


# --------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------

def make_config(cfg: dict, dtype: str) -> dict:
    torch_dtype = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
    text = {
        "attention_dropout": 0.0,
        "bos_token_id": cfg["bos_token_id"],
        "eos_token_id": cfg["eos_token_id"],
        "hidden_act": cfg["act"],
        "hidden_size": cfg["text_hidden"],
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": cfg["text_ffn"],
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": MAX_POSITIONS,
        "model_type": "clip_text_model",
        "num_attention_heads": cfg["text_heads"],
        "num_hidden_layers": cfg["text_layers"],
        "pad_token_id": cfg["pad_token_id"],
        "projection_dim": cfg["proj"],
        "vocab_size": cfg["vocab"],
    }
    vision = {
        "attention_dropout": 0.0,
        "hidden_act": cfg["act"],
        "hidden_size": cfg["vision_hidden"],
        "image_size": cfg["image_size"],
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": cfg["vision_ffn"],
        "layer_norm_eps": 1e-05,
        "model_type": "clip_vision_model",
        "num_attention_heads": cfg["vision_heads"],
        "num_channels": 3,
        "num_hidden_layers": cfg["vision_layers"],
        "patch_size": cfg["patch"],
        "projection_dim": cfg["proj"],
    }
    return {
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": cfg["proj"],
        "text_config": text,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.44.0",
        "vision_config": vision,
    }


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (created; existing model files are replaced)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="vit-b-32")
    for key, help_ in (("text-hidden", "text hidden size"), ("text-layers", "text encoder layers"),
                       ("text-heads", "text attention heads"), ("text-ffn", "text MLP size"),
                       ("vision-hidden", "vision hidden size"), ("vision-layers", "vision encoder layers"),
                       ("vision-heads", "vision attention heads"), ("vision-ffn", "vision MLP size"),
                       ("patch", "patch size"), ("image-size", "input image size"),
                       ("proj", "projection_dim")):
        ap.add_argument(f"--{key}", type=int, default=None, help=f"{help_} (overrides the preset)")
    ap.add_argument("--act", choices=["quick_gelu", "gelu"], default=None, help="hidden_act of both towers")
    ap.add_argument("--vocab", type=int, default=VOCAB_SIZE,
                    help="text vocab_size (default 49408, the size of the copied CLIP vocab.json)")
    ap.add_argument("--eos-token-id", type=int, default=2,
                    help="text_config.eos_token_id: 2 (legacy OpenAI configs: pool at argmax(input_ids)) "
                         "or 49407 (pool at the first <|endoftext|>); default 2")
    ap.add_argument("--dtype", choices=sorted(DTYPE_NAMES), default="f32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1, help="number of safetensors shards (default 1)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = dict(PRESETS[args.preset])
    for key in ("text_hidden", "text_layers", "text_heads", "text_ffn", "vision_hidden", "vision_layers",
                "vision_heads", "vision_ffn", "patch", "image_size", "proj", "act"):
        val = getattr(args, key)
        if val is not None:
            cfg[key] = val
    cfg["vocab"] = args.vocab
    cfg["eos_token_id"] = args.eos_token_id
    cfg["bos_token_id"] = 0 if args.eos_token_id == 2 else 49406
    cfg["pad_token_id"] = 1 if args.eos_token_id == 2 else 49407
    for tower in ("text", "vision"):
        h, n = cfg[f"{tower}_hidden"], cfg[f"{tower}_heads"]
        if h % n != 0:
            raise SystemExit(f"--{tower}-hidden {h} is not divisible by --{tower}-heads {n}")
    if args.shards < 1:
        raise SystemExit("--shards must be >= 1")
    dtype = DTYPE_NAMES[args.dtype]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in list(out.glob("model*.safetensors")) + list(out.glob("model.safetensors.index.json")):
        stale.unlink()

    specs = tensor_specs(cfg)
    rng = np.random.default_rng(args.seed)
    n_params = sum(int(np.prod(s, dtype=np.int64)) for _, s, _ in specs)
    total = 0
    if args.shards == 1:
        total = write_safetensors(out / "model.safetensors", specs, dtype, rng)
    else:
        weight_map = {}
        groups = split_shards(specs, dtype, args.shards)
        for i, group in enumerate(groups, start=1):
            fname = f"model-{i:05d}-of-{args.shards:05d}.safetensors"
            total += write_safetensors(out / fname, group, dtype, rng)
            for name, _, _ in group:
                weight_map[name] = fname
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")

    (out / "config.json").write_text(json.dumps(make_config(cfg, dtype), indent=2, sort_keys=True) + "\n")
    for fname in COPIED_FILES:
        dst = out / fname
        if dst.exists():
            dst.unlink()
        shutil.copyfile(TOKENIZER_SOURCE / fname, dst)
        os.chmod(dst, 0o644)

    print(f"wrote {out}: preset={args.preset} dtype={dtype} params={n_params} "
          f"weights={total / 2**20:.1f} MiB shards={args.shards}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
