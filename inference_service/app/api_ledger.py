"""/app/api/ledger: the hazard ledger (隐患台账): list, filters, export, transitions, rectification photos."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile

from inference_service.accounts import User
from inference_service.app import schemas as s
from inference_service.app.api_records import TAKEN_AT, check_key, check_taken_at, read_photo, scan_photo
from inference_service.app.context import AppContext
from inference_service.app.deps import CtxDep, GatedScannerDep, TaxonomyDep, UserDep, require
from inference_service.app.errors import AppError, conflict, not_found
from inference_service.app.photo_time import exif_taken_at, shown
from inference_service.app.views import content_disposition, ledger_out
from inference_service.ledger import LedgerConflict, LedgerFilter, LedgerForbidden, recheck
from inference_service.ledger.export import to_csv, to_xlsx
from inference_service.ledger.rules import both
from inference_service.records import NewPhoto
from inference_service.storage import MAX_OFFSET, Cursor
from inference_service.taxonomy import Taxonomy

router = APIRouter(prefix="/app/api", tags=["app"])
_KEY_USED_ZH = "该 idempotency_key 已用于其他照片"


# The dates a filter or a deadline may name: far enough either way for any real record, near enough that a day after
# the latest and a month's arithmetic stay inside the calendar (a year-10000 date cannot be computed or shown).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_when(value: str | None, offset_hours: float, *, end: bool = False) -> float | None:
    """``YYYY-MM-DD`` (local day; ``end``: the day after it, for an inclusive end) or an ISO date-time, between
    :data:`EARLIEST` and :data:`LATEST`."""
    if not value:
        return None
    tz = timezone(timedelta(hours=offset_hours))
    try:
        if len(value) == 10:
            when = datetime.fromisoformat(value).replace(tzinfo=tz) + timedelta(days=1 if end else 0)
        else:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            when = when if when.tzinfo else when.replace(tzinfo=tz)
        inside = EARLIEST <= when <= LATEST
    except (ValueError, OverflowError) as exc:
        raise AppError(422, "validation_error", f"{value!r} is not a date (YYYY-MM-DD) or ISO date-time",
                       f"{value!r} 不是有效日期（YYYY-MM-DD）") from exc  # fmt: skip
    if not inside:
        raise AppError(422, "validation_error", f"{value!r} lies outside {EARLIEST:%Y-%m-%d} … {LATEST:%Y-%m-%d}",
                       f"{value!r} 超出可用日期范围（{EARLIEST:%Y-%m-%d} 至 {LATEST:%Y-%m-%d}）")  # fmt: skip
    return when.timestamp()


def ledger_filter(
    ctx: CtxDep,
    unit: str | None = None,
    hazard: str | None = None,
    severity: s.Severity | None = None,
    status: s.LedgerStatus | None = None,
    inspector: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    overdue: bool | None = None,
    closed: Annotated[bool | None, Query(description="true: 已销号 only; false: not yet closed")] = None,
    due_within: Annotated[
        int | None, Query(ge=1, le=90, description="即将到期: not closed, the deadline within this many days from now")
    ] = None,
) -> LedgerFilter:
    """The ledger's filters from the query string (list and both exports take the same ones)."""
    off = ctx.settings.deadline_utc_offset_hours
    return LedgerFilter(unit or None, hazard or None, severity, status, inspector or None,
                        parse_when(from_, off), parse_when(to, off, end=True), overdue, closed, due_within)  # fmt: skip


LedgerFilterDep = Annotated[LedgerFilter, Depends(ledger_filter)]


def outs(ctx: AppContext, user: User, rows: list[dict[str, Any]], tax: Taxonomy) -> list[s.LedgerItemOut]:
    """Ledger items as the API shows them, each with its finding's box and note (one query for all)."""
    found = ctx.records.findings_by_id(user.org_id, [r["finding_id"] for r in rows])
    return [ledger_out(r, tax, finding=found.get(r["finding_id"])) for r in rows]


def _items(ctx: AppContext, user: User, flt: LedgerFilter, tax: Taxonomy, limit: int | None, offset: int = 0):
    rows, total = ctx.ledger.search(user.org_id, flt, limit, offset)
    return outs(ctx, user, rows, tax), total


