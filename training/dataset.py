"""Write the canonical dataset: Ultralytics YOLO layout (images linked, never copied), a manifest,
the import report and a dataset card with a content hash that names the dataset version."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inference_service.detections import Detections, xyxy_to_xywh
from training.importer import ImportResult, Sample, class_histogram
from training.split import NEAR_DUPLICATE_HASHES, duplicate_groups, split_groups

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuiltDataset:
    root: Path
    data_yaml: Path
    version: str
    classes: list[str]


def link_stem(sample: Sample) -> str:
    """File stem of a photo inside the dataset: source, original stem and a content prefix, so two photos
    with one name in different folders of a source (train/ and valid/ of a Roboflow export) both land."""
    return f"{sample.source}__{sample.image.stem}__{sample.sha1[:8]}"


def yolo_lines(sample: Sample) -> str:
    """Normalised ``cls cx cy w h`` lines of one sample."""
    if len(sample.labels) == 0:
        return ""
    xywh = xyxy_to_xywh(sample.labels.xyxy) / np.array([sample.width, sample.height] * 2, np.float32)
    return "".join(
        f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
        for c, (x, y, w, h) in zip(sample.labels.class_id.tolist(), xywh.tolist(), strict=True)
    )


def _fresh_split_folders(root: Path) -> None:
    """Empty ``images/`` and ``labels/`` (links and generated label files only) before a (re)build, so links
    left by an earlier build under other names cannot add photos twice; Ultralytics' label caches go too."""
    for kind in ("images", "labels"):
        for side in ("train", "val"):
            folder = root / kind / side
            if folder.exists():
                for entry in folder.iterdir():
                    if entry.is_symlink() or entry.is_file():
                        entry.unlink()
            folder.mkdir(parents=True, exist_ok=True)
        for cache in (root / kind).glob("*.cache"):
            cache.unlink()


def _write_pair(root: Path, sample: Sample, side: str, seen: Counter[str]) -> None:
    """Link the photo and write its label file; a second photo with the same stem (a byte-identical copy under
    the same name, or a repeat when resampling) gets its own numbered link instead of replacing the first."""
    stem = link_stem(sample)
    seen[stem] += 1
    if seen[stem] > 1:
        stem = f"{stem}__r{seen[stem] - 1}"
    os.symlink(sample.image, root / "images" / side / f"{stem}{sample.image.suffix.lower()}")
    (root / "labels" / side / f"{stem}.txt").write_text(yolo_lines(sample))


def manifest_row(s: Sample, side: str, group: int) -> dict[str, Any]:
    """One line of ``manifest.jsonl``: the photo, its split side, duplicate group and boxes in pixels."""
    return {
        "image": str(s.image),
        "source": s.source,
        "split": side,
        "width": s.width,
        "height": s.height,
        "sha1": s.sha1,
        "group": group,
        "boxes": [
            [*map(float, b), int(c)] for b, c in zip(s.labels.xyxy.tolist(), s.labels.class_id.tolist(), strict=True)
        ],
    }


def content_hash(classes: list[str], samples: list[Sample], sides: list[str]) -> str:
    """The dataset version: a hash of the class list and every photo's bytes, split side and labels."""
    h = hashlib.sha256()
    h.update(json.dumps(classes).encode())
    for s, side in sorted(zip(samples, sides, strict=True), key=lambda t: t[0].key):
        h.update(f"{s.key}|{s.sha1}|{side}|{yolo_lines(s)}".encode())
    return h.hexdigest()[:12]


