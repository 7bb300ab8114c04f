"""The detector: one ONNX Runtime session on the CPU, shared by every request thread.

``InferenceSession.run`` is thread-safe, so a single :class:`Detector` serves all requests; nothing is
created per request except the input tensor.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from inference_service.budget import DecodeBudget
from inference_service.detections import Detections
from inference_service.imaging import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    Placement,
    decode_image,
    letterbox_tensor,
    place,
)
from inference_service.model_card import LoadedModel, ModelCard, ModelLoadError
from inference_service.postprocess import ImageGeometry, postprocess
from inference_service.precision import Precision, load_for_serving

logger = logging.getLogger(__name__)

ImageInput = bytes | DecodedImage


class UnknownClassError(ValueError):
    """A class filter names a class the model does not have."""

    code = "unknown_class"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


RectMode = bool | Literal["auto"] | None


@dataclass(frozen=True, eq=False)
class DetectResult:
    detections: Detections  # boxes in upright original pixels
    width: int
    height: int
    timings_ms: dict[str, float]
    image: DecodedImage = field(repr=False)  # what was decoded; evidence is drawn on it


@dataclass(eq=False)
class Staged:
    """Photos decoded and laid out as input tensors: all the work before the session (:meth:`Detector.stage`)."""

    images: list[DecodedImage]
    geometries: list[ImageGeometry]
    timings: list[dict[str, float]]  # per photo, filled in as the stages run
    groups: list[tuple[np.ndarray, list[int]]]  # one input tensor per input shape, and the photos in it


def session_options(threads: int | None = None, *, spinning: bool = False, park: bool = False) -> ort.SessionOptions:
    """Deliberate CPU settings for a request-serving process.

    All cores inside one op (``intra_op``), ops one after another (sequential, ``inter_op`` 1), every
    graph optimisation. ``spinning``: worker threads spin-wait between the parallel sections of a run instead
    of sleeping and being woken for each. A run is faster so on cores it has to itself, and slower when other
    busy work shares them (figures: docs/performance.md); library callers and the CCTV scanner opt in, the service
    spins only for a photo that has the model to itself (:meth:`Detector.add_alone_session`). ``park``: the
    threads stop spinning as soon as a run returns, instead of spinning on for a while after it.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if park:
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    return opts


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class Detector:
    """Photo in, :class:`Detections` in original pixels out. Thread-safe.

    ``rect``: a model whose ONNX input has a symbolic height/width takes any multiple of its stride up to
    ``input_size``; photos are then padded only to the next multiple (Ultralytics' minimum rectangle), so a
    16:9 frame runs at 416×256 instead of 416×416 (0.55–0.67× the inference time for the 416 px YOLOv8n).
    ``rect=None`` follows the card; ``"auto"`` uses it whenever the model allows (video: every frame has one shape).
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_batch: int = 16,
        rect: RectMode = None,
        min_side: int = 1,
        max_decode_bytes: int | None = None,
        budget: DecodeBudget | None = None,
    ) -> None:
        self.model = model
        self.card: ModelCard = model.card
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.max_decode_bytes = max_decode_bytes
        self.budget = budget  # process-wide memory for decoded pixels, shared by every caller
        self.serving: dict[str, Any] = {"precision": "fp32", "file": model.onnx_path.name}
        self.alone_session: ort.InferenceSession | None = None  # see add_alone_session
        self.max_batch = max(1, max_batch)
        if rect == "auto":
            rect = model.dynamic_hw
        if rect and not model.dynamic_hw:
            raise ModelLoadError(
                model.onnx_path,
                f"rect inputs asked for, but the model input is fixed at {list(self.card.input_size)}; "
                "export it with a dynamic height and width",
            )
        self.rect = model.dynamic_hw and (self.card.rect if rect is None else rect)

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        threads: int | None = None,
        spinning: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        max_batch: int = 16,
        rect: RectMode = None,
        min_side: int = 1,
        max_decode_bytes: int | None = None,
        budget: DecodeBudget | None = None,
        precision: Precision = "fp32",
        spin_alone: bool = False,
    ) -> Detector:
        """Open a model folder or ``.onnx`` file; raises ``ModelLoadError`` with the reason.

        ``rect``: pad photos only to the next stride multiple (needs a dynamic-size model); ``None`` follows
        the card; ``"auto"``: whenever the model allows. ``min_side``, ``max_decode_bytes`` and ``budget``
        bound what :meth:`decode` accepts (see :func:`~inference_service.imaging.decode_image`).
        ``precision``: ``"auto"`` serves a folder's ``model.int8.onnx`` only where it is measured faster
        (see :mod:`inference_service.precision`); the choice is in ``serving``. ``spin_alone`` (with ``spinning``
        off): a second session of the same file that spins, for :meth:`infer` ``alone``."""
        options = session_options(threads, spinning=spinning)
        model, serving = load_for_serving(path, options, precision)
        detector = cls(
            model,
            max_pixels=max_pixels,
            max_batch=max_batch,
            rect=rect,
            min_side=min_side,
            max_decode_bytes=max_decode_bytes,
            budget=budget,
        )
        detector.serving = {**serving, "spinning": "always" if spinning else "alone" if spin_alone else "off"}
        if spin_alone and not spinning:
            detector.add_alone_session(threads)
        detector.warmup()
        return detector

    def add_alone_session(self, threads: int | None = None) -> None:
        """A second session of the served file whose threads spin between the ops of a run (and park when it
        returns), for a photo that has the model and the cores to itself (:meth:`infer` with ``alone``). Spinning
        shortens such a run; while other photos decode beside it, it would take their cores, so the shared
        session keeps sleeping. Costs a second copy of the weights in memory."""
        options = session_options(threads, spinning=True, park=True)
        self.alone_session = ort.InferenceSession(
            str(self.model.onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    @property
    def input_size(self) -> tuple[int, int]:
        return self.card.input_size

    @property
    def dynamic_batch(self) -> bool:
        return self.model.fixed_batch is None

    def place(self, img: DecodedImage) -> tuple[Placement, ImageGeometry]:
        """Where ``img`` lands in the input this model runs on, and how to map boxes back (no pixels moved)."""
        h, w = img.array.shape[:2]
        at = place(h, w, self.input_size, self.card.stride if self.rect else None)
        top, _, left, _ = at.pad
        return at, ImageGeometry(at.gains(w, h), (left, top), (img.scale_x, img.scale_y), (img.width, img.height))

    def input_tensor(self, img: DecodedImage) -> tuple[np.ndarray, ImageGeometry]:
        """The ``1×3×H×W`` float32 tensor this model runs on for ``img`` (as :meth:`detect` feeds it), and the
        geometry that maps its boxes back."""
        at, geometry = self.place(img)
        return letterbox_tensor(img.array, at, bgr=img.channels == "BGR"), geometry

    def warmup(self) -> None:
        """One run on a blank input (each session), so the first request does not pay for lazy allocations."""
        h, w = self.input_size
        batch = self.model.fixed_batch or 1
        self._run(np.zeros((batch, 3, h, w), np.float32))
        if self.alone_session is not None:
            self._run(np.zeros((batch, 3, h, w), np.float32), alone=True)

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(
            data,
            target=max(self.input_size),
            max_pixels=self.max_pixels,
            min_side=self.min_side,
            max_decode_bytes=self.max_decode_bytes,
            budget=self.budget,
        )

    def class_ids(self, classes: Sequence[str] | None) -> list[int] | None:
        if classes is None:
            return None
        try:
            return self.card.class_index(list(classes))
        except KeyError as exc:
            raise UnknownClassError(str(exc.args[0])) from exc

    def detect(
        self, image: ImageInput, conf: float | None = None, classes: Sequence[str] | None = None
    ) -> DetectResult:
        return self.detect_batch([image], conf, classes)[0]

    def detect_batch(
        self, images: Sequence[ImageInput], conf: float | None = None, classes: Sequence[str] | None = None
    ) -> list[DetectResult]:
        """Detect on several photos; one session call per chunk when the model has a dynamic batch axis.

        ``conf`` replaces the card's per-class thresholds for this call; ``classes`` keeps only those
        class names. Undecodable bytes raise; decode them first with :meth:`decode` to isolate errors.
        The same as :meth:`stage`, :meth:`infer` and :meth:`finish` one chunk at a time.
        """
        self.class_ids(classes)  # an unknown class fails before anything is decoded
        chunk = self.model.fixed_batch or self.max_batch
        results: list[DetectResult] = []
        for start in range(0, len(images), chunk):
            staged = self.stage(images[start : start + chunk])
            results.extend(self.finish(staged, self.infer(staged), conf, classes))
        return results

    def stage(self, images: Sequence[ImageInput]) -> Staged:
        """Everything before the session: decode (bytes), letterbox and the input tensors (one per input shape
        and batch of at most ``max_batch``, or the model's fixed batch).

        The service runs this outside its model slot, so that the slot only ever holds the session."""
        decoded: list[DecodedImage] = []
        geometries: list[ImageGeometry] = []
        placements: list[Placement] = []
        timings: list[dict[str, float]] = []
        for item in images:
            t0 = time.perf_counter()
            img = self.decode(item) if isinstance(item, bytes) else item
            t_decode = _ms(t0) if isinstance(item, bytes) else 0.0
            t1 = time.perf_counter()
            at, geometry = self.place(img)
            decoded.append(img)
            geometries.append(geometry)
            placements.append(at)
            timings.append({"decode": t_decode, "preprocess": _ms(t1)})
        # One session call per input shape: with rect inputs, photos of other aspect ratios differ.
        members_of: dict[tuple[int, int], list[int]] = {}
        for i, at in enumerate(placements):
            members_of.setdefault(at.shape, []).append(i)
        groups: list[tuple[np.ndarray, list[int]]] = []
        size = self.model.fixed_batch or self.max_batch
        for (h, w), same_shape in members_of.items():
            for start in range(0, len(same_shape), size):
                members = same_shape[start : start + size]
                batch = self.model.fixed_batch or len(members)
                # every slot is written in full below; a fixed batch's unused slots are zeros
                tensor = np.empty((batch, 3, h, w), np.float32)
                tensor[len(members) :] = 0
                for slot, i in enumerate(members):
                    t1 = time.perf_counter()
                    letterbox_tensor(
                        decoded[i].array, placements[i], bgr=decoded[i].channels == "BGR", out=tensor[slot]
                    )
                    timings[i]["preprocess"] = round(timings[i]["preprocess"] + _ms(t1), 3)
                groups.append((tensor, members))
        return Staged(decoded, geometries, timings, groups)

    def infer(self, staged: Staged, *, alone: bool = False) -> list[np.ndarray]:
        """The session's raw output for each staged photo (one session call per input shape). ``alone``: nothing
        else is decoding or running, so the spinning session (:meth:`add_alone_session`) runs it where there is one."""
        outputs: list[np.ndarray] = [np.empty(0, np.float32)] * len(staged.images)
        for tensor, members in staged.groups:
            t2 = time.perf_counter()
            output = self._run(tensor, alone)
            t_infer = round(_ms(t2) / len(members), 3)
            for slot, i in enumerate(members):
                outputs[i] = output[slot][None]
                staged.timings[i]["infer"] = t_infer
        return outputs

    def finish(
        self,
        staged: Staged,
        outputs: Sequence[np.ndarray],
        conf: float | None = None,
        classes: Sequence[str] | None = None,
    ) -> list[DetectResult]:
        """Boxes in original pixels from the raw outputs of :meth:`infer` (thresholds, NMS, class filter)."""
        class_ids = self.class_ids(classes)
        thresholds = self.card.thresholds(conf)
        groups = self.card.group_ids()
        results: list[DetectResult] = []
        for img, geometry, output, timing in zip(
            staged.images, staged.geometries, outputs, staged.timings, strict=True
        ):
            t3 = time.perf_counter()
            (dets,) = postprocess(output, [geometry], thresholds, self.card.nms_iou, classes=class_ids, groups=groups)
            timing["postprocess"] = _ms(t3)
            results.append(DetectResult(dets, img.width, img.height, timing, img))
        return results

    def _run(self, tensor: np.ndarray, alone: bool = False) -> np.ndarray:
        if self.model.input_dtype != np.float32:
            tensor = tensor.astype(self.model.input_dtype)
        session = self.alone_session if alone and self.alone_session is not None else self.model.session
        (output,) = session.run([self.model.output_name], {self.model.input_name: tensor})
        return np.asarray(output, np.float32)
