#!/usr/bin/python3
"""PyTorch peer for mmfuse benchmarks: a compact CLIP forward without transformers.

It loads a Hugging Face CLIP folder (config.json + model.safetensors, or a
sharded model.safetensors.index.json) with a small numpy safetensors reader
(F32 / F16 / BF16 weights, upcast to float32 like ``from_pretrained`` does for
a float32 model) and computes ``get_text_features`` / ``get_image_features``
with the same operations as transformers' eager CLIP implementation
(separate q/k/v projections, bmm attention with additive causal + padding
masks, pre_layrnorm, post_layernorm on the CLS token, bias-free projections).

Modes:
  --verify REF_DIR   run every tiny model REF_DIR/models/<name> on the inputs of
                     REF_DIR/outputs/<name>/outputs.safetensors and
                     REF_DIR/preprocess/pixel_values.safetensors, compare with the
                     stored transformers outputs, exit 1 when a diff exceeds --tol.
                     REF_DIR is tests/fixtures/clip.
  --model DIR        time the model: --threads T --batch B --iterations N [--json]
                     prints {"image_ms_per_item", "text_ms_per_item", "load_ms",
                     "peak_rss_mb", ...}.  ms/item is the median iteration time / B.

Always run it with Debian's /usr/bin/python3 (torch 1.13, numpy).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import struct
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="PyTorch CLIP peer (no transformers)")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--verify", metavar="REF_DIR", help="check against the fixtures (tests/fixtures/clip)")
    mode.add_argument("--model", metavar="DIR", help="benchmark this model folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=10, help="timed iterations per tower")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations per tower")
    ap.add_argument("--caption-tokens", type=int, default=12,
                    help="real tokens per caption incl. <|startoftext|>/<|endoftext|> (rest is padding to 77)")
    ap.add_argument("--json", action="store_true", help="print one JSON object (benchmark mode)")
    ap.add_argument("--tol", type=float, default=1e-5, help="max abs diff allowed by --verify")
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.model:
    # The thread pools are sized when the libraries load: set them before importing torch.
    # torch.set_num_threads() sizes OpenMP; the OpenBLAS used by this torch build has its own pool.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    # Debian's torch calls OpenBLAS (own pthread pool) for GEMMs and OpenMP for the
    # rest; with libgomp's default active spin-wait the idle OpenMP threads steal the
    # cores from OpenBLAS's threads (2-3x slower at --threads 2 on a 2-core box).
    # PASSIVE was the fastest setting measured, so the peer uses it unless told otherwise.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# --------------------------------------------------------------------------
# safetensors (numpy)
# --------------------------------------------------------------------------

_NP_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}


def read_safetensors(path, to_float32=True):
    """Return {name: np.ndarray}.  Floating tensors become float32 when to_float32."""
    # One read into a writable buffer; float32 tensors are zero-copy views of it.
    buf = np.fromfile(path, dtype=np.uint8)
    (hlen,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(buf[8:8 + hlen].tobytes())
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        begin, end = info["data_offsets"]
        npdt = np.dtype(_NP_DTYPES[dt]).newbyteorder("<")
        count = (end - begin) // npdt.itemsize
        arr = np.frombuffer(buf, dtype=npdt, count=count, offset=base + begin).reshape(info["shape"])
        if to_float32 and dt in ("F16", "F64"):
            arr = arr.astype(np.float32)
        elif to_float32 and dt == "BF16":
            bits = np.left_shift(arr.reshape(-1).astype(np.uint32), np.uint32(16))
            arr = bits.view(np.float32).reshape(arr.shape)
        elif (base + begin) % npdt.itemsize:
            arr = arr.copy()  # unaligned: make an aligned copy
        out[name] = arr
    return out


def load_weights(model_dir: Path):
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    weights = {}
    for fname in files:
        for name, arr in read_safetensors(model_dir / fname).items():
            if name.endswith("position_ids"):
                continue  # old checkpoints store this buffer; it is arange()
            weights[name] = torch.from_numpy(arr)
    return weights


# --------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------

def _quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def _gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


ACTIVATIONS = {
    "quick_gelu": _quick_gelu,
    "gelu": F.gelu,  # exact (erf) GELU, as transformers' GELUActivation
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": F.relu,
}


class Tower:
    """Config of one transformer stack, with transformers' CLIP defaults."""

    def __init__(self, cfg: dict, text: bool):
        self.hidden = cfg.get("hidden_size", 512 if text else 768)
        self.ffn = cfg.get("intermediate_size", 2048 if text else 3072)
        self.layers = cfg.get("num_hidden_layers", 12)
        self.heads = cfg.get("num_attention_heads", 8 if text else 12)
        self.eps = cfg.get("layer_norm_eps", 1e-5)
        self.act = ACTIVATIONS[cfg.get("hidden_act", "quick_gelu")]
        self.head_dim = self.hidden // self.heads
        self.scale = self.head_dim ** -0.5
        if text:
            self.vocab = cfg.get("vocab_size", 49408)
            self.max_pos = cfg.get("max_position_embeddings", 77)
            self.eos_token_id = cfg.get("eos_token_id", 49407)
        else:
            self.image_size = cfg.get("image_size", 224)
            self.patch = cfg.get("patch_size", 32)


