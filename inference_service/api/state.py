"""What the app holds between requests: settings, the loaded scanner (or why it is not loaded), metrics."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from inference_service.api.settings import Settings
from inference_service.model_card import ModelLoadError
from inference_service.runtime import Detector
from inference_service.scan import EvidenceStyle, Scanner, ScanResult
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
        self.ready = Gauge("hazardscan_model_ready", "1 when the model and taxonomy are loaded", registry=self.registry)

    def observe_scan(self, scan: ScanResult) -> None:
        self.images.labels("scanned").inc()
        for finding in scan.findings:
            self.hazards.labels(finding.hazard_id).inc()

    def observe_rejected(self) -> None:
        self.images.labels("rejected").inc()


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    scanner: Scanner | None = None
    reason: str | None = "the model is still loading"
    load_seconds: float | None = None

    def load(self) -> None:
        """Load model and taxonomy; on failure keep the reason so /readyz and /v1/detect can say it."""
        s = self.settings
        t0 = time.perf_counter()
        try:
            detector = Detector.load(
                s.model_path,
                threads=s.threads,
                spinning=s.ort_spinning,
                max_pixels=s.max_pixels,
                max_batch=s.max_batch_images,
                rect=s.rect,
            )
            taxonomy = load_taxonomy(s.taxonomy_path)
        except (ModelLoadError, TaxonomyError) as exc:
            self.reason = str(exc)
            logger.error("not ready: %s", exc)
            return
        style = EvidenceStyle(font_path=s.font_path, max_side=s.evidence_max_side, quality=s.evidence_quality)
        self.scanner = Scanner(detector, taxonomy, style)
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
