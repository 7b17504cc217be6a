#!/usr/bin/env python3
"""Ultralytics' PyTorch predictor as the speed peer of `mmfuse detect` (issue 16 item 5).

End to end per image, as a user calls it: YOLO(model).predict(path) = read + decode the file (cv2),
letterbox, network, NMS, boxes scaled back. Each image is predicted once per round after a warm-up; the
reported figure is the median over all (round, image) times. Note that for a .pt model Ultralytics letterboxes
to the minimum stride-multiple rectangle (auto=True), so a 640x480 photo runs at 480x640, not 640x640.

    /usr/bin/python3 bench/torch_yolo_predict.py --ultralytics SRC --model /tmp/mmfuse-yolo-bench/yolov8n.pt \
        --threads 2 IMAGE...
Prints one JSON object: ms_per_image (median), mean, min, threads, rounds, images, detections per image.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ultralytics", required=True, help="Ultralytics source tree (the folder holding ultralytics/)")
    ap.add_argument("--model", required=True, help="Ultralytics checkpoint (.pt)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--warmup", type=int, default=3, help="untimed predictions before timing")
    ap.add_argument("--rounds", type=int, default=5, help="timed passes over the image list")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args()
    os.environ.setdefault("YOLO_CONFIG_DIR", str(Path(args.model).resolve().parent / "ultralytics-config"))
    os.environ["YOLO_AUTOINSTALL"] = "false"
    os.environ["YOLO_OFFLINE"] = "true"
    sys.path.insert(0, str(Path(args.ultralytics).resolve()))

    import torch
    from ultralytics import YOLO

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = YOLO(args.model)
    kw = dict(imgsz=args.imgsz, conf=args.conf, iou=args.iou, verbose=False, save=False)
    for i in range(args.warmup):
        model.predict(args.images[i % len(args.images)], **kw)
    times, detections = [], {}
    for _ in range(args.rounds):
        for image in args.images:
            t = time.perf_counter()
            result = model.predict(image, **kw)[0]
            times.append((time.perf_counter() - t) * 1000)
            detections[image] = len(result.boxes)
    print(json.dumps({
        "engine": f"ultralytics {__import__('ultralytics').__version__} torch {torch.__version__}",
        "model": args.model, "threads": args.threads, "rounds": args.rounds, "images": len(args.images),
        "ms_per_image": statistics.median(times), "mean_ms": statistics.fmean(times), "min_ms": min(times),
        "detections": detections,
    }))


if __name__ == "__main__":
    main()
