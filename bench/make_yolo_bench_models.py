#!/usr/bin/env python3
"""Random-weight yolov8n and yolov8s (nc=80, COCO names) at 640 for the detect speed comparison (issue 16 item 5).

Real geometry (Ultralytics' yolov8.yaml, scales n and s), BatchNorm calibrated on the photos and the class
head biased so that each photo gets a few to a few dozen boxes, like a trained model (NMS cost is realistic).
Writes to OUT: yolov8{n,s}.pt (Ultralytics checkpoints, for bench/torch_yolo_predict.py) and
yolov8{n,s}.onnx (Ultralytics' exporter, opset 17, static 640, simplify=False), plus models.json.
Not committed (about 12 and 43 MB).

    /usr/bin/python3 bench/make_yolo_bench_models.py --ultralytics SRC --out /tmp/mmfuse-yolo-bench
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ultralytics", required=True, help="Ultralytics source tree (the folder holding ultralytics/)")
    ap.add_argument("--out", required=True, help="folder for the checkpoints and ONNX files")
    ap.add_argument("--data", default="/work/shared/data", help="shared data folder (photos/)")
    ap.add_argument("--scales", default="n,s")
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_CONFIG_DIR"] = str(out / "ultralytics-config")
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_OFFLINE"] = "true"
    sys.path[:0] = [str(Path(args.ultralytics).resolve()), str(ROOT / "tests" / "tools")]

    import onnx
    import torch
    import ultralytics
    from ultralytics import YOLO
    from ultralytics.utils import ROOT as ULTRALYTICS_ROOT, yaml_load

    import yolo_random_weights as rw

    torch.set_num_threads(2)
    names = yaml_load(ULTRALYTICS_ROOT / "cfg" / "datasets" / "coco.yaml")["names"]
    photos = rw.photo_images(Path(args.data))
    summary = {"ultralytics": ultralytics.__version__, "torch": torch.__version__, "models": {}}
    for scale in args.scales.split(","):
        model = rw.make_model(scale, 80, names, seed=100, paths=photos, candidates_per_class=[1] * 80,
                              image_quantile=0.6)
        ckpt = out / f"yolov8{scale}.pt"
        rw.save_checkpoint(model, ckpt, f"random yolov8{scale} (nc=80) calibrated on photos, for speed tests only")
        f = YOLO(str(ckpt)).export(format="onnx", opset=args.opset, imgsz=640, simplify=False)
        if Path(f) != out / f"yolov8{scale}.onnx":
            shutil.move(f, out / f"yolov8{scale}.onnx")
        meta = {p.key: p.value for p in onnx.load(str(out / f"yolov8{scale}.onnx")).metadata_props}
        counts = [len(r.boxes) for r in YOLO(str(ckpt)).predict([str(p) for p in photos], verbose=False)]
        summary["models"][f"yolov8{scale}.onnx"] = {
            "parameters": sum(p.numel() for p in model.parameters()), "opset": args.opset, "imgsz": meta["imgsz"],
            "detections_per_photo": counts}
        print(f"yolov8{scale}: detections per photo {counts}", flush=True)
    (out / "models.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
