#!/usr/bin/python3
"""Random-weight BLIP-2 folders of real geometry for the BLIP-2 speed benchmark.

Builds ``Blip2ForConditionalGeneration`` from a config with transformers (a
source tree is fine: ``--transformers-src``), fills it with seeded,
well-conditioned random weights and writes it the way the Salesforce uploads
are: ``save_pretrained(safe_serialization=True)`` in float16, ``config.json``
in the verbose form (every key), plus the real tokenizer and preprocessor files
of the reference fixtures (tests/fixtures/blip2/models/blip2-{opt,flan-t5}-tiny).

Geometry (scaled to a 2-core, 24 GB machine; the real BLIP-2 vision tower is
ViT-g, 1408 wide and 39 layers deep):

* vision: ViT-B size, hidden 768, 12 layers, 12 heads, MLP 3072, 224/14
  (257 tokens), qkv bias, LN eps 1e-6;
* Q-Former: the real one, hidden 768, 12 layers, 12 heads, 3072 FFN, 32 query
  tokens, cross-attention every 2nd layer (``cross_attention_frequency`` 2:
  Blip2QFormerConfig's default, which HF's conversion script uses for every
  Salesforce checkpoint, flan-t5 ones included; the flan-t5 *fixture* uses 1
  on purpose, for test coverage), ``encoder_hidden_size`` = vision hidden;
* ``--language-model opt``: OPT-350m size, hidden 1024, 24 layers, 16 heads,
  FFN 4096, relu, post-LN (``do_layer_norm_before`` false, as OPT-350m),
  2048 positions, vocab 50272, bos 2 / pad 1 / eos 50118 ("\\n", as in
  Salesforce's blip2-opt configs).  ``word_embed_proj_dim`` is 1024, not
  OPT-350m's 512: BLIP-2 concatenates ``language_projection`` output
  (text hidden size) with ``embed_tokens(input_ids)`` (word_embed_proj_dim
  wide), so with 512 transformers' own forward fails (no Salesforce BLIP-2 has
  project_in/out);
* ``--language-model t5``: Flan-T5-base size, d_model 768, 12 + 12 layers,
  12 heads, d_kv 64, d_ff 2048, gated-gelu (gelu_new), 32 buckets / distance
  128, vocab 32128, ``tie_word_embeddings`` false, decoder start 0, eos 1,
  ``bos_token_id`` 1 (BLIP-2 captioning without a prompt needs it; HF's
  conversion sets it for flan-t5).

``--scale tiny`` keeps the layout with very small widths (a plumbing check).

Weights (seeded, so activations neither explode nor go flat in float32):
* Linear/conv weights N(0, 1/fan_in); biases N(0, 0.02^2); LayerNorm and T5
  RMSNorm gains 1 + N(0, 0.1^2), biases N(0, 0.02^2); embeddings N(0, 1);
  query tokens, class and position embeddings (vision) N(0, 0.5^2);
* language model: the output projection of every residual branch (attention
  out, FFN out) is scaled by 1/sqrt(2 x layers), as GPT-2's init does (else the
  deep random stack averages all positions into one vector and greedy decoding
  repeats one token); T5 ``q`` weights by 1/sqrt(d_kv) (T5 does not scale its
  scores; its own init does the same); relative attention bias N(0, 0.5^2);
* what feeds the output head has std 2/sqrt(hidden), so the logits have std ~2:
  T5's ``lm_head``; OPT's tied ``embed_tokens``, and with it
  ``language_projection`` (so the LM's raw input [queries ; tokens] is on one
  scale); OPT's learned positions have std 1 (with a tied head a random OPT
  otherwise predicts its own input token: the same token at every step).

Example:
    /usr/bin/python3 bench/make_blip2_folder.py --language-model opt --out /tmp/mmfuse-blip2-bench/blip2-opt-350m \\
        --transformers-src /work/peers/hf/src
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_peer_torch import prepare_transformers_import  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "blip2" / "models"
TOKENIZER_FILES = {
    "opt": ("blip2-opt-tiny", ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                                "preprocessor_config.json"]),
    "t5": ("blip2-flan-t5-tiny", ["spiece.model", "tokenizer_config.json", "special_tokens_map.json",
                                  "preprocessor_config.json"]),
}

SCALES = {
    # vision / Q-Former widths, then each language model's
    "real": dict(vision=(768, 12, 12, 3072), qformer=(768, 12, 12, 3072), queries=32,
                 opt=(1024, 24, 16, 4096), t5=(768, 12, 12, 64, 2048)),
    "tiny": dict(vision=(32, 2, 4, 64), qformer=(32, 2, 4, 64), queries=8,
                 opt=(16, 2, 2, 32), t5=(16, 2, 2, 8, 32)),
}


def blip2_config_dict(lm: str, scale: str) -> dict:
    s = SCALES[scale]
    vh, vl, vheads, vffn = s["vision"]
    qh, ql, qheads, qffn = s["qformer"]
    vision = dict(hidden_size=vh, num_hidden_layers=vl, num_attention_heads=vheads, intermediate_size=vffn,
                  image_size=224, patch_size=14, hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True)
    qformer = dict(hidden_size=qh, num_hidden_layers=ql, num_attention_heads=qheads, intermediate_size=qffn,
                   cross_attention_frequency=2, encoder_hidden_size=vh, hidden_act="gelu",
                   layer_norm_eps=1e-12, max_position_embeddings=512, vocab_size=30522, pad_token_id=0)
    if lm == "opt":
        h, layers, heads, ffn = s["opt"]
        text = dict(model_type="opt", architectures=["OPTForCausalLM"], hidden_size=h, num_hidden_layers=layers,
                    num_attention_heads=heads, ffn_dim=ffn, word_embed_proj_dim=h, do_layer_norm_before=False,
                    activation_function="relu", activation_dropout=0.0, max_position_embeddings=2048, vocab_size=50272, bos_token_id=2,
                    pad_token_id=1, eos_token_id=50118, prefix="</s>", enable_bias=True,
                    layer_norm_elementwise_affine=True, tie_word_embeddings=True, torch_dtype="float16")
    else:
        d, layers, heads, d_kv, d_ff = s["t5"]
        text = dict(model_type="t5", architectures=["T5ForConditionalGeneration"], d_model=d, num_layers=layers,
                    num_decoder_layers=layers, num_heads=heads, d_kv=d_kv, d_ff=d_ff, feed_forward_proj="gated-gelu",
                    relative_attention_num_buckets=32, relative_attention_max_distance=128, vocab_size=32128,
                    tie_word_embeddings=False, decoder_start_token_id=0, eos_token_id=1, bos_token_id=1,
                    pad_token_id=0, layer_norm_epsilon=1e-6, n_positions=512, output_past=True, torch_dtype="float32")
    return dict(vision_config=vision, qformer_config=qformer, text_config=text, num_query_tokens=s["queries"],
                architectures=["Blip2ForConditionalGeneration"], torch_dtype="float16")


# ---------------------------------------------------------------------------
# Writing safetensors when the package is absent (Debian 12): the public format.

_ST_DTYPES = {torch.float16: "F16", torch.float32: "F32", torch.bfloat16: "BF16", torch.int64: "I64",
              torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL", torch.float64: "F64"}


def write_safetensors(tensors: dict, filename: str, metadata: dict | None = None) -> None:
    """Header (8-byte little-endian length + JSON, names sorted, padded to 8 bytes), then the raw data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(filename, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def install_safetensors_writer() -> None:
    """generate_peer_torch's stand-in only reads; give it a writer before transformers binds save_file."""
    import safetensors
    import safetensors.torch as st
    if "Stand-in" in (safetensors.__doc__ or ""):
        st.save_file = write_safetensors


# ---------------------------------------------------------------------------
# Initialisation


@torch.no_grad()
def init_weights(model, lm: str, seed: int) -> None:
    from torch import nn
    gen = torch.Generator().manual_seed(seed)

    def normal_(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    text_cfg = model.config.text_config
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            normal_(module.weight, 1.0 / math.sqrt(module.in_features))
            if module.bias is not None:
                normal_(module.bias, 0.02)
        elif isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            normal_(module.weight, 1.0 / math.sqrt(fan_in))
            if module.bias is not None:
                normal_(module.bias, 0.02)
        elif isinstance(module, nn.LayerNorm):
            if module.weight is not None:
                normal_(module.weight, 0.1, 1.0)
                normal_(module.bias, 0.02)
        elif isinstance(module, nn.Embedding):
            normal_(module.weight, 1.0)
        elif type(module).__name__ == "T5LayerNorm":
            normal_(module.weight, 0.1, 1.0)
    for name, p in model.named_parameters():
        if name in ("query_tokens", "vision_model.embeddings.class_embedding",
                    "vision_model.embeddings.position_embedding"):
            normal_(p, 0.5)
        elif name.endswith(("attention.attention.q_bias", "attention.attention.v_bias", "self_attn.q_bias",
                            "self_attn.v_bias")):
            normal_(p, 0.02)
    # GPT-2's trick: shrink each residual branch's output projection by 1/sqrt(2 x layers), so a
    # deep random language model keeps the token's identity (unscaled, OPT's 24 post-LN layers
    # average all positions into one vector: the same token at every step).
    if lm == "opt":
        branch = 1.0 / math.sqrt(2 * text_cfg.num_hidden_layers)
        for layer in model.language_model.model.decoder.layers:
            layer.self_attn.out_proj.weight.mul_(branch)
            layer.fc2.weight.mul_(branch)
    else:
        for stack, n in ((model.language_model.encoder, text_cfg.num_layers),
                         (model.language_model.decoder, text_cfg.num_decoder_layers)):
            branch = 1.0 / math.sqrt(2 * n)
            for name, module in stack.named_modules():
                if type(module).__name__ == "T5Attention":
                    module.o.weight.mul_(branch)
                elif name.endswith("DenseReluDense"):
                    module.wo.weight.mul_(branch)
    if lm == "opt":
        # Tied with the output head: scale so logits = LN(h) . E^T have std ~2.
        normal_(model.language_model.model.decoder.embed_tokens.weight, 2.0 / math.sqrt(text_cfg.hidden_size))
        # Positions at std 1 (16x the tokens'): with the tied head a random OPT otherwise
        # predicts its own input token, and greedy decoding repeats one token.
        normal_(model.language_model.model.decoder.embed_positions.weight, 1.0)
        # The first post-LN layer sees [projected queries ; token embeddings] raw: give both the
        # same scale, or the queries swamp the tokens and every step picks the same token.
        model.language_projection.weight.mul_(2.0 / math.sqrt(text_cfg.hidden_size))
        model.language_projection.bias.mul_(2.0 / math.sqrt(text_cfg.hidden_size))
    else:
        normal_(model.language_model.lm_head.weight, 2.0 / math.sqrt(text_cfg.d_model))
        for name, module in model.language_model.named_modules():
            if type(module).__name__ == "T5Attention":
                module.q.weight.mul_(1.0 / math.sqrt(text_cfg.d_kv))
                if module.has_relative_attention_bias:
                    normal_(module.relative_attention_bias.weight, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--language-model", choices=("opt", "t5"), required=True)
    ap.add_argument("--out", required=True, type=Path, help="folder to write (created; replaced files inside)")
    ap.add_argument("--scale", choices=sorted(SCALES), default="real")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transformers-src", help="transformers source tree's src/ folder, if not installed")
    ap.add_argument("--hub-src", help="huggingface_hub src/ folder (default: next to --transformers-src if there)")
    args = ap.parse_args()

    hub_src = args.hub_src
    if not hub_src and args.transformers_src and (Path(args.transformers_src) / "huggingface_hub").is_dir():
        hub_src = args.transformers_src
    prepare_transformers_import(args.transformers_src, hub_src)
    install_safetensors_writer()
    import transformers
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    t0 = time.perf_counter()
    config = Blip2Config(**blip2_config_dict(args.language_model, args.scale))
    torch.manual_seed(args.seed)
    model = Blip2ForConditionalGeneration(config).eval()
    init_weights(model, args.language_model, args.seed)
    model = model.half()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out), safe_serialization=True)
    # The verbose form (every key of every sub-config), like the Salesforce repositories.
    # transformers >= 4.45 adds "image_token_index": null; 4.44 (the reference) and the
    # Salesforce folders it reads have no such key, so leave it out when unset.
    verbose = model.config.to_dict()
    if verbose.get("image_token_index") is None:
        verbose.pop("image_token_index", None)
    (args.out / "config.json").write_text(json.dumps(verbose, indent=2, sort_keys=True) + "\n")
    fixture, files = TOKENIZER_FILES[args.language_model]
    for f in files:
        shutil.copyfile(FIXTURES / fixture / f, args.out / f)
    n_params = sum(p.numel() for p in model.parameters())
    size = sum(p.stat().st_size for p in args.out.glob("model*.safetensors"))
    print(json.dumps({"out": str(args.out), "language_model": args.language_model, "scale": args.scale,
                      "parameters": n_params, "weights_mib": round(size / 2**20, 1),
                      "transformers": transformers.__version__, "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
