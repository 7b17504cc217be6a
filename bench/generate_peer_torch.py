#!/usr/bin/python3
"""PyTorch peer for the decoder speed benchmark: greedy generation with a Llama folder.

Two implementations, same measurement:

* ``--impl hf``: the real Hugging Face ``LlamaForCausalLM.from_pretrained`` +
  ``generate`` (greedy, KV cache). transformers 4.44 needs the `safetensors`
  and `tokenizers` packages at import; when they are missing (Debian 12 has
  neither) this script puts small stand-ins on ``sys.path``: a `safetensors`
  reader written to the public format, and a `tokenizers` module whose names
  exist but cannot be used (no tokenizer is needed: the prompt is token ids).
  ``--transformers-src`` / ``--hub-src`` point at source trees (their ``src``
  folders) when the packages are not installed.
* ``--impl plain``: a compact Llama forward in plain torch (RMSNorm, RoPE,
  grouped-query attention, SiLU MLP, preallocated KV cache, greedy argmax), for
  machines without transformers. ``--check`` compares it with ``hf`` on the
  same folder (logits of every step).

``--impl auto`` (the default) uses hf when transformers imports, plain otherwise.

Timing: the prompt (``--prompt-tokens`` random ids after BOS, seeded) goes
through one forward; each new token is timed when it is appended (a
StoppingCriteria hook in hf). prefill tokens/s = prompt tokens / time to the
first new token; decode tokens/s = (new tokens - 1) / time from the first new
token to the last (each of those is one single-token forward with the cache).
EOS is suppressed (``min_new_tokens``) so every run makes ``--new-tokens``.
One short warm-up generation, then ``--repeats`` runs; the median is reported.
Peak RSS is the process's ``ru_maxrss`` (it includes loading and the F16 -> dtype
conversion); ``rss_after_load_mb`` is VmRSS once the model is ready.

Output: one JSON object on stdout (``--json``), else a short text summary.

Example:
    /usr/bin/python3 bench/generate_peer_torch.py --model bench/out/tinyllama-1.1b \\
        --prompt-tokens 128 --new-tokens 64 --threads 2 --dtype float32 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_NUMPY_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
                 "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


# ---------------------------------------------------------------------------
# safetensors reading (numpy memory maps), shared by the plain model and the stand-in


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """name -> read-only array view into a memory map of the file (BF16 not needed here)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if info["dtype"] not in _NUMPY_DTYPES:
            raise SystemExit(f"{path}: {name}: dtype {info['dtype']} not supported")
        begin, end = info["data_offsets"]
        out[name] = data[begin:end].view(_NUMPY_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def model_weight_files(model_dir: Path) -> list[Path]:
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [model_dir / n for n in names]
    return [model_dir / "model.safetensors"]


# ---------------------------------------------------------------------------
# Stand-ins that let transformers 4.44 import without `safetensors` / `tokenizers`

_SAFETENSORS_INIT = '''\
"""Stand-in for the safetensors package (reading only), written by bench/generate_peer_torch.py."""
import json, struct
import numpy as np
import torch as _torch  # not `torch`: importing safetensors.torch rebinds that package attribute

__version__ = "0.4.3"
_DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


class _Slice:
    def __init__(self, array, dtype):
        self._array, self._dtype = array, dtype
    def get_dtype(self):
        return self._dtype
    def get_shape(self):
        return list(self._array.shape)
    def __getitem__(self, index):
        return _torch.from_numpy(np.array(self._array[index]))


class safe_open:
    def __init__(self, path, framework="pt", device="cpu"):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            self._header = json.loads(f.read(n))
        self._metadata = self._header.pop("__metadata__", None) or {}
        self._data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def metadata(self):
        return self._metadata
    def keys(self):
        return list(self._header)
    def get_slice(self, name):
        info = self._header[name]
        b, e = info["data_offsets"]
        return _Slice(self._data[b:e].view(_DT[info["dtype"]]).reshape(info["shape"]), info["dtype"])
    def get_tensor(self, name):
        return self.get_slice(name)[...]
'''

_SAFETENSORS_TORCH = '''\
from . import safe_open


def load_file(filename, device="cpu"):
    with safe_open(filename, framework="pt", device=device) as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def save_file(*args, **kwargs):
    raise NotImplementedError("the safetensors stand-in only reads")


def storage_ptr(tensor):
    try:
        return tensor.untyped_storage().data_ptr()
    except AttributeError:
        return tensor.storage().data_ptr()


def storage_size(tensor):
    try:
        return tensor.untyped_storage().nbytes()
    except AttributeError:
        return tensor.storage().size() * tensor.element_size()
'''

# Every attribute is a class that cannot be instantiated, so an accidental use fails loudly.
_TOKENIZERS_MODULE = '''\
"""Stand-in for the Rust tokenizers package: names exist for imports, nothing works."""
def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    def _unavailable(*args, **kwargs):
        raise RuntimeError("tokenizers is not installed (stand-in from bench/generate_peer_torch.py)")
    return type(name, (), {"__init__": _unavailable})
'''


def _module_missing(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is None


def _dist_missing(name: str) -> bool:
    import importlib.metadata
    try:
        importlib.metadata.version(name)
        return False
    except importlib.metadata.PackageNotFoundError:
        return True


def prepare_transformers_import(transformers_src: str | None, hub_src: str | None) -> list[str]:
    """Put source trees and stand-ins on sys.path; returns notes on what was stood in."""
    notes = []
    for src in (transformers_src, hub_src):
        if src:
            sys.path.insert(0, str(Path(src).resolve()))
    site = Path(tempfile.mkdtemp(prefix="hf_standins_"))

    def dist_info(dist: str, version: str) -> None:
        d = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        d.mkdir()
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")

    if _module_missing("safetensors"):
        (site / "safetensors").mkdir()
        (site / "safetensors" / "__init__.py").write_text(_SAFETENSORS_INIT)
        (site / "safetensors" / "torch.py").write_text(_SAFETENSORS_TORCH)
        dist_info("safetensors", "0.4.3")
        notes.append("safetensors: stand-in reader")
    if _module_missing("tokenizers"):
        # No dist-info: transformers then reports is_tokenizers_available() == False.
        (site / "tokenizers").mkdir()
        for mod in ("__init__", "models", "decoders", "normalizers", "pre_tokenizers", "processors", "trainers"):
            (site / "tokenizers" / f"{mod}.py").write_text(_TOKENIZERS_MODULE)
        notes.append("tokenizers: import-only stand-in")
    # Source trees carry no package metadata; transformers checks the hub's version at import.
    if hub_src and _dist_missing("huggingface-hub"):
        init = (Path(hub_src) / "huggingface_hub" / "__init__.py").read_text()
        version = init.split('__version__ = "', 1)[1].split('"', 1)[0]
        dist_info("huggingface-hub", version)
    if transformers_src and _dist_missing("transformers"):
        init = (Path(transformers_src) / "transformers" / "__init__.py").read_text()
        dist_info("transformers", init.split('__version__ = "', 1)[1].split('"', 1)[0])
    sys.path.insert(0, str(site))
    return notes


def transformers_importable(transformers_src, hub_src) -> tuple[bool, list[str], str]:
    notes = prepare_transformers_import(transformers_src, hub_src)
    try:
        import transformers  # noqa: F401
        from transformers import LlamaForCausalLM  # noqa: F401
    except Exception as e:  # any import failure means: fall back to plain
        return False, notes, f"{type(e).__name__}: {e}"
    return True, notes, ""


# ---------------------------------------------------------------------------
# The plain-torch Llama


class PlainLlama:
    """LlamaForCausalLM's eager math (HF 4.44) for one sequence, with a preallocated KV cache."""

    def __init__(self, model_dir: Path, dtype: torch.dtype):
        cfg = json.loads((model_dir / "config.json").read_text())
        if cfg.get("model_type") != "llama":
            raise SystemExit(f"{model_dir}/config.json: model_type {cfg.get('model_type')!r}, expected 'llama'")
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads", self.heads)
        self.head_dim = self.hidden // self.heads
        self.layers = cfg["num_hidden_layers"]
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.theta = cfg.get("rope_theta", 10000.0)
        self.max_positions = cfg.get("max_position_embeddings", 2048)
        self.dtype = dtype
        arrays = {}
        for path in model_weight_files(model_dir):
            arrays.update(read_safetensors(path))

        def get(name):
            a = arrays[name]
            t = torch.from_numpy(np.array(a, dtype=a.dtype))  # a private, writable copy
            return t.to(dtype) if t.dtype != dtype else t

        self.embed = get("model.embed_tokens.weight")
        self.norm = get("model.norm.weight")
        self.lm_head = get("lm_head.weight") if "lm_head.weight" in arrays else self.embed
        self.w = []
        for i in range(self.layers):
            p = f"model.layers.{i}."
            self.w.append({k: get(p + n) for k, n in (
                ("in_norm", "input_layernorm.weight"), ("post_norm", "post_attention_layernorm.weight"),
                ("q", "self_attn.q_proj.weight"), ("k", "self_attn.k_proj.weight"),
                ("v", "self_attn.v_proj.weight"), ("o", "self_attn.o_proj.weight"),
                ("gate", "mlp.gate_proj.weight"), ("up", "mlp.up_proj.weight"),
                ("down", "mlp.down_proj.weight"))})
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
        self.inv_freq = inv_freq
        self.k_cache = self.v_cache = None

    def _rms_norm(self, x, weight):
        xf = x.to(torch.float32)
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * xf.to(x.dtype)

    @staticmethod
    def _rotate_half(x):
        half = x.shape[-1] // 2
        return torch.cat((-x[..., half:], x[..., :half]), dim=-1)

    def reset(self, capacity: int) -> None:
        shape = (self.layers, self.kv_heads, capacity, self.head_dim)
        self.k_cache = torch.zeros(shape, dtype=self.dtype)
        self.v_cache = torch.zeros(shape, dtype=self.dtype)

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, start: int) -> torch.Tensor:
        """ids [T] at positions start..start+T-1 -> float32 logits of the last position."""
        t = ids.shape[0]
        end = start + t
        x = F.embedding(ids, self.embed)  # [T, H]
        pos = torch.arange(start, end, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)  # [T, hd]
        group = self.heads // self.kv_heads
        scale = 1.0 / math.sqrt(self.head_dim)
        mask = None
        if t > 1:  # causal within the new block; everything cached before it is visible
            mask = torch.full((t, end), torch.finfo(torch.float32).min).triu(start + 1)
        for li, w in enumerate(self.w):
            h = self._rms_norm(x, w["in_norm"])
            q = F.linear(h, w["q"]).view(t, self.heads, self.head_dim).transpose(0, 1)
            k = F.linear(h, w["k"]).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
            v = F.linear(h, w["v"]).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
            q = q * cos + self._rotate_half(q) * sin
            k = k * cos + self._rotate_half(k) * sin
            self.k_cache[li, :, start:end] = k
            self.v_cache[li, :, start:end] = v
            keys = self.k_cache[li, :, :end].repeat_interleave(group, dim=0)  # [heads, end, hd]
            values = self.v_cache[li, :, :end].repeat_interleave(group, dim=0)
            scores = torch.matmul(q, keys.transpose(1, 2)) * scale
            if mask is not None:
                scores = scores + mask
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(self.dtype)
            attn = torch.matmul(probs, values).transpose(0, 1).reshape(t, self.hidden)
            x = x + F.linear(attn, w["o"])
            h = self._rms_norm(x, w["post_norm"])
            x = x + F.linear(F.silu(F.linear(h, w["gate"])) * F.linear(h, w["up"]), w["down"])
        last = self._rms_norm(x[-1:], self.norm)
        return F.linear(last, self.lm_head)[0].float()

    def generate(self, prompt: torch.Tensor, new_tokens: int, eos_id: int | None, on_token) -> list[int]:
        self.reset(prompt.shape[0] + new_tokens)
        logits = self.forward(prompt, 0)
        out = []
        pos = prompt.shape[0]
        for i in range(new_tokens):
            if eos_id is not None:
                logits[eos_id] = -math.inf  # as min_new_tokens does in hf
            tok = int(torch.argmax(logits))
            out.append(tok)
            on_token()
            if i + 1 < new_tokens:
                logits = self.forward(torch.tensor([tok]), pos)
                pos += 1
        return out


# ---------------------------------------------------------------------------
# Runners: both call on_token() right after each new token is chosen


class HfRunner:
    def __init__(self, model_dir: Path, dtype: torch.dtype):
        from transformers import LlamaForCausalLM, StoppingCriteria, StoppingCriteriaList
        import transformers

        self.version = transformers.__version__
        # from_pretrained without torch_dtype gives float32; pass it only otherwise.
        kwargs = {} if dtype == torch.float32 else {"torch_dtype": dtype}
        self.model = LlamaForCausalLM.from_pretrained(str(model_dir), **kwargs).eval()
        self.attn_implementation = getattr(self.model.config, "_attn_implementation", "?")
        runner = self

        class Tick(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                runner.on_token()
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)

        self.criteria = StoppingCriteriaList([Tick()])
        self.on_token = lambda: None

    @torch.no_grad()
    def generate(self, prompt, new_tokens, eos_id, on_token):
        self.on_token = on_token
        out = self.model.generate(
            prompt.unsqueeze(0), attention_mask=torch.ones(1, prompt.shape[0], dtype=torch.long),
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
            use_cache=True, stopping_criteria=self.criteria, pad_token_id=eos_id)
        return out[0, prompt.shape[0]:].tolist()


class PlainRunner:
    def __init__(self, model_dir: Path, dtype: torch.dtype):
        self.model = PlainLlama(model_dir, dtype)
        self.version = None
        self.attn_implementation = "plain"

    def generate(self, prompt, new_tokens, eos_id, on_token):
        return self.model.generate(prompt, new_tokens, eos_id, on_token)


def timed_generation(runner, prompt, new_tokens, eos_id) -> dict:
    stamps = []
    start = time.perf_counter()
    tokens = runner.generate(prompt, new_tokens, eos_id, lambda: stamps.append(time.perf_counter()))
    if len(stamps) != new_tokens:
        raise SystemExit(f"expected {new_tokens} token callbacks, got {len(stamps)}")
    prefill_s = stamps[0] - start
    decode_s = stamps[-1] - stamps[0]
    return {
        "prefill_s": prefill_s,
        "decode_s": decode_s,
        "prefill_tokens_per_s": prompt.shape[0] / prefill_s,
        "decode_tokens_per_s": (new_tokens - 1) / decode_s if new_tokens > 1 else None,
        "tokens": tokens,
    }


def vm_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def make_prompt(prompt_tokens: int, vocab: int, seed: int, bos_id: int | None) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocab, size=prompt_tokens).tolist()  # skip <unk>/<s>/</s>
    if bos_id is not None and prompt_tokens > 0:
        ids[0] = bos_id
    return torch.tensor(ids, dtype=torch.long)


