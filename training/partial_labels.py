"""The partial-label problem: each public set labels only its own classes.

A helmet in a harness photo is unlabelled, so training teaches it as background. This module
(1) audits it — runs a model over every photo and counts confident detections of classes the photo's
source never labels (each is a missing label or a false alarm; a person settles which in Label
Studio) — and (2) handles it by writing a pseudo-labelled copy of the dataset in which those
detections become labels, for the next training round.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from inference_service.detections import Detections
from inference_service.runtime import Detector
from training.dataset import load_manifest, write_derived_dataset
from training.importer import Sample

log = logging.getLogger(__name__)


def labelled_classes(dataset_card: dict[str, Any], classes: list[str]) -> dict[str, set[str]]:
    """Which dataset classes each source labels (from its class map)."""
    return {s["name"]: {t for t in s["class_map"].values() if t in classes} for s in dataset_card["sources"]}


def audit(detector: Detector, root: Path, min_conf: float = 0.5) -> tuple[dict[str, Any], dict[str, Detections]]:
    """Counts of confident foreign-class detections per source and class, and the detections themselves."""
    card = json.loads((root / "dataset_card.json").read_text())
    classes = card["classes"]
    # model class id -> dataset class id, by name; model classes the dataset lacks are ignored
    to_dataset = np.array([classes.index(c) if c in classes else -1 for c in detector.card.classes], np.int64)
    if (to_dataset < 0).all():
        raise ValueError(f"model classes {detector.card.classes} share none with the dataset's {classes}")
    own = labelled_classes(card, classes)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    photos_with: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    pseudo: dict[str, Detections] = {}
    for sample, _split in load_manifest(root):
        foreign = [i for i, c in enumerate(classes) if c not in own[sample.source]]
        dets = detector.detect(sample.image.read_bytes(), conf=min_conf).detections
        ids = to_dataset[dets.class_id]
        keep = np.isin(ids, foreign)
        if keep.any():
            pseudo[str(sample.image)] = Detections(dets.xyxy[keep], ids[keep], np.ones(int(keep.sum()), np.float32))
            for c in set(ids[keep].tolist()):
                photos_with[sample.source][classes[c]] += 1
            for c in ids[keep].tolist():
                counts[sample.source][classes[c]] += 1
    photos = card["photos_per_source"]
    report = {
        "min_conf": min_conf,
        "boxes": {s: dict(v) for s, v in counts.items()},
        "photos_with_foreign_class": {s: dict(v) for s, v in photos_with.items()},
        "photos_per_source": {s: photos["train"].get(s, 0) + photos["val"].get(s, 0) for s in own},
    }
    return report, pseudo


def write_pseudo_dataset(root: Path, pseudo: dict[str, Detections], out: Path, teacher: str, min_conf: float) -> Path:
    """A copy of the dataset (links, labels) where training photos get the pseudo-labels added.

    Validation labels stay as the humans drew them, so scores stay comparable between rounds.
    """
    samples = []
    added = photos = 0
    for sample, split in load_manifest(root):
        extra = pseudo.get(str(sample.image)) if split == "train" else None
        if extra is not None:
            labels = Detections.concat([sample.labels, extra])
            sample = Sample(sample.image, sample.source, sample.width, sample.height, labels, sample.sha1)
            added, photos = added + len(extra), photos + 1
        samples.append((sample, split))
    derivation = (
        f"{added} pseudo-labels on {photos} training photos: detections of {teacher} with confidence >= {min_conf} "
        "of classes the photo's source does not label; validation labels unchanged"
    )
    return write_derived_dataset(root, out, samples, derivation)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="a built dataset folder (holds manifest.jsonl)")
    p.add_argument("--min-conf", type=float, default=0.5)
    p.add_argument("--write", type=Path, help="also write a pseudo-labelled copy of the dataset here")


def run(args: argparse.Namespace) -> int:
    detector = Detector.load(args.model)
    report, pseudo = audit(detector, args.data, args.min_conf)
    if args.write:
        teacher = f"{detector.card.model_id} {detector.card.version}"
        report["pseudo_data_yaml"] = str(write_pseudo_dataset(args.data, pseudo, args.write, teacher, args.min_conf))
    sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    return 0


def subset_dataset(root: Path, sources: set[str], out: Path) -> Path:
    """The same dataset (same split, same class list) restricted to some sources: the 'without the other
    sets' arm of the partial-label ablation."""
    samples = [(s, split) for s, split in load_manifest(root) if s.source in sources]
    return write_derived_dataset(root, out, samples, f"only the photos of {', '.join(sorted(sources))}")
