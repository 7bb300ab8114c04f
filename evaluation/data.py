"""Labelled photo sets for evaluation, in any format the import understands, mapped onto a model's classes.

``load_eval_set(path, model_classes)`` reads, by what ``path`` is:

* a built dataset folder (``manifest.jsonl``, from ``training.dataset``) — filtered by ``split``;
* a YOLO ``data.yaml`` (a built dataset's own ``data.yaml`` is read through its manifest);
* a COCO detection ``.json`` (images under ``images_root``, default: beside the json);
* a Label Studio export ``.json`` (a list of tasks; local-file and upload URLs are resolved under
  ``images_root``);
* a ``datasets/sources/*.yaml`` source spec (imported whole with ``training.importer``).

Ground-truth class names are mapped onto the model card's classes by name: boxes of classes the model
lacks are dropped and counted, and a model class the data never labels is not scored. When it is known
which classes each source labels (built datasets, source specs), that is kept too, so predictions of a
class on photos whose source never labels it can be left unscored (federated scoring, as LVIS does).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import yaml

from inference_service.detections import Detections
from training.formats.coco import parse_coco
from training.formats.common import ParsedLabels
from training.formats.labelstudio import parse_labelstudio_task
from training.formats.yolo import parse_yolo_labels
from training.importer import SourceSpec, import_source, oriented_size

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".heic", ".heif", ".tif", ".tiff")
SPLITS = ("train", "val", "all")


@dataclass(frozen=True)
class EvalSample:
    image: Path
    source: str
    gt: Detections  # class ids index EvalSet.classes (the model card's classes); score 1.0
    width: int  # upright (EXIF-oriented) size
    height: int


@dataclass
class EvalSet:
    name: str  # e.g. "hazardscan-aacf1c393098:val"
    classes: list[str]  # the model card's classes, in output order
    samples: list[EvalSample]
    labelled: list[int]  # model class ids the data labels at all
    source_classes: dict[str, list[int]] | None = None  # per source: model class ids it labels (None: unknown)
    dropped_gt: dict[str, int] = field(default_factory=dict)  # data class name -> boxes the model cannot score
    issues: list[str] = field(default_factory=list)

    @property
    def sources(self) -> list[str]:
        return sorted({s.source for s in self.samples})

    def scored_classes(self, sample: EvalSample) -> list[int]:
        """Model class ids whose predictions count on this photo (federated when sources are known)."""
        if self.source_classes is None:
            return self.labelled
        return self.source_classes.get(sample.source, self.labelled)

    def subset(self, indices: Sequence[int], name: str | None = None) -> EvalSet:
        return EvalSet(
            name or self.name,
            self.classes,
            [self.samples[i] for i in indices],
            self.labelled,
            self.source_classes,
            self.dropped_gt,
            self.issues,
        )


class ClassMapper:
    """Data class names -> model class ids by exact name; counts what cannot be mapped."""

    def __init__(self, model_classes: Sequence[str]) -> None:
        self.index = {c: i for i, c in enumerate(model_classes)}
        self.dropped: Counter[str] = Counter()

    def map(self, names: Iterable[str], xyxy: np.ndarray) -> Detections:
        names = list(names)
        ids = np.array([self.index.get(n, -1) for n in names], np.int64)
        for n, i in zip(names, ids.tolist(), strict=True):
            if i < 0:
                self.dropped[n] += 1
        keep = ids >= 0
        boxes = np.asarray(xyxy, np.float32).reshape(-1, 4)[keep]
        return Detections(boxes, ids[keep], np.ones(int(keep.sum()), np.float32))

    def ids(self, names: Iterable[str]) -> list[int]:
        return sorted({self.index[n] for n in names if n in self.index})


def _parsed_to_gt(parsed: ParsedLabels, mapper: ClassMapper) -> Detections:
    names = [b.name for b in parsed.boxes]
    return mapper.map(names, np.array([b.xyxy for b in parsed.boxes], np.float32).reshape(-1, 4))


def _finish(
    name: str,
    classes: Sequence[str],
    samples: list[EvalSample],
    mapper: ClassMapper,
    data_classes: Iterable[str],
    source_names: Mapping[str, Iterable[str]] | None = None,
    issues: list[str] | None = None,
) -> EvalSet:
    labelled = mapper.ids(data_classes)
    if not labelled:
        raise ValueError(f"the data's classes share no name with the model's {list(classes)}; nothing can be scored")
    source_classes = {s: mapper.ids(n) for s, n in source_names.items()} if source_names is not None else None
    if mapper.dropped:
        logger.warning("ground truth of classes the model lacks is not scored: %s", dict(mapper.dropped))
    return EvalSet(name, list(classes), samples, labelled, source_classes, dict(mapper.dropped), issues or [])


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


# --- built dataset folder -----------------------------------------------------------------------------


def load_dataset_folder(root: Path, model_classes: Sequence[str], split: str = "val") -> EvalSet:
    """A dataset written by ``training.dataset.build_dataset``: its manifest, one split."""
    _check_split(split)
    card_path = root / "dataset_card.json"
    card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    if card.get("classes"):
        data_classes = list(card["classes"])
    else:
        names = yaml.safe_load((root / "data.yaml").read_text(encoding="utf-8"))["names"]
        data_classes = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    mapper = ClassMapper(model_classes)
    samples = []
    for line in (root / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        m = json.loads(line)
        if split != "all" and m["split"] != split:
            continue
        boxes = np.asarray(m["boxes"], np.float32).reshape(-1, 5)
        gt = mapper.map([data_classes[int(c)] for c in boxes[:, 4]], boxes[:, :4])
        samples.append(EvalSample(Path(m["image"]), m["source"], gt, int(m["width"]), int(m["height"])))
    if not samples:
        raise ValueError(f"{root}: no photos in split {split!r}")
    source_names = (
        {s["name"]: [t for t in s.get("class_map", {}).values() if t] for s in card["sources"]}
        if card.get("sources")
        else None
    )
    return _finish(f"{root.name}:{split}", model_classes, samples, mapper, data_classes, source_names)


# --- YOLO data.yaml -----------------------------------------------------------------------------------


def _yolo_images(base: Path, entry: str | list[str]) -> list[Path]:
    entries = entry if isinstance(entry, list) else [entry]
    images: list[Path] = []
    for e in entries:
        p = Path(e) if Path(e).is_absolute() else base / e
        if p.is_dir():
            images += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.suffix == ".txt" and p.is_file():
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    q = Path(line.strip())
                    images.append(q if q.is_absolute() else (p.parent / q).resolve())
        else:
            raise FileNotFoundError(f"YOLO split entry {e!r} is neither a folder nor a .txt list (looked at {p})")
    return images


def yolo_label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``/images/`` in the path becomes ``/labels/``, suffix ``.txt``."""
    s = str(image)
    idx = s.rfind("/images/")
    if idx < 0:
        return image.with_suffix(".txt")
    return Path(s[:idx] + "/labels/" + s[idx + len("/images/") :]).with_suffix(".txt")