class CLIP:
    def __init__(self, model_dir):
        model_dir = Path(model_dir)
        cfg = json.loads((model_dir / "config.json").read_text())
        self.text = Tower(cfg.get("text_config") or {}, text=True)
        self.vision = Tower(cfg.get("vision_config") or {}, text=False)
        self.w = load_weights(model_dir)

    # ---- shared encoder -------------------------------------------------
    def _layer(self, t: Tower, prefix: str, x, mask):
        w = self.w
        bsz, seq, hid = x.shape
        res = x
        x = F.layer_norm(x, (hid,), w[prefix + "layer_norm1.weight"], w[prefix + "layer_norm1.bias"], t.eps)
        a = prefix + "self_attn."

        def heads(y):
            return y.view(bsz, seq, t.heads, t.head_dim).transpose(1, 2).reshape(bsz * t.heads, seq, t.head_dim)

        q = F.linear(x, w[a + "q_proj.weight"], w[a + "q_proj.bias"]) * t.scale
        k = F.linear(x, w[a + "k_proj.weight"], w[a + "k_proj.bias"])
        v = F.linear(x, w[a + "v_proj.weight"], w[a + "v_proj.bias"])
        q, k, v = heads(q), heads(k), heads(v)
        scores = torch.bmm(q, k.transpose(1, 2))
        if mask is not None:
            scores = (scores.view(bsz, t.heads, seq, seq) + mask).view(bsz * t.heads, seq, seq)
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.bmm(probs, v).view(bsz, t.heads, seq, t.head_dim).transpose(1, 2).reshape(bsz, seq, hid)
        x = res + F.linear(ctx, w[a + "out_proj.weight"], w[a + "out_proj.bias"])
        res = x
        x = F.layer_norm(x, (hid,), w[prefix + "layer_norm2.weight"], w[prefix + "layer_norm2.bias"], t.eps)
        x = t.act(F.linear(x, w[prefix + "mlp.fc1.weight"], w[prefix + "mlp.fc1.bias"]))
        x = F.linear(x, w[prefix + "mlp.fc2.weight"], w[prefix + "mlp.fc2.bias"])
        return res + x

    def _encoder(self, t: Tower, tower: str, x, mask, hidden_states=None):
        for i in range(t.layers):
            if hidden_states is not None:
                hidden_states.append(x)
            x = self._layer(t, f"{tower}.encoder.layers.{i}.", x, mask)
        if hidden_states is not None:
            hidden_states.append(x)
        return x

    # ---- text -------------------------------------------------------------
    def text_forward(self, input_ids, attention_mask=None, hidden_states=None):
        """Returns (last_hidden_state, pooled_output) like CLIPTextTransformer."""
        t, w = self.text, self.w
        bsz, seq = input_ids.shape
        x = F.embedding(input_ids, w["text_model.embeddings.token_embedding.weight"])
        x = x + w["text_model.embeddings.position_embedding.weight"][:seq]
        neg = torch.finfo(x.dtype).min
        mask = torch.triu(torch.full((seq, seq), neg, dtype=x.dtype), diagonal=1)[None, None]
        if attention_mask is not None:
            pad = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * neg
            mask = mask + pad  # (B,1,S,S); neg + neg = -inf, as in transformers
        x = self._encoder(t, "text_model", x, mask, hidden_states)
        x = F.layer_norm(x, (t.hidden,), w["text_model.final_layer_norm.weight"],
                         w["text_model.final_layer_norm.bias"], t.eps)
        rows = torch.arange(bsz)
        if t.eos_token_id == 2:
            # legacy configs: the EOS token has the highest id in the CLIP vocab
            pos = input_ids.to(torch.int64).argmax(dim=-1)
        else:
            pos = (input_ids.to(torch.int64) == t.eos_token_id).int().argmax(dim=-1)
        return x, x[rows, pos]

    def get_text_features(self, input_ids, attention_mask=None):
        _, pooled = self.text_forward(input_ids, attention_mask)
        return F.linear(pooled, self.w["text_projection.weight"])

    # ---- vision -------------------------------------------------------------
    def vision_forward(self, pixel_values, hidden_states=None):
        """Returns (last_hidden_state, pooled_output) like CLIPVisionTransformer."""
        t, w = self.vision, self.w
        bsz = pixel_values.shape[0]
        p = w["vision_model.embeddings.patch_embedding.weight"]
        x = F.conv2d(pixel_values.to(p.dtype), p, stride=t.patch)  # (B, H, g, g), no bias
        x = x.flatten(2).transpose(1, 2)
        cls = w["vision_model.embeddings.class_embedding"].expand(bsz, 1, -1)
        x = torch.cat([cls, x], dim=1) + w["vision_model.embeddings.position_embedding.weight"]
        x = F.layer_norm(x, (t.hidden,), w["vision_model.pre_layrnorm.weight"],
                         w["vision_model.pre_layrnorm.bias"], t.eps)
        x = self._encoder(t, "vision_model", x, None, hidden_states)
        pooled = F.layer_norm(x[:, 0, :], (t.hidden,), w["vision_model.post_layernorm.weight"],
                              w["vision_model.post_layernorm.bias"], t.eps)
        return x, pooled

    def get_image_features(self, pixel_values):
        _, pooled = self.vision_forward(pixel_values)
        return F.linear(pooled, self.w["visual_projection.weight"])