@router.get("/ledger", response_model=s.LedgerList)
def list_ledger(
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    flt: LedgerFilterDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> s.LedgerList:
    items, total = _items(ctx, user, flt, tax, limit, offset)
    return s.LedgerList(items=items, total=total)


def _export(user: User, ctx: AppContext, tax: Taxonomy, flt: LedgerFilter) -> list[dict[str, Any]]:
    items, _ = _items(ctx, user, flt, tax, None)
    return [i.model_dump(mode="json", by_alias=True) for i in items]


def _download(user: User, ctx: AppContext, ext: str) -> dict[str, str]:
    """``Content-Disposition`` of an export: 隐患台账-<organisation>-<local date>.<ext> (an ASCII name beside it)."""
    off = ctx.settings.deadline_utc_offset_hours
    day = datetime.now(timezone(timedelta(hours=off))).strftime("%Y%m%d")
    return content_disposition("attachment", f"ledger-{day}.{ext}", "隐患台账", user.org_name, f"{day}.{ext}")


@router.get("/ledger/summary", response_model=s.LedgerSummary)
def ledger_summary(user: UserDep, ctx: CtxDep) -> s.LedgerSummary:
    """The organisation's items per status and those past their deadline not yet closed (整改跟踪)."""
    return s.LedgerSummary(**ctx.ledger.summary(user.org_id))


@router.get("/ledger/export.csv", response_class=Response)
def export_csv(
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    flt: LedgerFilterDep,
) -> Response:
    data = to_csv(_export(user, ctx, tax, flt), ctx.settings.deadline_utc_offset_hours)
    return Response(data, media_type="text/csv; charset=utf-8", headers=_download(user, ctx, "csv"))


@router.get("/ledger/export.xlsx", response_class=Response)
def export_xlsx(
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    flt: LedgerFilterDep,
) -> Response:
    return Response(
        to_xlsx(_export(user, ctx, tax, flt), ctx.settings.deadline_utc_offset_hours),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=_download(user, ctx, "xlsx"),
    )


@router.get("/ledger/{item_id}", response_model=s.LedgerItemOut)
def get_item(item_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.LedgerItemOut:
    row = ctx.ledger.get(user.org_id, item_id)
    if row is None:
        raise not_found("ledger item", "台账条目")
    return outs(ctx, user, [row], tax)[0]


def _conflict(exc: LedgerConflict) -> AppError:
    text = str(exc)
    if "closed" in text:
        return conflict(text, "该隐患已销号，不能再更改")
    if "AI" in text:
        return conflict(text, "AI 复查未通过：如确认已整改，请勾选“人工确认”并填写说明后销号")
    if "stale" in text or "meanwhile" in text:
        return conflict(text, "该条目已被他人更新，请刷新后重试")
    if "rectification photo" in text:
        return conflict(text, "请先上传整改照片")
    return conflict(text, f"不允许的状态变更：{text}")


@router.post("/ledger/{item_id}/transition", response_model=s.LedgerItemOut)
def transition(item_id: str, body: s.TransitionIn, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.LedgerItemOut:
    try:
        row = ctx.ledger.transition(user.org_id, item_id, user.id, user.role, body.to, body.version, note=body.note,
                                    responsible_person=body.responsible_person, override=body.override)  # fmt: skip
    except LedgerForbidden as exc:
        raise AppError(403, "forbidden", str(exc), "您的角色无权进行此操作（需主管）") from exc
    except LedgerConflict as exc:
        raise _conflict(exc) from exc
    if row is None:
        raise not_found("ledger item", "台账条目")
    return outs(ctx, user, [row], tax)[0]


@router.post("/ledger/{item_id}/assign", response_model=s.LedgerItemOut)
def assign(item_id: str, body: s.AssignIn, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.LedgerItemOut:
    require(user, "supervisor", "assigning ledger items")
    if body.assigned_to is not None and body.assigned_to not in {u.id for u in ctx.accounts.list_users(user.org_id)}:
        raise AppError(422, "validation_error", "assigned_to must be a user id of your organisation",
                       "指派对象须为本单位用户")  # fmt: skip
    deadline = parse_when(body.deadline, ctx.settings.deadline_utc_offset_hours, end=True) if body.deadline else None
    if deadline is not None and body.deadline and len(body.deadline) == 10:
        deadline -= 1  # the end of that local day (23:59:59)
    try:
        row = ctx.ledger.assign(
            user.org_id,
            item_id,
            user.id,
            body.version,
            assigned_to=body.assigned_to,
            responsible_person=body.responsible_person,
            deadline=deadline,
            note=body.note,
        )
    except LedgerConflict as exc:
        raise _conflict(exc) from exc
    if row is None:
        raise not_found("ledger item", "台账条目")
    return outs(ctx, user, [row], tax)[0]


@router.post("/ledger/{item_id}/rectification", response_model=s.LedgerItemOut)
def rectification(
    item_id: str,
    photo: Annotated[UploadFile, File(description="the photo after the fix")],
    idempotency_key: Annotated[str, Form(description="a UUID the client made for this photo")],
    user: UserDep,
    ctx: CtxDep,
    gated: GatedScannerDep,
    note: Annotated[str, Form(max_length=2000)] = "",
    taken_at: Annotated[str | None, Form(description=TAKEN_AT)] = None,
) -> s.LedgerItemOut:
    """Attach the rectification photo; the model re-checks it (same hazard still seen: AI 复查未通过)."""
    scanner = gated.scanner
    key = check_key(idempotency_key)
    client_taken_at = check_taken_at(taken_at, ctx.settings.deadline_utc_offset_hours)
    tax = scanner.taxonomy
    item = ctx.ledger.get(user.org_id, item_id)
    if item is None:
        raise not_found("ledger item", "台账条目")
    seen = ctx.records.photo_by_key(user.org_id, key)
    if seen is not None:  # a retried upload: nothing is applied twice
        # this item's photo, or an earlier rectification photo of its inspection (a photo row does not say which
        # item it fixed); a key of any other photo is a client's mistake, not a retry
        earlier = seen["kind"] == "rectification" and seen["inspection_id"] == item["inspection_id"]
        if seen["id"] != item["rectification_photo_id"] and not earlier:
            raise conflict(
                "this idempotency_key was used for another photo upload", "该 idempotency_key 已用于其他照片"
            )
        return outs(ctx, user, [item], tax)[0]
    if item["status"] == "closed":
        raise _conflict(
            LedgerConflict("the ledger item is closed (已销号); it cannot take another rectification photo")
        )
    data = read_photo(photo, ctx.settings.max_upload_bytes)
    original = ctx.records.photo(user.org_id, item["photo_id"])
    scene = original["scene"] if original else None  # judged by the same rules as the photo that found it
    ctx.records.blobs.check_room(len(data))
    scan, info = scan_photo(gated, data, scene)
    finding = ctx.records.finding(user.org_id, item["finding_id"])
    detector_class = finding["detector_class"] if finding else None
    card = scanner.detector.card
    hazard = tax.hazard(item["hazard_id"]) if item["hazard_id"] in {h.id for h in tax.hazards} else None
    known = set(card.classes)
    detectable = hazard is not None and any(r.raisable_by(known) and r.applies_in(scene) for r in hazard.rules)
    found = [(f.hazard_id, None) for f in scan.findings] + [("", d["class"]) for d in info["detections"]]
    result, reason = recheck(item["hazard_id"], detector_class, detectable, card.classes, found)
    if result == "passed" and scan.unconfirmed:  # a dark or washed-out photo shows nothing: it proves nothing
        codes = ", ".join(w.code for w in scan.warnings)
        doubt = f"the rectification photo carries a warning ({codes}); a person must judge it"
        result, reason = None, both(f"整改照片质量存疑（{codes}），须人工判断", doubt)
    sha = ctx.records.blobs.put(data)
    when, source = shown(exif_taken_at(data), client_taken_at, ctx.settings.deadline_utc_offset_hours)
    new = NewPhoto("rectification", key, sha, info["content_type"], len(data), info["width"], info["height"], when,
                   card.model_id, card.version, info["warnings"], info["detections"], scene,
                   taken_at_source=source, client_taken_at=client_taken_at)  # fmt: skip

    def attach(cur: Cursor, photo_id: str) -> None:
        said = f"{note} [AI 复查 AI re-check: {reason}]".strip()
        ctx.ledger.rectify(cur, user.org_id, item_id, user.id, photo_id, result, said)

    try:
        ctx.records.add_photo(user.org_id, item["inspection_id"], user.id, new, [], then=attach)
    except LedgerConflict as exc:
        raise _conflict(exc) from exc
    row = ctx.ledger.get(user.org_id, item_id)
    assert row is not None
    return outs(ctx, user, [row], tax)[0]
