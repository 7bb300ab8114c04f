"""Model cards: what a detector outputs and how to threshold it, read from the model's own files.

A model lives in ``models/<name>/`` as ``model.onnx`` plus ``card.json``, or is a bare ``.onnx`` file.
The card is taken from, in order:

1. ``card.json`` beside the model (``<stem>.card.json`` first when the model is a bare file);
2. the ONNX metadata key ``hazardscan_card`` (the same JSON, embedded at export);
3. Ultralytics' own ONNX metadata (``names``, ``imgsz``) with default thresholds.

Keys of the JSON that are not card fields (metrics, data, training, ...) are kept whole in ``extra``.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

logger = logging.getLogger(__name__)

CARD_FILE = "card.json"
MODEL_FILE = "model.onnx"
METADATA_KEY = "hazardscan_card"


class ModelLoadError(RuntimeError):
    """The model or its card cannot be used; ``reason`` says why and how to fix it."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot load model {self.path}: {reason}")


class ModelCard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    classes: list[str] = Field(min_length=1, description="detector class names in model output order")
    input_size: tuple[int, int] = Field(description="model input [height, width] in pixels")
    conf_threshold: float = Field(0.25, ge=0.0, le=1.0, description="threshold for classes without their own")
    class_thresholds: dict[str, float] = Field(default_factory=dict, description="per-class operating thresholds")
    nms_iou: float = Field(0.5, gt=0.0, le=1.0)
    stride: int = Field(32, ge=1, description="largest feature stride; a dynamic-size input must be a multiple")
    rect: bool = Field(
        False,
        description="serve photos with minimum-rectangle inputs (pad only to the next stride multiple) when the "
        "ONNX input has a dynamic height/width; set by whoever measured the model's accuracy that way (the CCTV "
        "scanner uses them whenever the model allows, unless told not to)",
    )
    label_groups: list[list[str]] = Field(
        default_factory=list,
        description="classes that compete for an anchor: an anchor answers with its best class of each group, so a "
        "class taught in a group of its own (hazardscan teach --keep-others) never takes an anchor from the classes "
        "the model had; empty: one group of every class",
    )
    taxonomy_version: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="everything else in the card, kept whole")

    @model_validator(mode="before")
    @classmethod
    def _collect_extra(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known = set(cls.model_fields)
        extra = dict(data.get("extra") or {})
        extra.update({k: v for k, v in data.items() if k not in known})
        return {**{k: v for k, v in data.items() if k in known}, "extra": extra}

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v: list[str]) -> list[str]:
        dup = sorted({c for c in v if v.count(c) > 1})
        if dup:
            raise ValueError(f"class names must be unique; repeated: {dup}")
        return v

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) <= 0:
            raise ValueError(f"input_size must be two positive ints [h, w], got {list(v)}")
        return v

    @model_validator(mode="after")
    def _known_threshold_classes(self) -> ModelCard:
        unknown = sorted(set(self.class_thresholds) - set(self.classes))
        if unknown:
            raise ValueError(f"class_thresholds name classes not in 'classes': {unknown}")
        bad = {k: v for k, v in self.class_thresholds.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"class_thresholds must lie in [0, 1]: {bad}")
        return self

    @model_validator(mode="after")
    def _groups_partition_classes(self) -> ModelCard:
        if not self.label_groups:
            return self
        listed = [c for group in self.label_groups for c in group]
        if any(not group for group in self.label_groups):
            raise ValueError("label_groups must not hold an empty group")
        if sorted(listed) != sorted(self.classes):
            twice = sorted({c for c in listed if listed.count(c) > 1})
            unknown = sorted(set(listed) - set(self.classes))
            left_out = sorted(set(self.classes) - set(listed))
            raise ValueError(
                "label_groups must name every class exactly once; "
                f"twice: {twice}, not a class: {unknown}, left out: {left_out}"
            )
        return self

    def group_ids(self) -> list[list[int]] | None:
        """``label_groups`` as class indices; ``None`` for one group of every class."""
        if len(self.label_groups) <= 1:
            return None
        return [self.class_index(group) for group in self.label_groups]

    def thresholds(self, override: float | None = None) -> npt.NDArray[np.float32]:
        """Per-class operating thresholds in class order; ``override`` replaces them all."""
        if override is not None:
            return np.full(len(self.classes), override, np.float32)
        return np.array([self.class_thresholds.get(c, self.conf_threshold) for c in self.classes], np.float32)

    def class_index(self, names: list[str] | tuple[str, ...]) -> list[int]:
        """Indices of class names; raises ``KeyError`` naming the unknown ones and the known ones."""
        unknown = [n for n in names if n not in self.classes]
        if unknown:
            raise KeyError(f"unknown class {unknown}; this model knows {self.classes}")
        return [self.classes.index(n) for n in names]

    def public_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def resolve_model_path(path: Path | str) -> tuple[Path, Path | None]:
    """The ONNX file and the card JSON (if any) for a model folder or a bare ``.onnx`` path."""
    p = Path(path)
    if p.is_dir():
        onnx_path = p / MODEL_FILE
        card = p / CARD_FILE
        if not onnx_path.is_file():
            raise ModelLoadError(p, f"folder has no {MODEL_FILE}; export one or point to a .onnx file")
        return onnx_path, card if card.is_file() else None
    if not p.exists():
        raise ModelLoadError(p, "no such file or folder; set HAZARDSCAN_MODEL_PATH or pass --model")
    if p.suffix.lower() != ".onnx":
        raise ModelLoadError(p, "expected a model folder or a .onnx file")
    for card in (p.with_name(p.stem + ".card.json"), p.with_name(CARD_FILE)):
        if card.is_file():
            return p, card
    return p, None