def split_keeping(
    samples: list[Sample],
    hashes: list[int],
    bits: int,
    n_classes: int,
    val_fraction: float,
    keep_split_of: set[str] | frozenset[str] = frozenset(),
) -> tuple[list[str], list[int]]:
    """Sides and duplicate groups. Photos of the sources in ``keep_split_of`` get the sides a dataset of those
    sources alone gives them (so adding sources never moves an earlier version's photo across the split); a new
    photo in a duplicate group with such photos follows them (``train`` if they straddle, which only a new
    photo bridging two groups can cause); the other new photos are split among themselves."""
    groups = duplicate_groups([s.sha1 for s in samples], hashes, bits)
    old = [i for i, s in enumerate(samples) if s.source in keep_split_of]
    if not old:
        return split_groups(samples, groups, n_classes, val_fraction), groups
    old_groups = duplicate_groups([samples[i].sha1 for i in old], [hashes[i] for i in old], bits)
    side: list[str | None] = [None] * len(samples)
    for i, sd in zip(old, split_groups([samples[i] for i in old], old_groups, n_classes, val_fraction), strict=True):
        side[i] = sd
    pinned: dict[int, set[str]] = {}
    for i in old:
        pinned.setdefault(groups[i], set()).add(str(side[i]))
    free: list[int] = []
    for i, current in enumerate(side):
        if current is None and groups[i] in pinned:
            side[i] = "val" if pinned[groups[i]] == {"val"} else "train"
        elif current is None:
            free.append(i)
    free_sides = split_groups([samples[i] for i in free], [groups[i] for i in free], n_classes, val_fraction)
    for i, new_side in zip(free, free_sides, strict=True):
        side[i] = new_side
    return [str(x) for x in side], groups


def build_dataset(
    result: ImportResult,
    out_root: Path,
    val_fraction: float = 0.2,
    near_duplicates: str = "dhash",
    keep_split_of: set[str] | frozenset[str] = frozenset(),
) -> BuiltDataset:
    """Split (duplicate groups by ``near_duplicates``, a key of ``NEAR_DUPLICATE_HASHES``; the photos of the
    sources in ``keep_split_of`` keep the sides they have without the other sources) and write the dataset."""
    samples = result.samples
    hash_fn, bits = NEAR_DUPLICATE_HASHES[near_duplicates]
    hashes = [hash_fn(s.image) for s in samples]
    sides, groups = split_keeping(samples, hashes, bits, len(result.classes), val_fraction, keep_split_of)
    version = content_hash(result.classes, samples, sides)
    root = out_root / f"hazardscan-{version}"
    _fresh_split_folders(root)
    manifest = []
    seen: Counter[str] = Counter()
    for s, side, g in zip(samples, sides, groups, strict=True):
        _write_pair(root, s, side, seen)
        manifest.append(manifest_row(s, side, int(g)))
    (root / "manifest.jsonl").write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in manifest))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(
        yaml.safe_dump(
            {
                "path": str(root.resolve()),
                "train": "images/train",
                "val": "images/val",
                "names": dict(enumerate(result.classes)),
            },
            allow_unicode=True,
        )
    )
    card = dataset_card(result, sides, groups, version, f"{near_duplicates} within {bits} bits")
    if keep_split_of:
        card["split_kept_for"] = sorted(keep_split_of)  # these sources' photos sit where they would alone
    (root / "dataset_card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1))
    (root / "import_report.jsonl").write_text(
        "".join(json.dumps(i.__dict__, ensure_ascii=False) + "\n" for i in result.issues)
    )
    (root / "README.md").write_text(render_card_markdown(card))
    log.info("dataset %s: %d photos (%d val) at %s", version, len(samples), sides.count("val"), root)
    return BuiltDataset(root, data_yaml, version, list(result.classes))


def split_counts(samples: list[Sample], sides: list[str], classes: list[str]) -> dict[str, Any]:
    """Photos, boxes per class, photos per source and negatives, for each split side."""
    by_side = {side: [s for s, sd in zip(samples, sides, strict=True) if sd == side] for side in ("train", "val")}
    return {
        "photos": {side: len(v) for side, v in by_side.items()},
        "boxes_per_class": {
            side: dict(zip(classes, class_histogram(v, len(classes)).tolist(), strict=True))
            for side, v in by_side.items()
        },
        "photos_per_source": {side: dict(Counter(s.source for s in v)) for side, v in by_side.items()},
        "negatives": {side: sum(1 for s in v if len(s.labels) == 0) for side, v in by_side.items()},
    }


def dataset_card(
    result: ImportResult, sides: list[str], groups: list[int], version: str, near_duplicates: str
) -> dict[str, Any]:
    near_dup_groups = sum(1 for c in Counter(groups).values() if c > 1)
    return {
        "version": version,
        "classes": result.classes,
        **split_counts(result.samples, sides, result.classes),
        "duplicate_groups": near_dup_groups,
        "near_duplicates": near_duplicates,
        "sources": [
            {"name": s.name, "origin": s.origin, "licence": s.licence, "format": s.format, "class_map": s.class_map}
            for s in result.sources
        ],
        "boxes_per_source_and_class": result.class_counts(),
        "issues_per_source": result.issue_counts(),
    }


def render_card_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# Dataset hazardscan-{card['version']}",
        "",
        f"Photos: train {card['photos']['train']}, val {card['photos']['val']} "
        f"(negatives {card['negatives']['train']}/{card['negatives']['val']}); "
        f"near/exact duplicate groups kept on one side: {card['duplicate_groups']}.",
        "",
        "| class | train boxes | val boxes |",
        "|---|---|---|",
    ]
    for c in card["classes"]:
        lines.append(f"| {c} | {card['boxes_per_class']['train'][c]} | {card['boxes_per_class']['val'][c]} |")
    if "derived_from" in card:
        lines += ["", f"Derived from hazardscan-{card['derived_from']}: {card['derivation']}."]
    lines += ["", "| source | licence | origin | issues |", "|---|---|---|---|"]
    for s in card["sources"]:
        issues = ", ".join(f"{k} {v}" for k, v in sorted(card["issues_per_source"].get(s["name"], {}).items()))
        lines.append(f"| {s['name']} | {s['licence']} | {s['origin']} | {issues or '-'} |")
    return "\n".join(lines) + "\n"


