"""``hazardscan labelstudio``: labelling rounds on a Label Studio server.

    hazardscan labelstudio config [--classes helmet,no_helmet] > config.xml
    hazardscan labelstudio push photos/ --title "site photos 2026-11" [--model models/hazardscan-v1] [--classes ...]
    hazardscan labelstudio push more/ --project 3 --model models/hazardscan-v1
    hazardscan labelstudio pull 3 --out work/labelled/round1 [--name round1] [--datasets-root datasets]

Server and credentials: ``--url`` (env LABEL_STUDIO_URL, default http://127.0.0.1:8080) and either
``--token`` (env LABEL_STUDIO_API_KEY: a Personal Access Token from Account & Settings) or
``--email``/``--password`` (env LABEL_STUDIO_EMAIL / LABEL_STUDIO_PASSWORD), which log in (or sign up)
and create a token as the browser does. ``pull`` writes ``source.yaml``: copy it into
``datasets/sources/`` to merge the round into the next dataset build.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from inference_service.detections import Detections
from inference_service.taxonomy import load_taxonomy

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}  # what Label Studio displays in a browser


def add_server_arguments(q: argparse.ArgumentParser) -> None:
    """Where the Label Studio server is and how to sign in (flags, or LABEL_STUDIO_* variables)."""
    q.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL", "http://127.0.0.1:8080"))
    q.add_argument("--token", default=os.environ.get("LABEL_STUDIO_API_KEY"), help="Personal Access Token")
    q.add_argument("--email", default=os.environ.get("LABEL_STUDIO_EMAIL"))
    q.add_argument("--password", default=os.environ.get("LABEL_STUDIO_PASSWORD"))


def client_from_args(args: argparse.Namespace) -> LabelStudio:
    """A connected client; a wrong token or URL fails here, before any other work."""
    from training.labelstudio import connect

    client = connect(args.url, _token(args))
    client.users.whoami()
    return client


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="ls_command", required=True, metavar="ACTION")
    config = sub.add_parser("config", help="print the labelling config generated from the taxonomy")
    config.add_argument("--classes", help="comma-separated detector classes (default: all in the taxonomy)")

    push = sub.add_parser("push", help="upload photos as tasks, pre-annotated by a model")
    add_server_arguments(push)
    push.add_argument("photos", type=Path, help="a photo or a folder of photos (searched recursively)")
    target = push.add_mutually_exclusive_group(required=True)
    target.add_argument("--project", type=int, help="add to this project id")
    target.add_argument("--title", help="create a new project with this title")
    push.add_argument("--classes", help="classes of a new project, comma-separated (default: the model's, or all)")
    push.add_argument("--model", type=Path, help="model folder or .onnx whose detections become pre-annotations")
    push.add_argument("--min-confidence", type=float, help="replace the model's per-class thresholds")
    push.add_argument("--model-version", help="tag for the predictions (default: <model_id>:<version> of the card)")

    pull = sub.add_parser("pull", help="download finished annotations as an importable source")
    add_server_arguments(pull)
    pull.add_argument("project", type=int)
    pull.add_argument("--out", type=Path, required=True, help="folder for images/, labels/, source.yaml")
    pull.add_argument("--name", help="source name (default: labelstudio-p<project>)")
    pull.add_argument("--datasets-root", type=Path, help="write `root` relative to this folder")


def _token(args: argparse.Namespace) -> str:
    from training.labelstudio import get_token

    if args.token:
        return str(args.token)
    if not (args.email and args.password):
        raise SystemExit("error: give --token (LABEL_STUDIO_API_KEY) or --email and --password")
    return get_token(args.url, args.email, args.password)


def _photos(folder: Path) -> list[Path]:
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    photos = [p for p in files if p.suffix.lower() in PHOTO_SUFFIXES]
    if others := len(files) - len(photos):
        log.warning("%d files in %s are not %s and were skipped", others, folder, sorted(PHOTO_SUFFIXES))
    return photos


def _split(classes: str | None) -> list[str] | None:
    return [c.strip() for c in classes.split(",") if c.strip()] if classes else None


def _push(args: argparse.Namespace) -> int:
    from training import labelstudio as ls

    photos = _photos(args.photos)
    if not photos:
        print(f"error: no photos in {args.photos}", file=sys.stderr)  # noqa: T201
        return 2
    client = client_from_args(args)  # before any time is spent on detection
    predictions: list[Detections] | None = None
    class_names: list[str] = []
    version = args.model_version or ""
    if args.model:
        from inference_service.runtime import Detector

        detector = Detector.load(args.model)
        class_names = list(detector.card.classes)
        version = version or f"{detector.card.model_id}:{detector.card.version}"
        predictions = [detector.detect(p.read_bytes(), conf=args.min_confidence).detections for p in photos]
    project = args.project
    if project is None:
        taxonomy = load_taxonomy()
        wanted = _split(args.classes) or [c for c in class_names if c in taxonomy.class_names] or None
        project = ls.create_project(client, args.title, taxonomy, wanted)
    task_ids = ls.push_tasks(client, project, photos, predictions, class_names, version)
    print(f"project {project}: {len(task_ids)} tasks -> {args.url.rstrip('/')}/projects/{project}/data")  # noqa: T201
    return 0


def _pull(args: argparse.Namespace) -> int:
    from training import labelstudio as ls

    client = client_from_args(args)
    classes = ls.project_labels(client, args.project)
    pulled = ls.pull_annotations(client, args.project, classes)
    name = args.name or f"labelstudio-p{args.project}"
    origin = f"Label Studio {args.url.rstrip('/')} project {args.project}"
    ls.write_source(client, pulled, classes, args.out, name, origin, args.datasets_root)
    boxes = sum(len(p.labels) for p in pulled)
    issues = sum(len(p.issues) for p in pulled)
    print(f"{len(pulled)} photos, {boxes} boxes, {issues} issues -> {args.out / 'source.yaml'}")  # noqa: T201
    return 0


def run(args: argparse.Namespace) -> int:
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    from training.labelstudio import LabelStudioError, labeling_config

    try:
        if args.ls_command == "config":
            print(labeling_config(load_taxonomy(), _split(args.classes)))  # noqa: T201
            return 0
        return _push(args) if args.ls_command == "push" else _pull(args)
    except (LabelStudioError, ApiError, httpx.HTTPError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
