"""One scan = detect + hazard rules (+ evidence photo). Shared by the HTTP API and the CLI.

A scan runs in three steps, :meth:`Scanner.stage` (decode, letterbox), :meth:`Scanner.infer` (the session) and
:meth:`Scanner.finish` (boxes, hazards, evidence), so that the service holds a model slot for the session alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference_service.budget import MB, BudgetBusyError
from inference_service.evidence import DEFAULT_FONT, annotations_for, render_evidence
from inference_service.imaging import (
    CORRUPT_DATA,
    DecodedImage,
    ImageError,
    ImageTooLargeError,
    PhotoWarning,
    decode_cost_of,
    decode_for_display,
    photo_warnings,
)
from inference_service.runtime import Detector, DetectResult, ImageInput, Staged
from inference_service.taxonomy import HazardFinding, Taxonomy

logger = logging.getLogger(__name__)

# Photos of a batch are decoded, run and finished this many at a time, so a batch holds the decoded pixels
# of one chunk, never of all its photos.
CHUNK = 4


class BatchTooLargeError(ImageError):
    """The photos of one request need more decode memory together than a request may use."""

    code = "batch_too_large"


@dataclass(frozen=True)
class ScanOptions:
    min_confidence: float | None = None  # replaces the card's per-class thresholds when set
    classes: tuple[str, ...] | None = None  # detector class names to keep; all when None
    evidence: bool = False
    scene: str | None = None  # the kind of place (a taxonomy scene id); rules that need a scene stay silent without


@dataclass(frozen=True, eq=False)
class ScanResult:
    detect: DetectResult
    findings: list[HazardFinding]
    evidence_jpeg: bytes | None
    timings_ms: dict[str, float]
    warnings: list[PhotoWarning]  # about the photo itself (damaged data; nearly uniform bright, dark or grey)

    @property
    def unconfirmed(self) -> bool:
        """A photo with a warning cannot confirm what was found on it: its hazards are doubtful, never alarms."""
        return bool(self.warnings)


@dataclass(frozen=True)
class EvidenceStyle:
    font_path: Path | None = DEFAULT_FONT
    max_side: int = 1600
    quality: int = 85


@dataclass(eq=False)
class Pending:
    """One request's photos between the stages: staged for the model, or already refused."""

    staged: Staged  # the photos that decoded
    sources: list[bytes | None]  # their bytes (for a larger evidence decode), per staged photo
    slots: list[int]  # their places in the request
    errors: dict[int, ImageError | BudgetBusyError]  # place -> why that photo was refused
    count: int  # photos in the request (or chunk)


