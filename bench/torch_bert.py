#!/usr/bin/python3
"""PyTorch peer for the BERT benchmark: BertModel's forward without transformers.

It loads a Hugging Face BERT folder (config.json + model.safetensors, F32) with
a numpy safetensors reader and computes what transformers' eager BertModel
computes: word + position + token-type embeddings and LayerNorm, post-LN layers
(separate query/key/value projections, bmm attention with an additive padding
mask, exact-erf GELU), and the tanh pooler on [CLS].

Modes:
  --verify DIR   run tests/fixtures/bert (DIR) through the peer, compare with the
                 stored transformers outputs, exit 1 when a diff exceeds --tol.
  --model DIR    time it: --threads T --batch B --seq-len L --iterations N [--json]
                 prints {"text_ms_per_item", "sequences_per_s", ...}; ms/item is
                 the median iteration time / B, under torch.inference_mode().

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
    ap = argparse.ArgumentParser(description="PyTorch BERT peer (no transformers)")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--verify", metavar="DIR", help="check against tests/fixtures/bert")
    mode.add_argument("--model", metavar="DIR", help="benchmark this model folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--tol", type=float, default=1e-5)
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.model:
    # Size the pools before torch loads; PASSIVE keeps idle OpenMP threads off the
    # cores OpenBLAS uses (see bench/torch_clip.py).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def read_safetensors(path):
    buf = np.fromfile(path, dtype=np.uint8)
    (hlen,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(buf[8:8 + hlen].tobytes())
    base = 8 + hlen
    out = {}
    types = {"F32": np.float32, "I64": np.int64}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dt = np.dtype(types[info["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(buf, dtype=dt, count=(end - begin) // dt.itemsize, offset=base + begin)
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


class Bert:
    def __init__(self, model_dir: Path, prefix=""):
        cfg = json.loads((model_dir / "config.json").read_text())
        self.heads = cfg.get("num_attention_heads", 12)
        self.layers = cfg.get("num_hidden_layers", 12)
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        w = read_safetensors(model_dir / "model.safetensors")
        self.w = {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}

    def ln(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def lin(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def forward(self, ids, mask, types):
        w = self.w
        b, n = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
        x = x + w["embeddings.position_embeddings.weight"][:n].unsqueeze(0)
        x = self.ln(x, "embeddings.LayerNorm")
        add_mask = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        hd = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def split(t):
                return t.view(b, n, self.heads, hd).transpose(1, 2)

            q, k, v = (split(self.lin(x, p + "attention.self." + s)) for s in ("query", "key", "value"))
            scores = torch.matmul(q, k.transpose(-1, -2)) / (hd ** 0.5) + add_mask
            ctx = torch.matmul(F.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, n, -1)
            x = self.ln(self.lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = F.gelu(self.lin(x, p + "intermediate.dense"))
            x = self.ln(self.lin(h, p + "output.dense") + x, p + "output.LayerNorm")
        pooled = torch.tanh(self.lin(x[:, 0], "pooler.dense")) if "pooler.dense.weight" in w else None
        return x, pooled


def verify(ref_dir: Path, tol: float) -> int:
    model = Bert(ref_dir / "models" / "bert-tiny-chinese")
    ref = read_safetensors(ref_dir / "outputs" / "bert-tiny-chinese" / "outputs.safetensors")
    worst = 0.0
    for p in ("", "pair_"):
        with torch.inference_mode():
            last, pooled = model.forward(ref[p + "input_ids"], ref[p + "attention_mask"], ref[p + "token_type_ids"])
        for name, got in (("last_hidden_state", last), ("pooler_output", pooled)):
            d = (got - ref[p + name]).abs().max().item()
            worst = max(worst, d)
            print(f"{p + name}: max abs diff {d:.2e}")
    return 0 if worst <= tol else 1


def bench(args) -> None:
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = Bert(Path(args.model))
    load_ms = (time.perf_counter() - t0) * 1e3
    vocab = model.w["embeddings.word_embeddings.weight"].shape[0]
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(1000, vocab, (args.batch, args.seq_len), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    times, cpu = [], []
    with torch.inference_mode():
        for i in range(args.warmup + args.iterations):
            c0, t0 = time.process_time(), time.perf_counter()
            model.forward(ids, mask, types)
            if i >= args.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
    ms = float(np.median(times))
    result = {"model": Path(args.model).name, "batch": args.batch, "threads": args.threads,
              "seq_len": args.seq_len, "iterations": args.iterations,
              "text_ms_per_item": ms / args.batch, "sequences_per_s": 1000.0 * args.batch / ms,
              "text_cpu_ms_per_item": float(np.median(cpu)) / args.batch,
              "load_ms": load_ms, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
              "torch": torch.__version__}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"torch BERT {result['model']}: batch {args.batch}, seq_len {args.seq_len}, threads {args.threads}: "
              f"{ms / args.batch:.2f} ms/sequence ({result['sequences_per_s']:.1f} sequences/s)")


if __name__ == "__main__":
    if ARGS.verify:
        sys.exit(verify(Path(ARGS.verify), ARGS.tol))
    bench(ARGS)
