#!/usr/bin/env python3
"""Makes the YOLOv5 part of tests/fixtures/yolo: a tiny random-weight YOLOv5 (objectness layout, output
(1, N, 5+nc)) exported by the yolov5 repository's own export.py, and the detections of its own detect.py
pipeline (DetectMultiBackend, LoadImages letterbox, non_max_suppression, scale_boxes) on the ONNX file.

Not run by CI. Needs an ultralytics/yolov5 source tree (tag v7.0 made the committed files), Debian's
python3-torch/-torchvision/-onnx/-opencv/-seaborn, and tests/tools/onnxruntime_standin (see
tests/fixtures/yolo/README.md).

    /usr/bin/python3 tests/tools/make_yolov5_references.py --yolov5 SRC --work SCRATCH --out tests/fixtures/yolo
"""
import argparse
import json
import math
import os
import shutil
import sys
from copy import deepcopy
from pathlib import Path

HERE = Path(__file__).resolve().parent


def setup_environment(src, work):
    os.environ["YOLOv5_AUTOINSTALL"] = "false"  # never pip-install
    os.environ["MPLBACKEND"] = "Agg"
    stubs = Path(work) / "stubs" / "IPython"  # yolov5's models/common.py imports IPython.display, unused here
    stubs.mkdir(parents=True, exist_ok=True)
    (stubs / "__init__.py").write_text("def get_ipython():\n    return None\n")
    (stubs / "display.py").write_text("def display(*args, **kwargs):\n    pass\n")
    sys.path[:0] = [str(src), str(stubs.parent), str(HERE / "onnxruntime_standin"), str(HERE)]


def letterboxed(paths, imgsz=640):
    import cv2
    import numpy as np
    import torch
    from utils.augmentations import letterbox

    ims = [letterbox(cv2.imread(str(p)), imgsz, auto=False)[0][..., ::-1].transpose(2, 0, 1) for p in paths]
    return torch.from_numpy(np.ascontiguousarray(np.stack(ims))).float() / 255


def make_model(cfg_file, names, seed, paths, objects_per_image=6, gain=3.0):
    """yolov5 Model from its yaml at width 0.0625, BatchNorm calibrated on `paths`, head shaped for a few boxes."""
    import numpy as np
    import torch
    import torch.nn as nn
    import yaml
    from models.yolo import Model

    cfg = yaml.safe_load(Path(cfg_file).read_text())
    cfg["width_multiple"] = 0.0625
    torch.manual_seed(seed)
    model = Model(cfg, ch=3, nc=len(names))
    model.names = dict(names)
    with torch.no_grad():
        for bn in [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]:
            bn.reset_running_stats()
            bn.momentum = None
        model.train()
        for i in range(0, len(paths), 8):
            model(letterboxed(paths[i:i + 8]))
        model.eval()
        detect = model.model[-1]
        no = detect.no  # 5 + nc
        for conv in detect.m:  # outputs (na * no) channels: x, y, w, h, objectness, classes per anchor
            conv.weight.view(detect.na, no, -1)[:, 4].mul_(gain)  # objectness only: scaled classes saturate and tie
            conv.bias.view(detect.na, no)[:, 4:] = 0
        captured = []
        hooks = [conv.register_forward_hook(lambda m, i, o: captured.append(o)) for conv in detect.m]
        kth = []
        for p in paths:
            captured.clear()
            model(letterboxed([p]))
            obj = torch.cat([o.view(1, detect.na, no, -1)[:, :, 4].flatten() for o in captured])
            kth.append(float(torch.sort(obj, descending=True).values[objects_per_image - 1]))
        for h in hooks:
            h.remove()
        obj_bias = math.log(0.45 / 0.55) - float(np.median(kth))  # objectness 0.45 at the median image's k-th anchor
        for conv in detect.m:
            conv.bias.view(detect.na, no)[:, 4] = obj_bias
    return model


