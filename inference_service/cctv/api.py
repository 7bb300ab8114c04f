"""HTTP API for CCTV events: an ``APIRouter`` the main app includes.

* ``GET /v1/events?camera=&hazard=&status=&suspected=&unconfirmed=&since=&until=&limit=&offset=`` newest
  first; ``since``/``until`` are ISO 8601 times (UTC when no offset is given) bounding the event start;
  ``suspected``/``unconfirmed`` (true|false) keep suspicions or events seen only on doubtful frames (or the
  others); every event says ``alarm``: false for both kinds, which a person confirms;
* ``GET /v1/events/{id}``;
* ``GET /v1/events/{id}/evidence.jpg`` the best evidence frame with the hazard box drawn.

The events live in the service database (``HAZARDSCAN_DATABASE_URL``, else ``<data_dir>/hazardscan.db``), where
``hazardscan scan`` writes them by default, unless ``HAZARDSCAN_EVENTS_DB`` names another (a SQLite path or
``postgresql://`` URL). The app opens the store once at start-up (``ServiceState.open_events``; a request never
opens or creates a database); tests override :func:`get_event_store`.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from inference_service.api.errors import InvalidQueryError, ServiceUnavailableError
from inference_service.api.schemas import ErrorResponse
from inference_service.cctv.store import EventStore, StoredEvent
from inference_service.storage import MAX_OFFSET


class CctvSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAZARDSCAN_", env_file=".env", extra="ignore")

    events_db: str | None = Field(
        default=None,
        description="SQLite file or postgresql:// URL holding CCTV events; unset: the service database, with "
        "everything else",
    )


@lru_cache
def get_cctv_settings() -> CctvSettings:
    return CctvSettings()


def get_event_store(request: Request) -> EventStore:
    """The store the app opened at start-up, or a 503 that says why there is none."""
    state = getattr(request.app.state, "service", None)
    store: EventStore | None = getattr(state, "events", None)
    if store is None:
        reason = getattr(state, "events_reason", None) or "no events store is configured"
        raise ServiceUnavailableError(f"CCTV events are not available: {reason}")
    return store


StoreDep = Annotated[EventStore, Depends(get_event_store)]


def _iso_only(value: object) -> object:
    """Times are ISO 8601 text: a bare number (pydantic would read it as epoch seconds) is refused."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("write the time in ISO 8601, e.g. 2026-12-01T08:00:00+08:00")
    return value


IsoTime = Annotated[dt.datetime, BeforeValidator(_iso_only)]


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _epoch(value: dt.datetime | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    except (OverflowError, ValueError, OSError) as exc:
        raise InvalidQueryError(f"{name}: {value.isoformat()} is out of range") from exc


class EventOut(BaseModel):
    id: str
    camera_id: str
    hazard_id: str
    hazard_name_en: str
    hazard_name_zh: str
    severity: str
    zone: str | None
    status: Literal["open", "closed"]
    started_at: dt.datetime = Field(description="first sighting")
    opened_at: dt.datetime = Field(description="when the hazard had persisted long enough to open the event")
    last_seen: dt.datetime
    ended_at: dt.datetime | None = Field(description="last sighting, once closed")
    peak_confidence: float
    frames: int
    evidence_at: dt.datetime
    evidence_box: list[float] = Field(min_length=4, max_length=4, description="xyxy in frame pixels")
    evidence_url: str
    model_id: str
    suspected: bool = Field(
        description="raised by a rule that only suspects the hazard (an object in front of an exit, a person "
        "without a harness in a work-at-height scene): a person confirms it"
    )
    unconfirmed: bool = Field(
        description="seen only on doubtful frames (washed out, too dark, featureless): a person confirms it"
    )
    alarm: bool = Field(
        description="raise it as an alarm at its severity; false for every suspected or unconfirmed event"
    )

    @classmethod
    def from_stored(cls, e: StoredEvent) -> EventOut:
        x1, y1, x2, y2 = e.evidence_box
        return cls(
            id=e.id,
            camera_id=e.camera_id,
            hazard_id=e.hazard_id,
            hazard_name_en=e.hazard_name_en,
            hazard_name_zh=e.hazard_name_zh,
            severity=e.severity,
            zone=e.zone,
            status=e.status,
            started_at=dt.datetime.fromtimestamp(e.started_at, dt.UTC),
            opened_at=dt.datetime.fromtimestamp(e.opened_at, dt.UTC),
            last_seen=dt.datetime.fromtimestamp(e.last_seen, dt.UTC),
            ended_at=_utc(e.ended_at),
            peak_confidence=round(e.peak_confidence, 4),
            frames=e.frames,
            evidence_at=dt.datetime.fromtimestamp(e.evidence_ts, dt.UTC),
            evidence_box=[round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)],
            evidence_url=f"/v1/events/{e.id}/evidence.jpg",
            model_id=e.model_id,
            suspected=e.suspected,
            unconfirmed=e.unconfirmed,
            alarm=e.alarm,
        )


class EventList(BaseModel):
    events: list[EventOut]
    count: int
    limit: int
    offset: int


router = APIRouter(prefix="/v1", tags=["cctv events"])
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (401, 403, 404, 422, 429, 503)}


@router.get("/events", response_model=EventList, responses=_ERRORS, summary="CCTV hazard events, newest first")
def list_events(
    store: StoreDep,
    camera: str | None = None,
    hazard: Annotated[str | None, Query(description="taxonomy hazard id, e.g. FIRE-001")] = None,
    status: Literal["open", "closed"] | None = None,
    suspected: Annotated[bool | None, Query(description="true: only suspicions; false: no suspicions")] = None,
    unconfirmed: Annotated[
        bool | None, Query(description="true: only events seen only on doubtful frames; false: none of those")
    ] = None,
    since: Annotated[IsoTime | None, Query(description="events that started at or after this time")] = None,
    until: Annotated[IsoTime | None, Query(description="events that started before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> EventList:
    rows = store.list_events(
        camera=camera,
        hazard=hazard,
        status=status,
        suspected=suspected,
        unconfirmed=unconfirmed,
        since=_epoch(since, "since"),
        until=_epoch(until, "until"),
        limit=limit,
        offset=offset,
    )
    return EventList(events=[EventOut.from_stored(r) for r in rows], count=len(rows), limit=limit, offset=offset)


@router.get("/events/{event_id}", response_model=EventOut, responses=_ERRORS, summary="One CCTV event")
def get_event(event_id: str, store: StoreDep) -> EventOut:
    event = store.get_event(event_id)
    if event is None:
        raise HTTPException(status_code=404, detail=f"no event {event_id}")
    return EventOut.from_stored(event)


@router.get(
    "/events/{event_id}/evidence.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **_ERRORS},
    summary="The event's best evidence frame, box drawn",
)
def get_evidence(event_id: str, store: StoreDep) -> Response:
    jpeg = store.evidence(event_id)
    if jpeg is None:
        raise HTTPException(status_code=404, detail=f"no evidence for event {event_id}")
    return Response(content=jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})
