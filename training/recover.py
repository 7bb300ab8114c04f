"""Rebuild a trainable Ultralytics checkpoint from a shipped ONNX model.

    hazardscan recover --model models/hazardscan-v5 --out work/recovered/v5.pt [--add-classes person,...]
        [--photos DIR] [--n-photos 64]

A release keeps only ONNX files; the export fused every Conv+BatchNorm pair into one convolution with a
bias. This loads those fused weights into the card's architecture (``yolov8n``, ``yolo11n``: the Ultralytics
yaml of that name, built offline) and rebuilds each BatchNorm from activation statistics on a few photos:
with ``mean``/``var`` the measured per-channel statistics of the bias-free convolution's output,

    running_mean = mean, running_var = var, weight = sqrt(var + eps), bias = fused_bias + mean

so the eval-mode output equals the ONNX model exactly (up to float rounding), and the batch statistics a
training step sees stay close to the running ones, so training continues from the shipped model instead of
re-learning its normalisation. ``--add-classes`` widens the detection head: the old class channels are copied,
the new ones start at zero weights with Ultralytics' prior bias ``log(5 / nc / (640 / stride)^2)``, so the
old classes' scores do not move and the new ones start near zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from inference_service.imaging import decode_image, letterbox, to_tensor
from inference_service.model_card import ModelCard, load_model, resolve_model_path

log = logging.getLogger(__name__)

ARCHITECTURES = {"yolov8n": "yolov8n.yaml", "yolo11n": "yolo11n.yaml"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def fused_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The ONNX initializers that are Conv weights or biases, by their (Ultralytics parameter) name."""
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        for name in node.input[1:]:
            if name not in inits:
                raise ValueError(f"Conv {node.name}: input {name!r} is not an initializer (not a plain export?)")
            out[name] = numpy_helper.to_array(inits[name]).astype(np.float32)
    return out


def calibration_tensors(photos: Sequence[Path], size: tuple[int, int]) -> list[np.ndarray]:
    """Photos prepared as the service prepares them (letterboxed, RGB, 0..1), one ``[1, 3, H, W]`` each."""
    out = []
    for path in photos:
        img = decode_image(path.read_bytes(), max(size))
        out.append(to_tensor(letterbox(img.array, size, None)[0], bgr=img.channels == "BGR"))
    return out


