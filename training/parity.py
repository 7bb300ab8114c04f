"""Does the exported ONNX model compute what the PyTorch checkpoint computes?

Two checks, both on validation photos:
1. Same tensor in, same boxes out: the service's own preprocessing feeds the PyTorch model and the
   ONNX session through the service runtime's postprocess; boxes are matched per class and their IoU
   reported (target: every matched pair IoU >= 0.98).
2. Same accuracy: Ultralytics' validator scores the checkpoint and each ONNX file on the same split
   (target: mAP50 within 0.5 points for fp32).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference_service.detections import Detections, box_iou
from inference_service.model_card import load_model
from inference_service.postprocess import postprocess
from inference_service.runtime import Detector, session_options
from training.offline import prepare_offline

log = logging.getLogger(__name__)


def match_boxes(a: Detections, b: Detections, min_iou: float = 0.5) -> tuple[list[float], int, int]:
    """Greedy same-class matching: IoUs of matched pairs, unmatched in ``a``, unmatched in ``b``."""
    ious: list[float] = []
    used_b: set[int] = set()
    unmatched_a = 0
    order = np.argsort(-a.score)
    for i in order.tolist():
        same = [j for j in np.flatnonzero(b.class_id == a.class_id[i]).tolist() if j not in used_b]
        if not same:
            unmatched_a += 1
            continue
        iou = box_iou(a.xyxy[i : i + 1], b.xyxy[same])[0]
        k = int(np.argmax(iou))
        if iou[k] < min_iou:
            unmatched_a += 1
            continue
        used_b.add(same[k])
        ious.append(float(iou[k]))
    return ious, unmatched_a, len(b) - len(used_b)


def tensor_parity(pt: Path, onnx_path: Path, images: Sequence[Path], conf: float = 0.25) -> dict[str, Any]:
    prepare_offline(pt.parent / ".ultralytics")
    import torch
    from ultralytics import YOLO

    torch_model = YOLO(str(pt)).model.float().eval()  # type: ignore[union-attr]
    loaded = load_model(onnx_path, session_options())
    card = loaded.card
    detector = Detector(loaded)
    thresholds = card.thresholds(conf)
    ious: list[float] = []
    only_torch = only_onnx = 0
    max_abs = 0.0
    groups = card.group_ids()
    for path in images:
        img = detector.decode(path.read_bytes())
        tensor, geometry = detector.input_tensor(img)
        with torch.no_grad():
            raw = torch_model(torch.from_numpy(tensor))
        ref = (raw[0] if isinstance(raw, list | tuple) else raw).numpy()
        (out,) = loaded.session.run([loaded.output_name], {loaded.input_name: tensor})
        max_abs = max(max_abs, float(np.abs(np.asarray(out) - ref).max()))
        (d_ref,) = postprocess(ref, [geometry], thresholds, card.nms_iou, groups=groups)
        (d_onnx,) = postprocess(np.asarray(out, np.float32), [geometry], thresholds, card.nms_iou, groups=groups)
        m, a, b = match_boxes(d_ref, d_onnx)
        ious += m
        only_torch += a
        only_onnx += b
    return {
        "photos": len(images),
        "matched_boxes": len(ious),
        "min_iou": round(min(ious), 4) if ious else None,
        "mean_iou": round(float(np.mean(ious)), 5) if ious else None,
        "only_pytorch": only_torch,
        "only_onnx": only_onnx,
        "max_abs_output_diff": round(max_abs, 5),
    }


def ultralytics_map(weights: Path, data_yaml: Path, imgsz: int, workdir: Path) -> dict[str, Any]:
    """mAP50 / mAP50-95 of any Ultralytics-loadable weights (.pt or .onnx) on the data's val split."""
    prepare_offline(workdir / ".ultralytics")
    from ultralytics import YOLO

    metrics = YOLO(str(weights), task="detect").val(
        data=str(data_yaml),
        imgsz=imgsz,
        batch=1 if weights.suffix == ".onnx" else 16,
        conf=0.001,
        rect=False,  # square letterbox for every backend, as the service feeds them
        iou=0.7,
        plots=False,
        verbose=False,
        device="cpu",
        project=str(workdir),
        name=weights.stem,
        exist_ok=True,
    )
    per_class = {
        metrics.names[int(c)]: round(float(ap), 4)
        for c, ap in zip(metrics.ap_class_index, metrics.box.ap50, strict=True)
    }
    return {
        "mAP50": round(float(metrics.box.map50), 4),
        "mAP50-95": round(float(metrics.box.map), 4),
        "per_class_ap50": per_class,
    }
