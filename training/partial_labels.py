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
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inference_service.detections import Detections
from inference_service.runtime import Detector
from training.dataset import content_hash, link_stem, manifest_row, render_card_markdown, split_counts, yolo_lines
from training.importer import Sample

log = logging.getLogger(__name__)


def labelled_classes(dataset_card: dict[str, Any], classes: list[str]) -> dict[str, set[str]]:
    """Which dataset classes each source labels (from its class map)."""
    return {s["name"]: {t for t in s["class_map"].values() if t in classes} for s in dataset_card["sources"]}


def load_manifest(root: Path) -> list[tuple[Sample, str]]:
    out = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        m = json.loads(line)
        boxes = np.array(m["boxes"], np.float32).reshape(-1, 5)
        dets = Detections(boxes[:, :4], boxes[:, 4].astype(np.int64), np.ones(len(boxes), np.float32))
        out.append((Sample(Path(m["image"]), m["source"], m["width"], m["height"], dets, m["sha1"]), m["split"]))
    return out


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


def _derived_dataset(root: Path, out: Path, samples: list[tuple[Sample, str]], derivation: str) -> Path:
    """Write ``(sample, split)`` pairs as a dataset (links, labels, manifest, card) with the class list of
    ``root``. Its card keeps the parent's sources and licences, names the parent and how it was derived, and
    has its own content-hash version, so a model trained on it says what it learned from."""
    data = yaml.safe_load((root / "data.yaml").read_text())
    parent = json.loads((root / "dataset_card.json").read_text())
    groups = {m["image"]: m["group"] for m in map(json.loads, (root / "manifest.jsonl").read_text().splitlines())}
    manifest = []
    for sample, split in samples:
        stem = link_stem(sample)
        for kind in ("images", "labels"):
            (out / kind / split).mkdir(parents=True, exist_ok=True)
        link = out / "images" / split / f"{stem}{sample.image.suffix.lower()}"
        if not link.exists():
            os.symlink(sample.image, link)
        (out / "labels" / split / f"{stem}.txt").write_text(yolo_lines(sample))
        manifest.append(manifest_row(sample, split, groups[str(sample.image)]))
    data["path"] = str(out.resolve())
    (out / "data.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    (out / "manifest.jsonl").write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in manifest))
    photos, sides = [s for s, _ in samples], [split for _, split in samples]
    kept = {s.source for s in photos}
    card = {
        **parent,
        "version": content_hash(parent["classes"], photos, sides),
        "derived_from": parent["version"],
        "derivation": derivation,
        **split_counts(photos, sides, parent["classes"]),
        "duplicate_groups": sum(1 for c in Counter(m["group"] for m in manifest).values() if c > 1),
        "sources": [s for s in parent["sources"] if s["name"] in kept],
        "boxes_per_source_and_class": {k: v for k, v in parent["boxes_per_source_and_class"].items() if k in kept},
        "issues_per_source": {k: v for k, v in parent["issues_per_source"].items() if k in kept},
    }
    (out / "dataset_card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1))
    (out / "README.md").write_text(render_card_markdown(card))
    return out / "data.yaml"


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
    return _derived_dataset(root, out, samples, derivation)


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
    return _derived_dataset(root, out, samples, f"only the photos of {', '.join(sorted(sources))}")
