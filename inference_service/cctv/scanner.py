"""The scan loop: camera readers → batcher → detector → taxonomy → events → sink (store, webhook).

Runs in the calling thread until every source has ended (files, folders) or ``stop`` is set (live
streams run forever otherwise). Reader threads decode while the model runs, and a camera that drops
only affects itself. With ``ScanOptions.inflight`` > 1, that many batches run through the (thread-safe)
session at once, each on its own thread; their results are still turned into events strictly in the
order the batches were taken, so tracking and events see every camera's frames in order. On 2 cores,
two single-threaded runs at once beat one two-threaded run (no synchronisation inside ops).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from inference_service.cctv.batcher import Batcher, BatchStats
from inference_service.cctv.config import CameraFile
from inference_service.cctv.events import CameraEvents, EventAction, EventRecord, Evidence, Observation
from inference_service.cctv.sources import CameraReader, Frame
from inference_service.cctv.store import EventStore, StoredEvent
from inference_service.cctv.webhook import WebhookWorker
from inference_service.evidence import (
    DEFAULT_FONT,
    DETECTION_COLOUR,
    SEVERITY_COLOURS,
    Annotation,
    doubt_marks,
    render_evidence,
)
from inference_service.imaging import DecodedImage, PhotoWarning, fit_inside, photo_warnings
from inference_service.runtime import Detector, DetectResult
from inference_service.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

# A nearly uniform view (flared, fogged, covered or dark lens) lasts seconds, so every 5th sampled frame is
# enough to see it; the check costs about 0.3 ms of a 1080p frame. A frame in which a hazard is seen is
# always checked: a hazard on a doubtful frame is unconfirmed, never an alarm.
VIEW_CHECK_EVERY = 5


@dataclass(frozen=True)
class ScanOptions:
    max_batch: int = 16
    conf: float | None = None  # replaces the model card's thresholds when set
    evidence_max_side: int = 1280
    evidence_quality: int = 85
    font_path: Path | None = DEFAULT_FONT
    status_every_s: float = 60.0  # log each camera's health this often
    inflight: int = 1  # batches in the session at once (give the detector cores // inflight threads)


def threads_per_call(inflight: int, cores: int | None = None) -> int:
    """ONNX Runtime threads for each of ``inflight`` concurrent session calls: the cores shared out."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, inflight))


class EventSink(Protocol):
    def emit(self, kind: str, event: StoredEvent) -> None: ...

    def flush(self) -> bool:
        """Retry what could not be written yet; True when nothing is pending."""
        ...


class StoreSink:
    """Writes events (and, with a webhook, their outbox messages) to the store.

    When the database is unavailable (locked, restarting, network), events wait in memory, oldest
    first, and are written on the next :meth:`emit` or :meth:`flush`; at most ``max_pending`` wait.
    """

    def __init__(self, store: EventStore, webhook: WebhookWorker | None = None, *, max_pending: int = 10_000):
        self.store = store
        self.webhook = webhook
        self.max_pending = max_pending
        self._pending: deque[tuple[str, StoredEvent]] = deque()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def emit(self, kind: str, event: StoredEvent) -> None:
        if len(self._pending) >= self.max_pending:
            dropped_kind, dropped = self._pending.popleft()
            logger.error("event store unavailable too long: dropping %s of event %s", dropped_kind, dropped.id)
        self._pending.append((kind, event))
        self.flush()

    def flush(self) -> bool:
        wrote = False
        while self._pending:
            kind, event = self._pending[0]
            try:
                self.store.record(event, kind, notify=self.webhook is not None)
            except Exception as exc:
                logger.error(
                    "cannot store event %s (%s: %s); %d waiting", event.id, type(exc).__name__, exc, len(self._pending)
                )
                self.store.reset()
                break
            self._pending.popleft()
            wrote = True
        if wrote and self.webhook is not None:
            self.webhook.poke()
        return not self._pending