def v8_layout(raw):
    """(1, N, 5+nc) -> (1, 4+nc, N) with class scores obj*cls, what yolov5's NMS ranks and thresholds."""
    import numpy as np

    x = raw[0].astype(np.float64)
    return np.concatenate([x[:, :4], x[:, 5:] * x[:, 4:5]], 1).T[None]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--yolov5", required=True, help="ultralytics/yolov5 source tree (v7.0)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    src, work, out, data = (Path(p).resolve() for p in (args.yolov5, args.work, args.out, args.data))
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    setup_environment(src, work)

    import numpy as np
    import onnx
    import onnxruntime
    import torch

    import export as v5_export
    from make_yolo_references import margin_problems, ROUNDING_BOX, ROUNDING_SCORE
    from models.common import DetectMultiBackend
    from utils.dataloaders import LoadImages
    from utils.general import check_img_size, non_max_suppression, scale_boxes
    from yolo_random_weights import DEFECT_NAMES, photo_images

    torch.set_num_threads(2)
    photos = photo_images(data)
    model = make_model(src / "models" / "yolov5n.yaml", DEFECT_NAMES, args.seed, photos)
    ckpt = work / "yolov5t.pt"
    torch.save({"epoch": -1, "best_fitness": None, "model": deepcopy(model), "ema": None, "updates": None,
                "optimizer": None, "opt": None, "git": None, "date": "2026-01-01T00:00:00"}, ckpt)

    name = "yolov5t-photo-640-op12.onnx"
    exported = {}
    real_export = torch.onnx.export

    def capture(module, *a, **kw):
        exported["module"] = deepcopy(module)
        return real_export(module, *a, **kw)

    torch.onnx.export = capture
    try:
        v5_export.run(weights=str(ckpt), imgsz=(640, 640), include=("onnx",), opset=12, simplify=False)
    finally:
        torch.onnx.export = real_export
    target = work / name
    shutil.move(str(ckpt.with_suffix(".onnx")), target)
    onnxruntime.register(target, exported["module"])
    module64 = deepcopy(exported["module"]).double()

    def predict(image, conf=0.25, iou=0.45, agnostic=False, classes=None, max_det=1000):
        """yolov5 detect.py's steps, on the ONNX file (through the stand-in)."""
        backend = DetectMultiBackend(str(target), device=torch.device("cpu"))
        imgsz = check_img_size((640, 640), s=backend.stride)
        (path, im, im0, _, _), = list(LoadImages(str(image), img_size=imgsz, stride=backend.stride, auto=backend.pt))
        im = torch.from_numpy(im).float()[None] / 255
        pred = backend(im)
        det = non_max_suppression(pred, conf, iou, classes, agnostic, max_det=max_det)[0]
        det[:, :4] = scale_boxes(im.shape[2:], det[:, :4], im0.shape)
        session = backend.session
        raw = session.last_outputs["output0"]
        with torch.no_grad():
            exact = module64(torch.from_numpy(session.last_input).double())[0].numpy()
        got8, exact8 = v8_layout(raw)[0], v8_layout(exact)[0]
        problems = margin_problems(v8_layout(raw).astype(np.float32), conf, iou, classes, agnostic)
        cand = exact8[4:].max(0) > 0.1
        if cand.any():
            if np.abs(got8[4:, cand] - exact8[4:, cand]).max() > ROUNDING_SCORE:
                problems.append("float32 scores far from float64")
            if np.abs(got8[:4, cand] - exact8[:4, cand]).max() > ROUNDING_BOX:
                problems.append("float32 boxes far from float64")
        names = backend.names
        detections = [{"class_id": int(c), "class": names[int(c)], "score": float(s), "box": [float(v) for v in b],
                       "box_rounded": [float(round(v)) for v in b]}
                      for *b, s, c in det.tolist()]
        rel = str(Path(image).resolve().relative_to(data))
        return {"model": name, "image": rel, "imgsz": list(im.shape[2:]), "conf": conf, "iou": iou,
                "agnostic": agnostic, "classes": classes, "max_det": max_det, "detections": detections}, problems

    order = [data / "photos" / n for n in (
        "bus.jpg", "zidane.jpg", "coco_000000039769.jpg", "coco_000000098261.jpg", "coco_000000559707.jpg",
        "darknet_dog.jpg", "coco_000000414673.jpg", "darknet_person.jpg", "coco_000000301421.jpg",
        "coco_000000038829.jpg", "coco_000000373353.jpg", "coco_000000215245.jpg", "coco_000000574315.jpg",
        "coco_000000052891.jpg")]
    cases = []
    for settings, wanted in ((dict(), 5), (dict(conf=0.1, iou=0.6), 2), (dict(conf=0.25, iou=0.7), 1),
                             (dict(agnostic=True), 1)):
        got = 0
        for image in order:
            if got == wanted:
                break
            case, problems = predict(image, **settings)
            n = len(case["detections"])
            if problems or not 1 <= n <= 40:
                print(f"  skip {case['image']} {settings}: {n} detections; {'; '.join(problems)}", flush=True)
                continue
            print(f"  case {case['image']} {settings}: {n} detections", flush=True)
            cases.append(case)
            got += 1
        if got < wanted:
            print(f"  WARNING: only {got} of {wanted} cases for {settings}", flush=True)

    shutil.copyfile(target, out / name)
    m = onnx.load(str(target))
    (out / "yolov5_models.json").write_text(json.dumps({
        "yolov5": "v7.0 (915bbf294bb74c859f0b41f1c23bc395014ea679)", "torch": torch.__version__,
        "onnx": onnx.__version__, "models": {name: {
            "opset": m.opset_import[0].version,
            "input": [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim],
            "output": [d.dim_param or d.dim_value for d in m.graph.output[0].type.tensor_type.shape.dim],
            "metadata": {p.key: p.value for p in m.metadata_props}}}}, indent=1) + "\n")
    (out / "yolov5_cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {out / 'yolov5_cases.json'}")


if __name__ == "__main__":
    main()
