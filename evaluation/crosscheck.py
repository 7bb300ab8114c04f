"""Cross-check our mAP against Ultralytics' own validator on the same model and photos.

A ladder of scores from ours to theirs, each rung changing one thing, so a difference is traced to
its causes rather than shrugged at:

1. ours: the served pipeline's predictions, scored by pycocotools;
2. the same predictions scored by Ultralytics' metric code (its matching and ``ap_per_class``): the metric
   convention (COCO samples the monotone precision envelope at 101 recall points and keeps 100 boxes per
   class and photo; Ultralytics integrates the linearly interpolated envelope with the trapezoid rule over
   up to 300 boxes per photo);
3. multi-label NMS on the same input tensors: Ultralytics' validation NMS lets one anchor give a box for
   every class above 0.001, the service keeps each anchor's best class;
4. ... and photos decoded at full size instead of the service's DCT-reduced JPEG decode;
5. ``YOLO(onnx).val()`` on a YOLO copy of the same photos and labels (square letterbox: the model's input
   size is fixed, so rectangular batches are off). What is left between 4 and 5 is OpenCV's decoder and
   Ultralytics' two-step resize (long side to the input size, rounded up, then letterbox).

torch and ultralytics are imported only here, lazily, after ``training.offline.prepare_offline``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.data import EvalSet
from evaluation.metrics import CocoScores
from inference_service.detections import Detections, box_iou, xywh_to_xyxy, xyxy_to_xywh
from inference_service.imaging import ImageError, decode_image
from inference_service.postprocess import MAX_DET, MAX_NMS, MAX_WH, nms, to_original
from inference_service.runtime import Detector

logger = logging.getLogger(__name__)

TOLERANCE = 0.01  # 1 mAP50 point


def write_yolo_view(eval_set: EvalSet, folder: Path) -> Path:
    """A YOLO dataset (linked images, labels in the model's class order) of exactly these photos."""
    images, labels = folder / "images" / "val", folder / "labels" / "val"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(eval_set.samples):
        stem = f"{i:06d}_{s.image.stem}"
        link = images / f"{stem}{s.image.suffix.lower()}"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(s.image.resolve(), link)
        xywh = xyxy_to_xywh(s.gt.xyxy) / np.array([s.width, s.height] * 2, np.float32)
        (labels / f"{stem}.txt").write_text(
            "".join(
                f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
                for c, (x, y, w, h) in zip(s.gt.class_id.tolist(), xywh.tolist(), strict=True)
            )
        )
    data_yaml = folder / "data.yaml"
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(eval_set.classes))
    data_yaml.write_text(f"path: {folder.resolve()}\ntrain: images/val\nval: images/val\nnames:\n{names}\n")
    return data_yaml