class Scanner:
    """A detector and a taxonomy that agree on class names. Thread-safe."""

    def __init__(self, detector: Detector, taxonomy: Taxonomy, style: EvidenceStyle | None = None) -> None:
        self.detector = detector
        self.taxonomy = taxonomy
        self.style = style or EvidenceStyle()
        self.class_zh = {c.name: c.zh for c in taxonomy.detector_classes}
        card = detector.card
        if card.taxonomy_version and card.taxonomy_version != taxonomy.version:
            logger.warning(
                "model %s was built for taxonomy %s but taxonomy %s is loaded",
                card.model_id,
                card.taxonomy_version,
                taxonomy.version,
            )
        unknown = [c for c in card.classes if c not in self.class_zh]
        if unknown:
            logger.warning("model classes %s are not in the taxonomy; they raise no hazards", unknown)

    def check(self, options: ScanOptions | None) -> None:
        """Raise for an unknown scene or class, before anything is decoded."""
        opts = options or ScanOptions()
        self.taxonomy.check_scene(opts.scene)
        self.detector.class_ids(opts.classes)

    def scan(self, image: ImageInput, options: ScanOptions | None = None) -> ScanResult:
        return self.scan_batch([image], options)[0]

    def scan_batch(self, images: Sequence[ImageInput], options: ScanOptions | None = None) -> list[ScanResult]:
        """Scan photos; the first that cannot be decoded raises. :meth:`stage`, :meth:`infer`, :meth:`finish`."""
        pending = self.stage(images, options)
        return [r for r in self.finish(pending, self.infer(pending), options) if isinstance(r, ScanResult)]

    def stage(self, images: Sequence[ImageInput], options: ScanOptions | None = None) -> Pending:
        """The work before the model: check the options, decode, letterbox (raises on a photo it cannot use)."""
        self.check(options)
        staged = self.detector.stage(images)
        sources = [image if isinstance(image, bytes) else None for image in images]
        return Pending(staged, sources, list(range(len(images))), {}, len(images))

    def infer(self, pending: Pending, *, alone: bool = False) -> list[np.ndarray]:
        """The model's raw outputs for the staged photos: the only step that needs a model slot. ``alone``: no
        other photo is decoding or running (see :meth:`Detector.infer`)."""
        return self.detector.infer(pending.staged, alone=alone)

    def finish(
        self, pending: Pending, outputs: Sequence[np.ndarray], options: ScanOptions | None = None
    ) -> list[ScanResult | ImageError | BudgetBusyError]:
        """Boxes, hazards, photo warnings and the evidence photo; each photo's result or error, in request order."""
        opts = options or ScanOptions()
        detected = self.detector.finish(pending.staged, outputs, opts.min_confidence, opts.classes)
        out: list[ScanResult | ImageError | BudgetBusyError | None] = [None] * pending.count
        for i, exc in pending.errors.items():
            out[i] = exc
        for i, result, source in zip(pending.slots, detected, pending.sources, strict=True):
            out[i] = self._finish(result, opts, source)
        return [r for r in out if r is not None]

    def scan_each(
        self, photos: Sequence[bytes], options: ScanOptions | None = None
    ) -> list[ScanResult | ImageError | BudgetBusyError]:
        """Scan photos in chunks of ``CHUNK``; a photo that cannot be decoded yields its error, the rest still scan.

        The detector's ``max_decode_bytes`` bounds the decode memory of all the photos together: once a batch
        has spent it, its further photos are refused (413) without being decoded.
        """
        self.check(options)
        out: list[ScanResult | ImageError | BudgetBusyError] = []
        spent = [0]
        for start in range(0, len(photos), CHUNK):
            pending = self.stage_each(photos[start : start + CHUNK], options, spent)
            out.extend(self.finish(pending, self.infer(pending), options))
        return out

    def check_batch(self, photos: Sequence[bytes]) -> None:
        """Refuse, before anything is decoded, a request of several photos whose decodes together would need more
        than ``max_decode_bytes`` (estimated from their headers): the message says how to split it."""
        budget = self.detector.max_decode_bytes
        if budget is None or len(photos) < 2:
            return
        target = max(self.detector.input_size)
        costs = [decode_cost_of(data, target) for data in photos]
        total = sum(costs)
        if total <= budget:
            return
        fit, running = 0, 0
        while fit < len(costs) and running + costs[fit] <= budget:
            running += costs[fit]
            fit += 1
        split = f"the first {fit} fit in one request" if fit > 1 else "send each photo in a request of its own"
        raise BatchTooLargeError(
            f"the {len(photos)} photos of this request need about {total / MB:,.0f} MB to decode together; a request "
            f"may use {budget / MB:,.0f} MB: send them in several requests ({split})"
        )

    def stage_each(self, photos: Sequence[bytes], options: ScanOptions | None, spent: list[int]) -> Pending:
        """:meth:`stage` for one chunk of a batch: a photo that cannot be decoded keeps its error, the rest go on.

        ``spent``: decode bytes the request's earlier chunks used (updated), against ``max_decode_bytes``."""
        self.check(options)
        errors: dict[int, ImageError | BudgetBusyError] = {}
        decoded: list[tuple[int, DecodedImage, float]] = []
        budget = self.detector.max_decode_bytes
        for i, data in enumerate(photos):
            t0 = time.perf_counter()
            if budget is not None:
                cost = decode_cost_of(data, max(self.detector.input_size))
                if spent[0] and spent[0] + cost > budget:
                    errors[i] = ImageTooLargeError(
                        f"this request's photos need more than {budget / MB:.0f} MB to decode together; "
                        "send this one in another request"
                    )
                    continue
                spent[0] += cost
            try:
                image = self.detector.decode(data)
            except (ImageError, BudgetBusyError) as exc:
                errors[i] = exc
                continue
            decoded.append((i, image, round((time.perf_counter() - t0) * 1000, 3)))
        staged = self.detector.stage([image for _, image, _ in decoded])
        for timing, (_, _, decode_ms) in zip(staged.timings, decoded, strict=True):
            timing["decode"] = decode_ms
        return Pending(staged, [photos[i] for i, _, _ in decoded], [i for i, _, _ in decoded], errors, len(photos))

    def _finish(self, result: DetectResult, opts: ScanOptions, source: bytes | None) -> ScanResult:
        t0 = time.perf_counter()
        classes = self.detector.card.classes
        evidence = opts.evidence
        findings = self.taxonomy.evaluate(result.detections, classes, opts.scene)
        warnings = ([CORRUPT_DATA] if result.image.corrupt else []) + photo_warnings(result.image.array)
        timings = {**result.timings_ms, "hazards": round((time.perf_counter() - t0) * 1000, 3)}
        jpeg = None
        if evidence:
            t1 = time.perf_counter()
            jpeg = render_evidence(
                self._display_image(result, source),
                annotations_for(result, findings, classes, self.class_zh, unconfirmed=bool(warnings)),
                max_side=self.style.max_side,
                quality=self.style.quality,
                font_path=self.style.font_path,
            )
            timings["evidence"] = round((time.perf_counter() - t1) * 1000, 3)
        return ScanResult(result, findings, jpeg, timings, warnings)

    def _display_image(self, result: DetectResult, source: bytes | None) -> DecodedImage:
        """The detector's decode when big enough for the evidence photo, else a larger decode."""
        wanted = min(self.style.max_side, max(result.width, result.height))
        if source is None or max(result.image.array.shape[:2]) >= wanted:
            return result.image
        return decode_for_display(
            source, self.style.max_side, max_pixels=self.detector.max_pixels, budget=self.detector.budget
        )
