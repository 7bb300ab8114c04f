"""``hazardscan`` command line: ``serve`` and ``detect`` here; other packages add their own subcommands.

    hazardscan serve --port 8000 --model models/default
    hazardscan detect site1.jpg site2.heic --annotate out/ [--json] [--min-confidence 0.3]

Adding a subcommand: append a :class:`Command` to ``COMMANDS``. ``add_arguments`` and ``run`` may be
callables or ``"package.module:function"`` strings; strings are imported only when that subcommand is
chosen, so e.g. ``Command("train", "...", "training.cli:add_arguments", "training.cli:run")`` never
imports torch for ``hazardscan serve``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: AddArguments | str
    run: Run | str


def _resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    resolved: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return resolved


# --- serve ------------------------------------------------------------------------------------------


def _add_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=Path, help="model folder or .onnx file (default: HAZARDSCAN_MODEL_PATH)")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "int8"),
        help="int8 only where measured faster (auto, the default), or as set (HAZARDSCAN_PRECISION)",
    )


def _run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from inference_service.api.app import create_app
    from inference_service.api.server import uvicorn_config
    from inference_service.api.settings import Settings

    overrides = {k: v for k, v in {"model_path": args.model, "precision": args.precision}.items() if v}
    settings = Settings(**overrides)
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else settings.log_level)  # -v: debug everywhere
    uvicorn.Server(uvicorn_config(create_app(settings), settings, args.host, args.port)).run()
    return 0


# --- detect -----------------------------------------------------------------------------------------


def _add_detect(p: argparse.ArgumentParser) -> None:
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    p.add_argument("--model", type=Path, help="model folder or .onnx file (default: HAZARDSCAN_MODEL_PATH)")
    p.add_argument("--annotate", type=Path, metavar="DIR", help="write evidence JPEGs into DIR")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--min-confidence", type=float, help="replace the model's per-class thresholds")
    p.add_argument("--classes", help="comma-separated class names to keep")
    p.add_argument("--scene", help="the kind of place: a taxonomy scene (work_at_height, elevator, corridor, ...)")


def _print_table(photo: Path, response: Any) -> None:
    ms = sum(response.timings_ms.values())
    print(
        f"{photo}  {response.image.width}×{response.image.height}  {len(response.detections)} detections  "
        f"{len(response.hazards)} hazards  {ms:.0f} ms"
    )
    for h in response.hazards:
        # a suspicion, or a hazard on a photo with a warning: no alarm, an inspector confirms it
        kind = "SUSPECT" if h.suspected else "UNCONF " if h.unconfirmed else "HAZARD "
        print(
            f"  {kind} {h.id:<10} {h.severity:<8} {h.confidence:5.2f}  {h.name_zh} / {h.name_en}  {list(h.box or [])}"
        )
    for d in response.detections:
        print(f"  det    {d.class_name:<19} {d.confidence:5.2f}  {list(d.box)}")
    for w in response.warnings:
        print(f"  WARNING {w.code}: {w.message_zh} / {w.message}")


def _run_detect(args: argparse.Namespace) -> int:
    from inference_service.api.schemas import DetectResponse
    from inference_service.api.settings import Settings
    from inference_service.imaging import ImageError
    from inference_service.model_card import ModelLoadError
    from inference_service.runtime import Detector, UnknownClassError
    from inference_service.scan import EvidenceStyle, Scanner, ScanOptions
    from inference_service.taxonomy import TaxonomyError, UnknownSceneError, load_taxonomy

    settings = Settings(model_path=args.model) if args.model else Settings()
    try:
        detector = Detector.load(
            settings.model_path, threads=settings.threads, max_pixels=settings.max_pixels, rect=settings.rect
        )
        taxonomy = load_taxonomy(settings.taxonomy_path)
        taxonomy.check_scene(args.scene)
    except (ModelLoadError, TaxonomyError, UnknownSceneError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    style = EvidenceStyle(settings.font_path, settings.evidence_max_side, settings.evidence_quality)
    scanner = Scanner(detector, taxonomy, style)
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None
    options = ScanOptions(args.min_confidence, classes, evidence=args.annotate is not None, scene=args.scene)
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)
    failures = 0
    records: list[dict[str, Any]] = []
    for photo in args.photos:
        try:
            scan = scanner.scan(photo.read_bytes(), options)
        except (OSError, ImageError, UnknownClassError) as exc:
            failures += 1
            message = getattr(exc, "message", None) or str(exc)
            records.append({"photo": str(photo), "error": message})
            if not args.json:
                print(f"{photo}  ERROR {message}", file=sys.stderr)
            continue
        response = DetectResponse.from_scan(scan, detector.card)
        if args.annotate and scan.evidence_jpeg is not None:
            (args.annotate / f"{photo.stem}.evidence.jpg").write_bytes(scan.evidence_jpeg)
        if args.json:
            records.append({"photo": str(photo), **response.model_dump(mode="json", exclude={"evidence_jpeg_base64"})})
        else:
            _print_table(photo, response)
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))
    return 1 if failures else 0


COMMANDS: list[Command] = [
    Command("serve", "run the HTTP API", _add_serve, _run_serve),
    Command("detect", "scan photos and print hazards", _add_detect, _run_detect),
    Command(
        "keys",
        "create, list and revoke API keys for /v1 clients",
        "inference_service.api.keys_cli:add_arguments",
        "inference_service.api.keys_cli:run",
    ),
    Command(
        "demo-photo",
        "write a drawing of flames (made by the project) to try the service with",
        "inference_service.demo:add_arguments",
        "inference_service.demo:run",
    ),
    Command(
        "scan",
        "watch CCTV streams, video files and photo folders; store de-duplicated hazard events",
        "inference_service.cctv.cli:add_arguments",
        "inference_service.cctv.cli:run",
    ),
    Command(
        "events",
        "keep the CCTV events database in bounds: delete old events, or only their images",
        "inference_service.cctv.events_cli:add_arguments",
        "inference_service.cctv.events_cli:run",
    ),
    Command(
        "users",
        "manage the inspector app's users: add, list, passwd, disable, enable",
        "inference_service.accounts.cli:add_arguments",
        "inference_service.accounts.cli:run",
    ),
    Command(
        "backup",
        "copy the database and the photos it names into a folder (while the service runs), or --check one",
        "inference_service.backup:add_arguments",
        "inference_service.backup:run",
    ),
    Command(
        "restore",
        "put a backup back into an empty data folder and database (the service stopped)",
        "inference_service.backup:add_restore_arguments",
        "inference_service.backup:run_restore",
    ),
    # retraining loop: these import torch/ultralytics only when chosen
    Command(
        "train",
        "import the photo sets and train a detector (Ultralytics, offline)",
        "training.train:add_arguments",
        "training.train:run",
    ),
    Command(
        "soup",
        "average two checkpoints of one lineage into a new run (model soup)",
        "training.soup:add_arguments",
        "training.soup:run",
    ),
    Command(
        "release",
        "export a training run to ONNX (fp32, int8) with parity checks and a model card",
        "training.release:add_arguments",
        "training.release:run",
    ),
    Command(
        "labelstudio",
        "sync photos and labels with a Label Studio server",
        "training.labelstudio_cli:add_arguments",
        "training.labelstudio_cli:run",
    ),
    Command(
        "eval",
        "score a model with the served pipeline: mAP, thresholds, reports, A/B release gate",
        "evaluation.cli:add_arguments",
        "evaluation.cli:run",
    ),
    Command(
        "partial-labels",
        "audit unlabelled classes across photo sets and write pseudo-labels",
        "training.partial_labels:add_arguments",
        "training.partial_labels:run",
    ),
    Command(
        "relabel",
        "make a class one thing: each of its boxes becomes the teacher's box of its holder (smoking: the smoker)",
        "training.relabel:add_arguments",
        "training.relabel:run",
    ),
    Command(
        "feedback",
        "export the inspectors' decisions in the app as a labelled dataset (and review it in Label Studio)",
        "training.feedback_cli:add_arguments",
        "training.feedback_cli:run",
    ),
    Command(
        "heldout",
        "write the photos every given dataset version holds out (for A/B across splits)",
        "training.heldout:add_arguments",
        "training.heldout:run",
    ),
    Command(
        "recover",
        "rebuild a trainable checkpoint from a shipped ONNX model (BatchNorms from photo statistics)",
        "training.recover:add_arguments",
        "training.recover:run",
    ),
    Command(
        "teach",
        "teach a model a class from a few labelled photos: recover, replay, train on a CPU budget, release",
        "training.teach:add_arguments",
        "training.teach:run",
    ),
    Command(
        "gpu-kit",
        "a fine-tune on a lent GPU machine: pack the data, slim the tree for the call, check its size, train",
        "training.gpu_kit:add_arguments",
        "training.gpu_kit:run",
    ),
    Command(
        "resample",
        "write a copy of a dataset with rare-class training photos repeated (repeat-factor sampling)",
        "training.resample:add_arguments",
        "training.resample:run",
    ),
]


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Parser with every subcommand listed; only the chosen one's arguments are resolved (imported)."""
    parser = argparse.ArgumentParser(prog="hazardscan", description="photo hazard detection (拍图识隐患)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.name == chosen:
            _resolve(command.add_arguments)(p)
        p.set_defaults(_command=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Run = _resolve(args._command.run)
    from pydantic import ValidationError

    try:
        return run(args)
    except ValidationError as exc:
        if not _is_settings(exc):
            raise
        sys.stderr.write(settings_error(exc))
        return 2


def _is_settings(exc: Any) -> bool:
    return str(exc.title).endswith("Settings")


def settings_error(exc: Any) -> str:
    """A setting read from the environment (or .env) that does not parse, one line each: the variable, its value and
    what is wrong, instead of a traceback."""
    lines = []
    for e in exc.errors():
        name = "HAZARDSCAN_" + "_".join(str(part) for part in e["loc"]).upper()
        lines.append(f"error: {name}={e.get('input')!r}: {e['msg']}\n")
    return "".join(lines)


if __name__ == "__main__":
    sys.exit(main())