class ListSink:
    """Collects events in memory (tests, Ray workers)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, StoredEvent]] = []
        self._lock = threading.Lock()

    def emit(self, kind: str, event: StoredEvent) -> None:
        with self._lock:
            self.items.append((kind, event))

    def flush(self) -> bool:
        return True

    def drain(self) -> list[tuple[str, StoredEvent]]:
        with self._lock:
            items, self.items = self.items, []
        return items


@dataclass
class ScanReport:
    elapsed_s: float = 0.0
    frames: int = 0
    opened: int = 0
    closed: int = 0
    closed_suspected: int = 0  # events that closed as suspicions (never alarms)
    closed_unconfirmed: int = 0  # events that closed seen only on doubtful frames (never alarms)
    batches: BatchStats = field(default_factory=BatchStats)
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "elapsed_s": round(self.elapsed_s, 3),
            "frames": self.frames,
            "fps": round(self.fps, 2),
            "events_opened": self.opened,
            "events_closed": self.closed,
            "events_suspected": self.closed_suspected,
            "events_unconfirmed": self.closed_unconfirmed,
            "batches": {
                "count": self.batches.batches,
                "largest": self.batches.largest,
                "multi_camera": self.batches.multi_camera,
            },
            "cameras": self.cameras,
        }


class StreamScanner:
    def __init__(
        self,
        config: CameraFile,
        detector: Detector,
        taxonomy: Taxonomy,
        sink: EventSink,
        *,
        options: ScanOptions | None = None,
        stop: threading.Event | None = None,
        id_factory: Callable[[], str] | None = None,
        observer: Callable[[Frame, DetectResult], None] | None = None,
    ) -> None:
        """``observer`` sees every frame with its detections (benchmarks, debugging); keep it cheap."""
        self.config = config
        self.detector = detector
        self.taxonomy = taxonomy
        self.sink = sink
        self.options = options or ScanOptions()
        self.stop = stop or threading.Event()
        self.observer = observer
        self.classes = detector.card.classes
        config.check_hazards({h.id for h in taxonomy.hazards}, set(taxonomy.scene_ids))
        self.scenes = {cam.id: cam.scene for cam in config.cameras}
        self.sites = {cam.id: cam.site for cam in config.cameras if cam.site is not None}
        detectable = {h.id for h in taxonomy.detectable_hazards(self.classes)}
        if not detectable:
            logger.warning("model %s raises none of the taxonomy's hazards: no events", detector.card.model_id)
        known = set(self.classes)
        for cam in config.cameras:
            # in the camera's scene its scene rules count too (a corridor camera can raise FIRE-006)
            raisable = {
                h.id for h in taxonomy.hazards if any(r.raisable_by(known) and r.applies_in(cam.scene) for r in h.rules)
            }
            missing = sorted(set(cam.hazards or ()) - raisable)
            if missing:
                logger.warning("camera %s: model %s cannot raise %s", cam.id, detector.card.model_id, missing)
        extra = {"id_factory": id_factory} if id_factory else {}
        self.events = {
            cam.id: CameraEvents(
                cam.id, config.policy(cam), zones=cam.zones, schedule=cam.schedule, hazards=cam.hazards, **extra
            )
            for cam in config.cameras
        }
        self.readers: list[CameraReader] = []
        self.report = ScanReport()
        # open event id → its rendered best evidence (and whether it was drawn as an alarm)
        self._evidence: dict[str, tuple[Evidence, bytes, bool]] = {}
        self._frames: dict[str, Evidence] = {}  # open event id → the best evidence whose frame is stored
        self._last_status = self._last_flush = time.time()

    def run(self, duration_s: float | None = None) -> ScanReport:
        start_wall, start = time.time(), time.perf_counter()
        arrived = threading.Event()
        self.readers = [CameraReader(cam, self.stop, arrived, base_time=start_wall) for cam in self.config.cameras]
        for reader in self.readers:
            reader.start()
        batcher = Batcher(self.readers, arrived, self.stop, self.options.max_batch)
        finished: set[str] = set()
        inflight = max(1, self.options.inflight)
        pending: deque[tuple[list[Frame], Future[list[DetectResult]]]] = deque()
        pool = ThreadPoolExecutor(max_workers=inflight, thread_name_prefix="hazardscan-infer")
        sources_open = True
        try:
            while sources_open or pending:
                if duration_s is not None and time.perf_counter() - start >= duration_s:
                    self.stop.set()
                if sources_open and len(pending) < inflight:
                    submitted = self._submit_next(batcher, pool, pending, timeout=0.005 if pending else 0.25)
                    sources_open = submitted is not None
                    if submitted or not pending:
                        self._housekeeping(finished, pending)
                        continue
                # The oldest batch's results, in order. Its slot in the session is refilled before its
                # events are worked out: that is Python work on this thread, and the cores would idle.
                batch, future = pending.popleft()
                results = future.result()
                if sources_open:
                    sources_open = self._submit_next(batcher, pool, pending, timeout=0.0) is not None
                self._events_from(batch, results)
                self._housekeeping(finished, pending)
        finally:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for reader in self.readers:
                reader.join(timeout=10)
            for cam_id, engine in self.events.items():
                if cam_id not in finished:
                    self._emit(engine.finish())
            if not self.sink.flush():
                logger.error("events could not be stored; see the errors above")
        self.report.elapsed_s = time.perf_counter() - start
        self.report.batches = batcher.stats
        self.report.cameras = self.camera_status()
        return self.report

    def camera_status(self) -> dict[str, dict[str, Any]]:
        return {
            r.camera.id: {**r.health.snapshot(), "events": vars(self.events[r.camera.id].stats).copy()}
            for r in self.readers
        }

    def _infer(self, batch: list[Frame]) -> list[DetectResult]:
        return self.detector.detect_batch([f.image for f in batch], conf=self.options.conf)

    def _submit_next(
        self,
        batcher: Batcher,
        pool: ThreadPoolExecutor,
        pending: deque[tuple[list[Frame], Future[list[DetectResult]]]],
        timeout: float,
    ) -> bool | None:
        """Send the next batch to the session: True if one was sent, False if none was ready within
        ``timeout``, None once every source has ended (or ``stop`` is set)."""
        batch = batcher.next_batch(timeout=timeout)
        if batch is None:
            return None
        if batch:
            pending.append((batch, pool.submit(self._infer, batch)))
        return bool(batch)

    def _events_from(self, batch: list[Frame], results: list[DetectResult]) -> None:
        for frame, result in zip(batch, results, strict=True):
            if self.observer is not None:
                self.observer(frame, result)
            findings = self.taxonomy.evaluate(result.detections, self.classes, self.scenes.get(frame.camera_id))
            engine = self.events[frame.camera_id]
            warned = False
            if frame.index % VIEW_CHECK_EVERY == 0:
                warned = bool(self._check_view(frame, engine))
            elif findings:
                warned = bool(photo_warnings(frame.image.array))
            observations = [
                Observation(f.hazard_id, f.box, f.confidence, suspected=f.suspected, unconfirmed=warned)
                for f in findings
                if f.box is not None
            ]
            self._emit(engine.update(frame.ts, observations, frame.image, result.width, result.height))
        self.report.frames += len(batch)

    @staticmethod
    def _check_view(frame: Frame, engine: CameraEvents) -> list[PhotoWarning]:
        """Count nearly uniform frames (a washed-out, dark or covered view); log when a camera's view turns so
        and when it recovers. Returns the frame's warnings."""
        warnings = photo_warnings(frame.image.array)
        stats = engine.stats
        stats.frames_view_checked += 1
        stats.frames_view_warning += bool(warnings)
        code = warnings[0].code if warnings else None
        if code != stats.view_warning:
            if code:
                logger.warning("camera %s: view %s: %s", frame.camera_id, code, warnings[0].message)
            else:
                logger.info("camera %s: view recovered (%s before)", frame.camera_id, stats.view_warning)
        stats.view_warning = code
        return warnings

    def _housekeeping(self, finished: set[str], pending: Iterable[tuple[list[Frame], Any]] = ()) -> None:
        """Close events of cameras whose source ended, and of live cameras that stopped delivering.

        A camera with frames still in the session (``pending``) waits until they have been turned into
        events."""
        now = time.time()
        if now - self._last_flush >= 1.0:
            self._last_flush = now
            self.sink.flush()
        if now - self._last_status >= self.options.status_every_s:
            self._last_status = now
            for r in self.readers:
                h = r.health
                logger.info(
                    "camera %s: %s, %d frames read, %d sampled, %d dropped, %d reconnects%s",
                    r.camera.id,
                    h.state,
                    h.frames_read,
                    h.frames_sampled,
                    h.frames_dropped,
                    h.reconnects,
                    f", last error: {h.last_error}" if h.last_error and h.state != "streaming" else "",
                )
        busy = Counter(f.camera_id for batch, _ in pending for f in batch)
        for reader in self.readers:
            cam_id = reader.camera.id
            if cam_id in finished or busy[cam_id]:
                continue
            if reader.finished.is_set() and len(reader.slot) == 0:
                finished.add(cam_id)
                self._emit(self.events[cam_id].finish())
            elif reader.live and reader.health.state != "streaming":
                self._emit(self.events[cam_id].tick(now))

    def _emit(self, actions: Iterable[EventAction]) -> None:
        for action in actions:
            self.sink.emit(action.kind, self._stored(action.event))
            event = action.event
            if action.kind == "opened":
                self.report.opened += 1
            elif action.kind == "closed":
                self.report.closed += 1
                self.report.closed_suspected += event.suspected
                self.report.closed_unconfirmed += event.unconfirmed
            doubt = ", ".join(k for k, v in (("suspected", event.suspected), ("unconfirmed", event.unconfirmed)) if v)
            logger.info(
                "event %s %s: camera %s hazard %s zone %s peak %.2f %s",
                event.id,
                action.kind,
                event.camera_id,
                event.hazard_id,
                event.zone,
                event.peak_confidence,
                f"{doubt}: not an alarm, a person confirms it" if doubt else "alarm",
            )

    def _stored(self, event: EventRecord) -> StoredEvent:
        hazard = self.taxonomy.hazard(event.hazard_id)
        best = event.best
        conf = f"{best.confidence:.0%}"
        mark_en, mark_zh = doubt_marks(event.suspected, event.unconfirmed)  # the photo API's marks: dashed, 疑似
        annotation = Annotation(
            best.box,
            f"{mark_en}{hazard.name_en} {conf}",
            f"{mark_zh}{hazard.name_zh} {hazard.name_en} {conf}",
            SEVERITY_COLOURS.get(hazard.severity, DETECTION_COLOUR),
            dashed=not event.alarm,
        )
        cached = self._evidence.pop(event.id, None)
        if cached is not None and cached[0] is best and cached[2] == event.alarm:  # closing as it opened
            jpeg = cached[1]
        else:
            image: DecodedImage = best.frame
            jpeg = render_evidence(
                image,
                [annotation],
                max_side=self.options.evidence_max_side,
                quality=self.options.evidence_quality,
                font_path=self.options.font_path,
            )
        if event.status == "open":
            self._evidence[event.id] = (best, jpeg, event.alarm)
        site = self.sites.get(event.camera_id)
        frame_jpeg, frame_box = self._frame(event) if site is not None else (None, None)
        return StoredEvent(
            id=event.id,
            camera_id=event.camera_id,
            hazard_id=event.hazard_id,
            hazard_name_en=hazard.name_en,
            hazard_name_zh=hazard.name_zh,
            severity=hazard.severity,
            zone=event.zone,
            status=event.status,
            started_at=event.started_at,
            opened_at=event.opened_at,
            last_seen=event.last_seen,
            ended_at=event.ended_at,
            peak_confidence=event.peak_confidence,
            frames=event.frames,
            evidence_ts=best.ts,
            evidence_box=best.box,
            model_id=self.detector.card.model_id,
            evidence_jpeg=jpeg,
            suspected=event.suspected,
            unconfirmed=event.unconfirmed,
            org=site.org if site else None,
            unit=site.unit if site else None,
            address=site.address if site else None,
            scene=self.scenes.get(event.camera_id),
            frame_jpeg=frame_jpeg,
            frame_box=frame_box,
        )

    def _frame(self, event: EventRecord) -> tuple[bytes | None, tuple[float, float, float, float] | None]:
        """The evidence frame without drawings, and the evidence box in its pixels, for the inspector app; (None,
        None) when the frame is the one already stored (the store keeps it)."""
        best = event.best
        if self._frames.get(event.id) is best:
            if event.status != "open":
                del self._frames[event.id]
            return None, None
        if event.status == "open":
            self._frames[event.id] = best
        else:
            self._frames.pop(event.id, None)
        image: DecodedImage = best.frame
        max_side = self.options.evidence_max_side
        jpeg = render_evidence(image, [], max_side=max_side, quality=self.options.evidence_quality)
        w, h = fit_inside(image.array.shape[1], image.array.shape[0], max_side)
        sx, sy = w / image.width, h / image.height
        x1, y1, x2, y2 = best.box
        return jpeg, (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
