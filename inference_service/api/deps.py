"""Typed dependencies, so that handlers read like plain functions.

They are ``async def`` on purpose: they never block, and a plain ``def`` dependency costs a hop through
the thread pool per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inference_service.api.errors import ModelNotReadyError
from inference_service.api.negotiation import Format
from inference_service.api.settings import Settings
from inference_service.api.state import Metrics, ServiceState
from inference_service.scan import Scanner, ScanOptions


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


async def app_settings(state: StateDep) -> Settings:
    """The settings ``create_app`` was given (``get_settings()`` by default)."""
    return state.settings


# Not ``app.dependency_overrides``: with any override set, FastAPI re-analyses every dependency's
# signature on every request (about a millisecond each time).
SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_scanner(state: StateDep) -> Scanner:
    return ready_scanner(state)


def ready_scanner(state: ServiceState) -> Scanner:
    """The loaded model's scanner, or 503 with the reason it is not loaded."""
    if state.scanner is None:
        raise ModelNotReadyError(f"the model is not ready: {state.reason}")
    return state.scanner


async def get_metrics(state: StateDep) -> Metrics:
    return state.metrics


ScannerDep = Annotated[Scanner, Depends(get_scanner)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

_CONF = "keep detections at or above this confidence (replaces the model's per-class thresholds)"
_CLASSES = "comma-separated detector class names to keep, e.g. fire,smoke"
_EVIDENCE = "also return an annotated evidence JPEG (base64)"
_SCENE = "the kind of place (GET /v1/hazards lists scenes: work_at_height, elevator, ...); some rules need one"


async def scan_options(
    min_confidence_q: Annotated[float | None, Query(alias="min_confidence", ge=0, le=1, description=_CONF)] = None,
    classes_q: Annotated[str | None, Query(alias="classes", description=_CLASSES)] = None,
    evidence_q: Annotated[bool | None, Query(alias="evidence", description=_EVIDENCE)] = None,
    min_confidence_f: Annotated[float | None, Form(alias="min_confidence", ge=0, le=1, description=_CONF)] = None,
    classes_f: Annotated[str | None, Form(alias="classes", description=_CLASSES)] = None,
    evidence_f: Annotated[bool | None, Form(alias="evidence", description=_EVIDENCE)] = None,
    scene: Annotated[str | None, Query(description=_SCENE)] = None,
) -> ScanOptions:
    """Options from the query string or the form (the form wins when both are given)."""
    conf = min_confidence_f if min_confidence_f is not None else min_confidence_q
    classes = classes_f if classes_f is not None else classes_q
    evidence = evidence_f if evidence_f is not None else evidence_q
    return _options(conf, classes, evidence, scene)


class BodyQuery(BaseModel):
    """The query string of ``POST /v1/detect`` with the photo as the body (the form route documents the same)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    min_confidence: float | None = Field(None, ge=0, le=1)
    classes: str | None = None
    evidence: bool | None = None
    scene: str | None = None
    format: Format | None = None


def body_query(query: Mapping[str, str]) -> tuple[ScanOptions, Format | None]:
    """Options and answer format from the query string of a photo sent as the body itself (no form to parse).

    Read with one model instead of FastAPI's dependency solving, the largest piece of the route's event-loop work
    (benchmarks/reports/service_load.md); a bad value is the same ``RequestValidationError`` (422) the form route
    gives. The last of repeated parameters counts, as there.
    """
    try:
        q = BodyQuery.model_validate(query)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors()]) from None
    return _options(q.min_confidence, q.classes, q.evidence, q.scene), q.format


def _options(conf: float | None, classes: str | None, evidence: bool | None, scene: str | None) -> ScanOptions:
    names = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else ()
    return ScanOptions(min_confidence=conf, classes=names or None, evidence=bool(evidence), scene=scene or None)


OptionsDep = Annotated[ScanOptions, Depends(scan_options)]
