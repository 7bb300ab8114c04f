"""Decode Ultralytics YOLOv8/YOLO11 detection output into :class:`Detections` (pure NumPy).

The ONNX output is ``(B, 4 + nc, anchors)``: ``cx, cy, w, h`` in letterboxed-input pixels followed by
per-class scores that are already sigmoid-activated. Per image: best class per anchor, drop scores not
above the lowest threshold in use, class-aware NMS, ``max_det`` cap, undo the letterbox exactly like
Ultralytics ``scale_boxes``, scale from the decoded array to the original photo, clip, and finally keep
each detection only if it reaches its class's operating threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inference_service.detections import Detections, box_iou, xywh_to_xyxy

MAX_WH = 7680.0  # class offset for class-aware NMS; larger than any input side (Ultralytics' max_wh)
MAX_NMS = 30_000  # boxes entering NMS at most, best scores first
MAX_DET = 300


@dataclass(frozen=True)
class ImageGeometry:
    """How one image went into the model: letterbox gains and padding, then decoded→original scale."""

    gain: tuple[float, float]  # (gx, gy) decoded → resized pixels
    pad: tuple[int, int]  # (left, top) letterbox padding
    scale: tuple[float, float]  # (sx, sy) decoded → original pixels (DCT-reduced decode)
    size: tuple[int, int]  # (width, height) of the upright original


def nms(xyxy: npt.ArrayLike, scores: npt.ArrayLike, iou_threshold: float, max_det: int | None = None) -> np.ndarray:
    """Greedy NMS; indices of the kept boxes, best score first.

    A box is dropped when a better kept box overlaps it with IoU strictly above ``iou_threshold``
    (torchvision semantics). Stops once ``max_det`` boxes are kept.
    """
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)
    conf = np.asarray(scores, np.float32).reshape(-1)
    if boxes.shape[0] != conf.shape[0]:
        raise ValueError(f"xyxy has {boxes.shape[0]} boxes but scores has {conf.shape[0]} entries")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    order = np.argsort(-conf, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if max_det is not None and len(keep) >= max_det:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, np.int64)


def _grouped_candidates(
    scores: np.ndarray, conf: float, groups: Sequence[npt.NDArray[np.int64]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group, each anchor's best class above ``conf``: (score, anchor, class id) of every candidate."""
    found = []
    for group in groups:
        best = scores[group].max(axis=0)
        anchors = np.flatnonzero(best > conf)
        found.append((best[anchors], anchors, group[scores[group][:, anchors].argmax(axis=0)]))
    score, anchors, class_id = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return score.astype(np.float32, copy=False), anchors, class_id.astype(np.int64, copy=False)


def decode_predictions(
    pred: np.ndarray,
    conf: float,
    iou: float,
    max_det: int = MAX_DET,
    classes: npt.NDArray[np.int64] | None = None,
    groups: Sequence[npt.NDArray[np.int64]] | None = None,
) -> Detections:
    """One image's ``(4 + nc, anchors)`` output to detections in letterboxed-input pixels.

    ``classes``: keep only anchors whose best class is one of these (before NMS, like Ultralytics).
    ``groups``: class ids that compete for an anchor (the card's ``label_groups``): an anchor answers with its
    best class of each group, so a class in a group of its own never takes an anchor from the others. ``None``:
    one group of every class.
    """
    scores = pred[4:]
    if groups is None:
        best = scores.max(axis=0)
        candidates = np.flatnonzero(best > conf)
        class_id = scores[:, candidates].argmax(axis=0)
        score = best[candidates]
    else:
        score, candidates, class_id = _grouped_candidates(scores, conf, groups)
    if classes is not None:
        wanted = np.isin(class_id, classes)
        candidates, class_id, score = candidates[wanted], class_id[wanted], score[wanted]
    if candidates.size == 0:
        return Detections.empty()
    if candidates.size > MAX_NMS:
        top = np.argsort(-score, kind="stable")[:MAX_NMS]
        candidates, class_id, score = candidates[top], class_id[top], score[top]
    boxes = xywh_to_xyxy(pred[:4, candidates].T)
    keep = nms(boxes + class_id[:, None].astype(np.float32) * MAX_WH, score, iou, max_det)
    return Detections(boxes[keep], class_id[keep], score[keep])


def to_original(dets: Detections, geometry: ImageGeometry) -> Detections:
    """Letterboxed-input pixels back to upright original pixels, clipped to the photo."""
    if len(dets) == 0:
        return dets
    left, top = geometry.pad
    gx, gy = geometry.gain
    sx, sy = geometry.scale
    xyxy = (dets.xyxy - np.array([left, top, left, top], np.float32)) / np.array([gx, gy, gx, gy], np.float32)
    if (sx, sy) != (1.0, 1.0):
        xyxy = xyxy * np.array([sx, sy, sx, sy], np.float32)
    return Detections(xyxy.astype(np.float32), dets.class_id, dets.score).clipped(*geometry.size)


def apply_thresholds(dets: Detections, thresholds: npt.NDArray[np.float32]) -> Detections:
    """Keep detections whose score reaches the threshold of their class."""
    if len(dets) == 0:
        return dets
    return dets[dets.score >= thresholds[dets.class_id]]


def postprocess(
    output: np.ndarray,
    geometries: Sequence[ImageGeometry],
    thresholds: npt.NDArray[np.float32],
    iou: float,
    max_det: int = MAX_DET,
    classes: Sequence[int] | None = None,
    groups: Sequence[Sequence[int]] | None = None,
) -> list[Detections]:
    """Batch output ``(B, 4 + nc, anchors)`` to one :class:`Detections` per image in original pixels.

    ``thresholds``: per-class operating thresholds (class order); the lowest one in use is the pre-NMS
    floor. ``classes``: class ids to keep (all when ``None``). ``groups``: see :func:`decode_predictions`.
    """
    if output.ndim != 3 or output.shape[0] != len(geometries):
        raise ValueError(f"output must be (B={len(geometries)}, 4+nc, anchors), got {output.shape}")
    if output.shape[1] != 4 + thresholds.shape[0]:
        raise ValueError(f"output has {output.shape[1] - 4} classes but {thresholds.shape[0]} thresholds were given")
    wanted = None if classes is None else np.asarray(classes, np.int64)
    floor = float(thresholds.min() if wanted is None or wanted.size == 0 else thresholds[wanted].min())
    grouped = None if groups is None else [np.asarray(g, np.int64) for g in groups]
    results = []
    for pred, geometry in zip(output, geometries, strict=True):
        dets = decode_predictions(pred.astype(np.float32, copy=False), floor, iou, max_det, wanted, grouped)
        results.append(apply_thresholds(to_original(dets, geometry), thresholds))
    return results
