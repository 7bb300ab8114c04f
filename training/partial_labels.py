"""The partial-label problem: each public set labels only its own classes.

A helmet in a harness photo is unlabelled, so training teaches it as background. This module
(1) audits it — runs a model over every photo and counts confident detections of classes the photo's
source never labels (each is a missing label or a false alarm; a person settles which in Label
Studio) — and (2) handles it by writing a pseudo-labelled copy of the dataset in which those
detections become labels, for the next training round.

The reviewed round, with a person in the loop:

    hazardscan partial-labels --model M --data D --push-review "pseudo-labels r1"   # LS project, pre-annotated
    # ... a reviewer corrects the boxes in Label Studio and submits ...
    hazardscan labelstudio pull <project> --out work/review-r1                        # an importable source
    hazardscan partial-labels --data D --reviewed work/review-r1/source.yaml --write work/datasets/reviewed-r1

The review starts from the photo's own labels plus its pseudo-labels (scored by confidence, so Label
Studio's "prediction score" ordering shows the most doubtful first); what the reviewer submits replaces
the photo's labels. Photos are matched back by their bytes (SHA-1), never by name.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inference_service.detections import Detections
from inference_service.runtime import Detector
from inference_service.taxonomy import load_taxonomy
from training.dataset import load_manifest, write_derived_dataset
from training.importer import Sample, SourceSpec, import_source

log = logging.getLogger(__name__)


def labelled_classes(dataset_card: dict[str, Any], classes: list[str]) -> dict[str, set[str]]:
    """Which dataset classes each source labels (from its class map)."""
    return {s["name"]: {t for t in s["class_map"].values() if t in classes} for s in dataset_card["sources"]}


def audit(
    detector: Detector,
    root: Path,
    min_conf: float = 0.5,
    add_classes: Sequence[str] = (),
    rename: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Detections]]:
    """Counts of confident foreign-class detections per source and class, and the detections themselves.

    ``add_classes`` extends the dataset's class list (appended, so existing ids stay) with classes no source
    labels, e.g. ``person`` from a COCO teacher; ``rename`` maps teacher class names onto dataset classes
    (``{"motorcycle": "ebike"}``); unmapped teacher classes match dataset classes by name or are ignored."""
    card = json.loads((root / "dataset_card.json").read_text())
    classes = [*card["classes"], *(c for c in add_classes if c not in card["classes"])]
    rename = dict(rename or {})
    # model class id -> dataset class id, by name; model classes the dataset lacks are ignored
    names = [rename.get(c, c) for c in detector.card.classes]
    to_dataset = np.array([classes.index(c) if c in classes else -1 for c in names], np.int64)
    if (to_dataset < 0).all():
        raise ValueError(f"model classes {detector.card.classes} share none with the dataset's {classes}")
    own = labelled_classes(card, classes)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    photos_with: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    pseudo: dict[str, Detections] = {}
    for sample, _split in load_manifest(root):
        foreign = [i for i, c in enumerate(classes) if c not in own.get(sample.source, set())]
        dets = detector.detect(sample.image.read_bytes(), conf=min_conf).detections
        ids = to_dataset[dets.class_id]
        keep = np.isin(ids, foreign)
        if keep.any():
            pseudo[str(sample.image)] = Detections(dets.xyxy[keep], ids[keep], dets.score[keep])
            for c in set(ids[keep].tolist()):
                photos_with[sample.source][classes[c]] += 1
            for c in ids[keep].tolist():
                counts[sample.source][classes[c]] += 1
    photos = card["photos_per_source"]
    report = {
        "min_conf": min_conf,
        "classes": classes,
        "boxes": {s: dict(v) for s, v in counts.items()},
        "photos_with_foreign_class": {s: dict(v) for s, v in photos_with.items()},
        "photos_per_source": {s: photos["train"].get(s, 0) + photos["val"].get(s, 0) for s in own},
    }
    return report, pseudo


def write_pseudo_dataset(
    root: Path,
    pseudo: dict[str, Detections],
    out: Path,
    teacher: str,
    min_conf: float,
    classes: Sequence[str] | None = None,
    label_val: bool = False,
) -> Path:
    """A copy of the dataset (links, labels) where training photos get the pseudo-labels added.

    Validation labels stay as the humans drew them, so scores stay comparable between rounds. ``classes``: the
    class list of the copy when the teacher adds classes (the parent's, extended). With ``label_val`` the
    validation photos get the pseudo-labels of the *added* classes too (never of the parent's classes): the
    teacher's boxes become the reference a student's new classes are scored against, and the card marks
    those classes as labelled on every photo."""
    parent = json.loads((root / "dataset_card.json").read_text())["classes"]
    new_ids = np.array([i for i, c in enumerate(classes or parent) if c not in parent], np.int64)
    samples = []
    added = photos = val_added = 0
    for sample, split in load_manifest(root):
        extra = pseudo.get(str(sample.image))
        if split == "val":
            extra = None if extra is None or not label_val else extra[np.isin(extra.class_id, new_ids)]
            val_added += 0 if extra is None else len(extra)
        elif extra is not None:
            added, photos = added + len(extra), photos + 1
        if extra is not None:
            labels = Detections.concat([sample.labels, extra])
            sample = Sample(sample.image, sample.source, sample.width, sample.height, labels, sample.sha1)
        samples.append((sample, split))
    derivation = (
        f"{added} pseudo-labels on {photos} training photos: detections of {teacher} with confidence >= {min_conf} "
        "of classes the photo's source does not label; "
        + (
            f"{val_added} on validation photos, of the added classes only (the teacher's boxes as their reference)"
            if label_val
            else "validation labels unchanged"
        )
    )
    added_names = [c for c in (classes or parent) if c not in parent]
    labelled_by_teacher = {f"{teacher}: {c}": c for c in added_names} if label_val else {}
    return write_derived_dataset(root, out, samples, derivation, classes, labelled_by_teacher)


def review_tasks(root: Path, pseudo: dict[str, Detections]) -> list[tuple[Path, Detections]]:
    """The training photos that got pseudo-labels, each with what its reviewer starts from: the source's
    own labels (score 1) followed by the pseudo-labels (scored by the teacher's confidence)."""
    return [
        (sample.image, Detections.concat([sample.labels, pseudo[str(sample.image)]]))
        for sample, split in load_manifest(root)
        if split == "train" and str(sample.image) in pseudo
    ]


def apply_review(root: Path, reviewed: list[Sample], out: Path, origin: str) -> Path:
    """A copy of the dataset in which every reviewed training photo (matched by SHA-1) has the reviewer's
    labels (class ids into the dataset's class list) instead of its own; no other label changes.

    Raises ``ValueError`` naming the reviewed photos that are not training photos of ``root``.
    """
    by_sha = {s.sha1: s for s in reviewed}
    samples, used = [], set()
    before = after = 0
    for sample, split in load_manifest(root):
        review = by_sha.get(sample.sha1) if split == "train" else None
        if review is not None:
            used.add(sample.sha1)
            labels = review.labels
            if (review.width, review.height) != (sample.width, sample.height):
                labels = labels.scaled(sample.width / review.width, sample.height / review.height)
            before, after = before + len(sample.labels), after + len(labels)
            sample = Sample(sample.image, sample.source, sample.width, sample.height, labels, sample.sha1)
        samples.append((sample, split))
    if stray := sorted(str(by_sha[h].image.name) for h in set(by_sha) - used):
        raise ValueError(f"{len(stray)} reviewed photos are not training photos of {root}: {stray[:5]}")
    derivation = (
        f"labels of {len(used)} training photos replaced by their review ({origin}): {before} boxes before, "
        f"{after} after; validation labels unchanged"
    )
    return write_derived_dataset(root, out, samples, derivation)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.labelstudio_cli import add_server_arguments

    p.add_argument("--model", type=Path, help="the teacher (not needed with --reviewed)")
    p.add_argument("--data", type=Path, required=True, help="a built dataset folder (holds manifest.jsonl)")
    p.add_argument("--min-conf", type=float, default=0.5)
    p.add_argument("--add-classes", default="", help="comma-separated classes to add to the dataset (teacher-only)")
    p.add_argument("--map", default="", help="teacher class renames, e.g. 'motorcycle=ebike,bicycle=ebike'")
    p.add_argument(
        "--label-val", action="store_true", help="also pseudo-label validation photos with the added classes"
    )
    p.add_argument("--write", type=Path, help="write a pseudo-labelled (or, with --reviewed, reviewed) copy here")
    p.add_argument("--push-review", metavar="TITLE", help="send pseudo-labelled photos to a new Label Studio project")
    p.add_argument("--reviewed", type=Path, metavar="SOURCE_YAML", help="`labelstudio pull`'s source.yaml to apply")
    p.add_argument("--datasets-root", type=Path, default=Path("../shared/datasets"), help="for a relative root")
    add_server_arguments(p)


def _apply(args: argparse.Namespace) -> int:
    if not args.write:
        sys.stderr.write("error: --reviewed needs --write (the folder for the reviewed dataset)\n")
        return 2
    spec = SourceSpec.from_dict(yaml.safe_load(args.reviewed.read_text(encoding="utf-8")))
    classes = json.loads((args.data / "dataset_card.json").read_text())["classes"]
    imported = import_source(spec, args.datasets_root, classes)
    out = apply_review(args.data, imported.samples, args.write, spec.origin or spec.name)
    sys.stdout.write(json.dumps({"reviewed_photos": len(imported.samples), "data_yaml": str(out)}) + "\n")
    return 0


def _push_review(args: argparse.Namespace, root: Path, pseudo: dict[str, Detections], teacher: str) -> int:
    from training import labelstudio as ls
    from training.labelstudio_cli import client_from_args

    tasks = review_tasks(root, pseudo)
    if not tasks:
        sys.stderr.write("nothing to review: no pseudo-labels at this --min-conf\n")
        return 0
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    classes = json.loads((root / "dataset_card.json").read_text())["classes"]
    images, labels = [t[0] for t in tasks], [t[1] for t in tasks]
    try:
        client = client_from_args(args)
        project = ls.create_project(client, args.push_review, load_taxonomy(), classes)
        ls.push_tasks(client, project, images, labels, classes, f"pseudo:{teacher.replace(' ', ':')}")
    except (ls.LabelStudioError, ApiError, httpx.HTTPError) as exc:
        sys.stderr.write(f"error: Label Studio at {args.url}: {exc}\n")
        return 2
    url = f"{args.url.rstrip('/')}/projects/{project}"
    sys.stdout.write(f"project {project}: {len(images)} photos to review -> {url}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as exc:  # a stray review, a missing folder, an unreadable spec
        sys.stderr.write(f"error: {exc}\n")
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.reviewed:
        return _apply(args)
    if args.model is None:
        sys.stderr.write("error: give --model (the teacher), or --reviewed with --write\n")
        return 2
    detector = Detector.load(args.model)
    add = [c.strip() for c in args.add_classes.split(",") if c.strip()]
    unknown = sorted(set(add) - set(load_taxonomy().class_names))
    if unknown:
        sys.stderr.write(f"error: --add-classes {unknown} are not detector classes of the taxonomy\n")
        return 2
    rename = dict(pair.split("=", 1) for pair in args.map.split(",") if "=" in pair)
    report, pseudo = audit(detector, args.data, args.min_conf, add, rename)
    teacher = f"{detector.card.model_id} {detector.card.version}"
    if args.write:
        report["pseudo_data_yaml"] = str(
            write_pseudo_dataset(
                args.data, pseudo, args.write, teacher, args.min_conf, report["classes"], args.label_val
            )
        )
    sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    return _push_review(args, args.data, pseudo, teacher) if args.push_review else 0


def subset_dataset(root: Path, sources: set[str], out: Path) -> Path:
    """The same dataset (same split, same class list) restricted to some sources: the 'without the other
    sets' arm of the partial-label ablation."""
    samples = [(s, split) for s, split in load_manifest(root) if s.source in sources]
    return write_derived_dataset(root, out, samples, f"only the photos of {', '.join(sorted(sources))}")
