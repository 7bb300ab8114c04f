"""Import labelled photo sets into one canonical dataset mapped onto the taxonomy's detector classes.

A source is described by a small yaml in ``datasets/sources/`` (where its files are, their format,
its licence and how its class names map onto detector classes). Every quirk met on the way is
recorded as an :class:`IssueRecord` with what was done about it; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from inference_service.detections import Detections
from inference_service.taxonomy import Taxonomy
from training.formats.common import Issue, ParsedLabels
from training.formats.voc import parse_voc
from training.formats.yolo import parse_yolo_labels

log = logging.getLogger(__name__)

WHOLE_FRAME = 0.95  # a box covering this share of the photo is suspicious (pseudo box)
MIN_SIDE_PX = 2.0  # boxes thinner than this after clipping carry no object
_ROTATING_ORIENTATIONS = {5, 6, 7, 8}


@dataclass(frozen=True)
class SourceSpec:
    name: str
    origin: str
    licence: str
    format: str  # yolo | voc
    root: str  # relative to the datasets folder
    images: tuple[str, ...]
    label_replace: tuple[str, str]
    label_suffix: str
    names_from: str | None
    names: tuple[str, ...]
    missing_label: str  # negative | drop
    class_map: dict[str, str | None]
    drop_reasons: dict[str, str]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceSpec:
        labels = d.get("labels", {})
        fmt = d.get("format", "yolo")
        return cls(
            name=d["name"],
            origin=d.get("origin", ""),
            licence=d.get("licence", "not stated"),
            format=fmt,
            root=d["root"],
            images=tuple(d["images"]),
            label_replace=tuple(labels.get("replace", ["/images/", "/labels/"])),
            label_suffix=labels.get("suffix", ".xml" if fmt == "voc" else ".txt"),
            names_from=d.get("names_from"),
            names=tuple(d.get("names", ())),
            missing_label=d.get("missing_label", "drop"),
            class_map=dict(d.get("class_map", {})),
            drop_reasons=dict(d.get("drop_reasons", {})),
        )


def load_source_specs(folder: Path) -> list[SourceSpec]:
    return [SourceSpec.from_dict(yaml.safe_load(p.read_text(encoding="utf-8"))) for p in sorted(folder.glob("*.yaml"))]


@dataclass(frozen=True)
class IssueRecord:
    source: str
    image: str  # path relative to the source root ("" for source-level issues)
    code: str
    detail: str
    action: str


@dataclass
class Sample:
    image: Path
    source: str
    width: int  # EXIF-oriented
    height: int
    labels: Detections  # class ids index the dataset's class list; score 1.0
    sha1: str

    @property
    def key(self) -> str:
        return f"{self.source}/{self.image.name}"


@dataclass
class ImportResult:
    classes: list[str]
    samples: list[Sample] = field(default_factory=list)
    issues: list[IssueRecord] = field(default_factory=list)
    sources: list[SourceSpec] = field(default_factory=list)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Boxes per class per source."""
        out: dict[str, dict[str, int]] = {}
        for s in self.samples:
            per = out.setdefault(s.source, {})
            for c in s.labels.class_id.tolist():
                per[self.classes[c]] = per.get(self.classes[c], 0) + 1
        return out

    def issue_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for i in self.issues:
            out.setdefault(i.source, Counter())[f"{i.code}:{i.action}"] += 1
        return {k: dict(v) for k, v in out.items()}


def oriented_size(path: Path) -> tuple[int, int]:
    """Width and height after EXIF orientation, read from the header only."""
    with Image.open(path) as im:
        w, h = im.size
        try:
            orientation = im.getexif().get(0x0112, 1)
        except Exception:  # corrupt EXIF: the decoder ignores it too
            orientation = 1
    return (h, w) if orientation in _ROTATING_ORIENTATIONS else (w, h)


def dataset_classes(taxonomy: Taxonomy, specs: Iterable[SourceSpec]) -> list[str]:
    """The classes the sources teach, in taxonomy order; unknown targets are an error."""
    targets = {t for s in specs for t in s.class_map.values() if t}
    unknown = targets - set(taxonomy.class_names)
    if unknown:
        raise ValueError(f"class_map targets not in the taxonomy's detector_classes: {sorted(unknown)}")
    return [c for c in taxonomy.class_names if c in targets]


def _source_names(spec: SourceSpec, src_root: Path, issues: list[IssueRecord]) -> list[str]:
    if spec.names:
        return list(spec.names)
    if not spec.names_from:
        return []
    data = yaml.safe_load((src_root / spec.names_from).read_text(encoding="utf-8"))
    declared = data.get("path")
    if isinstance(declared, str) and (":" in declared[:3] or declared.startswith("/")) and not Path(declared).exists():
        issues.append(
            IssueRecord(
                spec.name,
                spec.names_from,
                "foreign_path",
                f"yaml path {declared!r} does not exist here; using the source root instead",
                "changed",
            )
        )
    names = data.get("names", [])
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    return [str(n) for n in names]


def _label_path(spec: SourceSpec, image: Path) -> Path:
    old, new = spec.label_replace
    s = str(image)
    idx = s.rfind(old)
    if idx < 0:
        return image.with_suffix(spec.label_suffix)
    return Path(s[:idx] + new + s[idx + len(old) :]).with_suffix(spec.label_suffix)


