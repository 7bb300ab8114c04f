"""Operating points: a per-class score threshold chosen for a stated goal, and writing it into the card.

Goals: ``max_f1`` (the threshold of highest F1), ``max_f1:P`` (highest F1 among thresholds whose
precision is at least P: a weak class is not given an alarm-spraying low threshold) or ``precision:P``
(the lowest threshold whose precision is at least P, i.e. the most recall that keeps the precision
floor). A class whose goal cannot be met, or that has no ground truth, keeps the threshold it has.
Thresholds are chosen on the validation split; figures at them on that same split are optimistic by
construction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from evaluation.matching import MatchTable, pr_points
from inference_service.model_card import ModelCard, parse_card

MIN_GT = 10  # fewer ground-truth boxes than this: a chosen threshold would be noise


@dataclass(frozen=True)
class Goal:
    kind: Literal["max_f1", "precision"]
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> Goal:
        if text == "max_f1":
            return cls("max_f1")
        kind, _, value = text.partition(":")
        try:
            p = float(value) if kind in ("precision", "max_f1") else float("nan")
        except ValueError:
            p = float("nan")
        if 0.0 < p <= 1.0:
            return cls("precision" if kind == "precision" else "max_f1", p)
        raise ValueError(f"threshold goal must be 'max_f1', 'max_f1:P' or 'precision:P' with 0 < P <= 1, got {text!r}")

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value:g}"


@dataclass(frozen=True)
class OperatingPoint:
    class_name: str
    threshold: float | None  # None: goal not met or nothing to choose from; the card keeps its threshold
    precision: float | None  # at the threshold, on the data it was chosen on
    recall: float | None
    f1: float | None
    gt: int
    met: bool
    note: str = ""


def tidy_threshold(hi: float, lo: float) -> float:
    """A short decimal in ``(lo, hi]`` (as float32 compares): same detections kept, nicer in a card."""
    hi32, lo32 = np.float32(hi), np.float32(lo)
    for decimals in range(1, 7):
        for t in (round(hi, decimals), math.floor(hi * 10**decimals) / 10**decimals):
            if lo32 < np.float32(t) <= hi32:
                return t
    return float(hi32)


def choose(
    scores: npt.NDArray[np.float32],
    tp: npt.NDArray[np.float64],
    fp: npt.NDArray[np.float64],
    n_gt: float,
    goal: Goal,
) -> tuple[float | None, float | None, float | None, float | None, bool]:
    """(threshold, precision, recall, f1, met) from one class's predictions in descending score order.

    Only cuts between different scores are possible (a threshold keeps every tie).
    """
    if n_gt <= 0 or scores.size == 0:
        return None, None, None, None, False
    cuts = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    t, f = tp[cuts], fp[cuts]
    precision = t / np.maximum(t + f, 1e-12)
    recall = t / n_gt
    f1 = 2 * t / np.maximum(2 * t + f + (n_gt - t), 1e-12)
    if goal.kind == "max_f1":
        allowed = np.ones(len(cuts), bool) if goal.value is None else precision >= goal.value - 1e-12
        if not allowed.any():
            return None, None, None, None, False
        k = int(np.argmax(np.where(allowed, f1, -1.0)))
        met = bool(f1[k] > 0)
    else:
        assert goal.value is not None
        ok = np.flatnonzero(precision >= goal.value - 1e-12)
        if ok.size == 0:
            return None, None, None, None, False
        k, met = int(ok[-1]), True
    i = int(cuts[k])
    lower = float(scores[i + 1]) if i + 1 < scores.size else 0.0
    return tidy_threshold(float(scores[i]), lower), float(precision[k]), float(recall[k]), float(f1[k]), met


def choose_thresholds(
    table: MatchTable, classes: Sequence[str], goal: Goal, min_gt: int = MIN_GT
) -> list[OperatingPoint]:
    """One operating point per class; fewer than ``min_gt`` boxes are too few to choose from (kept, noted)."""
    points = []
    gt = table.n_gt.sum(axis=0)
    for c, name in enumerate(classes):
        scores, tp, fp, n_gt = pr_points(table, c)
        thr, p, r, f, met = choose(scores, tp, fp, n_gt, goal)
        if n_gt <= 0:
            note = "no ground truth: threshold kept"
        elif thr is None:
            note = f"{goal} cannot be met: threshold kept"
        elif n_gt < min_gt:
            note, met = f"only {int(n_gt)} boxes (< {min_gt}): threshold kept", False
        else:
            note = ""
        points.append(OperatingPoint(name, thr if met else None, p, r, f, int(gt[c]), met, note))
    return points


def card_path_for(onnx_path: Path, card_path: Path | None) -> Path:
    """Where a model's card JSON lives or should be written (beside the model)."""
    if card_path is not None:
        return card_path
    return onnx_path.parent / "card.json" if onnx_path.name == "model.onnx" else onnx_path.with_suffix(".card.json")


def card_document(card: ModelCard) -> dict[str, Any]:
    """The card as a flat JSON document (extra keys back at the top level)."""
    doc = card.public_dict()
    extra = doc.pop("extra", {}) or {}
    return {**doc, **extra}


def updated_card(
    doc: Mapping[str, Any], points: Sequence[OperatingPoint], goal: Goal, chosen_on: Mapping[str, Any]
) -> dict[str, Any]:
    """The card document with new ``class_thresholds`` and the goal recorded under ``operating_points``."""
    out = dict(doc)
    thresholds = dict(out.get("class_thresholds") or {})
    thresholds.update({p.class_name: p.threshold for p in points if p.threshold is not None})
    out["class_thresholds"] = thresholds
    out["operating_points"] = {
        "goal": str(goal),
        "chosen_on": dict(chosen_on),
        "per_class": {p.class_name: {k: v for k, v in asdict(p).items() if k != "class_name"} for p in points},
    }
    parse_card(out, "updated card")  # refuses to write a card the service would reject
    return out


def write_card(
    path: Path, card: ModelCard, points: Sequence[OperatingPoint], goal: Goal, chosen_on: Mapping[str, Any]
) -> Path:
    doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else card_document(card)
    new = updated_card(doc, points, goal, chosen_on)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(new, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
