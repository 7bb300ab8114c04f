"""The one detection type that flows through import, runtime, evaluation and batch scanning.

Boxes are ``xyxy`` in pixels of the original image (after EXIF orientation), class ids index the
model card's class list, and scores are in [0, 1] (1.0 for ground truth).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Detections:
    xyxy: FloatArray  # (N, 4) float32, x1 y1 x2 y2 in original-image pixels
    class_id: IntArray  # (N,) int64
    score: FloatArray  # (N,) float32

    def __post_init__(self) -> None:
        xyxy = (
            np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
            if np.size(self.xyxy)
            else (np.zeros((0, 4), np.float32))
        )
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        n = xyxy.shape[0]
        if class_id.shape != (n,):
            raise ValueError(f"class_id must have shape ({n},) to match xyxy {xyxy.shape}, got {class_id.shape}")
        if score.shape != (n,):
            raise ValueError(f"score must have shape ({n},) to match xyxy {xyxy.shape}, got {score.shape}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "score", score)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[float, float, float, float, int, float]]) -> Detections:
        """Build from ``(x1, y1, x2, y2, class_id, score)`` rows; handy in tests and converters."""
        arr = np.asarray(list(rows), dtype=np.float64).reshape(-1, 6)
        return cls(arr[:, :4].astype(np.float32), arr[:, 4].astype(np.int64), arr[:, 5].astype(np.float32))

    @classmethod
    def concat(cls, parts: Iterable[Detections]) -> Detections:
        parts = list(parts)
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.score for p in parts]),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: slice | npt.NDArray[np.bool_] | npt.NDArray[np.integer] | list[int]) -> Detections:
        if isinstance(index, int):
            index = [index]
        return Detections(self.xyxy[index], self.class_id[index], self.score[index])

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, classes={sorted(set(self.class_id.tolist()))})"

    @property
    def area(self) -> FloatArray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return (wh[:, 0] * wh[:, 1]).astype(np.float32)

    def scaled(self, sx: float, sy: float) -> Detections:
        """Boxes multiplied by per-axis factors (e.g. from a reduced decode back to the original)."""
        factor = np.array([sx, sy, sx, sy], np.float32)
        return Detections(self.xyxy * factor, self.class_id, self.score)

    def clipped(self, width: int, height: int) -> Detections:
        xyxy = self.xyxy.copy()
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, width)
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, height)
        return Detections(xyxy, self.class_id, self.score)

    def equals(self, other: Detections, atol: float = 1e-4) -> bool:
        return (
            len(self) == len(other)
            and bool(np.array_equal(self.class_id, other.class_id))
            and bool(np.allclose(self.xyxy, other.xyxy, atol=atol))
            and bool(np.allclose(self.score, other.score, atol=atol))
        )


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise IoU of two ``(N, 4)`` and ``(M, 4)`` xyxy arrays, shape ``(N, M)``."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def xywh_to_xyxy(xywh: npt.ArrayLike) -> FloatArray:
    """Centre-size boxes to corner boxes (any units)."""
    b = np.asarray(xywh, np.float32).reshape(-1, 4)
    half = b[:, 2:] / 2
    return np.concatenate([b[:, :2] - half, b[:, :2] + half], axis=1)


def xyxy_to_xywh(xyxy: npt.ArrayLike) -> FloatArray:
    b = np.asarray(xyxy, np.float32).reshape(-1, 4)
    return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)
