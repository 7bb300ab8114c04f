"""The same scan on a Ray cluster: cameras partitioned across actors, one detector per actor.

The driver reads the model files once and puts them in the object store; each actor writes them to a
temporary folder and loads its :class:`~inference_service.runtime.Detector` once, then runs a
:class:`~.scanner.StreamScanner` over its cameras in a thread. The driver polls the actors for finished
events (with their evidence JPEGs) and hands them to its own sink, so the database and the webhook
outbox stay with the driver (a SQLite file works on a cluster too).

``address``: ``local`` starts a private Ray instance in this process; ``auto`` joins the cluster on
this machine; ``ray://host:10001`` uses Ray Client. The package must be importable on the workers
(installed there, or shipped with ``runtime_env={"py_modules": [...]}``, which :func:`run_on_ray` does
when ``ship_code`` is set). Ray is imported here only, and only when called.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from inference_service.cctv.config import CameraFile
from inference_service.cctv.scanner import EventSink, ListSink, ScanOptions, ScanReport, StreamScanner
from inference_service.cctv.store import StoredEvent
from inference_service.model_card import CARD_FILE, MODEL_FILE, resolve_model_path
from inference_service.runtime import Detector, RectMode
from inference_service.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

T = TypeVar("T")


def partition(items: Sequence[T], parts: int) -> list[list[T]]:
    """Round-robin split into at most ``parts`` non-empty lists, order kept within each."""
    n = max(1, min(parts, len(items)))
    return [list(items[i::n]) for i in range(n) if items[i::n]]


def model_files(path: Path | str) -> dict[str, bytes]:
    """The model and its card as bytes, to ship to workers that may not share this disk."""
    onnx_path, card_path = resolve_model_path(path)
    files = {MODEL_FILE: onnx_path.read_bytes()}
    if card_path is not None:
        files[CARD_FILE] = card_path.read_bytes()
    return files


class ScanWorker:
    """A Ray actor (wrapped with ``ray.remote`` at run time): one detector, several cameras."""

    def __init__(
        self,
        files: dict[str, bytes],
        taxonomy: Taxonomy,
        options: ScanOptions,
        threads: int | None,
        spinning: bool = True,
        rect: RectMode = None,
    ):
        self._dir = tempfile.TemporaryDirectory(prefix="hazardscan-model-")
        for name, data in files.items():
            (Path(self._dir.name) / name).write_bytes(data)
        self.detector = Detector.load(
            self._dir.name, threads=threads, spinning=spinning, max_batch=options.max_batch, rect=rect
        )
        self.taxonomy = taxonomy
        self.options = options
        self.sink = ListSink()
        self.stop_event = threading.Event()
        self.report: ScanReport | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self, config: CameraFile, duration_s: float | None) -> str:
        scanner = StreamScanner(
            config, self.detector, self.taxonomy, self.sink, options=self.options, stop=self.stop_event
        )

        def work() -> None:
            try:
                self.report = scanner.run(duration_s)
            except Exception:
                self.error = traceback.format_exc()

        self._thread = threading.Thread(target=work, name="scan", daemon=True)
        self._thread.start()
        return self.detector.card.model_id

    def poll(self) -> tuple[list[tuple[str, StoredEvent]], bool, dict[str, Any] | None, str | None]:
        """``(new events, done, report, error)``."""
        done = self._thread is not None and not self._thread.is_alive()
        items = self.sink.drain()
        report = self.report.as_dict() if (done and self.report is not None) else None
        return items, done, report, self.error

    def stop(self) -> None:
        self.stop_event.set()


def merge_reports(reports: Sequence[dict[str, Any]], elapsed_s: float) -> dict[str, Any]:
    frames = sum(r["frames"] for r in reports)
    return {
        "engine": "ray",
        "workers": len(reports),
        "elapsed_s": round(elapsed_s, 3),
        "frames": frames,
        "fps": round(frames / elapsed_s, 2) if elapsed_s > 0 else 0.0,
        "events_opened": sum(r["events_opened"] for r in reports),
        "events_closed": sum(r["events_closed"] for r in reports),
        "events_suspected": sum(r.get("events_suspected", 0) for r in reports),
        "events_unconfirmed": sum(r.get("events_unconfirmed", 0) for r in reports),
        "cameras": {k: v for r in reports for k, v in r["cameras"].items()},
    }


def run_on_ray(
    config: CameraFile,
    model_path: Path | str,
    taxonomy: Taxonomy,
    sink: EventSink,
    *,
    address: str = "local",
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    threads_per_worker: int | None = None,
    spinning: bool = True,
    rect: bool | None = None,
    options: ScanOptions | None = None,
    stop: threading.Event | None = None,
    duration_s: float | None = None,
    ship_code: bool = False,
    poll_s: float = 0.2,
) -> dict[str, Any]:
    """Scan every camera of ``config`` on Ray; events go to ``sink`` in this process. Returns a report."""
    import ray

    stop = stop or threading.Event()
    started_here = False
    if not ray.is_initialized():
        runtime_env: dict[str, Any] = {}
        if ship_code:
            runtime_env["py_modules"] = [str(Path(__file__).resolve().parents[1])]
        ray.init(
            address=None if address == "local" else address,
            include_dashboard=False if address == "local" else None,
            runtime_env=runtime_env or None,
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
        started_here = True
    start = time.perf_counter()
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        parts = partition(list(config.cameras), workers or max(1, int(cpus // cpus_per_worker)))
        threads = threads_per_worker or max(1, int(cpus_per_worker))
        actor_cls: Any = ray.remote(num_cpus=cpus_per_worker)(ScanWorker)
        files = ray.put(model_files(model_path))
        opts = options or ScanOptions()
        actors: list[Any] = [actor_cls.remote(files, taxonomy, opts, threads, spinning, rect) for _ in parts]
        ray.get(
            [
                a.start.remote(config.model_copy(update={"cameras": tuple(p)}), duration_s)
                for a, p in zip(actors, parts, strict=True)
            ]
        )
        logger.info("scanning %d cameras on %d Ray workers", len(config.cameras), len(actors))
        reports: dict[int, dict[str, Any]] = {}
        stopping = False
        while len(reports) < len(actors):
            if stop.is_set() and not stopping:
                ray.get([a.stop.remote() for a in actors])
                stopping = True
            polls = ray.get([a.poll.remote() for a in actors])
            for i, (items, done, report, error) in enumerate(polls):
                for kind, event in items:
                    sink.emit(kind, event)
                if error:
                    raise RuntimeError(f"Ray worker {i} failed:\n{error}")
                if done and report is not None:
                    reports[i] = report
            if len(reports) < len(actors):
                time.sleep(poll_s)
        for a in actors:
            ray.kill(a)
        sink.flush()
        return merge_reports(list(reports.values()), time.perf_counter() - start)
    finally:
        if started_here:
            ray.shutdown()
