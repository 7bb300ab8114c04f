"""Response models of the HTTP API (also the CLI's ``--json`` output)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from pydantic import BaseModel, Field

from inference_service.model_card import ModelCard
from inference_service.scan import ScanResult

# A list, not a tuple: OpenAPI 3.1 tools read pydantic's tuple schema (``prefixItems``) badly.
Box = Annotated[list[float], Field(min_length=4, max_length=4)]


def _box(values: Any) -> list[float]:
    return [round(float(v), 2) for v in values]


class Hazard(BaseModel):
    id: str
    name_zh: str
    name_en: str
    domain: str
    severity: str
    legal_basis: str
    advice_zh: str
    advice_en: str = Field("", description="the advice in English")
    confidence: float
    box: Box | None = Field(None, description="xyxy in original (upright) pixels")
    unconfirmed: bool = Field(
        False,
        description="the photo carries a warning (damaged data, washed out, too dark, featureless): what was "
        "found on it is doubtful and needs a person to confirm it",
    )
    alarm: bool = Field(
        True, description="raise it as an alarm at its severity; false for every unconfirmed or suspected hazard"
    )
    suspected: bool = Field(
        False,
        description="raised by a rule that only suspects it (an object in front of an exit, a person without a "
        "harness in a declared work-at-height scene): an inspector confirms it",
    )


class Detection(BaseModel):
    class_name: str
    class_id: int
    confidence: float
    box: Box = Field(description="xyxy in original (upright) pixels")


class WarningInfo(BaseModel):
    code: str = Field(description="corrupt_data | washed_out | too_dark | featureless")
    message: str
    message_zh: str


class ImageInfo(BaseModel):
    width: int
    height: int


class ModelInfo(BaseModel):
    id: str
    version: str

    @classmethod
    def of(cls, card: ModelCard) -> ModelInfo:
        return cls(id=card.model_id, version=card.version)


class DetectResponse(BaseModel):
    hazards: list[Hazard]
    detections: list[Detection]
    image: ImageInfo
    model: ModelInfo
    timings_ms: dict[str, float]
    warnings: list[WarningInfo] = Field(
        default_factory=list, description="about the photo itself: its result is doubtful, retake it if possible"
    )
    evidence_jpeg_base64: str | None = None

    @classmethod
    def from_scan(cls, scan: ScanResult, card: ModelCard) -> DetectResponse:
        dets = scan.detect.detections
        return cls(
            hazards=[
                Hazard(
                    id=f.hazard_id,
                    name_zh=f.name_zh,
                    name_en=f.name_en,
                    domain=f.domain,
                    severity=f.severity,
                    legal_basis=f.legal_basis,
                    advice_zh=f.advice_zh,
                    advice_en=f.advice_en,
                    confidence=round(f.confidence, 4),
                    box=None if f.box is None else _box(f.box),
                    unconfirmed=scan.unconfirmed,
                    alarm=not (scan.unconfirmed or f.suspected),
                    suspected=f.suspected,
                )
                for f in scan.findings
            ],
            detections=[
                Detection(class_name=card.classes[c], class_id=c, confidence=round(s, 4), box=_box(b))
                for b, c, s in zip(dets.xyxy.tolist(), dets.class_id.tolist(), dets.score.tolist(), strict=True)
            ],
            image=ImageInfo(width=scan.detect.width, height=scan.detect.height),
            model=ModelInfo.of(card),
            timings_ms=scan.timings_ms,
            warnings=[WarningInfo(code=w.code, message=w.message, message_zh=w.message_zh) for w in scan.warnings],
            evidence_jpeg_base64=(
                base64.b64encode(scan.evidence_jpeg).decode("ascii") if scan.evidence_jpeg is not None else None
            ),
        )


class ModelView(BaseModel):
    """The model card as clients may see it: no training paths or machine details."""

    model_id: str
    version: str
    classes: list[str]
    input_size: Annotated[list[int], Field(min_length=2, max_length=2, description="[height, width]")]
    conf_threshold: float
    class_thresholds: dict[str, float]
    nms_iou: float
    stride: int
    rect: bool
    taxonomy_version: str | None
    extra: dict[str, Any] = Field(description="what the card says about the model (metrics, classes, licence)")
    serving: dict[str, Any] = Field(description="how this process runs it: precision, why, measured times")
    hazards: dict[str, Any] = Field(
        default_factory=dict,
        description="what it raises under the taxonomy served now (taxonomy_version), from its classes: detections, "
        "suspicions, need_scene (hazard -> scenes), cannot_raise (hazard -> missing classes)",
    )


class ErrorInfo(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorInfo


class BatchItem(BaseModel):
    index: int
    filename: str | None
    result: DetectResponse | None = None
    error: ErrorInfo | None = None


class BatchResponse(BaseModel):
    model: ModelInfo
    succeeded: int
    failed: int
    items: list[BatchItem]


class Health(BaseModel):
    status: str


class ComponentState(BaseModel):
    ready: bool
    reason: str | None = None


class Readiness(BaseModel):
    status: str = Field(description="ready | degraded (detection works, another part does not) | not_ready")
    model: ModelInfo | None = None
    taxonomy_version: str | None = None
    reason: str | None = None
    components: dict[str, ComponentState] = Field(
        default_factory=dict,
        description="model, events, api_keys, app (the inspector app's database), disk (room for photos)",
    )
