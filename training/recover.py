"""Rebuild a trainable Ultralytics checkpoint from a shipped ONNX model.

    hazardscan recover --model models/hazardscan-v5 --out work/recovered/v5.pt [--add-classes person,...]
        [--drop-classes fire,...] [--reset-classes ...] [--photos DIR] [--n-photos 64] [--release models/NAME]

A release keeps only ONNX files; the export fused every Conv+BatchNorm pair into one convolution with a
bias. This loads those fused weights into the card's architecture (``yolov8n``, ``yolo11n``: the Ultralytics
yaml of that name, built offline) and rebuilds each BatchNorm from activation statistics on a few photos:
with ``mean``/``var`` the measured per-channel statistics of the bias-free convolution's output,

    running_mean = mean, running_var = var, weight = sqrt(var + eps), bias = fused_bias + mean

so the eval-mode output equals the ONNX model exactly (up to float rounding), and the batch statistics a
training step sees stay close to the running ones, so training continues from the shipped model instead of
re-learning its normalisation. The class channels of the detection head can be edited on the way:

- ``--add-classes`` appends channels: zero weights and Ultralytics' prior bias ``log(5 / nc / (640 / stride)^2)``,
  so the old classes' scores do not move and the new ones start near zero;
- ``--drop-classes`` removes channels (a model that no longer knows those classes; the others keep their scores);
- ``--reset-classes`` re-initialises channels in place as if they were added (the leave-one-out experiment of
  ``hazardscan teach --fresh``: the model keeps its class list but has to learn that class again).

``--release DIR`` also exports the checkpoint as a model folder (ONNX fp32 and int8, the shipped card with the
edited class list), without any training: e.g. the shipped model without one class, to start the app on.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from inference_service.imaging import decode_image, model_input
from inference_service.model_card import ModelCard, load_model, resolve_model_path

log = logging.getLogger(__name__)

ARCHITECTURES = {"yolov8n": "yolov8n.yaml", "yolo11n": "yolo11n.yaml"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# the class convolution of each detection level: model.<head>.cv3.<level>.2.{weight,bias}
HEAD_CLASS_CONV = re.compile(r"\.cv3\.(\d+)\.2\.(weight|bias)$")


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
        out.append(model_input(img, size))
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


def head_classes(
    classes: Sequence[str], add: Sequence[str] = (), drop: Sequence[str] = (), reset: Sequence[str] = ()
) -> list[str]:
    """The class list after dropping ``drop`` and appending ``add`` (``reset`` keeps its place); a class named
    twice, or an edit of a class the model lacks, is an error that says which."""
    for label, names in (("--drop-classes", drop), ("--reset-classes", reset)):
        missing = sorted(set(names) - set(classes))
        if missing:
            raise ValueError(f"{label} {missing} are not classes of the model ({', '.join(classes)})")
    both = sorted(set(drop) & set(reset))
    if both:
        raise ValueError(f"{both} are both dropped and reset")
    kept = [c for c in classes if c not in drop]
    dup = sorted(set(add) & set(kept))
    if dup:
        raise ValueError(f"--add-classes {dup} are already classes of the model")
    return [*kept, *add]


def edit_head(
    fused: dict[str, np.ndarray],
    old: Sequence[str],
    new: Sequence[str],
    reset: Sequence[str],
    strides: Sequence[float],
) -> dict[str, np.ndarray]:
    """The fused tensors with the head's class convolutions rebuilt for the class list ``new``: a class of
    ``old`` keeps its channel (moved to its new place), a class not in ``old`` or in ``reset`` gets zero
    weights and the prior bias of its level's stride. Every other tensor is passed through."""
    out = dict(fused)
    for name, value in fused.items():
        m = HEAD_CLASS_CONV.search(name)
        if m is None or value.shape[0] != len(old):
            continue
        level, kind = int(m.group(1)), m.group(2)
        rows = []
        for c in new:
            if c in old and c not in reset:
                rows.append(value[old.index(c)])
            elif kind == "weight":
                rows.append(np.zeros_like(value[0]))
            else:
                rows.append(np.array(_prior_bias(len(new), strides[level]), value.dtype))
        out[name] = np.stack(rows).astype(np.float32)
    return out