def load_yolo_yaml(path: Path, model_classes: Sequence[str], split: str = "val") -> EvalSet:
    _check_split(split)
    if (path.parent / "manifest.jsonl").is_file():
        return load_dataset_folder(path.parent, model_classes, split)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = doc["names"]
    data_classes = [str(names[k]) for k in sorted(names)] if isinstance(names, dict) else [str(n) for n in names]
    declared = path.parent / str(doc.get("path") or ".")  # an absolute 'path' replaces the parent
    base = declared if declared.is_dir() else path.parent  # a foreign path (other machine): the yaml's folder
    keys = ["train", "val"] if split == "all" else [split]
    missing = [k for k in keys if k not in doc]
    if missing:
        raise ValueError(f"{path} has no {missing} entry; choose --split from {[k for k in SPLITS if k in doc]}")
    mapper = ClassMapper(model_classes)
    samples: list[EvalSample] = []
    issues: list[str] = []
    source = path.parent.name
    for key in keys:
        for image in _yolo_images(base, doc[key]):
            w, h = oriented_size(image)
            label = yolo_label_path(image)
            text = label.read_text(encoding="utf-8", errors="replace") if label.exists() else ""
            parsed = parse_yolo_labels(text, w, h, data_classes)
            issues += [f"{image.name}: {i.code}: {i.detail}" for i in parsed.issues]
            samples.append(EvalSample(image, source, _parsed_to_gt(parsed, mapper), w, h))
    return _finish(f"{source}:{split}", model_classes, samples, mapper, data_classes, issues=issues)


# --- COCO json ----------------------------------------------------------------------------------------


def _find_image(root: Path, name: str) -> Path:
    p = Path(name)
    for candidate in (p, root / name, root / p.name):
        if candidate.is_absolute() and candidate.is_file():
            return candidate
    raise FileNotFoundError(f"image {name!r} not found under {root}; pass --images DIR")


def load_coco(path: Path, model_classes: Sequence[str], images_root: Path | None = None) -> EvalSet:
    root = (images_root or (path.parent / "images" if (path.parent / "images").is_dir() else path.parent)).resolve()
    text = path.read_text(encoding="utf-8")
    parsed = parse_coco(text)
    data_classes = [str(c["name"]) for c in json.loads(text).get("categories", [])]
    mapper = ClassMapper(model_classes)
    samples, issues = [], []
    for file_name, (labels, (w, h)) in sorted(parsed.items()):
        issues += [f"{file_name}: {i.code}: {i.detail}" for i in labels.issues]
        samples.append(EvalSample(_find_image(root, file_name), path.stem, _parsed_to_gt(labels, mapper), w, h))
    return _finish(path.stem, model_classes, samples, mapper, data_classes, issues=issues)


