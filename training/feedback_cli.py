"""``hazardscan feedback export``: the inspectors' decisions as a dataset the training import reads.

    hazardscan feedback export --out work/feedback [--since 2026-11-01] [--until 2026-11-30] [--unit 甲单位] \\
        [--status reviewed|decided] [--database URL] [--data-dir DIR]
    # then list work/feedback/sources beside datasets/sources in a training config (``sources: [...]``)
    hazardscan feedback export --out work/feedback --push-review TITLE    # review in Label Studio first
    hazardscan feedback export --out work/feedback --reviewed PROJECT_ID  # ... and apply what was reviewed
    hazardscan feedback export --out work/feedback --events-db events.db  # camera events kept apart

The database and the photo folder default to the service's (``HAZARDSCAN_DATABASE_URL``, ``HAZARDSCAN_DATA_DIR``).
Dates are local days (``--utc-offset``, default the service's deadline offset); ``--until`` is inclusive.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from inference_service.storage import Database, StorageError, migrate

if TYPE_CHECKING:
    from inference_service.records import BlobStore
    from training.feedback import Filters, PhotoFeedback

REPO = Path(__file__).resolve().parent.parent


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.labelstudio_cli import add_server_arguments

    sub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    e = sub.add_parser("export", help="write the inspectors' decisions as a labelled dataset")
    e.add_argument("--out", type=Path, required=True, help="folder for photos/, sources/, feedback_card.json")
    e.add_argument("--since", help="first day (YYYY-MM-DD, local) or ISO date-time")
    e.add_argument("--until", help="last day, inclusive (YYYY-MM-DD, local) or ISO date-time (exclusive)")
    e.add_argument("--unit", action="append", default=[], help="only this inspected unit (repeatable)")
    e.add_argument("--status", choices=["reviewed", "decided"], default="reviewed",
                   help="reviewed: photos whose every hazard is decided; decided: photos with any decision "
                   "(undecided classes left unlabelled)")  # fmt: skip
    e.add_argument("--database", help="sqlite path, sqlite:///path or postgresql://… (default: the service's)")
    e.add_argument("--data-dir", type=Path, help="the service's data folder (photos/ inside; default: the service's)")
    e.add_argument("--events-db", default=os.environ.get("HAZARDSCAN_EVENTS_DB"),
                   help="where the camera events dismissed in the app as 误报 or 已现场处置 are read (SQLite "
                   "file or postgresql:// URL; default: $HAZARDSCAN_EVENTS_DB when set, else the records "
                   "database)")  # fmt: skip
    e.add_argument("--key-file", type=Path, help="pseudonym key (default: <data-dir>/feedback-pseudonym.key)")
    e.add_argument("--utc-offset", type=float, help="hours east of UTC for day dates (default: the service's)")
    e.add_argument("--datasets-root", type=Path, default=Path("../shared/datasets"),
                   help="the training config's datasets_root (spec roots are written relative to it)")  # fmt: skip
    e.add_argument("--push-review", metavar="TITLE", help="also send the photos to a new Label Studio project")
    e.add_argument("--reviewed", metavar="FILE_OR_PROJECT",
                   help="apply a review: a Label Studio project id, or `labelstudio pull`'s source.yaml")  # fmt: skip
    add_server_arguments(e)


def _when(value: str | None, offset: float, end: bool = False) -> float | None:
    if not value:
        return None
    tz = timezone(timedelta(hours=offset))
    try:
        if len(value) == 10:
            return (datetime.fromisoformat(value).replace(tzinfo=tz) + timedelta(days=1 if end else 0)).timestamp()
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO date-time") from exc
    return (when if when.tzinfo else when.replace(tzinfo=tz)).timestamp()


def _export(args: argparse.Namespace) -> int:
    from inference_service.api.settings import Settings
    from inference_service.records import BlobStore
    from inference_service.records.schema import MIGRATIONS as RECORDS_MIGRATIONS
    from inference_service.taxonomy import load_taxonomy
    from training.feedback import Filters, FirstOf, export_feedback, load_feedback, pseudonym_key

    settings = Settings()
    data_dir = args.data_dir or settings.data_dir
    url = args.database or (settings.database_url if args.data_dir is None else None) or str(data_dir / "hazardscan.db")
    if "://" not in url and not Path(url).is_file():
        raise ValueError(f"no records database at {url}: give --database or --data-dir")
    offset = settings.deadline_utc_offset_hours if args.utc_offset is None else args.utc_offset
    filters = Filters(_when(args.since, offset), _when(args.until, offset, end=True), tuple(args.unit), args.status)
    db = Database(url)
    try:
        migrate(db, "records", RECORDS_MIGRATIONS)  # as the service does when it opens the records
        photos = load_feedback(db, filters)
    finally:
        db.close()
    key = pseudonym_key(args.key_file or data_dir / "feedback-pseudonym.key")
    root = args.datasets_root if args.datasets_root.is_absolute() else REPO / args.datasets_root
    taxonomy = load_taxonomy()
    review = None
    if args.reviewed:
        from training.feedback_review import load_review

        review = load_review(args, taxonomy, root)
    with tempfile.TemporaryDirectory(prefix="hazardscan-frames-") as frames_dir:
        frames = BlobStore(Path(frames_dir))
        photos = [*photos, *_camera_photos(args.events_db or url, filters, frames)]
        blobs = FirstOf((BlobStore(data_dir / "photos"), frames))
        result = export_feedback(photos, blobs, taxonomy, args.out, key, root, filters, review)
    summary = {"version": result.version, "photos": result.card["photos"], "sources": str(result.sources),
               "per_class": result.card["per_class"]}  # fmt: skip
    if review is not None:
        summary["review"] = result.card["review"]
    if args.push_review:
        from training.feedback_review import push_review

        summary["review_project"] = push_review(result, args, taxonomy)
    sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    return 0


def _camera_photos(url: str, filters: Filters, frames: BlobStore) -> list[PhotoFeedback]:
    """The dismissed camera events that teach, from the events database at ``url`` (it must exist)."""
    from inference_service.cctv.store import EventStore
    from training.feedback import load_camera_feedback

    if "://" not in url and not Path(url).is_file():
        raise ValueError(f"no camera events database at {url}: give --events-db (or unset HAZARDSCAN_EVENTS_DB)")
    store = EventStore(url)
    try:
        return load_camera_feedback(store, filters, frames)
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    try:
        return _export(args)
    except (ValueError, FileNotFoundError, StorageError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except Exception as exc:  # Label Studio refused or cannot be reached
        from training.labelstudio import LabelStudioError

        if isinstance(exc, LabelStudioError) or type(exc).__module__.startswith(("httpx", "label_studio_sdk")):
            sys.stderr.write(f"error: Label Studio at {args.url}: {exc}\n")
            return 2
        raise
