#!/usr/bin/python3
"""PyTorch peer for `mmfuse bench --dtype`: the CLIP towers as nn.Modules, run in
float32, with torch.ao.quantization.quantize_dynamic (int8 weights per channel,
activations quantised at run time: what a PyTorch user does to a CLIP model),
or with bfloat16 weights (model.to(torch.bfloat16)).

  /usr/bin/python3 bench/torch_clip_quant.py --model DIR --dtype int8 --threads 2 --batch 1 --json

Prints {"image_ms_per_item", "text_ms_per_item", "load_ms", "peak_rss_mb", "engine", ...};
ms/item is the median iteration time / batch. The weights and config are read
with bench/torch_clip.py's reader; the arithmetic is that of its CLIP class.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--model", required=True)
ap.add_argument("--dtype", choices=["f32", "int8", "bf16"], default="int8")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--iterations", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--engine", default="", help="torch.backends.quantized.engine (default: the build's)")
ap.add_argument("--json", action="store_true")
ARGS = ap.parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_clip  # noqa: E402


class Layer(nn.Module):
    def __init__(self, t, w, prefix):
        super().__init__()
        self.t = t

        def lin(name, bias=True):
            weight = w[prefix + name + ".weight"]
            m = nn.Linear(weight.shape[1], weight.shape[0], bias=bias)
            m.weight.data.copy_(weight)
            if bias:
                m.bias.data.copy_(w[prefix + name + ".bias"])
            return m

        self.q, self.k, self.v = lin("self_attn.q_proj"), lin("self_attn.k_proj"), lin("self_attn.v_proj")
        self.o, self.fc1, self.fc2 = lin("self_attn.out_proj"), lin("mlp.fc1"), lin("mlp.fc2")
        self.ln1 = nn.LayerNorm(t.hidden, eps=t.eps)
        self.ln2 = nn.LayerNorm(t.hidden, eps=t.eps)
        for ln, name in ((self.ln1, "layer_norm1"), (self.ln2, "layer_norm2")):
            ln.weight.data.copy_(w[prefix + name + ".weight"])
            ln.bias.data.copy_(w[prefix + name + ".bias"])

    def forward(self, x, mask=None):
        t = self.t
        bsz, seq, hid = x.shape
        res = x
        x = self.ln1(x)

        def heads(y):
            return y.view(bsz, seq, t.heads, t.head_dim).transpose(1, 2).reshape(bsz * t.heads, seq, t.head_dim)

        q, k, v = heads(self.q(x) * t.scale), heads(self.k(x)), heads(self.v(x))
        scores = torch.bmm(q, k.transpose(1, 2))
        if mask is not None:
            scores = (scores.view(bsz, t.heads, seq, seq) + mask).view(bsz * t.heads, seq, seq)
        ctx = torch.bmm(torch.softmax(scores, dim=-1), v)
        ctx = ctx.view(bsz, t.heads, seq, t.head_dim).transpose(1, 2).reshape(bsz, seq, hid)
        x = res + self.o(ctx)
        return x + self.fc2(t.act(self.fc1(self.ln2(x))))


class Vision(nn.Module):
    def __init__(self, clip):
        super().__init__()
        t, w = clip.vision, clip.w
        self.t = t
        self.patch = nn.Parameter(w["vision_model.embeddings.patch_embedding.weight"], requires_grad=False)
        self.cls = nn.Parameter(w["vision_model.embeddings.class_embedding"], requires_grad=False)
        self.pos = nn.Parameter(w["vision_model.embeddings.position_embedding.weight"], requires_grad=False)
        self.pre = nn.LayerNorm(t.hidden, eps=t.eps)
        self.post = nn.LayerNorm(t.hidden, eps=t.eps)
        for ln, name in ((self.pre, "pre_layrnorm"), (self.post, "post_layernorm")):
            ln.weight.data.copy_(w[f"vision_model.{name}.weight"])
            ln.bias.data.copy_(w[f"vision_model.{name}.bias"])
        self.layers = nn.ModuleList(Layer(t, w, f"vision_model.encoder.layers.{i}.") for i in range(t.layers))
        pw = w["visual_projection.weight"]
        self.proj = nn.Linear(pw.shape[1], pw.shape[0], bias=False)
        self.proj.weight.data.copy_(pw)

    def forward(self, pixel_values):
        bsz = pixel_values.shape[0]
        x = F.conv2d(pixel_values.to(self.patch.dtype), self.patch, stride=self.t.patch).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(bsz, 1, -1), x], dim=1) + self.pos
        x = self.pre(x)
        for layer in self.layers:
            x = layer(x)
        return self.proj(self.post(x[:, 0, :]))


class Text(nn.Module):
    def __init__(self, clip):
        super().__init__()
        t, w = clip.text, clip.w
        self.t = t
        self.tok = nn.Parameter(w["text_model.embeddings.token_embedding.weight"], requires_grad=False)
        self.pos = nn.Parameter(w["text_model.embeddings.position_embedding.weight"], requires_grad=False)
        self.final = nn.LayerNorm(t.hidden, eps=t.eps)
        self.final.weight.data.copy_(w["text_model.final_layer_norm.weight"])
        self.final.bias.data.copy_(w["text_model.final_layer_norm.bias"])
        self.layers = nn.ModuleList(Layer(t, w, f"text_model.encoder.layers.{i}.") for i in range(t.layers))
        pw = w["text_projection.weight"]
        self.proj = nn.Linear(pw.shape[1], pw.shape[0], bias=False)
        self.proj.weight.data.copy_(pw)

    def forward(self, input_ids, attention_mask):
        bsz, seq = input_ids.shape
        x = F.embedding(input_ids, self.tok) + self.pos[:seq]
        neg = torch.finfo(x.dtype).min
        mask = torch.triu(torch.full((seq, seq), neg, dtype=x.dtype), diagonal=1)[None, None]
        mask = mask + (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * neg
        for layer in self.layers:
            x = layer(x, mask)
        x = self.final(x)
        pos = input_ids.argmax(dim=-1) if self.t.eos_token_id == 2 else (input_ids == self.t.eos_token_id).int().argmax(dim=-1)
        return self.proj(x[torch.arange(bsz), pos])


def main():
    torch.set_num_threads(ARGS.threads)
    if ARGS.engine:
        torch.backends.quantized.engine = ARGS.engine
    t0 = time.perf_counter()
    clip = torch_clip.CLIP(ARGS.model)
    vision, text = Vision(clip).eval(), Text(clip).eval()
    del clip
    if ARGS.dtype == "int8":
        vision = torch.ao.quantization.quantize_dynamic(vision, {nn.Linear}, dtype=torch.qint8)
        text = torch.ao.quantization.quantize_dynamic(text, {nn.Linear}, dtype=torch.qint8)
    elif ARGS.dtype == "bf16":
        vision, text = vision.to(torch.bfloat16), text.to(torch.bfloat16)
    load_ms = (time.perf_counter() - t0) * 1e3
    torch.manual_seed(0)
    v = vision.t
    pixels = torch.randn(ARGS.batch, 3, v.image_size, v.image_size)
    if ARGS.dtype == "bf16":
        pixels = pixels.to(torch.bfloat16)
    ids, mask = torch_clip.make_text_batch(ARGS.batch, 12, text.t.vocab, text.t.max_pos)
    with torch.inference_mode():
        img, img_cpu = torch_clip._time(lambda: vision(pixels), ARGS.warmup, ARGS.iterations)
        txt, txt_cpu = torch_clip._time(lambda: text(ids, mask), ARGS.warmup, ARGS.iterations)
    result = {
        "image_ms_per_item": round(float(np.median(img)) * 1e3 / ARGS.batch, 3),
        "text_ms_per_item": round(float(np.median(txt)) * 1e3 / ARGS.batch, 3),
        "image_cpu_ms_per_item": round(float(np.median(img_cpu)) * 1e3 / ARGS.batch, 3),
        "text_cpu_ms_per_item": round(float(np.median(txt_cpu)) * 1e3 / ARGS.batch, 3),
        "load_ms": round(load_ms, 1),
        "peak_rss_mb": round(torch_clip._rss_mb(), 1),
        "batch": ARGS.batch,
        "threads": ARGS.threads,
        "dtype": ARGS.dtype,
        "engine": f"torch {torch.__version__} {ARGS.dtype}"
        + (f" quantize_dynamic ({torch.backends.quantized.engine})" if ARGS.dtype == "int8" else ""),
    }
    print(json.dumps(result) if ARGS.json else result)


if __name__ == "__main__":
    main()
