#!/usr/bin/python3
"""Writes the CLIP vision tower (pixels -> image_embeds, unnormalised) of a model
folder as ONNX for the ONNX Runtime peer of `mmfuse bench --dtype`:

  /usr/bin/python3 bench/onnx_clip_vision.py --model DIR --out vision_f32.onnx [--int8 vision_int8.onnx]

The float32 graph is torch.onnx.export of bench/torch_clip_quant.py's Vision
module. --int8 also writes the graph onnxruntime.quantization.quantize_dynamic
makes of it (per_channel=True, weight_type=QInt8): every MatMul with constant
weights becomes DynamicQuantizeLinear (uint8 input, per tensor, asymmetric) ->
MatMulInteger (int8 weights, one scale per output column) -> Cast -> Mul by
input scale x weight scales; ONNX Runtime fuses that into its
DynamicQuantizeMatMul kernel. Written with python3-onnx (Debian), since Debian
has no onnxruntime Python package.
"""

import argparse
import os
import sys
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--int8", default="")
args = ap.parse_args()
sys.argv = [sys.argv[0], "--model", args.model, "--dtype", "f32"]  # torch_clip_quant's own flags
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import torch_clip  # noqa: E402
from torch_clip_quant import Vision  # noqa: E402  (main() runs only when executed)


def export_f32():
    clip = torch_clip.CLIP(args.model)
    vision = Vision(clip).eval()
    side = vision.t.image_size
    pixels = torch.zeros(1, 3, side, side)
    torch.onnx.export(vision, (pixels,), args.out, input_names=["pixel_values"],
                      output_names=["image_embeds"], dynamic_axes={"pixel_values": {0: "batch"},
                                                                   "image_embeds": {0: "batch"}},
                      opset_version=14, do_constant_folding=True)


def quantize_dynamic(src, dst):
    model = onnx.load(src)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes = []
    count = 0
    for node in g.node:
        w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if w is None or len(w.dims) != 2:
            nodes.append(node)
            continue
        W = numpy_helper.to_array(w).astype(np.float32)  # [in, out]
        scale = np.maximum(np.abs(W).max(axis=0), 1e-12) / 127.0
        Wq = np.clip(np.rint(W / scale), -127, 127).astype(np.int8)
        p = f"q{count}_"
        count += 1
        g.initializer.append(numpy_helper.from_array(Wq, p + "W_quantized"))
        g.initializer.append(numpy_helper.from_array(scale.astype(np.float32), p + "W_scale"))
        g.initializer.append(numpy_helper.from_array(np.zeros(W.shape[1], np.int8), p + "W_zero_point"))
        x = node.input[0]
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [x], [p + "x_q", p + "x_scale", p + "x_zp"]),
            helper.make_node("MatMulInteger", [p + "x_q", p + "W_quantized", p + "x_zp", p + "W_zero_point"],
                             [p + "acc"]),
            helper.make_node("Cast", [p + "acc"], [p + "acc_f"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [p + "x_scale", p + "W_scale"], [p + "scale"]),
            helper.make_node("Mul", [p + "acc_f", p + "scale"], [node.output[0]]),
        ]
    used = {i for n in nodes for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(nodes)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 11 for o in model.opset_import):
        raise SystemExit("opset too old for DynamicQuantizeLinear")
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    print(f"{dst}: {count} MatMuls quantised", file=sys.stderr)


export_f32()
if args.int8:
    quantize_dynamic(args.out, args.int8)
