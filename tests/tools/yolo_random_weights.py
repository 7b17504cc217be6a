"""Random-weight Ultralytics YOLOv8 detectors whose boxes depend on the image.

Shared by tests/tools/make_yolo_references.py (fixtures) and bench/make_yolo_bench_models.py (speed).
Needs Ultralytics importable (PYTHONPATH=<ultralytics source tree>) and Debian's python3-torch.

Freshly initialised weights give nearly the same boxes on every image: activations shrink layer by
layer and Detect's class bias (log(5/nc/(640/s)^2)) keeps every score near zero. So:
1. BatchNorm is calibrated on real images: train-mode forward passes over letterboxed photos and
   NEU-DET steel with momentum=None (running stats = mean over the batches), then eval mode;
2. the last conv of each box branch (cv2) is scaled up so that the DFL distributions are peaked and
   differ from anchor to anchor (box sizes vary; a decoder that reads the bins in the wrong order fails);
3. the last conv of each class branch (cv3) is scaled up and given a per-class bias placed at a high
   quantile of that class's logits over the calibration images, so each image gets a few confident
   boxes where its own features say so.
"""
import glob
import math
import os
from copy import deepcopy

import cv2
import numpy as np
import torch
import torch.nn as nn

# The chapter's eight defect classes (§4.2).
DEFECT_NAMES = {0: "scratch", 1: "dent", 2: "oil_leak", 3: "loose_bolt", 4: "crack", 5: "corrosion",
                6: "missing_part", 7: "deformation"}


def photo_images(data_dir):
    """The photos under /work/shared/data/photos (sorted, so runs are reproducible)."""
    photos = sorted(glob.glob(os.path.join(data_dir, "photos", "*.jpg")))
    if not photos:
        raise SystemExit(f"no images under {data_dir}/photos")
    return photos


def steel_images(data_dir):
    """The NEU-DET steel images under /work/shared/data/images/neu_det."""
    steel = sorted(glob.glob(os.path.join(data_dir, "images", "neu_det", "*", "*.jpg")))
    if not steel:
        raise SystemExit(f"no images under {data_dir}/images/neu_det")
    return steel


def letterboxed_batch(paths, imgsz):
    """The predictor's preprocessing (LetterBox auto=False, BGR->RGB, /255) for a list of files."""
    from ultralytics.data.augment import LetterBox

    letterbox = LetterBox(imgsz, auto=False, stride=32)
    ims = [letterbox(image=cv2.imread(p))[..., ::-1].transpose(2, 0, 1) for p in paths]
    return torch.from_numpy(np.ascontiguousarray(np.stack(ims))).float() / 255


def build_detection_model(scale, nc, names, seed, yaml_name="yolov8.yaml", tiny_width=0.03125):
    """DetectionModel from Ultralytics' own yaml. scale 't' is a tiny width for fixtures (not an Ultralytics scale)."""
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    cfg = deepcopy(yaml_model_load(yaml_name))
    if scale == "t":
        cfg["scales"]["t"] = [0.33, tiny_width, 1024]
    cfg["scale"] = scale
    cfg["yaml_file"] = f"yolov8{scale}.yaml"
    torch.manual_seed(seed)
    model = DetectionModel(cfg, nc=nc, verbose=False)
    model.names = dict(names)
    return model


@torch.no_grad()
def calibrate_batchnorm(model, paths, imgsz=640, batch=8):
    """batch=1 averages within-image statistics only: low-contrast steel needs it to get a response."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all calibration batches
    model.train()
    for i in range(0, len(paths), batch):
        model(letterboxed_batch(paths[i:i + batch], imgsz))
    model.eval()


@torch.no_grad()
def class_logits(model, paths, imgsz=640, batch=8):
    """Raw class logits (images, nc, anchors) of the cv3 branches, before any bias."""
    detect = model.model[-1]
    captured = []
    hooks = [seq[-1].register_forward_hook(lambda m, i, o: captured.append(o)) for seq in detect.cv3]
    per_batch = []
    try:
        for i in range(0, len(paths), batch):
            captured.clear()
            model(letterboxed_batch(paths[i:i + batch], imgsz))
            per_batch.append(torch.cat([o.flatten(2) for o in captured], 2))
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(per_batch, 0)


@torch.no_grad()
def shape_heads(model, paths, candidates_per_class, image_quantile=0.5, imgsz=640, box_gain=3.0, cls_gain=3.0):
    """Scales the box/class output convs and biases the class convs (see the module docstring).

    Class c's bias puts the score 0.25 at the candidates_per_class[c]-th largest logit of the image
    at image_quantile among the calibration images: with 0.5, half the images have at least that
    many anchors above 0.25 for class c (before NMS), the other half fewer.
    """
    detect = model.model[-1]
    for seq in detect.cv2:
        seq[-1].weight.mul_(box_gain)
    for seq in detect.cv3:
        seq[-1].weight.mul_(cls_gain)
        seq[-1].bias.zero_()
    z = class_logits(model, paths, imgsz)  # (N, nc, A)
    bias = []
    for c in range(z.shape[1]):
        kth = torch.sort(z[:, c], dim=1, descending=True).values[:, candidates_per_class[c] - 1]
        bias.append(math.log(0.25 / 0.75) - float(np.quantile(kth.numpy(), image_quantile)))
    for seq in detect.cv3:
        seq[-1].bias.copy_(torch.tensor(bias))
    return bias


def make_model(scale, nc, names, seed, paths, candidates_per_class, image_quantile=0.5, calibration_batch=8,
               box_gain=3.0, cls_gain=3.0, tiny_width=0.03125):
    """paths: calibration images (BatchNorm statistics and the class-bias quantiles)."""
    model = build_detection_model(scale, nc, names, seed, tiny_width=tiny_width)
    calibrate_batchnorm(model, paths, batch=calibration_batch)
    shape_heads(model, paths, candidates_per_class, image_quantile, box_gain=box_gain, cls_gain=cls_gain)
    return model


def save_checkpoint(model, path, note):
    """An Ultralytics checkpoint (the keys its trainer writes) that YOLO(path) loads."""
    from datetime import datetime

    from ultralytics import __version__
    from ultralytics.cfg import DEFAULT_CFG_DICT

    model = deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad = False
    ckpt = {
        "date": datetime(2026, 1, 1).isoformat(),
        "version": __version__,
        "license": "AGPL-3.0 (Ultralytics code); these weights are random, made by mmfuse's test tools",
        "docs": note,
        "epoch": -1,
        "best_fitness": None,
        "model": model,  # float32: the exported ONNX gets exactly these weights (after BatchNorm fusion)
        "ema": None,
        "updates": None,
        "optimizer": None,
        "train_args": {**DEFAULT_CFG_DICT, "model": os.path.basename(path), "imgsz": 640, "task": "detect"},
        "train_metrics": None,
        "train_results": None,
    }
    torch.save(ckpt, path)