def check_against_hf(model_dir: Path, dtype: torch.dtype, prompt: torch.Tensor, new_tokens: int, eos_id) -> dict:
    """Greedy tokens of plain vs hf on the same prompt, plus the prompt's last-position logits."""
    hf, plain = HfRunner(model_dir, dtype), PlainRunner(model_dir, dtype)
    with torch.no_grad():
        ref = hf.model(prompt.unsqueeze(0)).logits[0, -1].float()
    plain.model.reset(prompt.shape[0])
    got = plain.model.forward(prompt, 0)
    hf_tokens = hf.generate(prompt, new_tokens, eos_id, lambda: None)
    plain_tokens = plain.generate(prompt, new_tokens, eos_id, lambda: None)
    return {
        "max_abs_logit_diff": float((ref - got).abs().max()),
        "logit_scale": float(ref.abs().max()),
        "tokens_equal": hf_tokens == plain_tokens,
        "hf_tokens": hf_tokens,
        "plain_tokens": plain_tokens,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--model", required=True, type=Path, help="Llama folder (config.json, model*.safetensors)")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                    help="compute dtype; float32 is what from_pretrained gives without torch_dtype")
    ap.add_argument("--impl", choices=("auto", "hf", "plain"), default="auto")
    ap.add_argument("--transformers-src", help="transformers source tree's src/ folder, if not installed")
    ap.add_argument("--hub-src", help="huggingface_hub source tree's src/ folder, if not installed")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true", help="compare plain with hf on this folder and exit")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = json.loads((args.model / "config.json").read_text())
    eos_id, bos_id = cfg.get("eos_token_id", 2), cfg.get("bos_token_id", 1)
    prompt = make_prompt(args.prompt_tokens, cfg["vocab_size"], args.seed, bos_id)
    dtype = DTYPES[args.dtype]

    impl, notes = args.impl, []
    if impl in ("auto", "hf") or args.check:
        ok, notes, why = transformers_importable(args.transformers_src, args.hub_src)
        if not ok:
            if impl == "hf" or args.check:
                raise SystemExit(f"transformers does not import: {why}")
            notes.append(f"transformers unavailable ({why}); using plain")
        impl = "hf" if ok and impl != "plain" else "plain"

    if args.check:
        result = check_against_hf(args.model, dtype, prompt, args.new_tokens, eos_id)
        print(json.dumps(result))
        sys.exit(0 if result["tokens_equal"] else 1)

    t0 = time.perf_counter()
    runner = HfRunner(args.model, dtype) if impl == "hf" else PlainRunner(args.model, dtype)
    load_ms = (time.perf_counter() - t0) * 1000.0
    rss_after_load = vm_rss_mb()

    warm = make_prompt(min(8, args.prompt_tokens), cfg["vocab_size"], args.seed + 1, bos_id)
    timed_generation(runner, warm, 2, eos_id)
    runs = [timed_generation(runner, prompt, args.new_tokens, eos_id) for _ in range(max(1, args.repeats))]

    result = {
        "engine": "torch-hf-generate" if impl == "hf" else "torch-plain",
        "torch": torch.__version__,
        "transformers": runner.version,
        "attn_implementation": runner.attn_implementation,
        "dtype": args.dtype,
        "threads": args.threads,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "prefill_tokens_per_s": statistics.median(r["prefill_tokens_per_s"] for r in runs),
        "decode_tokens_per_s": statistics.median(r["decode_tokens_per_s"] for r in runs),
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_load_mb": rss_after_load,
        "load_ms": load_ms,
        "runs": [{k: v for k, v in r.items() if k != "tokens"} for r in runs],
        "first_tokens": runs[0]["tokens"][:8],
        "notes": notes,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['engine']} ({args.dtype}, {args.threads} threads): "
              f"prefill {result['prefill_tokens_per_s']:.1f} tok/s, decode {result['decode_tokens_per_s']:.2f} tok/s, "
              f"peak RSS {result['peak_rss_mb']:.0f} MB, load {load_ms:.0f} ms")


if __name__ == "__main__":
    main()