def find_photos(folder: Path, n: int) -> list[Path]:
    """Up to ``n`` photos under ``folder`` (links followed), evenly spread over the sorted list."""
    photos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise FileNotFoundError(f"no photos under {folder}")
    step = max(1, len(photos) // n)
    return photos[::step][:n]


def _prior_bias(nc: int, stride: float, imgsz: int = 640) -> float:
    return math.log(5 / nc / (imgsz / stride) ** 2)


def build_model(card: ModelCard, add_classes: Sequence[str], class_width: int) -> Any:
    """The card's architecture with ``len(card.classes) + len(add_classes)`` classes and a class branch
    ``class_width`` channels wide, names set, randomly initialised (the caller loads the weights)."""
    from torch import nn
    from ultralytics.nn.tasks import DetectionModel

    arch = ARCHITECTURES.get(str(card.extra.get("architecture", "")))
    if arch is None:
        raise ValueError(f"card architecture {card.extra.get('architecture')!r} is not one of {sorted(ARCHITECTURES)}")
    dup = sorted(set(add_classes) & set(card.classes))
    if dup:
        raise ValueError(f"--add-classes {dup} are already classes of {card.model_id}")
    names = [*card.classes, *add_classes]
    # The class branch's width c3 = max(ch0, min(nc, 100)) follows the class count the lineage started with
    # (80 for a COCO start), not the exported one: build at that width, then set the class count.
    model: Any = DetectionModel(arch, nc=max(len(names), class_width), verbose=False)
    head: Any = model.model[-1]
    for branch in head.cv3:
        branch[-1] = nn.Conv2d(branch[-1].in_channels, len(names), 1)
    head.nc, head.no = len(names), len(names) + head.reg_max * 4
    model.yaml["nc"] = model.nc = len(names)
    model.names = dict(enumerate(names))
    return model


def load_fused(model: Any, fused: dict[str, np.ndarray], old_nc: int) -> None:
    """Copy the fused convolutions into ``model``: every Conv+BN pair gets the fused weight and a placeholder
    BatchNorm that adds the fused bias (eval output = ONNX output); plain convolutions get weight and bias;
    the class convolutions of the head are widened if the model has more classes than the export."""
    import torch
    from torch import nn
    from ultralytics.nn.modules.conv import Conv

    used: set[str] = set()
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, Conv) and isinstance(getattr(module, "bn", None), nn.BatchNorm2d):
                w, b = f"{name}.conv.weight", f"{name}.conv.bias"
                _copy(module.conv.weight, fused[w], w)
                bn: Any = module.bn
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(fused[b]))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                used |= {w, b}
            elif isinstance(module, nn.Conv2d) and f"{name}.weight" in fused and not name.endswith(".conv"):
                w, b = f"{name}.weight", f"{name}.bias"
                wide = module.out_channels != fused[w].shape[0]
                if wide:  # a class convolution of the head, widened by --add-classes
                    _widen(module, fused[w], fused.get(b), old_nc, name, model)
                else:
                    _copy(module.weight, fused[w], w)
                    if b in fused:
                        _copy(module.bias, fused[b], b)
                used |= {w} | ({b} if b in fused else set())
            elif isinstance(module, nn.Conv2d) and name.endswith("dfl.conv"):
                w = f"{name}.weight"
                if w in fused:
                    _copy(module.weight, fused[w], w)
                    used.add(w)
    unused = sorted(set(fused) - used)
    if unused:
        raise ValueError(f"{len(unused)} ONNX conv tensors have no place in the architecture: {unused[:5]}")


def _copy(param: Any, value: np.ndarray, name: str) -> None:
    import torch

    if tuple(param.shape) != value.shape:
        raise ValueError(f"{name}: ONNX shape {value.shape} vs architecture {tuple(param.shape)}")
    param.copy_(torch.from_numpy(value))


def _widen(conv: Any, weight: np.ndarray, bias: np.ndarray | None, old_nc: int, name: str, model: Any) -> None:
    import torch

    if weight.shape[0] != old_nc or bias is None or conv.out_channels < old_nc:
        raise ValueError(f"{name}: {weight.shape[0]} ONNX channels, cannot widen to {conv.out_channels}")
    head = model.model[-1]
    level = int(name.split(".cv3.")[1].split(".")[0])  # model.22.cv3.<level>.2
    stride = float(head.stride[level])
    conv.weight.zero_()
    conv.weight[:old_nc] = torch.from_numpy(weight)
    conv.bias.fill_(_prior_bias(conv.out_channels, stride))
    conv.bias[:old_nc] = torch.from_numpy(bias)


def rebuild_batchnorm(model: Any, tensors: Sequence[np.ndarray]) -> dict[str, float]:
    """Measure each Conv+BN's convolution output on ``tensors`` and set the BatchNorm from it (see module doc);
    the eval output does not change. Returns the smallest and median measured standard deviation."""
    import torch
    from torch import nn
    from ultralytics.nn.modules.conv import Conv

    pairs = [(name, m) for name, m in model.named_modules() if isinstance(m, Conv) and isinstance(m.bn, nn.BatchNorm2d)]
    sums: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for name, m in pairs:
        sums[name] = [torch.zeros(m.bn.num_features, dtype=torch.float64) for _ in range(3)]

        def hook(_mod: Any, _inp: Any, out: torch.Tensor, acc: list[torch.Tensor] = sums[name]) -> None:
            y = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)
            acc[0] += y.shape[1]
            acc[1] += y.sum(1)
            acc[2] += (y * y).sum(1)

        hooks.append(m.conv.register_forward_hook(hook))
    model.eval()
    try:
        with torch.no_grad():
            for t in tensors:
                model(torch.from_numpy(t))
    finally:
        for h in hooks:
            h.remove()
    stds = []
    with torch.no_grad():
        for name, m in pairs:
            n, s, ss = sums[name]
            mean = s / n
            var = (ss / n - mean * mean).clamp_min(0.0)
            bn: Any = m.bn
            fused_bias = bn.bias.detach().double().clone()
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((fused_bias + mean).float())
            stds.append(var.sqrt())
    every = torch.cat(stds)
    return {"min_std": float(every.min()), "median_std": float(every.median()), "bn_layers": len(pairs)}


