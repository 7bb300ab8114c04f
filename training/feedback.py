"""Inspectors' decisions as a labelled dataset (``hazardscan feedback export``).

Every decided hazard on an inspection photo says something about one detector class on that photo:

- confirmed (as the model drew it, or with the box adjusted) and added boxes are labels of their class;
- a rejected box says the class is *not* there: with the class labelled on the photo and no box at that
  place, the class loss learns it as background (a known negative); the box is also listed in
  ``negatives.jsonl``. A rejection of a hazard whose rule needs other classes (``with``/``without``) may be a
  rejection of the relation, not of the object: that class is left unlabelled on the photo instead;
- every other class is unlabelled on the photo (federated: it teaches neither positive nor negative).

Camera events dismissed in the app teach too (with ``--events-db``): their frame is the photo and the event's box
its one decision, 误报 (false_alarm) as a rejection, 已现场处置 (handled: real, dealt with on the spot) as a
confirmation; 重复 and 其他 teach nothing. An event made an inspection is exported through that inspection.

The importer reads sources, and the federated loss masks each photo to the classes its *source* labels; so
the photos are grouped by the set of classes they label, one source spec per group
(``sources/feedback-fire-smoke.yaml`` → ``photos/feedback-fire-smoke/{images,labels}``). A training config
lists ``<out>/sources`` beside ``datasets/sources``. Photo bytes are copied from the records' content-addressed
store under their SHA-256. The version is a hash of the classes, photos, groups, labels and negatives, so
the same decisions exported twice give the same version (and the same files, byte for byte).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml
from PIL import Image

from inference_service.cctv.store import EventStore
from inference_service.records import BlobStore
from inference_service.storage import Database
from inference_service.taxonomy import Taxonomy

log = logging.getLogger(__name__)

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/bmp": ".bmp",
              "image/tiff": ".tif"}  # fmt: skip
LOW_CONFIDENCE = 0.5  # a model box under this confidence is doubtful (reviewed early)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class FindingRow:
    """One decided (or pending) hazard of a photo as the records keep it."""

    finding_id: str
    hazard_id: str
    detector_class: str | None
    box: Box
    source: str  # model | inspector
    status: str  # pending | confirmed | rejected
    confidence: float | None
    adjusted: bool  # the inspector moved the model's box
    decided_by: str | None  # user id of the last decision


@dataclass
class PhotoFeedback:
    photo_id: str
    sha256: str
    content_type: str
    width: int
    height: int
    created_at: float
    org_id: str
    unit_name: str
    scene: str
    inspector_id: str
    model: str  # "model_id version"
    findings: list[FindingRow] = field(default_factory=list)


@dataclass(frozen=True)
class PhotoLabels:
    """What one photo teaches: boxes per labelled class, known negatives, unlabelled classes with why."""

    labels: tuple[tuple[str, Box], ...]
    negatives: tuple[tuple[str, Box], ...]
    labelled: tuple[str, ...]  # sorted
    skipped: tuple[tuple[str, str], ...]  # (class or hazard, reason) left unlabelled on purpose


@dataclass(frozen=True)
class Filters:
    since: float | None = None
    until: float | None = None
    units: tuple[str, ...] = ()
    status: str = "reviewed"  # reviewed: every hazard of the photo decided | decided: at least one


class Blobs(Protocol):
    """Where a photo's bytes are, by SHA-256 (:class:`BlobStore`, or several: :class:`FirstOf`)."""

    def path(self, sha256: str) -> Path: ...


@dataclass(frozen=True)
class FirstOf:
    """The first of these stores that holds a photo."""

    stores: tuple[BlobStore, ...]

    def path(self, sha256: str) -> Path:
        paths = [store.path(sha256) for store in self.stores]
        return next((p for p in paths if p.is_file()), paths[0])


# --- reading the records ------------------------------------------------------------------------------


