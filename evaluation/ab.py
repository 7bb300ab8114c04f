"""A/B comparison of two models on the same photos: paired bootstrap over photos.

Each resample draws the photos with replacement (the same draw for both models, so photo difficulty
cancels out) and recomputes every class's AP50 for both from their matching tables, weighting each
photo by how often it was drawn. The confidence interval of a difference is the percentile interval of
the resampled differences. mAP50 is averaged over the classes with ground truth in the resample.

The verdict gates a release: the candidate is *worse* when the whole interval of the mAP50 difference
lies below ``-margin``, *better* when it lies above ``+margin``, otherwise there is no clear difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from evaluation.matching import REC_THRS, MatchTable, class_ap

Verdict = Literal["worse", "better", "no_clear_difference"]


def _weighted_ap(tp: npt.NDArray[np.bool_], w: npt.NDArray[np.float64], n_gt: float) -> float:
    """COCO 101-point AP of score-sorted predictions with per-prediction weights (see matching.coco_ap)."""
    if n_gt <= 0:
        return float("nan")
    if tp.size == 0:
        return 0.0
    ctp = np.cumsum(w * tp)
    cfp = np.cumsum(w * ~tp)
    rc = ctp / n_gt
    pr = ctp / (ctp + cfp + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    inds = np.searchsorted(rc, REC_THRS, side="left")
    return float(np.where(inds < pr.size, pr[np.minimum(inds, pr.size - 1)], 0.0).mean())


class _Curves:
    """Per class: the photo index and TP flag of each prediction, in score order."""

    def __init__(self, table: MatchTable, classes: Sequence[int]) -> None:
        self.parts = {c: (table.image[table.class_id == c], table.tp[table.class_id == c]) for c in classes}

    def ap(self, c: int, weights: npt.NDArray[np.float64], n_gt: float) -> float:
        image, tp = self.parts[c]
        return _weighted_ap(tp, weights[image], n_gt)


@dataclass(frozen=True)
class Difference:
    current: float
    candidate: float
    diff: float
    ci: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {"current": self.current, "candidate": self.candidate, "diff": self.diff, "ci": list(self.ci)}


@dataclass(frozen=True)
class ABResult:
    map50: Difference
    per_class: dict[int, Difference]
    verdict: Verdict
    line: str
    resamples: int
    photos: int
    margin: float
    confidence: float
    regressions: list[int] = field(default_factory=list)  # classes whose whole interval is below -margin
    gate_classes: list[int] = field(default_factory=list)  # classes averaged into the gate's mAP50


def _fmt(x: float) -> str:
    return f"{100 * x:+.1f}"


def verdict_line(d: Difference, verdict: Verdict, confidence: float, names: Sequence[str] = (), scope: str = "") -> str:
    ci = f"[{confidence:.0%} CI {_fmt(d.ci[0])}, {_fmt(d.ci[1])}]"
    on = f"mAP50{f' ({scope})' if scope else ''}"
    if verdict == "worse":
        text = f"VERDICT: candidate worse than current on {on} by {100 * -d.diff:.1f} points {ci}"
    elif verdict == "better":
        text = f"VERDICT: candidate better than current on {on} by {100 * d.diff:.1f} points {ci}"
    else:
        text = f"VERDICT: no clear difference between candidate and current on {on} ({_fmt(d.diff)} points {ci})"
    if names:
        text += f"; per-class regressions: {', '.join(names)}"
    return text


def judge(ci: tuple[float, float], margin: float) -> Verdict:
    if ci[1] < -margin:
        return "worse"
    if ci[0] > margin:
        return "better"
    return "no_clear_difference"


def bootstrap_ab(
    current: MatchTable,
    candidate: MatchTable,
    class_names: Sequence[str],
    resamples: int = 1000,
    seed: int = 0,
    margin: float = 0.0,
    confidence: float = 0.95,
    min_gt: int = 1,
    shared: Sequence[int] | None = None,
) -> ABResult:
    """Compare two models' matching tables built on the same ground truth (same photos, same order).

    The gate's mAP50 averages the classes with at least ``min_gt`` boxes (all classes when none has): a
    class with a handful of boxes swings its AP by tens of points between resamples and would make the
    interval too wide to judge anything. Every class still gets its own interval. ``shared``: the class ids both
    models predict (None: all); a class only the candidate knows (a new class) is left out of the comparison
    instead of counting the current model's absent predictions as AP 0.
    """
    if not np.array_equal(current.n_gt, candidate.n_gt):
        raise ValueError("both tables must be built on the same photos and ground truth")
    classes = [c for c in current.classes_with_gt() if shared is None or c in shared]
    if not classes:
        raise ValueError("no ground truth: nothing to compare")
    totals = current.gt_total()
    gated = [j for j, c in enumerate(classes) if totals[c] >= min_gt] or list(range(len(classes)))
    n_photos = current.n_gt.shape[0]
    curves = (_Curves(current, classes), _Curves(candidate, classes))
    rng = np.random.default_rng(seed)
    diffs = np.full((resamples, len(classes)), np.nan)
    map_diffs = np.zeros(resamples)
    n_gt_photo = current.n_gt[:, classes].astype(np.float64)
    for r in range(resamples):
        w = np.bincount(rng.integers(0, n_photos, n_photos), minlength=n_photos).astype(np.float64)
        n_gt = w @ n_gt_photo
        for j, c in enumerate(classes):
            if n_gt[j] > 0:
                diffs[r, j] = curves[1].ap(c, w, n_gt[j]) - curves[0].ap(c, w, n_gt[j])
        row = diffs[r, gated]
        map_diffs[r] = np.nanmean(row) if np.isfinite(row).any() else 0.0
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2

    def interval(values: npt.NDArray[np.float64]) -> tuple[float, float]:
        v = values[np.isfinite(values)]
        return (float(np.percentile(v, lo_q)), float(np.percentile(v, hi_q))) if v.size else (0.0, 0.0)

    per_class: dict[int, Difference] = {}
    for j, c in enumerate(classes):
        a, b = class_ap(current, c), class_ap(candidate, c)
        assert a is not None and b is not None
        per_class[c] = Difference(a, b, b - a, interval(diffs[:, j]))
    gate = [per_class[classes[j]] for j in gated]
    cur_map = float(np.mean([d.current for d in gate]))
    cand_map = float(np.mean([d.candidate for d in gate]))
    overall = Difference(cur_map, cand_map, cand_map - cur_map, interval(map_diffs))
    verdict = judge(overall.ci, margin)
    regressions = [c for c, d in per_class.items() if judge(d.ci, margin) == "worse"]
    scope = "" if len(gated) == len(classes) else f"{len(gated)} classes with >= {min_gt} boxes"
    line = verdict_line(overall, verdict, confidence, [class_names[c] for c in regressions], scope)
    return ABResult(
        overall, per_class, verdict, line, resamples, n_photos, margin, confidence, regressions,
        [classes[j] for j in gated],
    )  # fmt: skip


def ab_dict(result: ABResult, class_names: Sequence[str]) -> dict[str, Any]:
    return {
        "verdict": result.verdict,
        "line": result.line,
        "resamples": result.resamples,
        "photos": result.photos,
        "margin": result.margin,
        "confidence": result.confidence,
        "map50": result.map50.as_dict(),
        "per_class": {class_names[c]: d.as_dict() for c, d in result.per_class.items()},
        "regressions": [class_names[c] for c in result.regressions],
        "gate_classes": [class_names[c] for c in result.gate_classes],
    }