def ultralytics_metric(
    gts: Sequence[Detections], preds: Sequence[Detections], workdir: Path
) -> tuple[float | None, float | None, dict[int, float]]:
    """Our predictions scored by Ultralytics' own matching and AP code: (mAP50, mAP50-95, AP50 per class)."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class

    validator = DetectionValidator(save_dir=workdir, args={"plots": False})
    tps, confs, pcls, tcls = [], [], [], []
    for gt, pred in zip(gts, preds, strict=True):
        order = np.argsort(-pred.score, kind="stable")
        pred = pred[order]
        if len(pred) and len(gt):
            iou = torch.from_numpy(box_iou(gt.xyxy, pred.xyxy))
            correct = validator.match_predictions(
                torch.from_numpy(pred.class_id), torch.from_numpy(gt.class_id), iou
            ).numpy()
        else:
            correct = np.zeros((len(pred), 10), bool)
        tps.append(correct)
        confs.append(pred.score)
        pcls.append(pred.class_id)
        tcls.append(gt.class_id)
    target = np.concatenate(tcls)
    if target.size == 0:
        return None, None, {}
    result = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(pcls), target)
    ap, classes = result[5], result[6]
    return float(ap[:, 0].mean()), float(ap.mean()), {int(c): float(a) for c, a in zip(classes, ap[:, 0], strict=True)}


def ultralytics_val(onnx_path: Path, data_yaml: Path, imgsz: int, iou: float, workdir: Path) -> dict[str, Any]:
    """``YOLO(onnx).val()`` with our floor confidence and NMS IoU; square letterbox (the input is fixed)."""
    from ultralytics import YOLO

    metrics = YOLO(str(onnx_path), task="detect").val(
        data=str(data_yaml),
        imgsz=imgsz,
        batch=1,
        conf=0.001,
        iou=iou,
        rect=False,
        plots=False,
        verbose=False,
        device="cpu",
        project=str(workdir),
        name="val",
        exist_ok=True,
    )
    return {
        "map50": float(metrics.box.map50),
        "map50_95": float(metrics.box.map),
        "ap50": {int(c): float(a) for c, a in zip(metrics.ap_class_index, metrics.box.ap50, strict=True)},
        "instances": int(np.sum(metrics.nt_per_class)) if metrics.nt_per_class is not None else None,
    }


def multilabel_decode(pred: np.ndarray, conf: float, iou: float, max_det: int = MAX_DET) -> Detections:
    """Ultralytics' validation NMS (``multi_label=True``) on one ``(4 + nc, anchors)`` output."""
    anchor, cls = np.nonzero(conf < pred[4:].T)
    if anchor.size == 0:
        return Detections.empty()
    score = pred[4:][cls, anchor]
    if anchor.size > MAX_NMS:
        top = np.argsort(-score, kind="stable")[:MAX_NMS]
        anchor, cls, score = anchor[top], cls[top], score[top]
    boxes = xywh_to_xyxy(pred[:4, anchor].T)
    keep = nms(boxes + cls[:, None].astype(np.float32) * MAX_WH, score, iou, max_det)
    return Detections(boxes[keep], cls[keep], score[keep])


def multilabel_predictions(
    detector: Detector, eval_set: EvalSet, full_size: bool, conf: float = 0.001
) -> list[Detections]:
    """The served preprocessing (or a full-size decode) with Ultralytics' validation NMS."""
    model, size = detector.model, detector.input_size
    out: list[Detections] = []
    for sample in eval_set.samples:
        try:
            img = decode_image(sample.image.read_bytes(), None if full_size else max(size))
        except (OSError, ImageError):
            out.append(Detections.empty())
            continue
        tensor, geometry = detector.input_tensor(img)
        (raw,) = model.session.run([model.output_name], {model.input_name: tensor.astype(model.input_dtype)})
        dets = multilabel_decode(np.asarray(raw, np.float32)[0], conf, detector.card.nms_iou)
        dets = to_original(dets, geometry)
        if (img.width, img.height) != (sample.width, sample.height):
            dets = dets.scaled(sample.width / img.width, sample.height / img.height)
        labelled = np.isin(dets.class_id, eval_set.labelled) if len(dets) else np.zeros(0, bool)
        out.append(dets[labelled])
    return out


def explain(steps: Sequence[dict[str, Any]]) -> list[str]:
    """One line per rung of the ladder: how many mAP50 points it moved and why."""
    why = [
        "metric convention: COCO's 101-point sampled envelope and 100 boxes per class and photo vs Ultralytics' "
        "trapezoid over the interpolated envelope and 300 boxes per photo",
        "multi-label NMS: Ultralytics' validation keeps a box for every class above 0.001 at an anchor, the "
        "service only the anchor's best class (extra low-scored boxes of other classes add recall)",
        "decode: full-size decode instead of the service's DCT-reduced JPEG decode (better-filtered downscale)",
        "the rest: OpenCV's JPEG decoder and Ultralytics' resize-then-letterbox (long side rounded up, two "
        "resampling steps) vs one letterbox resize",
    ]
    lines = []
    for a, b, reason in zip(steps[:-1], steps[1:], why, strict=False):
        line = f"{100 * (b['map50'] - a['map50']):+.2f} points, {reason}"
        shares = _class_shares(a.get("ap50"), b.get("ap50"))
        if shares:
            line += f"; largest class moves (mAP50 points): {shares}"
        lines.append(line)
    return lines


