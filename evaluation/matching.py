"""COCO-style matching at one IoU, kept as a table so that AP, PR curves, thresholds and bootstrap
resamples all come from one pass.

The matching reproduces pycocotools ``COCOeval.evaluateImg`` for ``iouType='bbox'``, area range
'all', no crowd boxes: per photo and class, detections in descending score order (stable) are cut to
``max_det`` (100) and each takes the unmatched ground-truth box of highest IoU, if that IoU is at least
the threshold. AP is COCO's: precision made monotone, sampled at 101 recall points, averaged.
``tests/test_eval_metrics.py`` checks it against pycocotools itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inference_service.detections import Detections, box_iou

REC_THRS = np.linspace(0.0, 1.00, 101)
MAX_DET = 100  # pycocotools' maxDets for AP
IOU = 0.5


def match_image(
    gt: Detections, pred: Detections, iou_threshold: float = IOU, max_det: int = MAX_DET
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Per prediction kept: (prediction index, matched gt index or -1, IoU with the best same-class gt).

    Predictions beyond ``max_det`` per class are left out (pycocotools never sees them).
    """
    kept: list[int] = []
    matched: list[int] = []
    best_iou: list[float] = []
    for c in np.unique(np.concatenate([gt.class_id, pred.class_id])).tolist():
        p_idx = np.flatnonzero(pred.class_id == c)
        p_idx = p_idx[np.argsort(-pred.score[p_idx], kind="mergesort")][:max_det]
        g_idx = np.flatnonzero(gt.class_id == c)
        if p_idx.size == 0:
            continue
        ious = box_iou(pred.xyxy[p_idx], gt.xyxy[g_idx]) if g_idx.size else np.zeros((p_idx.size, 0), np.float32)
        taken = np.zeros(g_idx.size, bool)
        limit = min(iou_threshold, 1 - 1e-10)
        for row, p in enumerate(p_idx.tolist()):
            m = -1
            best = limit
            for g in range(g_idx.size):  # pycocotools' loop: the last gt of the highest IoU wins ties
                if taken[g] or ious[row, g] < best:
                    continue
                best, m = float(ious[row, g]), g
            if m >= 0:
                taken[m] = True
            kept.append(p)
            matched.append(int(g_idx[m]) if m >= 0 else -1)
            best_iou.append(float(ious[row].max()) if g_idx.size else 0.0)
    return np.asarray(kept, np.int64), np.asarray(matched, np.int64), np.asarray(best_iou, np.float32)


@dataclass(frozen=True)
class MatchTable:
    """Every scored prediction of a set of photos, sorted by descending score (ties: photo order)."""

    n_classes: int
    image: npt.NDArray[np.int64]  # (D,) photo index
    pred_index: npt.NDArray[np.int64]  # (D,) index into that photo's predictions
    class_id: npt.NDArray[np.int64]  # (D,)
    score: npt.NDArray[np.float32]  # (D,)
    gt_index: npt.NDArray[np.int64]  # (D,) matched gt within the photo, -1 for a false positive
    iou: npt.NDArray[np.float32]  # (D,) best IoU with any same-class gt box of the photo
    n_gt: npt.NDArray[np.int64]  # (photos, classes) ground-truth boxes

    @property
    def tp(self) -> npt.NDArray[np.bool_]:
        return self.gt_index >= 0

    def gt_total(self, weights: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.float64]:
        n = self.n_gt.astype(np.float64)
        return (n if weights is None else n * weights[:, None]).sum(axis=0)

    def classes_with_gt(self) -> list[int]:
        return np.flatnonzero(self.gt_total() > 0).tolist()


def build_table(gts: Sequence[Detections], preds: Sequence[Detections], n_classes: int) -> MatchTable:
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground-truth entries but {len(preds)} prediction entries")
    parts: list[tuple[np.ndarray, ...]] = []
    n_gt = np.zeros((len(gts), n_classes), np.int64)
    for i, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        np.add.at(n_gt[i], gt.class_id, 1)
        kept, matched, ious = match_image(gt, pred)
        if kept.size:
            parts.append((np.full(kept.size, i, np.int64), kept, pred.class_id[kept], pred.score[kept], matched, ious))
    if not parts:
        e_i, e_f = np.zeros(0, np.int64), np.zeros(0, np.float32)
        return MatchTable(n_classes, e_i, e_i, e_i, e_f, e_i, e_f, n_gt)
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    order = np.argsort(-cols[3], kind="mergesort")
    image, pred_index, class_id, score, gt_index, iou = (c[order] for c in cols)
    return MatchTable(n_classes, image, pred_index, class_id, score.astype(np.float32), gt_index, iou, n_gt)


