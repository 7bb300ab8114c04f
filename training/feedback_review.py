"""Review of an inspectors' feedback export in Label Studio, before it trains anything.

    hazardscan feedback export --out work/feedback --push-review "feedback 2026-11" --url … --token …
    # ... a reviewer checks the boxes in Label Studio and submits ...
    hazardscan feedback export --out work/feedback --reviewed 7 --url … --token …      # project id, or
    hazardscan feedback export --out work/feedback --reviewed work/review/source.yaml   # `labelstudio pull`'s

The push uploads the exported photos, most doubtful first (a rejected box, then an added one, then a low
model confidence, then the rest: :func:`training.feedback.doubt`), with the inspectors' boxes as
pre-annotations (rejected boxes are not drawn: they are what the inspector said is not there). The prediction
score is the doubt rank scaled to 0..1, so Label Studio's "prediction score" ordering agrees. Applying a
review: photos are matched by their bytes (SHA-256); a reviewed photo's boxes become the reviewer's and every
class of the project counts as labelled on it; photos nobody reviewed keep the inspectors' labels.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path
from typing import Any

import yaml

from inference_service.detections import Detections
from inference_service.taxonomy import Taxonomy
from training.feedback import ExportResult, Review
from training.importer import SourceSpec, import_source

log = logging.getLogger(__name__)


def review_order(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: (e["doubt"], e["sha256"]))


def pre_annotations(entry: dict[str, Any], classes: list[str]) -> Detections:
    score = entry["doubt"] / 3
    return Detections.from_rows([(*box, classes.index(c), score) for c, *box in entry["labels"]])


def push_review(result: ExportResult, args: argparse.Namespace, taxonomy: Taxonomy) -> int:
    """A new Label Studio project titled ``args.push_review`` with the export's photos; returns its id."""
    from training import labelstudio as ls
    from training.labelstudio_cli import client_from_args

    classes = list(result.card["classes"])
    if not result.entries:
        raise ValueError("nothing to review: the export holds no photo")
    entries = review_order(result.entries)
    client = client_from_args(args)
    project = ls.create_project(
        client, args.push_review, taxonomy, classes, f"hazardscan feedback {result.version}: inspectors' decisions"
    )
    ls.push_tasks(
        client,
        project,
        [result.out / e["image"] for e in entries],
        [pre_annotations(e, classes) for e in entries],
        classes,
        f"hazardscan-feedback:{result.version}",
    )
    log.info("feedback %s: %d photos to review in project %d", result.version, len(entries), project)
    return project


def load_review(args: argparse.Namespace, taxonomy: Taxonomy, datasets_root: Path) -> Review:
    """The reviewer's boxes from a Label Studio project id (pulled into ``<out>/review``) or a source.yaml."""
    target = str(args.reviewed)
    if target.isdigit():
        from training import labelstudio as ls
        from training.labelstudio_cli import client_from_args

        client = client_from_args(args)
        project = int(target)
        labels = ls.project_labels(client, project)
        pulled = ls.pull_annotations(client, project, labels)
        origin = f"Label Studio {args.url.rstrip('/')} project {project}"
        spec_dict = ls.write_source(client, pulled, labels, args.out / "review", f"review-p{project}", origin)
    else:
        path = Path(target)
        if not path.is_file():
            raise FileNotFoundError(f"--reviewed {target}: neither a project id nor a source.yaml")
        spec_dict = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = SourceSpec.from_dict(spec_dict)
    classes = list(taxonomy.class_names)
    imported = import_source(spec, datasets_root, classes)
    boxes: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = {}
    for sample in imported.samples:
        sha = hashlib.sha256(sample.image.read_bytes()).hexdigest()
        boxes[sha] = [
            (classes[c], (x1, y1, x2, y2))
            for (x1, y1, x2, y2), c in zip(sample.labels.xyxy.tolist(), sample.labels.class_id.tolist(), strict=True)
        ]
    project_classes = tuple(sorted({t for t in spec.class_map.values() if t}))
    return Review(boxes, project_classes, spec.origin or spec.name)
