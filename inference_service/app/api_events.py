"""/app/api/events: the organisation's CCTV events, and an inspection made from one, so that a hazard a camera saw
is confirmed, booked to the ledger and followed to its rectification like one an inspector photographed.

A camera's events reach the app when its entry in the camera file has a ``site`` (organisation, unit, address):
its users see them, and the scanner keeps each event's frame without drawings. Making an inspection of an event
scores that frame like an uploaded photo; the event's hazard is kept as a finding even where the photo model
does not find it again. Made twice, it is the same inspection."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from inference_service.accounts import User
from inference_service.app import schemas as s
from inference_service.app.api_auth import PHOTO_SCENE_OF, SCENE_IDS
from inference_service.app.api_ledger import parse_when
from inference_service.app.api_records import MaxSide, full_inspection, store_photo, user_names
from inference_service.app.api_stats import XLSX, FromQ, ToQ
from inference_service.app.context import AppContext
from inference_service.app.deps import CtxDep, GatedScannerDep, TaxonomyDep, UserDep
from inference_service.app.errors import AppError, conflict, not_found
from inference_service.app.stats_export import to_csv, to_xlsx
from inference_service.app.views import CAMERA_CLIENT_PREFIX, hazard_fields
from inference_service.cctv.store import EventReview, EventStore, StoredEvent
from inference_service.evidence import render_evidence
from inference_service.imaging import decode_for_display
from inference_service.ledger import iso
from inference_service.records import NewFinding
from inference_service.storage import MAX_OFFSET
from inference_service.taxonomy import Taxonomy

router = APIRouter(prefix="/app/api", tags=["app"])
REASONS: tuple[str, ...] = get_args(s.DismissReason)

# the inspection scene a camera's taxonomy scene implies (the inverse of the photo scene an inspection implies)
INSPECTION_SCENE_OF = {photo: insp for insp, photo in PHOTO_SCENE_OF.items()} | {
    "elevator": "residential_ebike",
    "corridor": "residential_ebike",
}


def events_of(request: Request) -> EventStore | None:
    """The service's CCTV events store, opened at start-up; None when it reads none."""
    store: EventStore | None = request.app.state.service.events
    return store


def event_out(e: StoredEvent, inspection_id: str | None, names: dict[str, str]) -> s.CameraEventOut:
    """``names``: the organisation's users by id (who reviewed it)."""
    r = e.review
    return s.CameraEventOut(
        id=e.id,
        camera_id=e.camera_id,
        hazard_id=e.hazard_id,
        name_zh=e.hazard_name_zh,
        name_en=e.hazard_name_en,
        severity=e.severity,
        status=e.status,
        started_at=iso(e.started_at) or "",
        last_seen=iso(e.last_seen) or "",
        ended_at=iso(e.ended_at),
        peak_confidence=round(e.peak_confidence, 4),
        frames=e.frames,
        zone=e.zone,
        suspected=e.suspected,
        unconfirmed=e.unconfirmed,
        alarm=e.alarm,
        unit=e.unit or "",
        address=e.address or "",
        scene=e.scene,
        evidence_url=f"/app/api/events/{e.id}/evidence.jpg",
        has_frame=e.frame_box is not None,
        inspection_id=inspection_id,
        review=r.review if r else None,
        review_reason=r.reason if r else None,  # type: ignore[arg-type]  # as stored by set_review
        review_note=r.note if r else "",
        reviewed_by=names.get(r.user_id, "?") if r else None,
        reviewed_at=iso(r.at) if r else None,
    )


def _event(request: Request, org: str, event_id: str, *, frame: bool = False) -> tuple[EventStore, StoredEvent]:
    """The organisation's event, or 404 (another organisation's events are not told apart from missing ones)."""
    store = events_of(request)
    event = store.get_event(event_id, with_evidence=frame) if store is not None else None
    if store is None or event is None or event.org != org:
        raise not_found("camera event", "监控事件")
    return store, event