# --- Label Studio export -------------------------------------------------------------------------------


def resolve_labelstudio_url(url: str, root: Path) -> Path:
    """Image path of a task's ``data.image``: local-files ``?d=`` paths, uploads, URLs or plain paths."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    if "d" in query:
        rel = unquote(query["d"][0])
        return _find_image(root, rel)
    name = unquote(Path(parsed.path).name)
    try:
        return _find_image(root, unquote(parsed.path) if not parsed.scheme else name)
    except FileNotFoundError:
        if parsed.path.startswith("/data/upload/") and "-" in name:  # uploads are stored as <8 hex>-<name>
            return _find_image(root, name.split("-", 1)[1])
        raise


def load_labelstudio(path: Path, model_classes: Sequence[str], images_root: Path | None = None) -> EvalSet:
    root = (images_root or path.parent).resolve()
    tasks = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(tasks, list):
        raise ValueError(f"{path}: a Label Studio JSON export is a list of tasks")
    mapper = ClassMapper(model_classes)
    samples: list[EvalSample] = []
    issues: list[str] = []
    names: set[str] = set()
    for task in tasks:
        if not any(not a.get("was_cancelled") for a in task.get("annotations", [])):
            issues.append(f"task {task.get('id')}: not annotated, skipped")
            continue
        data = task.get("data", {})
        url = data.get("image") or next(iter(data.values()), "")
        image = resolve_labelstudio_url(str(url), root)
        labels, size = parse_labelstudio_task(task)
        w, h = size or oriented_size(image)
        names.update(b.name for b in labels.boxes)
        issues += [f"task {task.get('id')}: {i.code}: {i.detail}" for i in labels.issues]
        samples.append(EvalSample(image, path.stem, _parsed_to_gt(labels, mapper), w, h))
    # an export only names the classes that occur; assume the labelling config's classes are the model's
    return _finish(path.stem, model_classes, samples, mapper, names | set(model_classes), issues=issues)


# --- source spec ----------------------------------------------------------------------------------------


def load_source_spec(path: Path, model_classes: Sequence[str], datasets_root: Path | None = None) -> EvalSet:
    """A whole public source (no split): beware it may contain photos the model was trained on."""
    spec = SourceSpec.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
    root = datasets_root or (path.resolve().parents[2] / ".." / "shared" / "datasets").resolve()
    targets = sorted({t for t in spec.class_map.values() if t})
    result = import_source(spec, root, targets)
    mapper = ClassMapper(model_classes)
    samples = [
        EvalSample(
            s.image, s.source, mapper.map([targets[c] for c in s.labels.class_id], s.labels.xyxy), s.width, s.height
        )
        for s in result.samples
    ]
    logger.warning("source %s is evaluated whole: photos the model trained on score optimistically", spec.name)
    issues = [f"{i.image}: {i.code}: {i.detail} ({i.action})" for i in result.issues]
    return _finish(spec.name, model_classes, samples, mapper, targets, {spec.name: targets}, issues)


# --- dispatch --------------------------------------------------------------------------------------------


def detect_format(path: Path) -> str:
    """``dataset`` | ``yolo`` | ``coco`` | ``labelstudio`` | ``source``, from what the file holds."""
    if path.is_dir():
        if (path / "manifest.jsonl").is_file():
            return "dataset"
        if (path / "data.yaml").is_file():
            return "yolo"
        raise ValueError(f"{path}: a folder must hold manifest.jsonl (built dataset) or data.yaml (YOLO)")
    if path.suffix.lower() in (".yaml", ".yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "class_map" in doc and "images" in doc:
            return "source"
        if isinstance(doc, dict) and "names" in doc:
            return "yolo"
        raise ValueError(f"{path}: yaml is neither a YOLO data.yaml (names) nor a source spec (class_map)")
    if path.suffix.lower() == ".json":
        with path.open(encoding="utf-8") as f:
            head = f.read(1).strip() or f.read(64).strip()[:1]
        return "labelstudio" if head == "[" else "coco"
    raise ValueError(f"{path}: expected a dataset folder, a .yaml or a .json")


def load_eval_set(
    path: Path,
    model_classes: Sequence[str],
    split: str = "val",
    images_root: Path | None = None,
    datasets_root: Path | None = None,
) -> EvalSet:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset")
    fmt = detect_format(path)
    logger.info("reading %s as %s", path, fmt)
    if fmt == "dataset":
        return load_dataset_folder(path, model_classes, split)
    if fmt == "yolo":
        return load_yolo_yaml(path / "data.yaml" if path.is_dir() else path, model_classes, split)
    if fmt == "coco":
        return load_coco(path, model_classes, images_root)
    if fmt == "labelstudio":
        return load_labelstudio(path, model_classes, images_root)
    return load_source_spec(path, model_classes, datasets_root)