def parse_card(data: Mapping[str, Any], source: str) -> ModelCard:
    try:
        return ModelCard.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in exc.errors())
        raise ModelLoadError(source, f"invalid model card: {problems}") from exc


def read_card_json(path: Path) -> ModelCard:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(path, f"unreadable card JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(path, "card JSON must be an object")
    return parse_card(data, str(path))


def parse_stride(value: str | None) -> int:
    """Ultralytics' ``stride`` metadata value (a digit string) as an int; 32 (YOLOv8/11 detectors) when absent."""
    return int(value) if value and value.isdigit() else 32


def card_from_metadata(metadata: Mapping[str, str], onnx_path: Path) -> ModelCard:
    """Card from ONNX metadata: our embedded card, else Ultralytics' ``names``/``imgsz``."""
    if METADATA_KEY in metadata:
        try:
            data = json.loads(metadata[METADATA_KEY])
        except json.JSONDecodeError as exc:
            raise ModelLoadError(onnx_path, f"metadata '{METADATA_KEY}' is not JSON: {exc}") from exc
        return parse_card(data, f"{onnx_path} (metadata {METADATA_KEY})")
    if "names" not in metadata:
        raise ModelLoadError(
            onnx_path, f"no {CARD_FILE} beside the model and no class names in its ONNX metadata; write a card"
        )
    task = metadata.get("task", "detect")
    if task != "detect":
        raise ModelLoadError(onnx_path, f"Ultralytics task is {task!r}; only 'detect' models are served")
    try:
        names = ast.literal_eval(metadata["names"])
        imgsz = ast.literal_eval(metadata.get("imgsz", "None"))
    except (ValueError, SyntaxError) as exc:
        raise ModelLoadError(onnx_path, f"unparseable Ultralytics metadata: {exc}") from exc
    if not isinstance(names, dict) or sorted(names) != list(range(len(names))):
        raise ModelLoadError(onnx_path, "Ultralytics 'names' must map 0..n-1 to class names")
    if isinstance(imgsz, int):
        imgsz = [imgsz, imgsz]
    if not isinstance(imgsz, list | tuple) or len(imgsz) != 2:
        raise ModelLoadError(onnx_path, f"Ultralytics 'imgsz' must be [h, w], got {metadata.get('imgsz')!r}")
    stem = onnx_path.parent.name if onnx_path.name == MODEL_FILE else onnx_path.stem
    ultralytics = {k: v for k, v in metadata.items() if k not in ("names", "imgsz", "stride")}
    card = {
        "model_id": stem,
        "version": metadata.get("date") or metadata.get("version") or "unversioned",
        "classes": [str(names[i]) for i in range(len(names))],
        "input_size": list(imgsz),
        "stride": parse_stride(metadata.get("stride")),
        "extra": {"card_source": "ultralytics-metadata", "ultralytics": ultralytics},
    }
    logger.warning("model %s has no card; using Ultralytics metadata with default thresholds", onnx_path)
    return parse_card(card, str(onnx_path))


class LoadedModel:
    """An open ONNX Runtime session with its card, checked against each other."""

    def __init__(self, onnx_path: Path, card: ModelCard, session: ort.InferenceSession) -> None:
        self.onnx_path = onnx_path
        self.card = card
        self.session = session
        inp = session.get_inputs()[0]
        out = session.get_outputs()[0]
        self.input_name: str = inp.name
        self.output_name: str = out.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        shape = list(inp.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise ModelLoadError(onnx_path, f"input {inp.name} must be [B, 3, H, W], got {shape}")
        hw = shape[2:]
        # A symbolic height/width: the model takes any stride multiple up to input_size ("rect" inputs).
        self.dynamic_hw = not all(isinstance(d, int) for d in hw)
        if not self.dynamic_hw and tuple(hw) != card.input_size:
            raise ModelLoadError(onnx_path, f"card input_size {list(card.input_size)} != model input {hw}")
        if self.dynamic_hw and any(d % card.stride for d in card.input_size):
            raise ModelLoadError(
                onnx_path, f"card input_size {list(card.input_size)} is not a multiple of its stride {card.stride}"
            )
        batch = shape[0]
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        out_shape = list(out.shape)
        if len(out_shape) != 3:
            raise ModelLoadError(onnx_path, f"output {out.name} must be [B, 4+nc, anchors], got {out_shape}")
        if isinstance(out_shape[1], int) and out_shape[1] != 4 + len(card.classes):
            raise ModelLoadError(
                onnx_path,
                f"output has {out_shape[1] - 4} class scores but the card lists {len(card.classes)} classes",
            )


def load_model(path: Path | str, options: ort.SessionOptions | None = None) -> LoadedModel:
    """Open a model folder or ``.onnx`` file on the CPU; raises :class:`ModelLoadError` with the reason."""
    onnx_path, card_path = resolve_model_path(path)
    try:
        session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
        raise ModelLoadError(onnx_path, f"onnxruntime cannot open it ({type(exc).__name__}: {exc})") from exc
    if card_path is not None:
        card = read_card_json(card_path)
    else:
        card = card_from_metadata(session.get_modelmeta().custom_metadata_map, onnx_path)
    return LoadedModel(onnx_path, card, session)