def recover(model_path: Path, out: Path, photos: Sequence[Path], add_classes: Sequence[str] = ()) -> dict[str, Any]:
    """Write an Ultralytics checkpoint rebuilt from the ONNX model at ``model_path``; returns a summary with
    the largest absolute difference of its eval output from the ONNX output on the first photos."""
    import torch

    loaded = load_model(model_path)
    card = loaded.card
    onnx_path, _ = resolve_model_path(model_path)
    fused = fused_weights(onnx.load(str(onnx_path)))
    width = next(v.shape[0] for k, v in fused.items() if ".cv3.0.0." in k and k.endswith("weight"))
    model = build_model(card, add_classes, width)
    load_fused(model, fused, len(card.classes))
    tensors = calibration_tensors(photos, card.input_size)
    stats = rebuild_batchnorm(model, tensors)
    diff = output_difference(model, loaded.session, tensors[:4], len(card.classes))
    import ultralytics

    model.args = {"task": "detect", "imgsz": max(card.input_size)}
    ckpt = {
        "date": datetime.now(UTC).isoformat(),
        "version": ultralytics.__version__,
        "model": model.float(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "epoch": -1,
        "train_args": {"task": "detect", "imgsz": max(card.input_size)},
        "hazardscan_recovered_from": {"model_id": card.model_id, "version": card.version, "onnx": str(onnx_path)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    summary = {
        "checkpoint": str(out),
        "from": f"{card.model_id} {card.version}",
        "architecture": card.extra.get("architecture"),
        "classes": list(model.names.values()),
        "added_classes": list(add_classes),
        "calibration_photos": len(tensors),
        **stats,
        "max_abs_output_diff": diff,
    }
    out.with_suffix(".json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    return summary


def output_difference(model: Any, session: Any, tensors: Sequence[np.ndarray], old_nc: int) -> float:
    """Largest |PyTorch eval output - ONNX output| over ``tensors`` (boxes and the exported classes' scores)."""
    import torch

    model.eval()
    name = session.get_inputs()[0].name
    worst = 0.0
    with torch.no_grad():
        for t in tensors:
            ours = model(torch.from_numpy(t))
            ours = (ours[0] if isinstance(ours, list | tuple) else ours).numpy()
            ref = session.run(None, {name: t})[0]
            worst = max(worst, float(np.abs(ours[:, : 4 + old_nc] - ref).max()))
    return worst


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="a shipped model folder or its model.onnx")
    p.add_argument("--out", type=Path, required=True, help="the checkpoint to write (.pt)")
    p.add_argument("--add-classes", default="", help="comma-separated taxonomy classes to add to the head")
    p.add_argument("--photos", type=Path, help="a folder of photos for the BatchNorm statistics")
    p.add_argument("--n-photos", type=int, default=64)


def run(args: argparse.Namespace) -> int:
    from training.offline import prepare_offline

    prepare_offline(args.out.parent / ".ultralytics")
    add = [c.strip() for c in args.add_classes.split(",") if c.strip()]
    if add:
        from inference_service.taxonomy import load_taxonomy

        unknown = sorted(set(add) - set(load_taxonomy().class_names))
        if unknown:
            sys.stderr.write(f"error: --add-classes {unknown} are not detector classes of the taxonomy\n")
            return 2
    try:
        folder = args.photos or _default_photos()
        summary = recover(args.model, args.out, find_photos(folder, args.n_photos), add)
    except (ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    return 0


def _default_photos() -> Path:
    root = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
    if not root.is_dir():
        raise FileNotFoundError("give --photos (a folder of photos for the BatchNorm statistics)")
    return root