@router.get("/events", response_model=s.CameraEventList)
def list_events(
    request: Request,
    user: UserDep,
    ctx: CtxDep,
    status: Annotated[
        str | None, Query(pattern="^(open|closed)$", description="open or closed; both when unset")
    ] = None,
    review: Annotated[
        Literal["none", "inspection", "dismissed"] | None,
        Query(description="none: not yet looked at (待处理); inspection: made one; dismissed; all when unset"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> s.CameraEventList:
    """The events of the organisation's cameras, newest first, each with the inspection made from it (if any)."""
    store = events_of(request)
    if store is None:
        return s.CameraEventList(items=[], total=0, cameras=False)
    events = store.list_events(org=user.org_name, status=status, review=review, limit=limit, offset=offset)
    made = ctx.records.inspections_by_client(user.org_id, [CAMERA_CLIENT_PREFIX + e.id for e in events])
    names = user_names(ctx, user.org_id)
    items = [event_out(e, made.get(CAMERA_CLIENT_PREFIX + e.id), names) for e in events]
    total = store.count_org_events(user.org_name, status, review)
    # cameras: has any camera of the organisation raised an event (the store is there whether or not any has)
    cameras = total > 0 or ((status, review) != (None, None) and store.count_org_events(user.org_name, None, None) > 0)
    return s.CameraEventList(items=items, total=total, cameras=cameras)


@router.get("/events/by-camera", response_model=None, responses={200: {"model": list[s.CameraCount]}})
def events_by_camera(
    request: Request,
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    from_: FromQ = None,
    to: ToQ = None,
    fmt: Annotated[
        Literal["json", "csv", "xlsx"], Query(alias="format", description="json, or a csv / xlsx download")
    ] = "json",
) -> Any:
    """The organisation's camera events per camera and hazard (started in [from, to]), by what was made of them:
    which cameras raise alarms that turn out real, and which mostly 误报."""
    store = events_of(request)
    off = ctx.settings.deadline_utc_offset_hours
    since, until = parse_when(from_, off), parse_when(to, off, end=True)
    counts = store.review_counts(user.org_name, since, until) if store is not None else []
    rows = camera_counts(counts, tax)
    data = [r.model_dump() for r in rows]
    if fmt == "json":
        return data
    disposition = {"Content-Disposition": f'attachment; filename="hazardscan-cameras.{fmt}"'}
    if fmt == "csv":
        return Response(to_csv(data), media_type="text/csv; charset=utf-8", headers=disposition)
    return Response(to_xlsx(data, "cameras"), media_type=XLSX, headers=disposition)


def camera_counts(counts: list[tuple[str, str, str | None, str | None, int]], tax: Taxonomy) -> list[s.CameraCount]:
    """Rows per (camera, hazard) from :meth:`EventStore.review_counts`, the busiest camera and hazard first."""
    table: dict[tuple[str, str], dict[str, int]] = {}
    for camera, hazard, review, reason, n in counts:
        row = table.setdefault((camera, hazard), dict.fromkeys(("events", "waiting", "inspections", *REASONS), 0))
        row["events"] += n
        if review is None:
            row["waiting"] += n
        elif review == "inspection":
            row["inspections"] += n
        elif reason in REASONS:
            row[reason] += n
    out = []
    for (camera, hazard), c in table.items():
        names = hazard_fields(tax, hazard)
        looked = c["events"] - c["waiting"]
        share = round(c["false_alarm"] / looked, 4) if looked else None
        out.append(s.CameraCount(camera_id=camera, hazard_id=hazard, name_zh=names["name_zh"],
                                 name_en=names["name_en"], false_alarm_share=share, **c))  # fmt: skip
    return sorted(out, key=lambda r: (-r.events, r.camera_id, r.hazard_id))


def _one(ctx: AppContext, user: User, store: EventStore, event_id: str) -> s.CameraEventOut:
    event = store.get_event(event_id)
    assert event is not None
    key = CAMERA_CLIENT_PREFIX + event_id
    made = ctx.records.inspections_by_client(user.org_id, [key]).get(key)
    return event_out(event, made, user_names(ctx, user.org_id))


@router.post("/events/{event_id}/dismiss", response_model=s.CameraEventOut, responses={409: {}})
def dismiss_event(event_id: str, body: s.DismissIn, request: Request, user: UserDep, ctx: CtxDep) -> s.CameraEventOut:
    """No inspection needed (误报, 重复, 已现场处置, 其他 with a note): the event leaves the list of those to look at;
    its evidence stays. Not once an inspection was made of it."""
    store, _ = _event(request, user.org_name, event_id)
    if body.reason == "other" and not body.note:
        raise AppError(422, "validation_error", "say why in the note when the reason is 'other'",
                       "选择“其他”时请在备注中写明原因")  # fmt: skip
    review = EventReview("dismissed", body.reason, body.note, user.id, time.time())
    if not store.set_review(event_id, review, unless="inspection"):
        raise conflict("an inspection was made of this event; its finding is decided there (确认 / 误报)",
                       "该事件已转为检查，请在检查中确认或标为误报")  # fmt: skip
    return _one(ctx, user, store, event_id)


@router.post("/events/{event_id}/undismiss", response_model=s.CameraEventOut)
def undismiss_event(event_id: str, request: Request, user: UserDep, ctx: CtxDep) -> s.CameraEventOut:
    """Undo a dismissal: the event is to be looked at again. An event not dismissed is left as it is."""
    store, event = _event(request, user.org_name, event_id)
    if event.review is not None and event.review.review == "dismissed":
        store.set_review(event_id, None, unless="inspection")
    return _one(ctx, user, store, event_id)


@router.get(
    "/events/{event_id}/evidence.jpg", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}}
)
def event_evidence(event_id: str, request: Request, user: UserDep, ctx: CtxDep, max_side: MaxSide = None) -> Response:
    """The event's evidence image: its best frame with the hazard's box drawn (at most ``max_side`` pixels)."""
    store, _ = _event(request, user.org_name, event_id)
    jpeg = store.evidence(event_id)
    if jpeg is None:
        raise not_found("evidence image", "证据图片")
    if max_side is not None:  # a thumbnail: decoded at a reduced scale where JPEG allows, then shrunk
        image = decode_for_display(jpeg, max_side, max_pixels=ctx.settings.max_pixels)
        jpeg = render_evidence(image, [], max_side=max_side, quality=ctx.settings.evidence_quality)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/events/{event_id}/inspection", response_model=s.InspectionOut, status_code=201, responses={409: {}})
def inspect_event(
    event_id: str,
    body: s.EventInspectionIn,
    request: Request,
    user: UserDep,
    ctx: CtxDep,
    gated: GatedScannerDep,
    tax: TaxonomyDep,
) -> Any:
    """An inspection of the camera's unit with the event's frame as its photo; the same one when made again (and
    its photo added then if the first try ended before it was)."""
    store, event = _event(request, user.org_name, event_id, frame=True)
    key = CAMERA_CLIENT_PREFIX + event.id
    made = ctx.records.inspections_by_client(user.org_id, [key]).get(key)
    if event.frame_jpeg is None or event.frame_box is None:
        if made is not None:
            return JSONResponse(full_inspection(ctx, user, made, tax).model_dump(mode="json"), status_code=200)
        raise conflict(
            "this event was recorded without its frame (by an earlier version, or before its camera had a site), "
            "so it cannot become an inspection; its evidence image is still at evidence_url",
            "该事件未保存原始画面，无法转为检查；可查看其证据图片",
        )
    if made is None:
        if body.scene is not None and body.scene not in SCENE_IDS:
            raise AppError(422, "validation_error", f"unknown scene {body.scene!r}; see GET /app/api/taxonomy",
                           f"未知场景 {body.scene!r}")  # fmt: skip
        scene = body.scene or INSPECTION_SCENE_OF.get(event.scene or "")
        if scene is None:
            raise AppError(422, "scene_required",
                           f"choose the inspection's scene (one of {sorted(SCENE_IDS)}): the camera's scene "
                           f"{event.scene!r} implies none", "请选择检查场景")  # fmt: skip
        row, _ = ctx.records.create_inspection(
            user.org_id,
            user.id,
            unit_name=event.unit or "",
            unit_address=event.address or "",
            unit_credit_code=None,
            scene=scene,
            location=None,
            client_id=key,
        )
        made = str(row["id"])
    photo_scene = event.scene if event.scene in tax.scene_ids else None
    known = NewFinding(event.hazard_id, event.frame_box, None, round(event.peak_confidence, 4),
                       suspected=event.suspected, unconfirmed=event.unconfirmed)  # fmt: skip
    if event.review is None or event.review.review != "inspection":  # a dismissal is overruled by an inspection
        store.set_review(event.id, EventReview("inspection", None, "", user.id, time.time()))
    _, created, _ = store_photo(ctx, user, made, "inspection", key, event.frame_jpeg, gated, photo_scene,
                                event.evidence_ts, known, time_source="camera")  # fmt: skip
    out = full_inspection(ctx, user, made, tax)
    return out if created else JSONResponse(out.model_dump(mode="json"), status_code=200)
