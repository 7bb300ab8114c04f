"""Run the served pipeline over an evaluation set: the same ``Detector`` the service uses, photo by photo.

Predictions are kept down to a floor confidence (default 0.001) so PR curves reach full recall. The
detections the service would return at its operating thresholds are exactly the floor detections that
reach their class threshold (:func:`at_thresholds`): NMS is class-aware and greedy by score, so whether
a box survives depends only on higher-scored boxes of its class, all of which are above the floor too
(only the 300-box cap could differ, on a photo with more than 300 boxes above threshold).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from evaluation.data import EvalSample
from inference_service.detections import Detections
from inference_service.imaging import ImageError
from inference_service.runtime import Detector

logger = logging.getLogger(__name__)

FLOOR_CONF = 0.001


@dataclass(frozen=True)
class Prediction:
    detections: Detections  # down to the floor confidence; model class ids; upright original pixels
    timings_ms: dict[str, float] = field(default_factory=dict)  # decode/preprocess/infer/postprocess/total
    error: str | None = None  # the photo could not be decoded (every box of it counts as missed)


def predict(
    detector: Detector, samples: Sequence[EvalSample], floor: float = FLOOR_CONF, log_every: int = 100
) -> list[Prediction]:
    """One ``Detector.detect`` per photo (as a request would), with its stage timings."""
    out: list[Prediction] = []
    mismatched = 0
    start = time.perf_counter()
    for i, sample in enumerate(samples):
        try:
            data = sample.image.read_bytes()
            t0 = time.perf_counter()
            result = detector.detect(data, conf=floor)
            total = (time.perf_counter() - t0) * 1000.0
        except (OSError, ImageError) as exc:
            logger.warning("cannot read %s: %s", sample.image, exc)
            out.append(Prediction(Detections.empty(), error=getattr(exc, "message", None) or str(exc)))
            continue
        if (result.width, result.height) != (sample.width, sample.height):
            mismatched += 1
            sx, sy = sample.width / result.width, sample.height / result.height
            dets = result.detections.scaled(sx, sy)
        else:
            dets = result.detections
        out.append(Prediction(dets, {**result.timings_ms, "total": round(total, 3)}))
        if log_every and (i + 1) % log_every == 0:
            logger.info("predicted %d/%d photos (%.1f s)", i + 1, len(samples), time.perf_counter() - start)
    if mismatched:
        logger.warning("%d photos decode to another size than their labels declare; boxes were rescaled", mismatched)
    return out


def at_thresholds(dets: Detections, thresholds: npt.NDArray[np.float32]) -> Detections:
    """The detections the service returns at these per-class thresholds."""
    if len(dets) == 0:
        return dets
    return dets[dets.score >= thresholds[dets.class_id]]


def keep_classes(dets: Detections, classes: Sequence[int]) -> Detections:
    if len(dets) == 0:
        return dets
    return dets[np.isin(dets.class_id, np.asarray(classes, np.int64))]


def remap_classes(dets: Detections, mapping: npt.NDArray[np.int64]) -> Detections:
    """Class ids through ``mapping`` (old id -> new id, -1 drops the box), e.g. a baseline's classes by name."""
    if len(dets) == 0:
        return dets
    new = mapping[dets.class_id]
    keep = new >= 0
    return Detections(dets.xyxy[keep], new[keep], dets.score[keep])
