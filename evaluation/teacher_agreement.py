"""How far a COCO teacher's ``person`` boxes agree with what people labelled, by confidence: the measurement
that picks the pseudo-label threshold of ``hazardscan partial-labels --add-classes person``.

    python -m evaluation.teacher_agreement --teacher work/teacher/yolov8n-coco --data work/datasets/hazardscan-<v> \
        [--split val] [--datasets-root ../shared/datasets]

No photo set labels people (the 23 e-bike photos aside), but every labelled head (``helmet``, ``no_helmet``),
upper body (``workwear``, ``no_workwear``) and harness belongs to one. So, per confidence threshold:

- recall: the share of those anchor boxes whose centre lies inside a teacher person box;
- precision: the share of teacher person boxes that hold an anchor's centre, on photos of the sources that label
  every worker's head (``helmet`` and ``no_helmet`` both labelled); an unlabelled worker counts against it, so
  it is a lower bound;
- on the e-bike photos, precision and recall against their human ``person`` boxes at IoU 0.5.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inference_service.detections import Detections, box_iou
from training.dataset import load_manifest
from training.importer import SourceSpec, import_source

ANCHORS = ("helmet", "no_helmet", "workwear", "no_workwear", "safety_harness")
HEADS = ("helmet", "no_helmet")
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7)


def _inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``[P, B]``: point p lies in box b."""
    x, y = points[:, :1], points[:, 1:]
    return (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])


def anchor_agreement(
    photos: Sequence[tuple[Detections, Detections, bool]], thresholds: Sequence[float] = THRESHOLDS
) -> list[dict[str, Any]]:
    """``photos``: (anchor boxes, teacher person boxes with scores, whether every head there is labelled)."""
    rows = []
    for t in thresholds:
        found = anchors = supported = persons = 0
        for anchor, person, full in photos:
            boxes = person.xyxy[person.score >= t]
            centres = (anchor.xyxy[:, :2] + anchor.xyxy[:, 2:]) / 2
            hit = _inside(centres, boxes) if len(boxes) else np.zeros((len(centres), 0), bool)
            anchors += len(centres)
            found += int(hit.any(1).sum())
            if full:
                persons += len(boxes)
                supported += int(hit.any(0).sum())
        recall = found / anchors if anchors else float("nan")
        precision = supported / persons if persons else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        rows.append(
            {"conf": t, "anchors": anchors, "recall": recall, "persons": persons, "precision": precision, "f1": f1}
        )
    return rows


def human_agreement(
    photos: Sequence[tuple[Detections, Detections]], thresholds: Sequence[float] = THRESHOLDS, iou: float = 0.5
) -> list[dict[str, Any]]:
    """Greedy one-to-one matching of teacher person boxes (by score) to human person boxes at ``iou``."""
    rows = []
    for t in thresholds:
        tp = n_pred = n_gt = 0
        for human, person in photos:
            pred = person[person.score >= t]
            n_pred, n_gt = n_pred + len(pred), n_gt + len(human)
            if not len(pred) or not len(human):
                continue
            ious = box_iou(pred.xyxy[np.argsort(-pred.score)], human.xyxy)
            used: set[int] = set()
            for row in ious:
                j = next((int(j) for j in np.argsort(-row) if row[j] >= iou and int(j) not in used), None)
                if j is not None:
                    used.add(j)
                    tp += 1
        rows.append(
            {
                "conf": t,
                "human": n_gt,
                "teacher": n_pred,
                "precision": tp / n_pred if n_pred else float("nan"),
                "recall": tp / n_gt if n_gt else float("nan"),
            }
        )
    return rows


def teacher_persons(detector: Any, images: Sequence[Path], floor: float = 0.05) -> dict[str, Detections]:
    person = detector.card.classes.index("person")
    out = {}
    for image in images:
        dets = detector.detect(image.read_bytes(), conf=floor).detections
        out[str(image)] = dets[dets.class_id == person]
    return out


def measure(
    detector: Any, root: Path, split: str, ebike_spec: Mapping[str, Any] | None, datasets_root: Path
) -> dict[str, Any]:
    card = json.loads((root / "dataset_card.json").read_text())
    classes = card["classes"]
    anchor_ids = [classes.index(c) for c in ANCHORS if c in classes]
    own = {s["name"]: set(s["class_map"].values()) for s in card["sources"]}
    samples = [s for s, sd in load_manifest(root) if sd == split]
    persons = teacher_persons(detector, [s.image for s in samples])
    photos = [
        (s.labels[np.isin(s.labels.class_id, anchor_ids)], persons[str(s.image)], set(HEADS) <= own[s.source])
        for s in samples
    ]
    report: dict[str, Any] = {"data": card["version"], "split": split, "anchors": anchor_agreement(photos)}
    if ebike_spec is not None:
        spec = SourceSpec.from_dict({**ebike_spec, "class_map": {"person": "person"}})
        imported = import_source(spec, datasets_root, ["person"])
        ebike = teacher_persons(detector, [s.image for s in imported.samples])
        report["ebike_humans"] = human_agreement([(s.labels, ebike[str(s.image)]) for s in imported.samples])
    return report


def main(argv: Sequence[str] | None = None) -> int:
    import yaml

    from inference_service.runtime import Detector

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--ebike-spec", type=Path, default=Path("datasets/sources/ebike-elevator.yaml"))
    p.add_argument("--datasets-root", type=Path, default=Path("../shared/datasets"))
    args = p.parse_args(argv)
    spec = yaml.safe_load(args.ebike_spec.read_text()) if args.ebike_spec.exists() else None
    report = measure(Detector.load(args.teacher), args.data, args.split, spec, args.datasets_root)
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