# --------------------------------------------------------------------------
# --verify
# --------------------------------------------------------------------------

def verify(ref_dir: Path, tol: float) -> int:
    torch.set_num_threads(1)
    pix = read_safetensors(ref_dir / "preprocess" / "pixel_values.safetensors")
    pixel_values = torch.from_numpy(np.stack([pix[f"pixel_values_{i}"] for i in range(8)]))
    worst = 0.0
    failed = False
    results = {}
    for model_dir in sorted((ref_dir / "models").iterdir()):
        name = model_dir.name
        ref = read_safetensors(ref_dir / "outputs" / name / "outputs.safetensors")
        model = CLIP(model_dir)
        ids = torch.from_numpy(ref["input_ids"].copy())
        am = torch.from_numpy(ref["attention_mask"].copy())
        with torch.inference_mode():
            text_hs, vis_hs = [], []
            last_t, pooled_t = model.text_forward(ids[:1], am[:1], text_hs)
            last_v, pooled_v = model.vision_forward(pixel_values[:1], vis_hs)
            got = {
                "text_embeds_unnormalized": model.get_text_features(ids, am),
                "image_embeds_unnormalized": model.get_image_features(pixel_values),
                "text_pooler_output": model.text_forward(ids, am)[1],
                "vision_pooler_output": model.vision_forward(pixel_values)[1],
                "text_last_hidden_state_first2": model.text_forward(ids[:2], am[:2])[0],
                "vision_last_hidden_state_first2": model.vision_forward(pixel_values[:2])[0],
            }
            for i, h in enumerate(text_hs):
                got[f"text_hidden_states_input0_layer{i}"] = h[0]
            for i, h in enumerate(vis_hs):
                got[f"vision_hidden_states_image0_layer{i}"] = h[0]
        diffs = {}
        for key, val in got.items():
            if key not in ref:
                continue
            d = float(np.max(np.abs(val.numpy() - ref[key])))
            diffs[key] = d
        results[name] = diffs
        main_keys = ("text_embeds_unnormalized", "image_embeds_unnormalized")
        ok = all(diffs[k] < tol for k in main_keys) and all(d < 1e-4 for d in diffs.values())
        failed |= not ok
        worst = max(worst, *(diffs[k] for k in main_keys))
        print(f"{'ok  ' if ok else 'FAIL'} {name:32s} text_embeds {diffs['text_embeds_unnormalized']:.3e}  "
              f"image_embeds {diffs['image_embeds_unnormalized']:.3e}  "
              f"(all {len(diffs)} tensors <= {max(diffs.values()):.3e})")
    print(f"max abs diff over embeddings: {worst:.3e} (tolerance {tol:g})")
    return 1 if failed else 0


