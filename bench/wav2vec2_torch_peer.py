#!/usr/bin/env python3
"""PyTorch peer for bench/wav2vec2_bench.sh: a minimal torch module with the
eager math of HF Wav2Vec2ForCTC (transformers 4.44 is not installed here).

  wav2vec2_torch_peer.py make-model DIR          random base geometry folder (95M params)
  wav2vec2_torch_peer.py verify REFERENCE_DIR    parity vs the reference logits (must pass first)
  wav2vec2_torch_peer.py run DIR AUDIO.wav --threads T [--repeat N] [--chunk S --stride S]
      prints {"transcribe_ms", "transcribe_cpu_ms", "real_time_factor", "frames", "peak_rss_mb"} as JSON
"""
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "I64": np.int64}[t["dtype"]]
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(t["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Wav2Vec2CTC(torch.nn.Module):
    """Wav2Vec2ForCTC in eval mode: the same ops in the same order as HF's eager path."""

    def __init__(self, folder):
        super().__init__()
        c = json.load(open(os.path.join(folder, "config.json")))
        w = {k: torch.from_numpy(v) for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
        self.c = c
        self.layer_style = c["feat_extract_norm"] == "layer"
        self.stable = c.get("do_stable_layer_norm", False)
        self.eps = c.get("layer_norm_eps", 1e-5)
        self.heads = c["num_attention_heads"]
        p = "wav2vec2.feature_extractor.conv_layers."
        self.convs = []
        for i, (k, s) in enumerate(zip(c["conv_kernel"], c["conv_stride"])):
            norm = None
            if self.layer_style or i == 0:
                norm = (w[p + f"{i}.layer_norm.weight"], w[p + f"{i}.layer_norm.bias"])
            self.convs.append((w[p + f"{i}.conv.weight"], w.get(p + f"{i}.conv.bias"), s, norm))
        self.fp_ln = (w["wav2vec2.feature_projection.layer_norm.weight"], w["wav2vec2.feature_projection.layer_norm.bias"])
        self.proj = (w["wav2vec2.feature_projection.projection.weight"], w["wav2vec2.feature_projection.projection.bias"])
        pc = "wav2vec2.encoder.pos_conv_embed.conv."
        g = w.get(pc + "weight_g", w.get(pc + "parametrizations.weight.original0"))
        v = w.get(pc + "weight_v", w.get(pc + "parametrizations.weight.original1"))
        # torch.nn.utils.weight_norm(dim=2): norm over every dim but 2.
        self.pos_w = g * v / v.norm(dim=(0, 1), keepdim=True)
        self.pos_b = w[pc + "bias"]
        self.groups = c["num_conv_pos_embedding_groups"]
        self.kernel = c["num_conv_pos_embeddings"]
        self.enc_ln = (w["wav2vec2.encoder.layer_norm.weight"], w["wav2vec2.encoder.layer_norm.bias"])
        self.layers = []
        for i in range(c["num_hidden_layers"]):
            q = f"wav2vec2.encoder.layers.{i}."
            get = lambda n: (w[q + n + ".weight"], w[q + n + ".bias"])
            self.layers.append({n: get(n) for n in ["attention.q_proj", "attention.k_proj", "attention.v_proj",
                                                     "attention.out_proj", "layer_norm", "final_layer_norm",
                                                     "feed_forward.intermediate_dense", "feed_forward.output_dense"]})
        self.lm_head = (w["lm_head.weight"], w["lm_head.bias"])

    def attention(self, x, L):
        b, t, h = x.shape
        d = h // self.heads
        q = F.linear(x, *L["attention.q_proj"]) * d ** -0.5
        k = F.linear(x, *L["attention.k_proj"])
        v = F.linear(x, *L["attention.v_proj"])
        shape = lambda y: y.view(b, t, self.heads, d).transpose(1, 2)
        a = torch.softmax(torch.matmul(shape(q), shape(k).transpose(-1, -2)), dim=-1)
        o = torch.matmul(a, shape(v)).transpose(1, 2).reshape(b, t, h)
        return F.linear(o, *L["attention.out_proj"])

    def ff(self, x, L):
        return F.linear(F.gelu(F.linear(x, *L["feed_forward.intermediate_dense"])), *L["feed_forward.output_dense"])

    def forward(self, x):  # x: [1, samples] input_values
        h = x[:, None]
        for i, (cw, cb, s, norm) in enumerate(self.convs):
            h = F.conv1d(h, cw, cb, stride=s)
            if norm is not None and self.layer_style:
                h = F.layer_norm(h.transpose(-2, -1), (h.shape[1],), *norm, eps=1e-5).transpose(-2, -1)
            elif norm is not None:
                h = F.group_norm(h, h.shape[1], *norm, eps=1e-5)
            h = F.gelu(h)
        h = h.transpose(1, 2)
        h = F.layer_norm(h, (h.shape[-1],), *self.fp_ln, eps=self.eps)
        h = F.linear(h, *self.proj)
        hidden = h.shape[-1]
        pos = F.conv1d(h.transpose(1, 2), self.pos_w, self.pos_b, padding=self.kernel // 2, groups=self.groups)
        if self.kernel % 2 == 0:
            pos = pos[:, :, :-1]
        h = h + F.gelu(pos).transpose(1, 2)
        if not self.stable:
            h = F.layer_norm(h, (hidden,), *self.enc_ln, eps=self.eps)
            for L in self.layers:
                h = F.layer_norm(h + self.attention(h, L), (hidden,), *L["layer_norm"], eps=self.eps)
                h = F.layer_norm(h + self.ff(h, L), (hidden,), *L["final_layer_norm"], eps=self.eps)
        else:
            for L in self.layers:
                h = h + self.attention(F.layer_norm(h, (hidden,), *L["layer_norm"], eps=self.eps), L)
                h = h + self.ff(F.layer_norm(h, (hidden,), *L["final_layer_norm"], eps=self.eps), L)
            h = F.layer_norm(h, (hidden,), *self.enc_ln, eps=self.eps)
        return F.linear(h, *self.lm_head)[0]


def normalize(x):  # Wav2Vec2FeatureExtractor, float32
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)


def read_wav(path):
    import wave
    with wave.open(path) as f:
        assert f.getsampwidth() == 2 and f.getnchannels() == 1 and f.getframerate() == 16000, path
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def make_model(folder):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    c = {"architectures": ["Wav2Vec2ForCTC"], "model_type": "wav2vec2", "conv_bias": False,
         "conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_stride": [5, 2, 2, 2, 2, 2, 2],
         "do_stable_layer_norm": False, "feat_extract_norm": "group", "feat_extract_activation": "gelu",
         "hidden_act": "gelu", "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-5,
         "num_attention_heads": 12, "num_hidden_layers": 12, "num_conv_pos_embeddings": 128,
         "num_conv_pos_embedding_groups": 16, "num_feat_extract_layers": 7, "pad_token_id": 0, "vocab_size": 32}
    json.dump(c, open(os.path.join(folder, "config.json"), "w"), indent=2)
    vocab = ["<pad>", "<s>", "</s>", "<unk>", "|"] + list("ETAONIHSRDLUMWCFGYPBVK'XJQZ")
    json.dump({t: i for i, t in enumerate(vocab)}, open(os.path.join(folder, "vocab.json"), "w"))
    json.dump({"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
               "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False,
               "sampling_rate": 16000}, open(os.path.join(folder, "preprocessor_config.json"), "w"))
    json.dump({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
               "do_lower_case": False, "word_delimiter_token": "|", "tokenizer_class": "Wav2Vec2CTCTokenizer"},
              open(os.path.join(folder, "tokenizer_config.json"), "w"))
    t = {}
    n = lambda *s, std=0.02: (rng.standard_normal(s) * std).astype(np.float32)
    p = "wav2vec2.feature_extractor.conv_layers."
    cin = 1
    for i, k in enumerate(c["conv_kernel"]):
        t[p + f"{i}.conv.weight"] = n(512, cin, k, std=math.sqrt(2.0 / (cin * k)))
        cin = 512
    t[p + "0.layer_norm.weight"] = 1 + n(512, std=0.1)
    t[p + "0.layer_norm.bias"] = n(512)
    t["wav2vec2.feature_projection.layer_norm.weight"] = 1 + n(512, std=0.1)
    t["wav2vec2.feature_projection.layer_norm.bias"] = n(512)
    t["wav2vec2.feature_projection.projection.weight"] = n(768, 512)
    t["wav2vec2.feature_projection.projection.bias"] = n(768)
    pc = "wav2vec2.encoder.pos_conv_embed.conv."
    t[pc + "weight_g"] = np.abs(n(1, 1, 128, std=1.0)) + 0.5
    t[pc + "weight_v"] = n(768, 48, 128)
    t[pc + "bias"] = n(768)
    t["wav2vec2.encoder.layer_norm.weight"] = 1 + n(768, std=0.1)
    t["wav2vec2.encoder.layer_norm.bias"] = n(768)
    for i in range(12):
        q = f"wav2vec2.encoder.layers.{i}."
        for name, (o, inp) in {"attention.q_proj": (768, 768), "attention.k_proj": (768, 768),
                               "attention.v_proj": (768, 768), "attention.out_proj": (768, 768),
                               "feed_forward.intermediate_dense": (3072, 768),
                               "feed_forward.output_dense": (768, 3072)}.items():
            t[q + name + ".weight"] = n(o, inp)
            t[q + name + ".bias"] = n(o)
        for name in ["layer_norm", "final_layer_norm"]:
            t[q + name + ".weight"] = 1 + n(768, std=0.1)
            t[q + name + ".bias"] = n(768)
    t["lm_head.weight"] = n(32, 768, std=0.5)
    t["lm_head.bias"] = n(32)
    t["lm_head.bias"][0] += 2.0  # blank-heavy, like a trained CTC head
    write_safetensors(os.path.join(folder, "model.safetensors"), t)
    print(json.dumps({"folder": folder, "params": int(sum(v.size for v in t.values()))}))


def verify(ref):
    inputs = read_safetensors(os.path.join(ref, "preprocess", "input_values.safetensors"))
    worst = 0.0
    for name in ["w2v2-tiny-base-style", "w2v2-tiny-lv60-style"]:
        m = Wav2Vec2CTC(os.path.join(ref, "models", name))
        out = read_safetensors(os.path.join(ref, "outputs", name, "outputs.safetensors"))
        for i in range(5):
            with torch.no_grad():
                lg = m(torch.from_numpy(inputs[f"input_values_{i}"]).reshape(1, -1)).numpy()
            diff = float(np.abs(lg - out[f"logits_{i}"]).max())
            assert diff <= 1e-4, (name, i, diff)
            assert (lg.argmax(-1) == out[f"predicted_ids_{i}"]).all(), (name, i)
            worst = max(worst, diff)
    print(json.dumps({"verified": True, "max_abs_diff": worst}))


def run(folder, audio, threads, repeat, chunk_s, stride_s):
    torch.set_num_threads(threads)
    m = Wav2Vec2CTC(folder)
    raw = read_wav(audio)
    ratio = 320
    # The HF pipeline's chunking (chunk_iter + stride trimming), frames owned once.
    chunk = int(round(chunk_s * 16000 / ratio) * ratio) if chunk_s else len(raw)
    stride = int(round(stride_s * 16000 / ratio) * ratio) if chunk_s else 0
    times, cpu = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        c0 = time.process_time()
        pieces, start = [], 0
        with torch.no_grad():
            while True:
                end = min(len(raw), start + chunk)
                lg = m(torch.from_numpy(normalize(raw[start:end])).reshape(1, -1))
                last = end == len(raw)
                lo = 0 if start == 0 else stride // ratio
                hi = lg.shape[0] if last else (chunk - stride) // ratio
                pieces.append(lg[lo:hi])
                if last:
                    break
                start += chunk - 2 * stride
            logits = torch.cat(pieces)
            ids = logits.argmax(-1)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    ms = sorted(times)[len(times) // 2]
    print(json.dumps({"transcribe_ms": ms, "transcribe_cpu_ms": sorted(cpu)[len(cpu) // 2], "runs": len(times), "real_time_factor": ms / 1000 / (len(raw) / 16000),
                      "frames": int(ids.shape[0]), "threads": threads,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make-model":
        make_model(sys.argv[2])
    elif cmd == "verify":
        verify(sys.argv[2])
    elif cmd == "run":
        args = sys.argv[4:]
        opt = {"--threads": "1", "--repeat": "1", "--chunk": "0", "--stride": "0"}
        for k, v in zip(args[::2], args[1::2]):
            opt[k] = v
        run(sys.argv[2], sys.argv[3], int(opt["--threads"]), int(opt["--repeat"]), float(opt["--chunk"]),
            float(opt["--stride"]))
    else:
        sys.exit(__doc__)
