"""What the app holds between requests: settings, the loaded scanner (or why it is not loaded), metrics."""

from __future__ import annotations

import logging
import math
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from inference_service.api.admission import ModelGate
from inference_service.api.keys import KeyCache, open_key_store
from inference_service.api.settings import MB, Settings
from inference_service.api.workers import Workers, lower_priority
from inference_service.budget import DecodeBudget
from inference_service.cctv.store import EventStore, beside_records
from inference_service.model_card import ModelCard, ModelLoadError
from inference_service.runtime import Detector
from inference_service.scan import EvidenceStyle, Scanner, ScanResult
from inference_service.storage import DiskReserve, StorageError, parse_url
from inference_service.taxonomy import TaxonomyError, load_taxonomy

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Prometheus metrics in a registry of their own (one per app, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hazardscan_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hazardscan_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.images = Counter(
            "hazardscan_images",
            "Photos received, by outcome (scanned or rejected)",
            ["outcome"],
            registry=self.registry,
        )
        self.hazards = Counter(
            "hazardscan_hazards_found", "Hazards raised, by hazard id", ["hazard_id"], registry=self.registry
        )
        self.unconfirmed = Counter(
            "hazardscan_hazards_unconfirmed",
            "Hazards found on photos with a warning (returned unconfirmed, never alarms), by hazard id",
            ["hazard_id"],
            registry=self.registry,
        )
        self.refused = Counter(
            "hazardscan_requests_refused",
            "Requests refused before running the model, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.ready = Gauge("hazardscan_model_ready", "1 when the model and taxonomy are loaded", registry=self.registry)

    def watch_disk(self, disk: DiskReserve) -> None:
        """Free bytes on the data folder's disk, read at each scrape (NaN when it cannot be read)."""
        free = Gauge(
            "hazardscan_data_disk_free_bytes",
            "Bytes free on the data folder's disk; photos are refused below HAZARDSCAN_MIN_FREE_DISK_MB",
            registry=self.registry,
        )
        free.set_function(lambda: math.nan if (n := disk.free()) is None else float(n))

    def observe_scan(self, scan: ScanResult) -> None:
        self.images.labels("scanned").inc()
        counter = self.unconfirmed if scan.unconfirmed else self.hazards
        for finding in scan.findings:
            counter.labels(finding.hazard_id).inc()

    def observe_rejected(self) -> None:
        self.images.labels("rejected").inc()


_ABSOLUTE_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^\s/\\:'\",;()]+)+[/\\]?")


def public_text(text: str) -> str:
    """``text`` with every absolute path replaced by its last part (clients never see machine paths)."""
    return _ABSOLUTE_PATH.sub(lambda m: Path(m.group().rstrip("/\\")).name or "/", text)


def public_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """The card's extra keys without how and where it was trained (paths, hardware, data sources)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return public_text(value) if isinstance(value, str) else value

    return {k: clean(v) for k, v in extra.items() if k not in PRIVATE_CARD_KEYS}


PRIVATE_CARD_KEYS = frozenset({"training", "data", "card_source", "ultralytics"})


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    scanner: Scanner | None = None
    reason: str | None = "the model is still loading"  # shown to clients: no paths, no library internals
    load_seconds: float | None = None
    events: EventStore | None = None
    events_reason: str | None = "the events store is not open yet"
    events_configured: bool = False  # a database exists (or is a server URL): failing to use it degrades
    serving: dict[str, Any] = field(default_factory=dict)  # precision and why (``/v1/model``)
    keys: KeyCache | None = None
    keys_reason: str | None = "the key store is not open yet"
    app_storage_reason: str | None = "the inspector app's storage is not open yet"  # None: open (or no app)
    budget: DecodeBudget = field(init=False)
    gate: ModelGate = field(init=False)
    workers: Workers = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.budget = DecodeBudget(s.decode_memory_mb * MB, wait_s=s.decode_wait_s)
        self.gate = ModelGate(
            s.model_concurrency,
            s.max_queue,
            self.metrics,
            s.max_queue_wait_s,
            decode_concurrency=s.decode_concurrency or os.cpu_count() or 1,
        )
        self.workers = Workers(s.worker_nice)
        if s.app_enabled:
            self.metrics.watch_disk(s.data_disk())

    def load(self) -> None:
        """Load model and taxonomy, open the events and key stores; on failure keep the reason for /readyz."""
        self.open_events()
        self.open_keys()
        s = self.settings
        t0 = time.perf_counter()
        # ONNX Runtime's threads, made with the session, inherit this thread's priority: lower it first.
        lower_priority(s.worker_nice)
        try:
            detector = Detector.load(
                s.model_path,
                threads=s.threads,
                spinning=s.ort_spinning,
                max_pixels=s.max_pixels,
                max_batch=s.max_batch_images,
                rect=s.rect,
                min_side=s.min_image_side,
                max_decode_bytes=s.request_decode_memory_mb * MB,
                budget=self.budget,
                precision=s.precision,
                spin_alone=s.ort_spin_alone,
            )
            taxonomy = load_taxonomy(s.taxonomy_path)
        except ModelLoadError as exc:
            shown = "/".join(Path(exc.path).parts[-2:])  # folder/model.onnx, never the whole machine path
            self.reason = f"cannot load the model {shown!r}: {public_text(exc.reason.split(' (')[0])}"
            logger.error("not ready: %s", exc)
            return
        except TaxonomyError as exc:
            self.reason = f"cannot load the hazard taxonomy: {public_text(str(exc))}"
            logger.error("not ready: %s", exc)
            return
        style = EvidenceStyle(font_path=s.font_path, max_side=s.evidence_max_side, quality=s.evidence_quality)
        self.scanner = Scanner(detector, taxonomy, style)
        self.serving = {**detector.serving, "threads": s.threads or os.cpu_count()}
        self.reason = None
        self.load_seconds = time.perf_counter() - t0
        self.metrics.ready.set(1)
        logger.info(
            "ready in %.2fs: model %s %s (%d classes, input %s), taxonomy %s",
            self.load_seconds,
            detector.card.model_id,
            detector.card.version,
            len(detector.card.classes),
            list(detector.card.input_size),
            taxonomy.version,
        )

    def open_events(self) -> None:
        """Open the CCTV events store once, at start-up (requests never open or create it): by default the service
        database, its events tables made here as the app's are; a database ``HAZARDSCAN_EVENTS_DB`` names must
        exist already (a mistyped path makes no empty one)."""
        from inference_service.cctv.api import get_cctv_settings  # the events router's own setting

        explicit = get_cctv_settings().events_db
        try:
            url = explicit or beside_records(self.settings)
            dialect, target = parse_url(url)
            if explicit is None:
                self._note_old_events_file()
            elif dialect == "sqlite" and target != ":memory:" and not Path(target).is_file():
                self.events_reason = (
                    f"no CCTV events database {Path(target).name!r} yet: `hazardscan scan` creates it "
                    "(HAZARDSCAN_EVENTS_DB); restart the service once it exists"
                )
                logger.info("CCTV events: %s", self.events_reason)
                return
            self.events_configured = True
            self.events = EventStore(url)
            self.events_reason = None
        except (StorageError, sqlite3.Error, OSError) as exc:
            self.events = None
            self.events_reason = "the events database cannot be opened or written; see the server log"
            logger.error("CCTV events unavailable: %s", exc)

    @staticmethod
    def _note_old_events_file() -> None:
        """Events went to ``hazardscan-events.db`` in the working folder before they joined the service database:
        say so when such a file is still there, so that nobody wonders where its events went."""
        old = Path("hazardscan-events.db")
        if old.is_file():
            logger.warning(
                "CCTV events: the service database holds them now; %s in the working folder is no longer read "
                "(set HAZARDSCAN_EVENTS_DB=%s to keep using it)",
                old,
                old.resolve(),
            )

    def open_keys(self) -> None:
        """Open the API key store (the service database) once, at start-up."""
        try:
            self.keys = KeyCache(open_key_store(self.settings.resolved_database_url()))
            self.keys_reason = None
        except (StorageError, sqlite3.Error, OSError) as exc:
            self.keys = None
            self.keys_reason = "the key store (service database) cannot be opened; see the server log"
            logger.error("API keys unavailable: %s", exc)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()

    def public_card(self, card: ModelCard) -> dict[str, Any]:
        data = card.model_dump(mode="json")
        data["extra"] = public_extra(card.extra)
        data["serving"] = self.serving
        return data
