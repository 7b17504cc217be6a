#!/usr/bin/python3
"""PyTorch peer for the BLIP-2 speed benchmark: caption one image with Blip2ForConditionalGeneration.

What is timed is what a user of transformers does per image: ``Blip2Processor``
(image resize/normalise, prompt tokenisation) + ``model.generate`` (vision
tower, Q-Former, language projection, the language model's prefill over
[queries ; prompt], then greedy single-token steps with the KV cache).

* Timed per run: decoding the image file (PIL), the processor, ``generate``.
* Loading: ``Blip2Processor.from_pretrained`` + ``Blip2ForConditionalGeneration.from_pretrained``
  without ``torch_dtype`` (the F16 file is upcast to float32, the default
  compute dtype) and ``attn_implementation="eager"`` (the reference numbers'
  setting); ``load_ms`` covers both.
* Exactly ``--new-tokens`` N per run: ``min_new_tokens=N`` (transformers'
  MinNewTokensLengthLogitsProcessor masks the EOS logit until N tokens exist)
  and ``max_new_tokens=N``; greedy (``do_sample=False, num_beams=1``). The
  count of timestamps is checked against N.
* Token timestamps: a StoppingCriteria that never stops, called by
  ``generate`` right after each new token is appended (as the Llama peer,
  bench/generate_peer_torch.py, does). ``first_token_ms`` = from opening the
  image file to the first stamp; ``caption_ms`` = to the end of generate;
  ``decode_tokens_per_s`` = (N - 1) / (last stamp - first stamp).
* One warm-up (2 tokens), then ``--repeats`` runs; medians are reported, every
  run is listed. ``peak_rss_mb`` is the process's ``ru_maxrss`` (includes the
  F16 -> F32 load); ``rss_after_load_mb`` is VmRSS once loaded.
* Threads: OMP/OpenBLAS/MKL pools sized to T before torch loads,
  ``torch.set_num_threads(T)``, ``OMP_WAIT_POLICY=PASSIVE`` unless set (the
  fastest setting for Debian's torch, see bench/README.md, torch_clip.py).

transformers comes from an install or a source tree (``--transformers-src``;
``--hub-src`` defaults to the same folder when it holds huggingface_hub), with
generate_peer_torch's stand-ins for the absent safetensors / tokenizers
packages (the slow GPT-2 / T5 tokenizers are used).

Output: one JSON object on stdout with ``--json``, else a short summary.

Example:
    /usr/bin/python3 bench/torch_blip2_generate.py --model /tmp/mmfuse-blip2-bench/blip2-opt-350m \\
        --transformers-src /work/peers/hf/src --new-tokens 32 --threads 2 --repeats 3 --json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--model", required=True, type=Path, help="BLIP-2 folder (config.json, model*.safetensors, tokenizer)")
    ap.add_argument("--image", type=Path, default=ROOT / "tests" / "fixtures" / "photos" / "bus.jpg")
    ap.add_argument("--prompt", default="", help="text prompt (default: none, pure captioning)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--transformers-src", help="transformers source tree's src/ folder, if not installed")
    ap.add_argument("--hub-src", help="huggingface_hub src/ folder (default: --transformers-src if it holds one)")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Thread pools are sized when the libraries load: before importing torch.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_peer_torch import prepare_transformers_import  # noqa: E402


def vm_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def patch_fallback_added_token() -> None:
    """Make transformers' own AddedToken (used when the Rust `tokenizers` is absent) behave like the Rust one.

    The fallback is an ``eq=True`` dataclass, hence unhashable, and has no ``__setstate__``;
    the slow tokenizers' ``__init__`` needs both (transformers 4.44/4.45). Hash by content and
    update attributes, as the Rust AddedToken does. Nothing else changes.
    """
    from transformers import tokenization_utils_base as tub
    token = tub.AddedToken
    if getattr(token, "__hash__", None) is None:
        token.__hash__ = lambda self: hash(self.content)
    if "__setstate__" not in token.__dict__:
        token.__setstate__ = lambda self, state: self.__dict__.update(state)


class Captioner:
    def __init__(self, model_dir: Path):
        import transformers
        from transformers import (Blip2ForConditionalGeneration, Blip2Processor, StoppingCriteria,
                                  StoppingCriteriaList)

        self.transformers_version = transformers.__version__
        t0 = time.perf_counter()
        # The fast (Rust) tokenizers when installed, as a user gets; else the slow Python ones.
        slow = {} if transformers.utils.is_tokenizers_available() else {"use_fast": False}
        if slow:
            patch_fallback_added_token()
        self.processor = Blip2Processor.from_pretrained(str(model_dir), **slow)
        self.tokenizer_class = type(self.processor.tokenizer).__name__
        self.model = Blip2ForConditionalGeneration.from_pretrained(str(model_dir), attn_implementation="eager").eval()
        self.load_ms = (time.perf_counter() - t0) * 1000.0
        cfg = self.model.config
        self.attn_implementation = getattr(cfg.text_config, "_attn_implementation", "?")
        self.dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        self.eos_id = cfg.text_config.eos_token_id
        self.pad_id = cfg.text_config.pad_token_id
        self.stamps: list[float] = []
        stamps = self.stamps

        class Tick(StoppingCriteria):  # never stops; stamps each appended token
            def __call__(self, input_ids, scores, **kwargs):
                stamps.append(time.perf_counter())
                return torch.zeros(input_ids.shape[0], dtype=torch.bool)

        self.criteria = StoppingCriteriaList([Tick()])

    @torch.no_grad()
    def caption(self, image_path: Path, prompt: str, new_tokens: int) -> dict:
        from PIL import Image

        self.stamps.clear()
        start = time.perf_counter()
        image = Image.open(image_path)  # decoding is timed: the engine under test reads the file too
        image.load()
        inputs = self.processor(images=image, text=prompt or None, return_tensors="pt")
        out = self.model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                  num_beams=1, use_cache=True, stopping_criteria=self.criteria,
                                  pad_token_id=self.pad_id)
        end = time.perf_counter()
        if len(self.stamps) != new_tokens:
            raise SystemExit(f"expected {new_tokens} new tokens, the hook saw {len(self.stamps)}")
        ids = out[0].tolist()
        first, last = self.stamps[0], self.stamps[-1]
        return {
            "caption_ms": (end - start) * 1000.0,
            "first_token_ms": (first - start) * 1000.0,
            "decode_tokens_per_s": (new_tokens - 1) / (last - first) if new_tokens > 1 else None,
            "prompt_tokens": int(inputs["input_ids"].shape[1]) if "input_ids" in inputs else 0,
            "ids": ids,
        }


def main() -> None:
    args = ARGS
    torch.set_num_threads(args.threads)
    hub_src = args.hub_src
    if not hub_src and args.transformers_src and (Path(args.transformers_src) / "huggingface_hub").is_dir():
        hub_src = args.transformers_src
    notes = prepare_transformers_import(args.transformers_src, hub_src)
    rss_before = vm_rss_mb()
    cap = Captioner(args.model)
    rss_after_load = vm_rss_mb()
    cap.caption(args.image, args.prompt, min(2, args.new_tokens))  # warm-up
    runs = [cap.caption(args.image, args.prompt, args.new_tokens) for _ in range(max(1, args.repeats))]
    text = cap.processor.batch_decode([runs[0]["ids"]], skip_special_tokens=True)[0]

    med = lambda k: statistics.median(r[k] for r in runs) if runs[0][k] is not None else None  # noqa: E731
    cfg = cap.model.config
    result = {
        "engine": "torch-hf-blip2-generate",
        "torch": torch.__version__,
        "transformers": cap.transformers_version,
        "attn_implementation": cap.attn_implementation,
        "tokenizer": cap.tokenizer_class,
        "dtype": cap.dtype,
        "language_model": cfg.text_config.model_type,
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "image": str(args.image),
        "prompt": args.prompt,
        "prompt_tokens": runs[0]["prompt_tokens"],
        "query_tokens": cfg.num_query_tokens,
        "new_tokens": args.new_tokens,
        "repeats": len(runs),
        "caption_ms": med("caption_ms"),
        "first_token_ms": med("first_token_ms"),
        "decode_tokens_per_s": med("decode_tokens_per_s"),
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_load_mb": rss_after_load,
        "rss_before_load_mb": rss_before,
        "load_ms": cap.load_ms,
        "runs": [{k: v for k, v in r.items() if k != "ids"} for r in runs],
        "ids": runs[0]["ids"],
        "caption": text,
        "notes": notes,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['engine']} ({cfg.text_config.model_type}, {result['dtype']}, {args.threads} threads): "
              f"caption {result['caption_ms']:.0f} ms, first token {result['first_token_ms']:.0f} ms, "
              f"decode {result['decode_tokens_per_s']:.2f} tok/s, peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"load {result['load_ms']:.0f} ms")


if __name__ == "__main__":
    main()
