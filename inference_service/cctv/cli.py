"""``hazardscan scan --cameras cams.yaml``: watch cameras, videos and image folders; store hazard events.

Examples::

    hazardscan scan --cameras cams.yaml --model models/hazardscan-v1
    hazardscan scan --cameras cams.yaml --db postgresql://scan@db/hazards \\
        --webhook https://ops.example/hooks/hazards --webhook-secret "$SECRET"
    hazardscan scan --cameras cams.yaml --engine ray --address auto --workers 8

Recordings and folders end by themselves; live cameras run until Ctrl-C / SIGTERM or ``--duration``.
Prints a JSON summary (frames, fps, events, per-camera health) on exit; exit status 1 when a camera
failed to open or read, 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from inference_service.cctv.config import CameraConfigError, load_cameras
from inference_service.cctv.scanner import ScanOptions, StoreSink, StreamScanner, threads_per_call
from inference_service.cctv.store import EventStore, StoreError, default_url
from inference_service.cctv.webhook import WebhookConfig, WebhookWorker
from inference_service.model_card import ModelLoadError
from inference_service.taxonomy import TaxonomyError, load_taxonomy

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=Path, required=True, help="camera config YAML")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model folder or .onnx (default: $HAZARDSCAN_MODEL_PATH or models/default)",
    )
    parser.add_argument("--taxonomy", type=Path, default=None, help="taxonomy YAML (default: the packaged one)")
    parser.add_argument(
        "--db",
        help="SQLite file or postgresql:// URL (default: $HAZARDSCAN_EVENTS_DB, else the service database: "
        "$HAZARDSCAN_DATABASE_URL, else <data dir>/hazardscan.db)",
    )
    parser.add_argument("--webhook", default=None, help="POST every event opening and closing to this URL")
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("HAZARDSCAN_WEBHOOK_SECRET"),
        help="HMAC-SHA256 key for X-Hazardscan-Signature (default: $HAZARDSCAN_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--webhook-drain",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds to keep delivering pending webhooks at exit (the rest stays queued)",
    )
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument(
        "--address",
        default="local",
        help="Ray address for --engine ray: local (private instance), auto, or ray://host:port",
    )
    parser.add_argument("--workers", type=int, default=None, help="Ray actors (default: one per CPU)")
    parser.add_argument(
        "--ship-code", action="store_true", help="send this package to the Ray workers (when it is not installed there)"
    )
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per detector")
    parser.add_argument(
        "--spinning",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ONNX Runtime threads spin-wait between ops (faster back-to-back runs; burns idle CPU)",
    )
    parser.add_argument(
        "--rect",
        action=argparse.BooleanOptionalAction,
        default="auto",
        help="pad frames only to the next stride multiple (1080p runs at 416×256 instead of 416×416, 0.55-0.67× the "
        "inference time; needs a dynamic-size model). Default: on whenever the model allows it (every frame of a "
        "camera has one shape; Ultralytics predicts the same way)",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=2,
        help="frames (from any cameras) per session call at most; on a CPU two calls of 2 in flight beat one of "
        "4 or 16 (1080p on 2 cores: 74 vs 63 fps); raise it on a GPU",
    )
    parser.add_argument(
        "--inflight",
        type=int,
        default=2,
        help="batches in the session at once, each on its own thread (default 2; threads default to cores / this)",
    )
    parser.add_argument("--conf", type=float, default=None, help="replace the model card's thresholds")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after this many seconds")


def _model_path(args: argparse.Namespace) -> Path:
    if args.model is not None:
        return Path(args.model)
    from inference_service.api.settings import get_settings

    return get_settings().model_path


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def run(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    try:
        config = load_cameras(args.cameras)
        taxonomy = load_taxonomy(args.taxonomy)
        config.check_hazards({h.id for h in taxonomy.hazards}, set(taxonomy.scene_ids))
        args.db = args.db or default_url()
        store = EventStore(args.db)
    except (CameraConfigError, TaxonomyError, StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    webhook = None
    if args.webhook:
        webhook = WebhookWorker(store, WebhookConfig(args.webhook, args.webhook_secret), stop)
        webhook.start()
    sink = StoreSink(store, webhook)
    # on Ray the actors (one per CPU) are the parallelism; each runs one batch at a time
    inflight = 1 if args.engine == "ray" else max(1, args.inflight)
    options = ScanOptions(max_batch=args.max_batch, conf=args.conf, inflight=inflight)
    _install_signal_handlers(stop)
    report: dict[str, Any]
    try:
        if args.engine == "ray":
            from inference_service.cctv.ray_engine import run_on_ray

            report = run_on_ray(
                config,
                _model_path(args),
                taxonomy,
                sink,
                address=args.address,
                workers=args.workers,
                threads_per_worker=args.threads,
                spinning=args.spinning,
                rect=args.rect,
                options=options,
                stop=stop,
                duration_s=args.duration,
                ship_code=args.ship_code,
            )
        else:
            from inference_service.runtime import Detector

            detector = Detector.load(
                _model_path(args),
                threads=args.threads or threads_per_call(options.inflight),
                spinning=args.spinning,
                max_batch=args.max_batch,
                rect=args.rect,
            )
            scanner = StreamScanner(config, detector, taxonomy, sink, options=options, stop=stop)
            report = {"engine": "local", "rect": detector.rect, **scanner.run(args.duration).as_dict()}
    except (CameraConfigError, ModelLoadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        stop.set()
        if webhook is not None:
            drained = webhook.drain(args.webhook_drain)
            if not drained:
                logger.warning(
                    "%d webhook messages stay queued in %s for the next run", store.pending_messages(), args.db
                )
    report["events_unstored"] = sink.pending if not sink.flush() else 0
    report["events_stored"] = store.count_events()
    report["webhook_pending"] = store.pending_messages() if webhook is not None else None
    store.close()
    print(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    failed = [cam for cam, status in report["cameras"].items() if status.get("state") == "failed"]
    return 1 if failed or report["events_unstored"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hazardscan scan", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
