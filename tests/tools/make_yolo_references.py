#!/usr/bin/env python3
"""Makes tests/fixtures/yolo: tiny random-weight YOLOv8 detectors exported by Ultralytics' own exporter,
and the detections Ultralytics' own predictor gives on them (cases.json).

Not run by CI. Needs Debian's python3-torch/-torchvision/-onnx/-opencv and an Ultralytics source tree
(v8.2.103 made the committed files); see tests/fixtures/yolo/README.md for the exact commands.

    /usr/bin/python3 tests/tools/make_yolo_references.py --ultralytics SRC --work SCRATCH --out tests/fixtures/yolo

Two weight sets, both nc=8 with the chapter's defect names, because random features respond to
contrast: 'photo' has BatchNorm calibrated on the photos, 'steel' on the low-contrast NEU-DET images.
Ultralytics' ONNX predictor calls onnxruntime, which Debian lacks: tests/tools/onnxruntime_standin
answers those calls with the very PyTorch module the exporter exported (and checks the file's weights
are that module's).
"""
import argparse
import json
import os
import shutil
import sys
from copy import deepcopy
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Margins that keep the cases decidable for an engine computing in a different order:
SCORE_MARGIN = 1e-3  # no anchor's best class score within this of conf
IOU_MARGIN = 0.02  # no same-class candidate pair with IoU within this of iou
TIE_MARGIN = 1e-4  # no overlapping candidates (IoU > iou) or best/second class with scores closer than this

# Rounding: float32 outputs of candidates (best score > 0.1) must be this close to the float64 evaluation of the
# same module, so that another correct float32 engine (summing in another order) stays well inside issue 16's
# tolerances (scores 1e-4, boxes 0.5 px).
ROUNDING_SCORE = 2e-5
ROUNDING_BOX = 0.05

DUMP = {"dir": None, "cases": []}  # --dump: every prediction's network input and output


def setup_environment(ultralytics_src, work):
    os.environ["YOLO_CONFIG_DIR"] = str(Path(work) / "ultralytics-config")  # keep ~/.config clean
    os.environ["YOLO_AUTOINSTALL"] = "false"  # never pip-install missing packages
    os.environ["YOLO_OFFLINE"] = "true"
    sys.path[:0] = [str(ultralytics_src), str(HERE / "onnxruntime_standin"), str(HERE)]


def export(ckpt, target, **kwargs):
    """Ultralytics' exporter; the module it hands to torch.onnx.export is registered with the stand-in."""
    import onnxruntime
    import torch
    from ultralytics import YOLO

    exported = {}
    real_export = torch.onnx.export

    def capture(model, *args, **kw):
        exported["module"] = deepcopy(model)
        return real_export(model, *args, **kw)

    torch.onnx.export = capture
    try:
        f = YOLO(str(ckpt)).export(format="onnx", simplify=False, **kwargs)
    finally:
        torch.onnx.export = real_export
    shutil.move(f, target)
    onnxruntime.register(target, exported["module"])
    return target


def metadata(path):
    import onnx

    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("names", "stride", "imgsz", "task"):
        if key not in meta:
            raise SystemExit(f"{path}: the exporter wrote no '{key}' metadata")
    inputs = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input]
    outputs = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output]
    return {"opset": model.opset_import[0].version, "input": inputs[0], "output": outputs[0], "metadata": meta}