def pr_points(
    table: MatchTable, class_id: int, weights: npt.NDArray[np.float64] | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """Score, cumulative TP and FP of each prediction of a class in score order, and the gt count.

    ``weights`` (per photo, e.g. bootstrap multiplicities) weight every prediction and gt box.
    """
    sel = table.class_id == class_id
    w = np.ones(int(sel.sum())) if weights is None else weights[table.image[sel]]
    tp = np.cumsum(w * table.tp[sel])
    fp = np.cumsum(w * ~table.tp[sel])
    n_gt = float(table.gt_total(weights)[class_id])
    return table.score[sel], tp, fp, n_gt


def coco_ap(tp: npt.NDArray[np.float64], fp: npt.NDArray[np.float64], n_gt: float) -> float | None:
    """pycocotools' AP from cumulative TP/FP counts; ``None`` without ground truth."""
    if n_gt <= 0:
        return None
    if tp.size == 0:
        return 0.0
    rc = tp / n_gt
    pr = tp / (tp + fp + np.spacing(1))
    pr = np.maximum.accumulate(pr[::-1])[::-1]
    inds = np.searchsorted(rc, REC_THRS, side="left")
    q = np.where(inds < pr.size, pr[np.minimum(inds, pr.size - 1)], 0.0)
    return float(q.mean())


def interpolated_pr(table: MatchTable, class_id: int) -> dict[str, list[float]] | None:
    """COCO's 101-point curve: at each recall threshold, the interpolated precision and the score needed."""
    scores, tp, fp, n_gt = pr_points(table, class_id)
    if n_gt <= 0:
        return None
    precision = np.zeros(REC_THRS.size)
    score = np.zeros(REC_THRS.size)
    if tp.size:
        rc = tp / n_gt
        pr = np.maximum.accumulate((tp / (tp + fp + np.spacing(1)))[::-1])[::-1]
        inds = np.searchsorted(rc, REC_THRS, side="left")
        ok = inds < pr.size
        precision[ok] = pr[inds[ok]]
        score[ok] = scores[inds[ok]]
    return {
        "recall": [round(float(r), 2) for r in REC_THRS],
        "precision": [round(float(p), 4) for p in precision],
        "score": [round(float(x), 4) for x in score],
    }


def class_ap(table: MatchTable, class_id: int, weights: npt.NDArray[np.float64] | None = None) -> float | None:
    _, tp, fp, n_gt = pr_points(table, class_id, weights)
    return coco_ap(tp, fp, n_gt)


def mean_ap(table: MatchTable, classes: Sequence[int] | None = None) -> float | None:
    values = [class_ap(table, c) for c in (table.classes_with_gt() if classes is None else classes)]
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else None


def counts_at(table: MatchTable, thresholds: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.int64]]:
    """Per class TP, FP, FN of the predictions that reach their class threshold."""
    keep = table.score >= thresholds[table.class_id]
    n = table.n_classes
    tp = np.bincount(table.class_id[keep & table.tp], minlength=n).astype(np.int64)
    fp = np.bincount(table.class_id[keep & ~table.tp], minlength=n).astype(np.int64)
    gt = table.n_gt.sum(axis=0)
    return {"tp": tp, "fp": fp, "fn": gt - tp, "gt": gt}


def gt_scores(table: MatchTable, gts: Sequence[Detections]) -> list[npt.NDArray[np.float32]]:
    """Per photo, per gt box: score of the prediction that matched it at the floor (0 when none)."""
    out: list[npt.NDArray[np.float32]] = [np.zeros(len(g), np.float32) for g in gts]
    hit = table.tp
    for img, g, s in zip(
        table.image[hit].tolist(), table.gt_index[hit].tolist(), table.score[hit].tolist(), strict=True
    ):
        out[img][g] = s
    return out