def _class_shares(before: dict[str, float] | None, after: dict[str, float] | None, top: int = 2) -> str:
    """The classes that moved the mean most between two rungs (their AP50 change over the class count)."""
    if not before or not after or set(before) != set(after):
        return ""
    n = len(before)
    moves = sorted(((after[c] - before[c]) / n, c) for c in before)
    biggest = sorted(moves, key=lambda m: -abs(m[0]))[:top]
    return ", ".join(f"{c} {100 * m:+.2f}" for m, c in biggest if abs(m) >= 0.0005)


def crosscheck(
    detector: Detector,
    eval_set: EvalSet,
    preds: Sequence[Detections],
    ours: CocoScores,
    workdir: Path,
) -> dict[str, Any]:
    """``preds``: our floor predictions restricted to labelled classes, scored non-federated (like Ultralytics)."""
    from training.offline import prepare_offline

    prepare_offline(workdir / ".ultralytics")
    card = detector.card
    gts = [s.gt for s in eval_set.samples]
    pil_open = Image.open
    try:
        import ultralytics

        data_yaml = write_yolo_view(eval_set, workdir / "yolo")
        assert ours.map50 is not None and ours.map is not None
        ours_map50 = ours.map50
        first = {"step": "ours: served pipeline, pycocotools", "map50": ours.map50, "map50_95": ours.map}
        steps: list[dict[str, Any]] = [{**first, "ap50": {eval_set.classes[c]: v for c, v in ours.ap50.items()}}]
        for label, dets in (
            ("our predictions, Ultralytics' metric", preds),
            ("+ multi-label NMS", multilabel_predictions(detector, eval_set, full_size=False)),
            ("+ full-size decode", multilabel_predictions(detector, eval_set, full_size=True)),
        ):
            m50, m5095, per_class = ultralytics_metric(gts, dets, workdir / "metric")
            ap50 = {eval_set.classes[c]: v for c, v in per_class.items()}
            steps.append({"step": label, "map50": m50, "map50_95": m5095, "ap50": ap50})
        theirs = ultralytics_val(detector.model.onnx_path, data_yaml, max(card.input_size), card.nms_iou, workdir)
        steps.append(
            {
                "step": "Ultralytics val (its own pipeline)",
                "map50": theirs["map50"],
                "map50_95": theirs["map50_95"],
                "ap50": {eval_set.classes[c]: v for c, v in theirs["ap50"].items()},
            }
        )
    finally:
        # importing ultralytics patches PIL's open for the whole process (to pip-install a HEIF plugin on an
        # unidentified file); put back the open it found, even if it was imported before this call
        patches = sys.modules.get("ultralytics.utils.patches")
        Image.open = getattr(patches, "_image_open", pil_open)
    diff = ours_map50 - theirs["map50"]
    return {
        "ultralytics_version": ultralytics.__version__,
        "ours_map50": round(ours_map50, 4),
        "ultralytics_map50": round(theirs["map50"], 4),
        "ultralytics_map50_95": round(theirs["map50_95"], 4),
        "ultralytics_ap50": {eval_set.classes[c]: round(v, 4) for c, v in theirs["ap50"].items()},
        "ultralytics_instances": theirs["instances"],
        "difference": round(diff, 4),
        "within_tolerance": abs(diff) <= TOLERANCE,
        # same predictions, two metric implementations: the check of our scoring itself
        "metric_difference": round(steps[0]["map50"] - steps[1]["map50"], 4),
        # Ultralytics' pipeline choices emulated on our side vs Ultralytics itself: what stays unexplained
        "unexplained": round(steps[-2]["map50"] - steps[-1]["map50"], 4),
        "explanation": explain(steps),
        "steps": [
            {
                **st,
                "map50": round(st["map50"], 4),
                "map50_95": round(st["map50_95"], 4),
                **({"ap50": {k: round(v, 4) for k, v in st["ap50"].items()}} if "ap50" in st else {}),
            }
            for st in steps
        ],
    }
