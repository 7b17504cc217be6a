#!/usr/bin/python3
"""Writes tiny YOLOv8 / YOLOv5 ONNX exports for mmfuse's unit tests.

The networks are re-implementations of Ultralytics' modules (ultralytics 8.2
nn/modules: Conv with BatchNorm fused away, C2f, SPPF, Detect with DFL and
make_anchors; YOLOv5 7.0 models/common.py + yolo.py: C3, anchor Detect), with
random weights and narrow channels, exported by torch.onnx.export the way
Ultralytics' exporter calls it (batch 1, static shapes, do_constant_folding)
and given its metadata_props (names, stride, imgsz, task, ...). The graph ops
are the ones real exports contain; only the widths differ (the toy's box
branch is 16 wide instead of max(16, ch/4, 64)).

For each model it also writes a test input (NCHW float32, random in [0,1])
and the PyTorch output for it, so the C++ executor is checked against torch:
  <name>.onnx, <name>.input.f32, <name>.output.f32 and manifest.json.

Usage: /usr/bin/python3 tests/tools/make_yolo_toys.py OUT_DIR            (the toys)
       /usr/bin/python3 tests/tools/make_yolo_toys.py --cv2-digests PHOTO_DIR OUT.json
         (SHA-256 of cv2.imread's pixels, RGB, per photo: the decoder check)
       /usr/bin/python3 tests/tools/make_yolo_toys.py --v8n FILE.onnx [--imgsz 640] [--opset 17]
         (a yolov8n-geometry model with random weights, for timing; not committed)
Needs Debian's python3-torch and python3-onnx.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn


class Conv(nn.Module):  # Conv2d + (fused) BatchNorm + SiLU
    def __init__(self, c1, c2, k=1, s=1, p=None, g=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, groups=g, bias=True)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.conv(x))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, k=(3, 3), e=1.0):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        return x + self.cv2(self.cv1(x)) if self.add else self.cv2(self.cv1(x))


class C2f(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=False, e=0.5):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True, e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, k=(1, 3), e=1.0) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class DFL(nn.Module):
    def __init__(self, c1=16):
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = nn.Parameter(torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1))
        self.c1 = c1

    def forward(self, x):
        b, _, a = x.shape
        return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats, strides, offset=0.5):
    anchor_points, stride_tensor = [], []
    dtype, device = feats[0].dtype, feats[0].device
    for i, stride in enumerate(strides):
        _, _, h, w = feats[i].shape
        sx = torch.arange(end=w, device=device, dtype=dtype) + offset
        sy = torch.arange(end=h, device=device, dtype=dtype) + offset
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        anchor_points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_tensor.append(torch.full((h * w, 1), stride, dtype=dtype, device=device))
    return torch.cat(anchor_points), torch.cat(stride_tensor)


def dist2bbox(distance, anchor_points, xywh=True, dim=-1):
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


class DetectV8(nn.Module):
    def __init__(self, nc, ch, strides, c2=None, c3=None):
        super().__init__()
        self.nc, self.nl, self.reg_max = nc, len(ch), 16
        self.no = nc + self.reg_max * 4
        self.stride = torch.tensor(strides, dtype=torch.float)
        c2 = c2 or max((16, ch[0] // 4, self.reg_max * 4))
        c3 = c3 or max(ch[0], min(self.nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1)) for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, self.nc, 1)) for x in ch)
        self.dfl = DFL(self.reg_max)

    def forward(self, x):
        for i in range(self.nl):
            x[i] = torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1)
        shape = x[0].shape
        x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
        self.anchors, self.strides = (a.transpose(0, 1) for a in make_anchors(x, self.stride, 0.5))
        box, cls = x_cat.split((self.reg_max * 4, self.nc), 1)
        dbox = dist2bbox(self.dfl(box), self.anchors.unsqueeze(0), xywh=True, dim=1) * self.strides
        return torch.cat((dbox, cls.sigmoid()), 1)


class YoloV8(nn.Module):
    """Ultralytics yolov8.yaml with widths ch = (P1, P2, P3, P4, P5) and depths n = (2, 4, 6, 8 repeats)."""

    def __init__(self, ch, n, nc, c2=None, c3=None):
        super().__init__()
        c1_, c2_, c3_, c4_, c5_ = ch
        self.b0 = Conv(3, c1_, 3, 2)
        self.b1 = Conv(c1_, c2_, 3, 2)
        self.b2 = C2f(c2_, c2_, n[0], True)
        self.b3 = Conv(c2_, c3_, 3, 2)
        self.b4 = C2f(c3_, c3_, n[1], True)
        self.b5 = Conv(c3_, c4_, 3, 2)
        self.b6 = C2f(c4_, c4_, n[2], True)
        self.b7 = Conv(c4_, c5_, 3, 2)
        self.b8 = C2f(c5_, c5_, n[3], True)
        self.b9 = SPPF(c5_, c5_, 5)
        self.up = nn.Upsample(None, 2, "nearest")
        self.h12 = C2f(c5_ + c4_, c4_, n[0])
        self.h15 = C2f(c4_ + c3_, c3_, n[0])
        self.h16 = Conv(c3_, c3_, 3, 2)
        self.h18 = C2f(c3_ + c4_, c4_, n[0])
        self.h19 = Conv(c4_, c4_, 3, 2)
        self.h21 = C2f(c4_ + c5_, c5_, n[0])
        self.detect = DetectV8(nc, (c3_, c4_, c5_), (8, 16, 32), c2, c3)

    def forward(self, x):
        x = self.b2(self.b1(self.b0(x)))
        p3 = self.b4(self.b3(x))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        h12 = self.h12(torch.cat((self.up(p5), p4), 1))
        h15 = self.h15(torch.cat((self.up(h12), p3), 1))
        h18 = self.h18(torch.cat((self.h16(h15), h12), 1))
        h21 = self.h21(torch.cat((self.h19(h18), p5), 1))
        return self.detect([h15, h18, h21])


class DetectV5(nn.Module):
    def __init__(self, nc, anchors, ch, strides):
        super().__init__()
        self.nc, self.no, self.nl, self.na = nc, nc + 5, len(anchors), len(anchors[0]) // 2
        self.stride = torch.tensor(strides, dtype=torch.float)
        self.register_buffer("anchors", torch.tensor(anchors).float().view(self.nl, -1, 2) / self.stride.view(-1, 1, 1))
        self.m = nn.ModuleList(nn.Conv2d(x, self.no * self.na, 1) for x in ch)

    def _make_grid(self, nx, ny, i):
        shape = 1, self.na, ny, nx, 2
        y, x = torch.arange(ny, dtype=torch.float), torch.arange(nx, dtype=torch.float)
        yv, xv = torch.meshgrid(y, x, indexing="ij")
        grid = torch.stack((xv, yv), 2).expand(shape) - 0.5
        anchor_grid = (self.anchors[i] * self.stride[i]).view((1, self.na, 1, 1, 2)).expand(shape)
        return grid, anchor_grid

    def forward(self, x):
        z = []
        for i in range(self.nl):
            x[i] = self.m[i](x[i])
            bs, _, ny, nx = x[i].shape
            x[i] = x[i].view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            grid, anchor_grid = self._make_grid(nx, ny, i)
            xy, wh, conf = x[i].sigmoid().split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + grid) * self.stride[i]
            wh = (wh * 2) ** 2 * anchor_grid
            y = torch.cat((xy, wh, conf), 4)
            z.append(y.view(bs, self.na * nx * ny, self.no))
        return torch.cat(z, 1)


class YoloV5(nn.Module):
    """YOLOv5 7.0 yolov5s.yaml layout with widths ch = (P1..P5) and depths n."""

    def __init__(self, ch, n, nc):
        super().__init__()
        c1_, c2_, c3_, c4_, c5_ = ch
        self.b0 = Conv(3, c1_, 6, 2, 2)
        self.b1 = Conv(c1_, c2_, 3, 2)
        self.b2 = C3(c2_, c2_, n[0])
        self.b3 = Conv(c2_, c3_, 3, 2)
        self.b4 = C3(c3_, c3_, n[1])
        self.b5 = Conv(c3_, c4_, 3, 2)
        self.b6 = C3(c4_, c4_, n[2])
        self.b7 = Conv(c4_, c5_, 3, 2)
        self.b8 = C3(c5_, c5_, n[0])
        self.b9 = SPPF(c5_, c5_, 5)
        self.h10 = Conv(c5_, c4_, 1, 1)
        self.up = nn.Upsample(None, 2, "nearest")
        self.h13 = C3(c4_ * 2, c4_, n[0], False)
        self.h14 = Conv(c4_, c3_, 1, 1)
        self.h17 = C3(c3_ * 2, c3_, n[0], False)
        self.h18 = Conv(c3_, c3_, 3, 2)
        self.h20 = C3(c3_ * 2, c4_, n[0], False)
        self.h21 = Conv(c4_, c4_, 3, 2)
        self.h23 = C3(c4_ * 2, c5_, n[0], False)
        anchors = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
        self.detect = DetectV5(nc, anchors, (c3_, c4_, c5_), (8, 16, 32))

    def forward(self, x):
        x = self.b2(self.b1(self.b0(x)))
        p3 = self.b4(self.b3(x))
        p4 = self.b6(self.b5(p3))
        h10 = self.h10(self.b9(self.b8(self.b7(p4))))
        h14 = self.h14(self.h13(torch.cat((self.up(h10), p4), 1)))
        h17 = self.h17(torch.cat((self.up(h14), p3), 1))
        h20 = self.h20(torch.cat((self.h18(h17), h14), 1))
        h23 = self.h23(torch.cat((self.h21(h20), h10), 1))
        return self.detect([h17, h20, h23])


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "dfl" in name:
                continue
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5 * (1.6 if p.dim() > 1 else 0.3))


def export(model, path, imgsz, opset, metadata):
    model.eval()
    im = torch.zeros(1, 3, *imgsz)
    torch.onnx.export(model, im, path, verbose=False, opset_version=opset, do_constant_folding=True,
                      input_names=["images"], output_names=["output0"])
    m = onnx.load(path)
    for k, v in metadata.items():
        meta = m.metadata_props.add()
        meta.key, meta.value = k, str(v)
    onnx.save(m, path)


def v8_metadata(names, imgsz):
    return {"description": "mmfuse toy YOLOv8 (random weights)", "author": "Ultralytics", "version": "8.2.0",
            "license": "AGPL-3.0 License", "stride": 32, "task": "detect", "batch": 1, "imgsz": list(imgsz),
            "names": names}


def write_case(out_dir, name, model, imgsz, opset, metadata, seed, manifest):
    path = os.path.join(out_dir, name + ".onnx")
    export(model, path, imgsz, opset, metadata)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(1, 3, *imgsz, generator=g)
    with torch.no_grad():
        y = model(x)
    x.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".input.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(out_dir, name + ".output.f32"))
    manifest.append({"model": name + ".onnx", "input": name + ".input.f32", "output": name + ".output.f32",
                     "input_shape": list(x.shape), "output_shape": list(y.shape), "opset": opset})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--v8n")
    ap.add_argument("--v8s")
    ap.add_argument("--imgsz", type=int, nargs="+", default=[640])
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--cv2-digests", nargs=2)
    a = ap.parse_args()
    if a.cv2_digests:
        import glob
        import hashlib
        import cv2
        out = {}
        for p in sorted(glob.glob(os.path.join(a.cv2_digests[0], "*.jpg"))):
            im = cv2.imread(p)[..., ::-1].copy()
            out[os.path.basename(p)] = {"w": im.shape[1], "h": im.shape[0],
                                        "sha256": hashlib.sha256(im.tobytes()).hexdigest()}
        with open(a.cv2_digests[1], "w") as f:
            json.dump(out, f, indent=1)
        return
    torch.manual_seed(0)
    if a.v8n or a.v8s:
        imgsz = a.imgsz * 2 if len(a.imgsz) == 1 else a.imgsz
        names = {i: f"class{i}" for i in range(80)}
        if a.v8n:
            model = YoloV8((16, 32, 64, 128, 256), (1, 2, 2, 1), 80)
        else:
            model = YoloV8((32, 64, 128, 256, 512), (1, 2, 2, 1), 80)
        randomize(model, 1)
        export(model, a.v8n or a.v8s, imgsz, a.opset, v8_metadata(names, imgsz))
        return
    if not a.out_dir:
        ap.error("OUT_DIR or --v8n/--v8s")
    os.makedirs(a.out_dir, exist_ok=True)
    manifest = []
    names = {0: "scratch", 1: "dent", 2: "oil 'leak'"}
    v8 = YoloV8((4, 8, 8, 12, 16), (1, 1, 1, 1), 3, c2=16, c3=8)
    randomize(v8, 2)
    for opset in (12, 17):
        write_case(a.out_dir, f"v8_toy_op{opset}", v8, (64, 96), opset, v8_metadata(names, (64, 96)), 10 + opset,
                   manifest)
    v5 = YoloV5((4, 8, 8, 16, 16), (1, 1, 1), 2)
    randomize(v5, 3)
    write_case(a.out_dir, "v5_toy_op12", v5, (64, 64), 12, {"stride": 32, "names": {0: "crack", 1: "bolt"}}, 30,
               manifest)
    with open(os.path.join(a.out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    op_cases(a.out_dir)


def op_cases(out_dir):
    """Single-op ONNX graphs with numpy results: each op of the executor on its own."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(5)
    cases = []

    def add(name, opset, nodes, x, y, inits=()):
        graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                  [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 7
        onnx.save(model, os.path.join(out_dir, f"op_{name}.onnx"))
        cases.append({"model": f"op_{name}.onnx", "input_shape": list(x.shape), "input": x.ravel().tolist(),
                      "output_shape": list(y.shape), "output": y.astype(np.float32).ravel().tolist()})

    x = rng.standard_normal((1, 4, 3, 5)).astype(np.float32)
    add("transpose", 13, [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], x, x.transpose(0, 2, 3, 1))
    add("softmax13", 13, [helper.make_node("Softmax", ["x"], ["y"], axis=1)], x,
        np.exp(x) / np.exp(x).sum(1, keepdims=True))
    flat = x.reshape(1, -1)
    add("softmax11", 11, [helper.make_node("Softmax", ["x"], ["y"], axis=1)], x,
        (np.exp(flat) / np.exp(flat).sum(1, keepdims=True)).reshape(x.shape))
    add("slice_steps", 13, [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], x, x[:, 1:4:2, ::-1, -4:],
        [("s", np.array([1, -1, -4])), ("e", np.array([4, -100, 100])), ("a", np.array([1, 2, 3])),
         ("st", np.array([2, -1, 1]))])
    add("slice_opset9", 9, [helper.make_node("Slice", ["x"], ["y"], starts=[1], ends=[3], axes=[3])], x, x[..., 1:3])
    add("split13", 13, [helper.make_node("Split", ["x", "sz"], ["a", "b"], axis=1),
                        helper.make_node("Sub", ["b", "a"], ["y"])], x, x[:, 2:] - x[:, :2], [("sz", np.array([2, 2]))])
    add("split11", 11, [helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]),
                        helper.make_node("Concat", ["b", "a"], ["y"], axis=1)], x,
        np.concatenate([x[:, 1:], x[:, :1]], 1))
    add("reshape_shape_gather", 13, [helper.make_node("Shape", ["x"], ["s"]),
                                     helper.make_node("Gather", ["s", "i"], ["d"], axis=0),
                                     helper.make_node("Unsqueeze", ["d", "ax"], ["du"]),
                                     helper.make_node("Concat", ["du", "m1"], ["t"], axis=0),
                                     helper.make_node("Reshape", ["x", "t"], ["y"])], x, x.reshape(4, -1),
        [("i", np.array(1)), ("ax", np.array([0])), ("m1", np.array([-1]))])
    b = rng.standard_normal((1, 1, 3, 1)).astype(np.float32)
    add("broadcast_ops", 13, [helper.make_node("Mul", ["x", "b"], ["m"]), helper.make_node("Div", ["m", "two"], ["d"]),
                              helper.make_node("Pow", ["d", "two"], ["p"]), helper.make_node("Sigmoid", ["p"], ["s"]),
                              helper.make_node("Sub", ["s", "x"], ["y"])], x,
        1 / (1 + np.exp(-((x * b / 2) ** 2))) - x, [("b", b), ("two", np.array(2.0, dtype=np.float32))])
    add("expand_where", 13, [helper.make_node("ConstantOfShape", ["len"], ["ones"],
                                              value=numpy_helper.from_array(np.array([1], dtype=np.int64))),
                             helper.make_node("Equal", ["shp", "ones"], ["eq"]),
                             helper.make_node("Where", ["eq", "ones", "shp"], ["target"]),
                             helper.make_node("Expand", ["g", "target"], ["e"]),
                             helper.make_node("Add", ["x", "e"], ["y"])], x, x + np.arange(5, dtype=np.float32),
        [("shp", np.array([1, 4, 3, 5])), ("len", np.array([4])), ("g", np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5))])
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((1, 6, 2, 3), np.float32)
    for o in range(6):
        for i in range(2):
            for j in range(3):
                conv[0, o, i, j] = (xp[0, :, i * 2:i * 2 + 3, j * 2:j * 2 + 3] * w[o]).sum() + bias[o]
    silu = conv / (1 + np.exp(-conv))
    add("conv_silu_pool_resize", 13, [helper.make_node("Conv", ["x", "w", "cb"], ["c"], kernel_shape=[3, 3], strides=[2, 2],
                                                       pads=[1, 1, 1, 1]),
                                      helper.make_node("Sigmoid", ["c"], ["cs"]), helper.make_node("Mul", ["c", "cs"], ["a"]),
                                      helper.make_node("MaxPool", ["a"], ["mp"], kernel_shape=[3, 3], strides=[1, 1],
                                                       pads=[1, 1, 1, 1]),
                                      helper.make_node("Resize", ["mp", "", "sc"], ["y"], mode="nearest",
                                                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
        x, np.repeat(np.repeat(maxpool3(silu), 2, 2), 2, 3),
        [("w", w), ("cb", bias), ("sc", np.array([1, 1, 2, 2], dtype=np.float32))])
    with open(os.path.join(out_dir, "op_cases.json"), "w") as f:
        json.dump(cases, f)
        f.write("\n")


def maxpool3(a):
    p = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    out = np.full_like(a, -np.inf)
    for dy in range(3):
        for dx in range(3):
            out = np.maximum(out, p[:, :, dy:dy + a.shape[2], dx:dx + a.shape[3]])
    return out


if __name__ == "__main__":
    sys.exit(main())
