"""Typed dependencies, so that handlers read like plain functions.

They are ``async def`` on purpose: they never block, and a plain ``def`` dependency costs a hop through
the thread pool per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Query, Request

from inference_service.api.errors import ModelNotReadyError
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


async def query_scan_options(
    min_confidence: Annotated[float | None, Query(ge=0, le=1, description=_CONF)] = None,
    classes: Annotated[str | None, Query(description=_CLASSES)] = None,
    evidence: Annotated[bool | None, Query(description=_EVIDENCE)] = None,
    scene: Annotated[str | None, Query(description=_SCENE)] = None,
) -> ScanOptions:
    """Options from the query string alone: for a photo sent as the request body itself (no form to parse)."""
    return _options(min_confidence, classes, evidence, scene)


def _options(conf: float | None, classes: str | None, evidence: bool | None, scene: str | None) -> ScanOptions:
    names = tuple(c.strip() for c in classes.split(",") if c.strip()) if classes else ()
    return ScanOptions(min_confidence=conf, classes=names or None, evidence=bool(evidence), scene=scene or None)


OptionsDep = Annotated[ScanOptions, Depends(scan_options)]
QueryOptionsDep = Annotated[ScanOptions, Depends(query_scan_options)]