def box_iou(a, b):
    import numpy as np

    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def margin_problems(raw, conf, iou, classes, agnostic):
    """Why the raw network output (1, 4+nc, A) would make this case fragile; empty when it is not."""
    import numpy as np

    out = raw[0].T.astype(np.float64)  # (A, 4+nc): cx, cy, w, h, class scores
    scores = out[:, 4:]
    best = scores.max(1)
    problems = []
    near = np.abs(best - conf) < SCORE_MARGIN
    if near.any():
        problems.append(f"{int(near.sum())} scores within {SCORE_MARGIN} of conf {conf}: {best[near].tolist()}")
    keep = best > conf
    cls = scores.argmax(1)
    if classes is not None:
        keep &= np.isin(cls, classes)
    cand = out[keep]
    if len(cand) == 0:
        return problems
    top2 = np.sort(cand[:, 4:], 1)[:, -2:]
    if (top2[:, 1] - top2[:, 0] < TIE_MARGIN).any():
        problems.append("a candidate's best two class scores are tied")
    xyxy = np.concatenate([cand[:, :2] - cand[:, 2:4] / 2, cand[:, :2] + cand[:, 2:4] / 2], 1)
    ious = box_iou(xyxy, xyxy)
    same = np.ones_like(ious, bool) if agnostic else cls[keep][:, None] == cls[keep][None, :]
    upper = np.triu(np.ones_like(ious, bool), 1) & same
    if (upper & (np.abs(ious - iou) < IOU_MARGIN)).any():
        problems.append(f"a candidate pair has IoU within {IOU_MARGIN} of {iou}")
    sc = best[keep]
    if (upper & (ious > iou) & (np.abs(sc[:, None] - sc[None, :]) < TIE_MARGIN)).any():
        problems.append("two overlapping candidates have tied scores")
    return problems


_float64_modules = {}


def rounding_problems(session):
    """How far the float32 output of this prediction is from the same module evaluated in float64."""
    import numpy as np
    import torch

    if session.path not in _float64_modules:
        _float64_modules[session.path] = deepcopy(session.module).double().eval()
    with torch.no_grad():
        exact = _float64_modules[session.path](torch.from_numpy(session.last_input).double())
    exact = (exact[0] if isinstance(exact, (list, tuple)) else exact)[0].numpy()  # (4+nc, A)
    got = session.last_outputs["output0"][0].astype(np.float64)
    cand = exact[4:].max(0) > 0.1
    if not cand.any():
        return []
    ds = np.abs(got[4:, cand] - exact[4:, cand]).max()
    db = np.abs(got[:4, cand] - exact[:4, cand]).max()
    problems = []
    if ds > ROUNDING_SCORE:
        problems.append(f"float32 scores {ds:.1e} from float64")
    if db > ROUNDING_BOX:
        problems.append(f"float32 boxes {db:.3f} px from float64")
    return problems


def predict(model_file, image, imgsz, conf=0.25, iou=0.7, agnostic=False, classes=None):
    """Ultralytics' predictor on an ONNX file (through the stand-in session) -> case dict, margin problems."""
    from ultralytics import YOLO

    model = YOLO(str(model_file), task="detect")
    result = model.predict(str(image), imgsz=imgsz, conf=conf, iou=iou, agnostic_nms=agnostic, classes=classes,
                           verbose=False, save=False)[0]
    session = model.predictor.model.session
    raw = session.last_outputs["output0"]
    names = result.names
    detections = [
        {"class_id": int(c), "class": names[int(c)], "score": float(s), "box": [float(v) for v in b]}
        for b, s, c in zip(result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.tolist())
    ]
    case = {"model": Path(model_file).name, "imgsz": list(session.last_input.shape[2:]), "conf": conf, "iou": iou,
            "agnostic": agnostic, "classes": classes, "max_det": 300, "detections": detections}
    if DUMP["dir"]:  # the network's exact input and output, for tests/tools/check_yolo_references_ort.mjs
        n = len(DUMP["cases"])
        session.last_input.astype("<f4").tofile(Path(DUMP["dir"]) / f"{n}.input.f32")
        raw.astype("<f4").tofile(Path(DUMP["dir"]) / f"{n}.output.f32")
        DUMP["cases"].append({"model": str(model_file), "input": f"{n}.input.f32", "input_shape": list(session.last_input.shape),
                              "output": f"{n}.output.f32", "output_shape": list(raw.shape)})
    return case, margin_problems(raw, conf, iou, classes, agnostic) + rounding_problems(session)


def pick(model_file, images, data_dir, wanted, min_det, max_det, **kw):
    """The first `wanted` images whose case has min_det..max_det detections and safe margins."""
    chosen = []
    for image in images:
        if len(chosen) == wanted:
            break
        case, problems = predict(model_file, image, **kw)
        n = len(case["detections"])
        rel = str(Path(image).resolve().relative_to(Path(data_dir).resolve()))
        if problems or not (min_det <= n <= max_det):
            print(f"  skip {Path(model_file).name} {rel} {kw}: {n} detections; {'; '.join(problems)}", flush=True)
            continue
        chosen.append({"image": rel, **case})
        print(f"  case {Path(model_file).name} {rel} {kw}: {n} detections", flush=True)
    if len(chosen) < wanted:
        print(f"  WARNING: only {len(chosen)} of {wanted} cases for {Path(model_file).name} {kw}", flush=True)
    return chosen


