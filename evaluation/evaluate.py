"""From predictions to every figure of the report: one model, one evaluation set.

Scoring is federated by default when the data says which classes each source labels: a prediction of
class C on a photo whose source never labels C is left unscored (it may be right; nobody drew it), and
so is the hazard it would raise. ``federated=False`` scores every prediction of every labelled class
(what Ultralytics' validator does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluation.data import EvalSet
from evaluation.matching import MatchTable, build_table, gt_scores, interpolated_pr
from evaluation.metrics import CocoEvaluator, CocoScores, confusion_matrix, hazard_figures, prf_at
from evaluation.predict import Prediction, at_thresholds, keep_classes
from inference_service.detections import Detections
from inference_service.taxonomy import Taxonomy


@dataclass
class Scored:
    """One model's predictions on one set, ready for metrics."""

    gts: list[Detections]
    preds: list[Detections]  # floor confidence, only scored classes
    table: MatchTable
    coco: CocoEvaluator
    overall: CocoScores
    federated: bool
    unscored: list[Detections]  # floor predictions of classes the photo's source does not label

    def unscored_at(self, thresholds: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Per class: unscored boxes that reach the threshold, and photos holding them. In deployment these
        are false alarms or unlabelled true objects; federated scoring cannot tell which."""
        n = len(thresholds)
        boxes = np.zeros(n, np.int64)
        photos = np.zeros(n, np.int64)
        for d in self.unscored:
            kept = at_thresholds(d, thresholds).class_id
            boxes += np.bincount(kept, minlength=n)[:n]
            photos += np.bincount(np.unique(kept), minlength=n)[:n]
        return boxes, photos

    def deployed(self, thresholds: npt.NDArray[np.float32]) -> list[Detections]:
        return [at_thresholds(p, thresholds) for p in self.preds]


def scored_classes(eval_set: EvalSet, federated: bool) -> list[list[int]]:
    return [eval_set.scored_classes(s) if federated else eval_set.labelled for s in eval_set.samples]


def score(eval_set: EvalSet, predictions: Sequence[Detections | Prediction], federated: bool = True) -> Scored:
    dets = [p.detections if isinstance(p, Prediction) else p for p in predictions]
    if len(dets) != len(eval_set.samples):
        raise ValueError(f"{len(dets)} predictions for {len(eval_set.samples)} photos")
    federated = federated and eval_set.source_classes is not None
    scored = scored_classes(eval_set, federated)
    preds = [keep_classes(d, s) for d, s in zip(dets, scored, strict=True)]
    unscored = [d[~np.isin(d.class_id, s)] if len(d) else d for d, s in zip(dets, scored, strict=True)]
    gts = [s.gt for s in eval_set.samples]
    n = len(eval_set.classes)
    coco = CocoEvaluator(gts, preds, [(s.width, s.height) for s in eval_set.samples], n)
    return Scored(gts, preds, build_table(gts, preds, n), coco, coco.scores(), federated, unscored)


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else round(float(x), 4)


def summary(
    eval_set: EvalSet, scored: Scored, thresholds: npt.NDArray[np.float32], taxonomy: Taxonomy
) -> dict[str, Any]:
    """Overall, per-class, per-source, hazard-level and confusion figures at the given thresholds."""
    classes = eval_set.classes
    prf = prf_at(scored.table, thresholds)
    pc = prf["per_class"]
    gt_counts = scored.table.n_gt.sum(axis=0)
    unscored_boxes, unscored_photos = scored.unscored_at(thresholds)
    per_class: list[dict[str, Any]] = []
    for c, name in enumerate(classes):
        if c not in eval_set.labelled:
            continue
        per_class.append(
            {
                "class": name,
                "gt": int(gt_counts[c]),
                "photos": int((scored.table.n_gt[:, c] > 0).sum()),
                "ap50": _num(scored.overall.ap50.get(c)),
                "ap50_95": _num(scored.overall.ap.get(c)),
                "threshold": _num(thresholds[c]),
                "precision": _num(pc["precision"][c]),
                "recall": _num(pc["recall"][c]),
                "f1": _num(pc["f1"][c]),
                "tp": int(pc["tp"][c]),
                "fp": int(pc["fp"][c]),
                "fn": int(pc["fn"][c]),
                "unscored_boxes": int(unscored_boxes[c]),
                "unscored_photos": int(unscored_photos[c]),
            }
        )
    per_source = {}
    for source in eval_set.sources:
        idx = [i for i, s in enumerate(eval_set.samples) if s.source == source]
        sc = scored.coco.scores(idx)
        per_source[source] = {
            "photos": len(idx),
            "gt": int(scored.table.n_gt[idx].sum()),
            "map50": _num(sc.map50),
            "map50_95": _num(sc.map),
            "ap50": {classes[c]: _num(v) for c, v in sc.ap50.items()},
        }
    deployed = scored.deployed(thresholds)
    hazards = hazard_figures(taxonomy, classes, scored.gts, deployed, scored_classes(eval_set, scored.federated))
    return {
        "overall": {
            "photos": len(eval_set.samples),
            "gt_boxes": int(gt_counts.sum()),
            "classes_scored": sum(1 for c in per_class if c["gt"] > 0),
            "map50": _num(scored.overall.map50),
            "map50_95": _num(scored.overall.map),
            **{k: _num(v) for k, v in prf["micro"].items()},
            "federated": scored.federated,
        },
        "per_class": per_class,
        "per_source": per_source,
        "hazards": hazards,
        "pr_curves": {classes[c]: interpolated_pr(scored.table, c) for c in eval_set.labelled if gt_counts[c] > 0},
        "confusion_matrix": {
            "labels": [*classes, "background"],
            "matrix": confusion_matrix(scored.gts, deployed, len(classes)).tolist(),
        },
    }


def _box(row: npt.NDArray[np.float32]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in row)
    return x1, y1, x2, y2


@dataclass(frozen=True)
class Example:
    """One box worth looking at: a false positive or a miss at operating thresholds."""

    photo: int
    box: tuple[float, float, float, float]
    class_id: int
    score: float  # the prediction's score (FP), or the best score the model gave this gt box (miss)
    iou: float  # FP: best IoU with a same-class gt box


def worst_examples(
    scored: Scored, thresholds: npt.NDArray[np.float32], per_class: int = 12
) -> tuple[dict[int, list[Example]], dict[int, list[Example]]]:
    """Per class: highest-scored false positives that reach the threshold, and missed gt boxes the model
    was least sure of (larger boxes first among equals)."""
    t = scored.table
    fps: dict[int, list[Example]] = {}
    misses: dict[int, list[Example]] = {}
    is_fp = ~t.tp & (t.score >= thresholds[t.class_id])
    for c in range(t.n_classes):
        rows = np.flatnonzero(is_fp & (t.class_id == c))[:per_class]
        fps[c] = [
            Example(
                int(t.image[r]),
                _box(scored.preds[t.image[r]].xyxy[t.pred_index[r]]),
                c,
                float(t.score[r]),
                float(t.iou[r]),
            )
            for r in rows
        ]
    found = gt_scores(t, scored.gts)
    candidates: dict[int, list[tuple[float, float, Example]]] = {}
    for i, (gt, best) in enumerate(zip(scored.gts, found, strict=True)):
        for k in np.flatnonzero(best < thresholds[gt.class_id]).tolist():
            c = int(gt.class_id[k])
            ex = Example(i, _box(gt.xyxy[k]), c, float(best[k]), 0.0)
            candidates.setdefault(c, []).append((float(best[k]), -float(gt.area[k]), ex))
    for c, items in candidates.items():
        items.sort(key=lambda x: (x[0], x[1]))
        misses[c] = [ex for _, _, ex in items[:per_class]]
    return fps, misses
