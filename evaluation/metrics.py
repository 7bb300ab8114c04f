"""Detection and hazard metrics.

* mAP50 and mAP50-95, overall, per class and per photo subset, from pycocotools' ``COCOeval`` (bbox,
  area range 'all', maxDets 100; classes without ground truth are left out of every mean, as COCO does).
* Precision / recall / F1 at operating thresholds, from the COCO-style IoU 0.5 matching table.
* A confusion matrix (with a background row and column) at operating thresholds.
* Hazard-level photo figures: the taxonomy's rules applied to ground truth and to predictions.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluation.matching import MatchTable, counts_at
from inference_service.detections import Detections, box_iou, xyxy_to_xywh
from inference_service.taxonomy import Taxonomy


@dataclass(frozen=True)
class CocoScores:
    map50: float | None  # None: no ground truth at all
    map: float | None  # mAP50-95
    ap50: dict[int, float]  # per class with ground truth
    ap: dict[int, float]


def _coco_dicts(
    gts: Sequence[Detections], preds: Sequence[Detections], sizes: Sequence[tuple[int, int]], n_classes: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    images = [{"id": i + 1, "width": int(w), "height": int(h)} for i, (w, h) in enumerate(sizes)]
    categories = [{"id": c + 1, "name": str(c)} for c in range(n_classes)]

    def anns(dets_list: Sequence[Detections], with_score: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, dets in enumerate(dets_list):
            xywh = xyxy_to_xywh(dets.xyxy)
            xywh[:, :2] -= xywh[:, 2:] / 2  # centre -> top-left corner
            for box, c, s in zip(xywh.tolist(), dets.class_id.tolist(), dets.score.tolist(), strict=True):
                a: dict[str, Any] = {
                    "id": len(out) + 1,
                    "image_id": i + 1,
                    "category_id": int(c) + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
                if with_score:
                    a["score"] = float(s)
                out.append(a)
        return out

    gt = {"images": images, "categories": categories, "annotations": anns(gts, False)}
    dt = {"images": images, "categories": categories, "annotations": anns(preds, True)}
    return gt, dt


class CocoEvaluator:
    """pycocotools run once over all photos; :meth:`scores` re-accumulates for any subset of photos."""

    def __init__(
        self,
        gts: Sequence[Detections],
        preds: Sequence[Detections],
        sizes: Sequence[tuple[int, int]],
        n_classes: int,
    ) -> None:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        self.n_classes = n_classes
        self.n_images = len(gts)
        gt_doc, dt_doc = _coco_dicts(gts, preds, sizes, n_classes)
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco_gt, coco_dt = COCO(), COCO()
            coco_gt.dataset, coco_dt.dataset = gt_doc, dt_doc
            coco_gt.createIndex()
            coco_dt.createIndex()
            self._eval = COCOeval(coco_gt, coco_dt, iouType="bbox")
            p = self._eval.params
            p.imgIds = list(range(1, self.n_images + 1))
            p.areaRng, p.areaRngLbl = [[0.0, 1e5**2]], ["all"]  # only 'all' is read; saves 3/4 of the work
            p.maxDets = [100]
            if self.n_images:
                self._eval.evaluate()

    def scores(self, images: Sequence[int] | None = None) -> CocoScores:
        """mAP over the photos at these indices (all when ``None``)."""
        if not self.n_images or (images is not None and len(images) == 0):
            return CocoScores(None, None, {}, {})
        ev = self._eval
        if images is not None:
            # accumulate(p) with a subset of imgIds indexes evalImgs by position in the subset (a pycocotools
            # bug), so hand it an evaluation whose per-image results are cut to the subset instead.
            keep = sorted({int(i) for i in images})
            ev = copy.copy(self._eval)
            ev.params = copy.deepcopy(self._eval.params)
            ev._paramsEval = copy.deepcopy(self._eval._paramsEval)
            n_img, n_area = self.n_images, len(ev._paramsEval.areaRng)
            ev.evalImgs = [
                self._eval.evalImgs[(k * n_area + a) * n_img + i]
                for k in range(len(ev._paramsEval.catIds))
                for a in range(n_area)
                for i in keep
            ]
            ev.params.imgIds = ev._paramsEval.imgIds = [i + 1 for i in keep]
        p = ev.params
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
        precision = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K) at area 'all', maxDets 100
        ap50: dict[int, float] = {}
        ap: dict[int, float] = {}
        for k, cat in enumerate(p.catIds):
            if (precision[0, :, k] > -1).any():
                ap50[cat - 1] = float(precision[0, :, k].mean())
                ap[cat - 1] = float(precision[:, :, k].mean())
        return CocoScores(
            float(np.mean(list(ap50.values()))) if ap50 else None,
            float(np.mean(list(ap.values()))) if ap else None,
            ap50,
            ap,
        )


def prf_at(table: MatchTable, thresholds: npt.NDArray[np.float32]) -> dict[str, Any]:
    """Per class and micro-averaged precision, recall and F1 of what reaches the thresholds."""
    c = counts_at(table, thresholds)
    tp, fp, fn = c["tp"].astype(float), c["fp"].astype(float), c["fn"].astype(float)

    def ratios(tp: Any, fp: Any, fn: Any) -> tuple[Any, Any, Any]:
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
            r = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            f = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        return p, r, f

    p, r, f = ratios(tp, fp, fn)
    mp, mr, mf = ratios(tp.sum(), fp.sum(), fn.sum())
    return {
        "per_class": {"precision": p, "recall": r, "f1": f, **c},
        "micro": {"precision": float(mp), "recall": float(mr), "f1": float(mf)},
    }


def confusion_matrix(
    gts: Sequence[Detections], preds: Sequence[Detections], n_classes: int, iou_threshold: float = 0.5
) -> npt.NDArray[np.int64]:
    """Rows: true class (last row: background = false positive); columns: predicted class (last: missed).

    Per photo, gt and predicted boxes of any class pair up greedily by IoU (highest first, >= threshold).
    """
    m = np.zeros((n_classes + 1, n_classes + 1), np.int64)
    bg = n_classes
    for gt, pred in zip(gts, preds, strict=True):
        used_g = np.zeros(len(gt), bool)
        used_p = np.zeros(len(pred), bool)
        if len(gt) and len(pred):
            iou = box_iou(gt.xyxy, pred.xyxy)
            gi, pi = np.nonzero(iou >= iou_threshold)
            for k in np.argsort(-iou[gi, pi], kind="mergesort").tolist():
                g, p = int(gi[k]), int(pi[k])
                if used_g[g] or used_p[p]:
                    continue
                used_g[g] = used_p[p] = True
                m[gt.class_id[g], pred.class_id[p]] += 1
        np.add.at(m, (gt.class_id[~used_g], bg), 1)
        np.add.at(m, (bg, pred.class_id[~used_p]), 1)
    return m


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def hazard_figures(
    taxonomy: Taxonomy,
    classes: Sequence[str],
    gts: Sequence[Detections],
    preds: Sequence[Detections],
    scored: Sequence[Sequence[int]],
) -> dict[str, Any]:
    """Photo-level: of photos with a hazard, how many were flagged; of photos without, how many raised it.

    ``preds`` are the detections at operating thresholds. ``scored[i]``: class ids labelled on photo i; a
    hazard is counted on a photo only when the photo's source labels its anchor ('when') classes.
    """
    gt_h = [{f.hazard_id for f in taxonomy.evaluate(g, classes)} for g in gts]
    pred_h = [{f.hazard_id for f in taxonomy.evaluate(p, classes)} for p in preds]
    scored_names = [{classes[c] for c in s} for s in scored]
    per_hazard: dict[str, Any] = {}
    for hazard in taxonomy.detectable_hazards(classes):
        photos = [i for i, names in enumerate(scored_names) if set(hazard.rule.when) & names]
        if not photos:
            continue
        with_h = [i for i in photos if hazard.id in gt_h[i]]
        without = [i for i in photos if hazard.id not in gt_h[i]]
        flagged = sum(hazard.id in pred_h[i] for i in with_h)
        alarms = sum(hazard.id in pred_h[i] for i in without)
        per_hazard[hazard.id] = {
            "name_zh": hazard.name_zh,
            "name_en": hazard.name_en,
            "severity": hazard.severity,
            "photos": len(photos),
            "photos_with": len(with_h),
            "flagged": flagged,
            "flag_rate": _rate(flagged, len(with_h)),
            "photos_without": len(without),
            "false_alarms": alarms,
            "false_alarm_rate": _rate(alarms, len(without)),
        }
    with_any = [i for i in range(len(gts)) if gt_h[i]]
    without_any = [i for i in range(len(gts)) if not gt_h[i]]
    flagged_any = sum(bool(pred_h[i]) for i in with_any)
    flagged_same = sum(bool(pred_h[i] & gt_h[i]) for i in with_any)
    alarms_any = sum(bool(pred_h[i]) for i in without_any)
    return {
        "any": {
            "photos_with_hazard": len(with_any),
            "flagged_any_hazard": flagged_any,
            "flagged_same_hazard": flagged_same,
            "flag_rate": _rate(flagged_any, len(with_any)),
            "same_hazard_rate": _rate(flagged_same, len(with_any)),
            "photos_without_hazard": len(without_any),
            "false_alarms": alarms_any,
            "false_alarm_rate": _rate(alarms_any, len(without_any)),
        },
        "per_hazard": per_hazard,
    }
