"""One definition for a class whose boxes mark different things: each box becomes its holder's box.

The smoking photos box the cigarette, the hand holding it, the mouth with it, an exhaled cloud or a pipe, and
of two near-identical photos one may be boxed and the other not. No detector learns one thing from that. The
rule written here makes the class one thing, the person who smokes, with a teacher that boxes persons
consistently (the COCO checkpoint of ``training.teacher``):

- a box of the class becomes the teacher's holder box (``person``, confidence >= ``--min-conf``) that covers
  the largest share of it, when that share is at least ``--min-cover`` (ties: the smaller holder);
- two boxes that land on one holder become one box;
- a box no holder covers (a hand and a cigarette filling the frame, a cigarette alone) stays as drawn.

Every split is relabelled, validation included, so the class is scored against the definition it is trained
on; the derived dataset's card records the rule and its counts.

    hazardscan relabel --data work/datasets/hazardscan-a748fad37621 --class smoking \\
        --teacher work/teacher/yolov8n-coco --write work/datasets/smoker
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from inference_service.detections import Detections
from training.importer import Sample

log = logging.getLogger(__name__)


def holder_of(
    boxes: npt.NDArray[np.floating], holders: npt.NDArray[np.floating], min_cover: float
) -> npt.NDArray[np.int64]:
    """For each box, the index of the holder covering the largest share of its area (ties: the smaller
    holder), or -1 when no holder covers ``min_cover`` of it. Boxes and holders are ``(n, 4)`` xyxy."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    holders = np.asarray(holders, np.float64).reshape(-1, 4)
    if not len(boxes) or not len(holders):
        return np.full(len(boxes), -1, np.int64)
    iw = np.minimum(boxes[:, None, 2], holders[None, :, 2]) - np.maximum(boxes[:, None, 0], holders[None, :, 0])
    ih = np.minimum(boxes[:, None, 3], holders[None, :, 3]) - np.maximum(boxes[:, None, 1], holders[None, :, 1])
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    cover = np.clip(iw, 0, None) * np.clip(ih, 0, None) / area[:, None]
    holder_area = (holders[:, 2] - holders[:, 0]) * (holders[:, 3] - holders[:, 1])
    # the largest cover first, then the smaller holder: lexsort's last key is the primary one
    order = np.lexsort((np.broadcast_to(holder_area, cover.shape), -cover), axis=1)
    best = order[:, 0]
    best_cover = cover[np.arange(len(boxes)), best]
    return np.where(best_cover >= min_cover, best, -1).astype(np.int64)


def relabel_boxes(
    labels: Detections, class_id: int, holders: npt.NDArray[np.floating], min_cover: float
) -> tuple[Detections, int, int]:
    """``labels`` with the boxes of ``class_id`` replaced by their holders' boxes (one box per holder); also
    how many of those boxes found a holder and how many did not (they stay as drawn)."""
    mine = labels.class_id == class_id
    boxes = labels.xyxy[mine]
    held = holder_of(boxes, holders, min_cover)
    holders = np.asarray(holders, np.float32).reshape(-1, 4)
    used = sorted(set(held[held >= 0].tolist()))
    new_xyxy = np.concatenate([holders[used], boxes[held < 0]]).astype(np.float32).reshape(-1, 4)
    new = Detections(new_xyxy, np.full(len(new_xyxy), class_id, np.int64), np.ones(len(new_xyxy), np.float32))
    return Detections.concat([labels[~mine], new]), int((held >= 0).sum()), int((held < 0).sum())


def relabel(
    root: Path,
    teacher: Path,
    class_name: str,
    out: Path,
    holder: str = "person",
    min_conf: float = 0.3,
    min_cover: float = 0.5,
) -> dict[str, Any]:
    """Write ``out``, a copy of the dataset at ``root`` with ``class_name`` relabelled by the rule of the module
    doc; returns the counts and the new data.yaml."""
    from inference_service.runtime import Detector
    from training.dataset import load_manifest, write_derived_dataset

    classes = json.loads((root / "dataset_card.json").read_text())["classes"]
    if class_name not in classes:
        raise ValueError(f"{root} has no class {class_name!r} (it has {classes})")
    class_id = classes.index(class_name)
    detector = Detector.load(teacher)
    if holder not in detector.card.classes:
        raise ValueError(f"the teacher {detector.card.model_id} has no class {holder!r}")
    holder_id = detector.card.classes.index(holder)
    counts = {"photos": 0, "held": 0, "unheld": 0, "boxes_after": 0}
    samples: list[tuple[Sample, str]] = []
    for sample, split in load_manifest(root):
        if (sample.labels.class_id == class_id).any():
            found = detector.detect(sample.image.read_bytes(), conf=min_conf).detections
            labels, held, unheld = relabel_boxes(
                sample.labels, class_id, found.xyxy[found.class_id == holder_id], min_cover
            )
            counts["photos"] += 1
            counts["held"] += held
            counts["unheld"] += unheld
            counts["boxes_after"] += int((labels.class_id == class_id).sum())
            sample = Sample(sample.image, sample.source, sample.width, sample.height, labels, sample.sha1)
        samples.append((sample, split))
    counts = {**counts, "boxes_before": counts["held"] + counts["unheld"]}  # each box either found a holder or not
    derivation = (
        f"{class_name} relabelled as its {holder}: on {counts['photos']} photos (every split), each of "
        f"{counts['boxes_before']} boxes became the box of the {detector.card.model_id} {holder} (confidence >= "
        f"{min_conf}) covering the largest share of it, at least {min_cover} ({counts['held']} boxes; one box per "
        f"{holder}), or stayed as drawn ({counts['unheld']}); {counts['boxes_after']} boxes after"
    )
    data_yaml = write_derived_dataset(root, out, samples, derivation)
    log.info("%s", derivation)
    return {**counts, "derivation": derivation, "data_yaml": str(data_yaml)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="a built dataset folder (holds manifest.jsonl)")
    p.add_argument("--class", dest="class_name", required=True, help="the dataset class to relabel, e.g. smoking")
    p.add_argument("--teacher", type=Path, required=True, help="a model folder that detects the holder class")
    p.add_argument("--holder", default="person", help="the teacher class whose box a relabelled box becomes")
    p.add_argument("--min-conf", type=float, default=0.3, help="the teacher's confidence for a holder")
    p.add_argument("--min-cover", type=float, default=0.5, help="the share of a box a holder must cover")
    p.add_argument("--write", type=Path, required=True, help="the folder for the relabelled copy")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.min_cover <= 1 or not 0 <= args.min_conf <= 1:
        sys.stderr.write("error: --min-cover must be in (0, 1] and --min-conf in [0, 1]\n")
        return 2
    try:
        report = relabel(
            args.data, args.teacher, args.class_name, args.write, args.holder, args.min_conf, args.min_cover
        )
    except (ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    return 0