def build_model(card: ModelCard, names: Sequence[str], class_width: int) -> Any:
    """The card's architecture with the classes ``names`` and a class branch ``class_width`` channels wide,
    names set, randomly initialised (the caller loads the weights)."""
    from torch import nn
    from ultralytics.nn.tasks import DetectionModel

    arch = ARCHITECTURES.get(str(card.extra.get("architecture", "")))
    if arch is None:
        raise ValueError(f"card architecture {card.extra.get('architecture')!r} is not one of {sorted(ARCHITECTURES)}")
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


def load_fused(model: Any, fused: dict[str, np.ndarray]) -> None:
    """Copy the fused convolutions into ``model``: every Conv+BN pair gets the fused weight and a placeholder
    BatchNorm that adds the fused bias (eval output = ONNX output); plain convolutions get weight and bias
    (the head's class convolutions already edited to the model's classes by :func:`edit_head`)."""
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


def recover(
    model_path: Path,
    out: Path,
    photos: Sequence[Path],
    add_classes: Sequence[str] = (),
    drop_classes: Sequence[str] = (),
    reset_classes: Sequence[str] = (),
) -> dict[str, Any]:
    """Write an Ultralytics checkpoint rebuilt from the ONNX model at ``model_path`` (class head edited as the
    module doc says); returns a summary with the largest absolute difference of its eval output from the ONNX
    output on the first photos (boxes and the scores of the classes kept unchanged)."""
    import torch

    loaded = load_model(model_path)
    card = loaded.card
    branch = card.extra.get("head_branch")
    if branch:
        raise ValueError(
            f"{card.model_id} {card.version} has a head branch of its own for {branch.get('classes')} "
            "(hazardscan teach --branch): its ONNX holds a second branch in the head, which no Ultralytics "
            "architecture yaml has, so it cannot be rebuilt into a checkpoint; recover the model it was taught from"
        )
    onnx_path, _ = resolve_model_path(model_path)
    fused = fused_weights(onnx.load(str(onnx_path)))
    width = next(v.shape[0] for k, v in fused.items() if ".cv3.0.0." in k and k.endswith("weight"))
    old = list(card.classes)
    names = head_classes(old, add_classes, drop_classes, reset_classes)
    model = build_model(card, names, width)
    strides = [float(s) for s in model.model[-1].stride]
    load_fused(model, edit_head(fused, old, names, reset_classes, strides))
    tensors = calibration_tensors(photos, card.input_size)
    stats = rebuild_batchnorm(model, tensors)
    unchanged = [(names.index(c), old.index(c)) for c in names if c in old and c not in reset_classes]
    diff = output_difference(model, loaded.session, tensors[:4], unchanged)
    import ultralytics

    model.args = {"task": "detect", "imgsz": max(card.input_size)}
    origin = {
        "model_id": card.model_id,
        "version": card.version,
        "onnx": str(onnx_path),
        "added": list(add_classes),
        "dropped": list(drop_classes),
        "reset": list(reset_classes),
    }
    ckpt = {
        "date": datetime.now(UTC).isoformat(),
        "version": ultralytics.__version__,
        "model": model.float(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "epoch": -1,
        "train_args": {"task": "detect", "imgsz": max(card.input_size)},
        "hazardscan_recovered_from": origin,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    summary = {
        "checkpoint": str(out),
        "from": f"{card.model_id} {card.version}",
        "architecture": card.extra.get("architecture"),
        "classes": list(model.names.values()),
        "added_classes": list(add_classes),
        "dropped_classes": list(drop_classes),
        "reset_classes": list(reset_classes),
        "calibration_photos": len(tensors),
        **stats,
        "max_abs_output_diff": diff,
    }
    out.with_suffix(".json").write_text(json.dumps(summary, ensure_ascii=False, indent=1))
    return summary


def output_difference(
    model: Any, session: Any, tensors: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]]
) -> float:
    """Largest |PyTorch eval output - ONNX output| over ``tensors``: the boxes, and the scores of each class
    ``(index in the model, index in the ONNX file)`` of ``pairs``."""
    import torch

    model.eval()
    name = session.get_inputs()[0].name
    ours_idx = [0, 1, 2, 3, *(4 + i for i, _ in pairs)]
    ref_idx = [0, 1, 2, 3, *(4 + j for _, j in pairs)]
    worst = 0.0
    with torch.no_grad():
        for t in tensors:
            ours = model(torch.from_numpy(t))
            ours = (ours[0] if isinstance(ours, list | tuple) else ours).numpy()
            ref = session.run(None, {name: t})[0]
            worst = max(worst, float(np.abs(ours[:, ours_idx] - ref[:, ref_idx]).max()))
    return worst


