"""``hazardscan events prune``: keep the CCTV events database in bounds.

Examples::

    hazardscan events prune --older-than-days 90                 # delete events closed over 90 days ago
    hazardscan events prune --older-than-days 30 --images-only   # keep them, drop their images
    hazardscan events prune --older-than-days 90 --dry-run       # only say what it would do

Open events and undelivered webhook messages are never touched; an inspection made from an event in the app
keeps its own copy of the frame. Run it from cron or a systemd timer. Prints one JSON line; exit status 2 when
the database cannot be opened.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from inference_service.cctv.store import EventStore, StoreError, default_url

DAY_S = 86_400.0


def positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not days > 0 or days == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of days, not {text!r}")
    return days


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    prune = sub.add_parser("prune", help="delete old closed events (or only their images) and delivered messages")
    prune.add_argument(
        "--db",
        help="SQLite file or postgresql:// URL (default: $HAZARDSCAN_EVENTS_DB, else the service database: "
        "$HAZARDSCAN_DATABASE_URL, else <data dir>/hazardscan.db)",
    )
    prune.add_argument(
        "--older-than-days", type=positive_days, required=True, help="events closed longer ago than this many days"
    )
    prune.add_argument("--images-only", action="store_true", help="keep the events, drop their evidence images")
    prune.add_argument("--dry-run", action="store_true", help="count what would go, change nothing")


def run(args: argparse.Namespace) -> int:
    try:
        args.db = args.db or default_url()
        store = EventStore(args.db)
    except (StoreError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    try:
        before = time.time() - args.older_than_days * DAY_S
        events, freed, messages = store.prune(before, images_only=args.images_only, dry_run=args.dry_run)
    finally:
        store.close()
    verb = "would " if args.dry_run else ""
    summary = {
        "events": events,
        "action": f"{verb}{'strip images' if args.images_only else 'delete'}",
        "image_bytes": freed,
        "webhook_messages_deleted": messages,
        "closed_before": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before)),
        "dry_run": args.dry_run,
    }
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
    return 0