def load_feedback(db: Database, filters: Filters) -> list[PhotoFeedback]:
    """Inspection photos with their findings and last decisions, oldest first; rectification and voided photos
    never (the records schema must be current: :func:`inference_service.storage.migrate`)."""
    where: list[str] = ["p.kind = 'inspection'", "p.voided_at IS NULL"]  # a photo taken by mistake teaches nothing
    params: list[Any] = []
    if filters.since is not None:
        where.append("p.created_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        where.append("p.created_at < ?")
        params.append(filters.until)
    if filters.units:
        where.append(f"i.unit_name IN ({', '.join('?' * len(filters.units))})")
        params.extend(filters.units)
    photos: dict[str, PhotoFeedback] = {}
    for r in db.query_dicts(
        "SELECT p.id, p.sha256, p.content_type, p.width, p.height, p.created_at, p.org_id, p.model_id, "
        "p.model_version, i.unit_name, i.scene, i.inspector_id FROM photos p JOIN inspections i ON i.id = "
        f"p.inspection_id WHERE {' AND '.join(where)} ORDER BY p.created_at, p.id",
        params,
    ):
        photos[r["id"]] = PhotoFeedback(
            r["id"], r["sha256"], r["content_type"], int(r["width"]), int(r["height"]), float(r["created_at"]),
            r["org_id"], r["unit_name"], r["scene"], r["inspector_id"], f"{r['model_id']} {r['model_version']}",
        )  # fmt: skip
    if not photos:
        return []
    last: dict[str, tuple[str, bool]] = {}  # finding -> (last decider, any box change)
    for fid, user, box in db.query(
        "SELECT d.finding_id, d.user_id, d.box FROM decisions d JOIN findings f ON f.id = d.finding_id "
        "JOIN photos p ON p.id = f.photo_id WHERE p.kind = 'inspection' ORDER BY d.id"
    ):
        _, moved = last.get(fid, ("", False))
        last[fid] = (user, moved or box is not None)
    for r in db.query_dicts(
        "SELECT f.id, f.photo_id, f.hazard_id, f.detector_class, f.x1, f.y1, f.x2, f.y2, f.source, f.status, "
        "f.confidence FROM findings f JOIN photos p ON p.id = f.photo_id WHERE p.kind = 'inspection' "
        "ORDER BY f.photo_id, f.seq"
    ):
        photo = photos.get(r["photo_id"])
        if photo is None:
            continue
        user, moved = last.get(r["id"], (None, False))
        photo.findings.append(
            FindingRow(
                r["id"], r["hazard_id"], r["detector_class"], (r["x1"], r["y1"], r["x2"], r["y2"]), r["source"],
                r["status"], r["confidence"], moved and r["source"] == "model", user,
            )
        )  # fmt: skip
    return list(photos.values())


CAMERA_DISMISSALS = {"false_alarm": "rejected", "handled": "confirmed"}  # what a dismissal says of the box
CAMERA_PAGE = 500


def load_camera_feedback(store: EventStore, filters: Filters, frames: BlobStore) -> list[PhotoFeedback]:
    """Camera events dismissed in the app as 误报 or 已现场处置, each as a photo with one decided finding: its
    frame (written to ``frames`` by SHA-256) and the event's box. Oldest dismissal first; events without a frame
    (recorded before their camera had a site) are left out. Dates and units filter as for inspection photos."""
    out: list[PhotoFeedback] = []
    offset = 0
    while page := store.list_events(review="dismissed", limit=CAMERA_PAGE, offset=offset):
        offset += len(page)
        for listed in page:
            review = listed.review
            if review is None or review.reason not in CAMERA_DISMISSALS or listed.frame_box is None:
                continue
            if (filters.since is not None and review.at < filters.since) or (
                filters.until is not None and review.at >= filters.until
            ):
                continue
            if filters.units and listed.unit not in filters.units:
                continue
            event = store.get_event(listed.id, with_evidence=True)
            if event is None or event.frame_jpeg is None or event.frame_box is None:
                continue
            width, height = Image.open(io.BytesIO(event.frame_jpeg)).size
            decision = CAMERA_DISMISSALS[review.reason]
            finding = FindingRow(
                f"cctv:{event.id}", event.hazard_id, None, event.frame_box, "model", decision,
                event.peak_confidence, False, review.user_id,
            )  # fmt: skip
            sha = frames.put(event.frame_jpeg)
            scene = f"camera {event.scene or ''}".strip()
            photo = PhotoFeedback(
                f"cctv:{event.id}", sha, "image/jpeg", width, height, review.at, "", event.unit or "", scene,
                review.user_id, event.model_id, [finding],
            )  # fmt: skip
            out.append(photo)
    return sorted(out, key=lambda p: (p.created_at, p.photo_id))


def selected(photo: PhotoFeedback, status: str) -> bool:
    decided = [f for f in photo.findings if f.status != "pending"]
    if status == "reviewed":
        return bool(decided) and len(decided) == len(photo.findings)
    if status == "decided":
        return bool(decided)
    raise ValueError(f"unknown status {status!r}: reviewed or decided")


# --- what a photo teaches (pure) -------------------------------------------------------------------------


def class_of(f: FindingRow, taxonomy: Taxonomy) -> str | None:
    """The detector class of a finding: the one the model saw, else the anchor of the hazard's rule."""
    if f.detector_class:
        return f.detector_class
    try:
        return taxonomy.hazard(f.hazard_id).rule.when[0]
    except KeyError:
        return None


def _relational(hazard_id: str, cls: str, taxonomy: Taxonomy) -> bool:
    """Whether a rule raising this hazard from ``cls`` also needs other classes (present or absent)."""
    try:
        return any((r.with_ or r.without) and cls in r.when for r in taxonomy.hazard(hazard_id).rules)
    except KeyError:
        return True


def photo_labels(findings: Sequence[FindingRow], taxonomy: Taxonomy) -> PhotoLabels:
    known = set(taxonomy.class_names)
    labels: list[tuple[str, Box]] = []
    negatives: list[tuple[str, Box]] = []
    unsure: dict[str, str] = {}
    for f in findings:
        cls = class_of(f, taxonomy)
        if cls is None or cls not in known:
            unsure[f"hazard {f.hazard_id}"] = "no detector class in the taxonomy"
            continue
        if f.status == "pending":
            unsure[cls] = "a hazard of this class is not decided"
        elif f.status == "confirmed":
            labels.append((cls, f.box))
        elif f.status == "rejected":
            if _relational(f.hazard_id, cls, taxonomy):
                unsure.setdefault(cls, f"rejected {f.hazard_id} depends on other classes (with/without)")
            else:
                negatives.append((cls, f.box))
    labelled = sorted(({c for c, _ in labels} | {c for c, _ in negatives}) - set(unsure))
    return PhotoLabels(
        tuple(sorted((c, b) for c, b in labels if c in labelled)),
        tuple(sorted((c, b) for c, b in negatives if c in labelled)),
        tuple(labelled),
        tuple(sorted(unsure.items())),
    )


def group_name(labelled: Iterable[str]) -> str:
    """The source a photo goes to: named by the classes it labels (``feedback-fire-smoke``)."""
    return "feedback-" + "-".join(sorted(labelled))


def yolo_text(labels: Sequence[tuple[str, Box]], classes: Sequence[str], width: int, height: int) -> str:
    out = []
    for cls, (x1, y1, x2, y2) in labels:
        x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
        y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
        cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        out.append(f"{classes.index(cls)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(out)


def pseudonym(key: bytes, user_id: str) -> str:
    return "inspector-" + hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:12]


def pseudonym_key(path: Path) -> bytes:
    """The export's pseudonym key (made once, 0600): the same inspector gets the same pseudonym every export."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32).hex().encode())
    return path.read_bytes().strip()


@dataclass(frozen=True)
class Review:
    """A reviewer's boxes per photo (by SHA-256), over the classes the review project labels."""

    labels: dict[str, list[tuple[str, Box]]]
    classes: tuple[str, ...]
    origin: str


def _iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reviewed_labels(
    teach: PhotoLabels, boxes: Sequence[tuple[str, Box]], project_classes: Sequence[str]
) -> PhotoLabels:
    """The reviewer's boxes replace the inspectors'; every class of the review project is labelled on the photo
    (the reviewer drew all of them); a rejected box stays a negative unless the reviewer drew that class there."""
    negatives = tuple((c, b) for c, b in teach.negatives if not any(rc == c and _iou(b, rb) >= 0.5 for rc, rb in boxes))
    labelled = tuple(sorted(set(teach.labelled) | set(project_classes)))
    return PhotoLabels(tuple(sorted(boxes)), negatives, labelled, ())


# --- writing --------------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    out: Path
    version: str
    card: dict[str, Any]
    sources: Path  # the folder of source specs a training config lists
    entries: list[dict[str, Any]]  # one per exported photo (feedback.jsonl)


def _iso_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def export_feedback(
    photos: Sequence[PhotoFeedback],
    blobs: Blobs,
    taxonomy: Taxonomy,
    out: Path,
    key: bytes,
    datasets_root: Path,
    filters: Filters | None = None,
    review: Review | None = None,
) -> ExportResult:
    """Write the dataset under ``out`` (its ``photos/``, ``sources/`` and files are replaced); spec roots are
    written relative to ``datasets_root`` (the ``datasets_root`` of the training config that lists them).
    With a ``review``, the reviewed photos carry the reviewer's boxes (see :func:`reviewed_labels`)."""
    filters = filters or Filters()
    chosen: dict[str, tuple[PhotoFeedback, PhotoLabels]] = {}
    skipped: Counter[str] = Counter()
    for photo in photos:
        if not selected(photo, filters.status):
            skipped["not decided" if filters.status == "reviewed" else "no decision"] += 1
            continue
        teach = photo_labels(photo.findings, taxonomy)
        if not teach.labelled:
            skipped["no labelled class"] += 1
            continue
        if photo.sha256 in chosen:  # the same bytes in two records: the later decisions win
            skipped["same photo again (later record kept)"] += 1
        chosen[photo.sha256] = (photo, teach)
    review_info = None
    if review is not None:
        if stray := sorted(set(review.labels) - set(chosen)):
            raise ValueError(f"{len(stray)} reviewed photos are not in this export (other filters?): {stray[:3]}")
        before = sum(len(chosen[sha][1].labels) for sha in review.labels)
        for sha, boxes in review.labels.items():
            photo, teach = chosen[sha]
            chosen[sha] = (photo, reviewed_labels(teach, boxes, review.classes))
        after = sum(len(chosen[sha][1].labels) for sha in review.labels)
        review_info = {"origin": review.origin, "photos": len(review.labels), "boxes_before": before,
                       "boxes_after": after}  # fmt: skip
    classes = [c for c in taxonomy.class_names if any(c in t.labelled for _, t in chosen.values())]
    for sub in ("photos", "sources"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "sources").mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    groups: dict[str, list[str]] = defaultdict(list)
    for sha in sorted(chosen):
        photo, teach = chosen[sha]
        ext = EXTENSIONS.get(photo.content_type)
        if ext is None:
            skipped[f"content type {photo.content_type} the importer cannot read"] += 1
            continue
        group = group_name(teach.labelled)
        folder = out / "photos" / group
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blobs.path(sha), folder / "images" / f"{sha}{ext}")
        (folder / "labels" / f"{sha}.txt").write_text(yolo_text(teach.labels, classes, photo.width, photo.height))
        groups[group].append(sha)
        entries.append({
            "sha256": sha, "image": f"photos/{group}/images/{sha}{ext}", "source": group,
            "width": photo.width, "height": photo.height, "labelled": list(teach.labelled),
            "labels": [[c, *map(float, b)] for c, b in teach.labels],
            "negatives": [[c, *map(float, b)] for c, b in teach.negatives],
            "left_unlabelled": [list(x) for x in teach.skipped],
            "model": photo.model, "unit": photo.unit_name, "scene": photo.scene,
            "inspector": pseudonym(key, photo.inspector_id), "day": _iso_day(photo.created_at),
            "doubt": doubt(photo),
        })  # fmt: skip
    root_rel = os.path.relpath(out.resolve() / "photos", datasets_root.resolve())
    for group in sorted(groups):
        labelled = group.removeprefix("feedback-").split("-")
        spec = {
            "name": group,
            "origin": f"hazardscan feedback export: inspectors' decisions ({len(groups[group])} photos)",
            "licence": "own records (inspection photos of the organisation)",
            "format": "yolo",
            "root": f"{root_rel}/{group}",
            "images": ["images/*"],
            "labels": {"replace": ["/images/", "/labels/"]},
            "names": classes,
            "missing_label": "negative",
            "class_map": {c: c for c in labelled},
        }
        text = "# written by `hazardscan feedback export`; photos label only the classes in class_map\n"
        (out / "sources" / f"{group}.yaml").write_text(text + yaml.safe_dump(spec, allow_unicode=True, sort_keys=False))
    version = _version(classes, entries)
    card = _card(version, classes, entries, [chosen[e["sha256"]][0] for e in entries], skipped, filters, taxonomy)
    card["review"] = review_info
    (out / "feedback.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
    (out / "negatives.jsonl").write_text(
        "".join(
            json.dumps({"sha256": e["sha256"], "image": e["image"], "negatives": e["negatives"]}) + "\n"
            for e in entries
            if e["negatives"]
        )
    )
    (out / "feedback_card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n")
    log.info("feedback %s: %d photos in %d sources under %s", version, len(entries), len(groups), out)
    return ExportResult(out, version, card, out / "sources", entries)


def doubt(photo: PhotoFeedback) -> int:
    """Review order key, most doubtful first: a rejected box (0), an added one (1), low confidence (2), else 3."""
    keys = [3]
    for f in photo.findings:
        if f.status == "rejected":
            keys.append(0)
        elif f.source == "inspector":
            keys.append(1)
        elif f.confidence is not None and f.confidence < LOW_CONFIDENCE:
            keys.append(2)
    return min(keys)


def _version(classes: Sequence[str], entries: Sequence[dict[str, Any]]) -> str:
    h = hashlib.sha256(json.dumps(list(classes)).encode())
    for e in entries:  # already in SHA-256 order
        h.update(json.dumps([e["sha256"], e["source"], e["labels"], e["negatives"]]).encode())
    return h.hexdigest()[:12]


def _card(
    version: str,
    classes: Sequence[str],
    entries: Sequence[dict[str, Any]],
    photos: Sequence[PhotoFeedback],
    skipped: Counter[str],
    filters: Filters,
    taxonomy: Taxonomy,
) -> dict[str, Any]:
    trained = {c.name: c.trained_by_default_model for c in taxonomy.detector_classes}
    per_class: dict[str, dict[str, Any]] = {}
    for c in classes:
        per_class[c] = {
            "labels": sum(1 for e in entries for lab in e["labels"] if lab[0] == c),
            "negatives": sum(1 for e in entries for n in e["negatives"] if n[0] == c),
            "photos_labelled": sum(1 for e in entries if c in e["labelled"]),
            "new_class": not trained.get(c, False),  # no shipped model detects it yet: what to teach next
        }
    decisions: Counter[str] = Counter()
    for p in photos:
        for f in p.findings:
            if f.status == "confirmed":
                decisions["added" if f.source == "inspector" else "adjusted" if f.adjusted else "confirmed"] += 1
            else:
                decisions[f.status] += 1
    days = sorted(e["day"] for e in entries)
    return {
        "name": "hazardscan-feedback",
        "version": version,
        "classes": list(classes),
        "photos": len(entries),
        "per_class": per_class,
        "decisions": dict(sorted(decisions.items())),
        "sources": {s: n for s, n in sorted(Counter(e["source"] for e in entries).items())},
        "units": dict(sorted(Counter(e["unit"] for e in entries).items())),
        "scenes": dict(sorted(Counter(e["scene"] for e in entries).items())),
        "inspectors": dict(sorted(Counter(e["inspector"] for e in entries).items())),
        "inspectors_note": "pseudonyms: HMAC-SHA256 of the user id with the export's key",
        "model_versions": dict(sorted(Counter(e["model"] for e in entries).items())),
        "date_range": {"first": days[0], "last": days[-1]} if days else None,
        "filters": {
            "since": filters.since,
            "until": filters.until,
            "units": list(filters.units),
            "status": filters.status,
        },
        "skipped_photos": dict(sorted(skipped.items())),
        "meaning": "labels: confirmed, adjusted and added boxes; negatives: rejected boxes (the class is labelled "
        "on the photo, so the place is background); classes not listed in a photo's source are unlabelled there",
    }