# --------------------------------------------------------------------------
# benchmark
# --------------------------------------------------------------------------

def make_text_batch(batch: int, caption_tokens: int, vocab: int, seq: int = 77, seed: int = 0):
    """B captions padded to 77 the way CLIPProcessor(padding="max_length") feeds them."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((batch, seq), 49407, dtype=torch.int64)  # pad token of CLIP = <|endoftext|>
    mask = torch.zeros((batch, seq), dtype=torch.int64)
    for b in range(batch):
        n = max(2, min(seq, caption_tokens + (b % 5) - 2))  # lengths vary a little around the mean
        ids[b, 0] = 49406
        ids[b, 1:n - 1] = torch.randint(256, min(vocab, 49406), (n - 2,), generator=g)
        ids[b, n - 1] = 49407
        mask[b, :n] = 1
    return ids, mask


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time(fn, warmup, iterations):
    """Wall-clock and process CPU seconds (all threads) of each timed iteration."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(iterations):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def bench(args) -> int:
    torch.set_num_threads(args.threads)
    rss_import = _rss_mb()
    t0 = time.perf_counter()
    model = CLIP(args.model)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_loaded = _rss_mb()

    torch.manual_seed(0)
    v = model.vision
    pixel_values = torch.randn(args.batch, 3, v.image_size, v.image_size)
    ids, mask = make_text_batch(args.batch, args.caption_tokens, model.text.vocab, model.text.max_pos)
    with torch.inference_mode():
        img_times, img_cpu = _time(lambda: model.get_image_features(pixel_values), args.warmup, args.iterations)
        txt_times, txt_cpu = _time(lambda: model.get_text_features(ids, mask), args.warmup, args.iterations)

    def per_item(ts, stat):
        return round(stat(ts) * 1e3 / args.batch, 3)

    result = {
        "image_ms_per_item": per_item(img_times, np.median),
        "text_ms_per_item": per_item(txt_times, np.median),
        "load_ms": round(load_ms, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "image_ms_per_item_min": per_item(img_times, min),
        "text_ms_per_item_min": per_item(txt_times, min),
        # CPU time summed over threads: at --threads 1 a load-insensitive estimate of the
        # compute time when other processes share the cores.
        "image_cpu_ms_per_item": per_item(img_cpu, np.median),
        "text_cpu_ms_per_item": per_item(txt_cpu, np.median),
        "rss_after_import_mb": round(rss_import, 1),
        "rss_after_load_mb": round(rss_loaded, 1),
        "batch": args.batch,
        "threads": args.threads,
        "iterations": args.iterations,
        "engine": f"torch {torch.__version__} eager f32",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, val in result.items():
            print(f"{k:24s} {val}")
    return 0


def main() -> int:
    args = ARGS
    if args.verify:
        return verify(Path(args.verify), args.tol)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