def edited_card(card: dict[str, Any], classes: Sequence[str], model_id: str, edit: dict[str, Any]) -> dict[str, Any]:
    """The shipped card for the same weights with an edited class list: what it detects and raises recomputed
    from the taxonomy, thresholds kept for the classes whose scores did not change, measured figures dropped
    (they were of the old class list), and the edit recorded under ``training.head_edit``."""
    from inference_service.taxonomy import load_taxonomy
    from training.card import base_card, regroup

    changed = {*edit.get("added", ()), *edit.get("reset", ())}
    fresh = base_card(
        model_id=model_id,
        version=f"{card['version']}+edit",
        architecture=card["architecture"],
        classes=list(classes),
        input_size=tuple(card["input_size"]),
        taxonomy=load_taxonomy(),
        dataset_card=None,
        run={},
        conf_threshold=card.get("conf_threshold", 0.25),
        nms_iou=card.get("nms_iou", 0.5),
    )
    keep = ("model_id", "version", "created", "classes", "class_names_zh", "detects", "cannot_detect",
            "hazards_raised", "hazards_not_raised", "hazard_coverage", "taxonomy_version")  # fmt: skip
    out = {**fresh, **card, **{k: fresh[k] for k in keep}}  # a key the old card lacks: the fresh default
    out["class_thresholds"] = {
        c: t for c, t in card.get("class_thresholds", {}).items() if c in classes and c not in changed
    }
    out["training"] = {
        **card.get("training", {}),
        "head_edit": {"from": f"{card['model_id']} {card['version']}", **edit},
    }
    out["metrics"] = {}
    out.pop("operating_points", None)
    out["label_groups"] = regroup(card.get("label_groups") or [], classes)
    if not out["label_groups"]:
        del out["label_groups"]
    return out


def raw_card(model_path: Path) -> dict[str, Any]:
    """The model's card as written (``card.json``, else the card embedded in the ONNX file)."""
    from training.export import CARD_KEY

    onnx_path, card_path = resolve_model_path(model_path)
    if card_path is not None:
        card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
        return card
    meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    if CARD_KEY not in meta:
        raise ValueError(f"{onnx_path} carries no hazardscan card")
    embedded: dict[str, Any] = json.loads(meta[CARD_KEY])
    return embedded


def release_recovered(model_path: Path, checkpoint: Path, out_dir: Path, calibration: Sequence[Path]) -> dict[str, Any]:
    """Export a recovered checkpoint (no training) as a model folder with :func:`edited_card`."""
    import torch

    from training.export import export_model

    ckpt = torch.load(checkpoint, weights_only=False)
    origin = ckpt["hazardscan_recovered_from"]
    edit = {k: origin[k] for k in ("added", "dropped", "reset")}
    new = edited_card(raw_card(model_path), list(ckpt["model"].names.values()), out_dir.name, edit)
    export_model(checkpoint, out_dir, new, calibration)
    from training.release import write_card

    write_card(out_dir, new)
    return new


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="a shipped model folder or its model.onnx")
    p.add_argument("--out", type=Path, required=True, help="the checkpoint to write (.pt)")
    p.add_argument("--add-classes", default="", help="comma-separated taxonomy classes to add to the head")
    p.add_argument("--drop-classes", default="", help="comma-separated classes to remove from the head")
    p.add_argument("--reset-classes", default="", help="comma-separated classes whose channels start again at zero")
    p.add_argument("--release", type=Path, metavar="DIR", help="also export the checkpoint as a model folder (ONNX)")
    p.add_argument("--photos", type=Path, help="a folder of photos for the BatchNorm statistics")
    p.add_argument("--n-photos", type=int, default=64)


def class_list(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def run(args: argparse.Namespace) -> int:
    from training.offline import prepare_offline

    prepare_offline(args.out.parent / ".ultralytics")
    add, drop, reset = class_list(args.add_classes), class_list(args.drop_classes), class_list(args.reset_classes)
    if add:
        from inference_service.taxonomy import load_taxonomy

        unknown = sorted(set(add) - set(load_taxonomy().class_names))
        if unknown:
            sys.stderr.write(f"error: --add-classes {unknown} are not detector classes of the taxonomy\n")
            return 2
    try:
        photos = find_photos(args.photos or _default_photos(), args.n_photos)
        summary = recover(args.model, args.out, photos, add, drop, reset)
        if args.release:
            card = release_recovered(args.model, args.out, args.release, photos)
            summary["release"] = {"folder": str(args.release), "classes": card["classes"]}
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