def map_boxes(
    parsed: ParsedLabels,
    spec: SourceSpec,
    classes: Sequence[str],
    width: int,
    height: int,
) -> tuple[Detections, list[Issue]]:
    """Source names -> dataset class ids, boxes clipped; everything changed or dropped is an Issue."""
    issues = list(parsed.issues)
    rows = []
    for b in parsed.boxes:
        if b.name not in spec.class_map:
            issues.append(Issue("unknown_class", f"class {b.name!r} has no mapping in {spec.name}.yaml", "dropped"))
            continue
        target = spec.class_map[b.name]
        if target is None:
            issues.append(
                Issue("unmapped_class", f"{b.name}: {spec.drop_reasons.get(b.name, 'mapped to nothing')}", "dropped")
            )
            continue
        x1, y1, x2, y2 = b.xyxy
        if x1 > x2:
            x1, x2 = x2, x1
        if y1 > y2:
            y1, y2 = y2, y1
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
        if cx2 - cx1 < MIN_SIDE_PX or cy2 - cy1 < MIN_SIDE_PX:
            issues.append(
                Issue(
                    "zero_area",
                    f"{b.name} box {tuple(round(v, 1) for v in b.xyxy)} is empty inside the {width}x{height} photo",
                    "dropped",
                )
            )
            continue
        overflow = max(-x1, -y1, x2 - width, y2 - height)
        if overflow > 1.0:  # sub-pixel overshoot is rounding, not a quirk worth a line
            issues.append(Issue("clipped", f"{b.name} box reached {overflow:.1f}px outside the photo", "changed"))
        if (cx2 - cx1) * (cy2 - cy1) >= WHOLE_FRAME * width * height:
            issues.append(Issue("whole_frame", f"{b.name} box covers ≥{WHOLE_FRAME:.0%} of the photo", "noted"))
        rows.append((cx1, cy1, cx2, cy2, classes.index(target), 1.0))
    return Detections.from_rows(rows), issues


def import_source(spec: SourceSpec, datasets_root: Path, classes: Sequence[str]) -> ImportResult:
    result = ImportResult(classes=list(classes), sources=[spec])
    src_root = datasets_root / spec.root
    if not src_root.is_dir():
        raise FileNotFoundError(f"source {spec.name}: folder {src_root} not found (datasets root {datasets_root})")
    names = _source_names(spec, src_root, result.issues) if spec.format == "yolo" else []
    images = sorted({p for pattern in spec.images for p in src_root.glob(pattern)})
    if not images:
        raise FileNotFoundError(f"source {spec.name}: no images match {list(spec.images)} under {src_root}")
    for image in images:
        rel = str(image.relative_to(src_root))

        def record(code: str, detail: str, action: str, rel: str = rel) -> None:
            result.issues.append(IssueRecord(spec.name, rel, code, detail, action))

        try:
            width, height = oriented_size(image)
        except Exception as exc:
            record("unreadable_image", f"{type(exc).__name__}: {exc}", "dropped")
            continue
        label_file = _label_path(spec, image)
        if not label_file.exists():
            if spec.missing_label == "negative":
                record("unlabelled_negative", "no label file: kept as a background photo", "noted")
                parsed = ParsedLabels()
            else:
                record("missing_label", f"no label file at {label_file.name}", "dropped")
                continue
        else:
            text = label_file.read_text(encoding="utf-8", errors="replace")
            if spec.format == "yolo":
                parsed = parse_yolo_labels(text, width, height, names)
                kinds = {b.kind for b in parsed.boxes}
                if len(kinds) > 1:
                    record("mixed_lines", "box and polygon lines in one file", "noted")
            elif spec.format == "voc":
                try:
                    parsed, declared = parse_voc(text)
                except Exception as exc:
                    record("malformed_label", f"xml: {exc}", "dropped")
                    continue
                if declared and declared != (width, height):
                    record("size_mismatch", f"xml declares {declared}, photo is {(width, height)}", "noted")
            else:
                raise ValueError(f"source {spec.name}: unsupported format {spec.format!r}")
            if not parsed.boxes and not parsed.issues:
                record("empty_label", "empty label file: kept as a background photo", "noted")
        dets, issues = map_boxes(parsed, spec, classes, width, height)
        for iss in issues:
            record(iss.code, iss.detail, iss.action)
        sha1 = hashlib.sha1(image.read_bytes()).hexdigest()
        result.samples.append(Sample(image.resolve(), spec.name, width, height, dets, sha1))
    return result


def import_all(specs: Sequence[SourceSpec], datasets_root: Path, taxonomy: Taxonomy) -> ImportResult:
    classes = dataset_classes(taxonomy, specs)
    merged = ImportResult(classes=classes, sources=list(specs))
    for spec in specs:
        part = import_source(spec, datasets_root, classes)
        merged.samples.extend(part.samples)
        merged.issues.extend(part.issues)
        log.info("imported %s: %d photos, %d issues", spec.name, len(part.samples), len(part.issues))
    by_hash: dict[str, Sample] = {}
    for s in merged.samples:
        first = by_hash.setdefault(s.sha1, s)
        if first is not s:
            merged.issues.append(
                IssueRecord(
                    s.source,
                    s.image.name,
                    "exact_duplicate",
                    f"same bytes as {first.key}; kept on the same split side",
                    "noted",
                )
            )
    return merged


def class_histogram(samples: Iterable[Sample], n_classes: int) -> np.ndarray:
    counts = np.zeros(n_classes, np.int64)
    for s in samples:
        np.add.at(counts, s.labels.class_id, 1)
    return counts