def same_detections(a, b, box_tol=1e-3, score_tol=1e-5):
    if len(a) != len(b):
        return False
    return all(x["class_id"] == y["class_id"] and abs(x["score"] - y["score"]) <= score_tol
               and max(abs(p - q) for p, q in zip(x["box"], y["box"])) <= box_tol for x, y in zip(a, b))


def torch_sanity(ckpt, image, imgsz, onnx_case):
    """The .pt predictor (letterbox auto=True) on an image whose letterbox has no padding either way."""
    from ultralytics import YOLO

    r = YOLO(str(ckpt)).predict(str(image), imgsz=imgsz, verbose=False, save=False)[0]
    dets = [{"class_id": int(c), "score": float(s), "box": b}
            for b, s, c in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(), r.boxes.cls.tolist())]
    ok = same_detections(dets, onnx_case["detections"], box_tol=1e-2, score_tol=1e-4)
    print(f"  sanity .pt vs {onnx_case['model']} on {onnx_case['image']}: {'agree' if ok else 'DISAGREE'}"
          f" ({len(dets)} vs {len(onnx_case['detections'])} detections)", flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ultralytics", required=True, help="Ultralytics source tree (the folder holding ultralytics/)")
    ap.add_argument("--work", required=True, help="scratch folder for checkpoints and exports")
    ap.add_argument("--out", required=True, help="fixture folder to write (tests/fixtures/yolo)")
    ap.add_argument("--data", default="/work/shared/data", help="shared data folder (photos/, images/neu_det/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dump", help="also write every prediction's network input/output here (index.json + .f32)")
    args = ap.parse_args()
    if args.dump:
        DUMP["dir"] = Path(args.dump).resolve()
        DUMP["dir"].mkdir(parents=True, exist_ok=True)
    work, out, data = Path(args.work).resolve(), Path(args.out).resolve(), Path(args.data).resolve()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    setup_environment(Path(args.ultralytics).resolve(), work)

    import torch
    import ultralytics
    import yolo_random_weights as rw

    torch.set_num_threads(2)
    photos, steel = rw.photo_images(data), rw.steel_images(data)

    # Weights: photo model calibrated on the photos, steel model on every second NEU-DET image.
    ckpts = {}
    # Moderate head gains (1.5 class, 2 box): larger ones make float32 rounding reach 1e-4 in the scores.
    for variant, calib, batch, quantile, seed in (("photo", photos, 8, 0.5, args.seed),
                                                  ("steel", steel[::2], 8, 0.75, args.seed + 1)):
        model = rw.make_model("t", 8, rw.DEFECT_NAMES, seed, calib, [2, 1, 3, 1, 2, 1, 1, 2], image_quantile=quantile,
                              calibration_batch=batch, box_gain=2.0, cls_gain=1.5)
        ckpts[variant] = work / f"yolov8t-{variant}.pt"
        rw.save_checkpoint(model, ckpts[variant], f"random yolov8 (depth 0.33, width 0.03125) calibrated on {variant} images")

    # Exports (opset, imgsz, dynamic) -> file name. The photo model's dynamic export only serves a cross-check
    # (same weights, other graph) and is not written to --out, to keep the fixtures under 3 MB.
    exports = {
        "yolov8t-photo-640-op12.onnx": ("photo", dict(opset=12, imgsz=640)),
        "yolov8t-photo-480x640-op17.onnx": ("photo", dict(opset=17, imgsz=[480, 640])),
        "yolov8t-steel-dynamic-op17.onnx": ("steel", dict(opset=17, imgsz=640, dynamic=True)),
        "yolov8t-photo-dynamic-op12.onnx": ("photo", dict(opset=12, imgsz=640, dynamic=True)),
    }
    files = {}
    for name, (variant, kw) in exports.items():
        files[name] = export(ckpts[variant], work / name, **kw)
    committed = list(exports)[:3]

    by_name = lambda *names: [str(data / "photos" / n) for n in names]
    wide = by_name("coco_000000039769.jpg", "coco_000000215245.jpg", "coco_000000574315.jpg")  # 640x480: no padding
    other_photos = by_name("bus.jpg", "zidane.jpg", "coco_000000098261.jpg", "coco_000000559707.jpg", "darknet_dog.jpg",
                           "coco_000000414673.jpg", "darknet_person.jpg", "coco_000000301421.jpg",
                           "coco_000000038829.jpg", "coco_000000373353.jpg", "coco_000000052891.jpg")
    steel_order = [p for i in range(40) for p in steel[i::40]]  # interleave the six defect folders

    cases = []
    p640, p480, sdyn, pdyn = (files[n] for n in exports)
    print("photo model, static 640, opset 12", flush=True)
    cases += pick(p640, other_photos + wide, data, 6, 1, 60, imgsz=640)
    cases += pick(p640, other_photos[3:], data, 2, 1, 60, imgsz=640, conf=0.1, iou=0.5)
    cases += pick(p640, other_photos[1:], data, 1, 1, 40, imgsz=640, conf=0.5, iou=0.45)
    cases += pick(p640, other_photos[2:], data, 1, 1, 40, imgsz=640, agnostic=True)
    cases += pick(p640, other_photos, data, 1, 1, 40, imgsz=640, classes=[0, 2, 5])
    print("photo model, static 480x640, opset 17", flush=True)
    cases += pick(p480, wide, data, 2, 1, 60, imgsz=[480, 640])
    cases += pick(p480, other_photos, data, 3, 1, 40, imgsz=[480, 640])
    print("steel model, dynamic opset 17: the export size and others", flush=True)
    cases += pick(sdyn, steel_order, data, 6, 1, 30, imgsz=640)
    cases += pick(sdyn, steel_order[10:], data, 1, 0, 0, imgsz=640)  # a steel image without any detection
    cases += pick(sdyn, steel_order[20:], data, 3, 1, 30, imgsz=[480, 640])
    cases += pick(sdyn, steel_order[30:], data, 2, 1, 30, imgsz=320)
    cases += pick(sdyn, steel_order[50:], data, 2, 1, 30, imgsz=[384, 512])
    cases += pick(sdyn, steel_order[60:], data, 1, 1, 40, imgsz=640, conf=0.1, iou=0.5)
    cases += pick(sdyn, steel_order[70:], data, 1, 1, 40, imgsz=[640, 480], agnostic=True)

    # Cross-checks: the same weights through different exports, and the .pt predictor, where preprocessing agrees.
    checks = []
    for case in [c for c in cases if c["model"] == p640.name and c["conf"] == 0.25 and not c["agnostic"]
                 and c["classes"] is None][:2]:
        other, _ = predict(pdyn, data / case["image"], imgsz=640)
        ok = same_detections(case["detections"], other["detections"])
        print(f"  static op12 vs dynamic op12 on {case['image']}: {'agree' if ok else 'DISAGREE'}", flush=True)
        checks.append(ok)
    for case in [c for c in cases if c["model"] == p480.name and c["image"].endswith(tuple(Path(w).name for w in wide))]:
        checks.append(torch_sanity(ckpts["photo"], data / case["image"], [480, 640], case))
    for case in [c for c in cases if c["model"] == sdyn.name and c["imgsz"] == [640, 640]][:3]:
        checks.append(torch_sanity(ckpts["steel"], data / case["image"], 640, case))
    if not all(checks):
        raise SystemExit("a cross-check disagreed")

    for name in committed:
        shutil.copyfile(files[name], out / name)
    manifest = {
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "onnx": __import__("onnx").__version__,
        "models": {name: metadata(files[name]) for name in committed},
        "margins": {"score": SCORE_MARGIN, "iou": IOU_MARGIN, "tie": TIE_MARGIN},
    }
    (out / "models.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    if DUMP["dir"]:
        (DUMP["dir"] / "index.json").write_text(json.dumps(DUMP["cases"], indent=1) + "\n")
    print(f"wrote {len(cases)} cases and {len(committed)} models to {out}")


if __name__ == "__main__":
    main()