def load_manifest(root: Path) -> list[tuple[Sample, str]]:
    out = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        m = json.loads(line)
        boxes = np.array(m["boxes"], np.float32).reshape(-1, 5)
        dets = Detections(boxes[:, :4], boxes[:, 4].astype(np.int64), np.ones(len(boxes), np.float32))
        out.append((Sample(Path(m["image"]), m["source"], m["width"], m["height"], dets, m["sha1"]), m["split"]))
    return out


def write_derived_dataset(
    root: Path,
    out: Path,
    samples: list[tuple[Sample, str]],
    derivation: str,
    classes: Sequence[str] | None = None,
    labelled_everywhere: Mapping[str, str] | None = None,
) -> Path:
    """Write ``(sample, split)`` pairs as a dataset (links, labels, manifest, card) with the class list of
    ``root``. Its card keeps the parent's sources and licences, names the parent and how it was derived, and
    has its own content-hash version, so a model trained on it says what it learned from.

    ``classes`` extends the parent's class list (the parent's first, in order: its label ids stay valid);
    ``labelled_everywhere`` (``{label name: class}``) adds those classes to every source's class map, for
    classes a teacher labelled on every photo (federated scoring then scores them everywhere)."""
    data = yaml.safe_load((root / "data.yaml").read_text())
    parent = json.loads((root / "dataset_card.json").read_text())
    if classes is not None:
        if list(classes[: len(parent["classes"])]) != parent["classes"]:
            raise ValueError(f"derived classes {list(classes)} must start with the parent's {parent['classes']}")
        parent = {**parent, "classes": list(classes)}
        data["names"] = dict(enumerate(classes))
    if labelled_everywhere:
        parent["sources"] = [{**s, "class_map": {**s["class_map"], **labelled_everywhere}} for s in parent["sources"]]
    groups = {m["image"]: m["group"] for m in map(json.loads, (root / "manifest.jsonl").read_text().splitlines())}
    manifest = []
    seen: Counter[str] = Counter()
    _fresh_split_folders(out)
    for sample, split in samples:
        _write_pair(out, sample, split, seen)
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
