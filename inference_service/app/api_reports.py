"""/app/api: public hazard reports (隐患随手拍 / 举报, 阳政发〔2026〕1号 十 and 二十五).

An admin publishes report links (a QR code on a site notice, a link on a website); anyone holding one sends a photo
with where it was taken, without an account. The model gives the sender its first guess and a receipt to follow
the report with. Supervisors check each report: 查证属实 makes it an inspection of the place with the photo in it
(its hazards then confirmed and followed in the ledger as any other), 不属实 closes it with a reason the sender sees.

Public routes (no login): ``GET/POST /app/api/report/{token}`` and ``GET /app/api/report-receipt/{receipt}``. A
token that is unknown or revoked is a 404, and an upload to one is refused before its body is read.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from inference_service import sheets
from inference_service.accounts import User
from inference_service.app import schemas as s
from inference_service.app.api_auth import SCENE_IDS
from inference_service.app.api_records import (
    MaxSide,
    check_key,
    full_inspection,
    photo_scene_of,
    read_photo,
    scan_photo,
    store_photo,
    user_names,
)
from inference_service.app.api_stats import XLSX
from inference_service.app.context import AppContext
from inference_service.app.deps import CtxDep, GatedScannerDep, TaxonomyDep, UserDep, require
from inference_service.app.documents import to_pdf
from inference_service.app.errors import AppError, conflict, not_found, wants_english
from inference_service.app.report_path import LINK_GONE, report_link_path
from inference_service.app.views import REPORT_CLIENT_PREFIX, hazard_fields
from inference_service.evidence import SEVERITY_COLOURS, Annotation, doubt_marks, render_evidence
from inference_service.imaging import decode_for_display
from inference_service.ledger import iso
from inference_service.ledger.export import local_time
from inference_service.reports import NewReport, ReportConflict
from inference_service.reports.poster import poster_html
from inference_service.reports.store import Row, sender_of
from inference_service.storage import MAX_OFFSET
from inference_service.taxonomy import Taxonomy

router = APIRouter(prefix="/app/api", tags=["app: reports"])

HOUR_S = 3600.0
LINKS, REPORTS = "report links (举报链接)", "public reports (群众举报)"


def _link_or_404(ctx: AppContext, token: str) -> Row:
    link = ctx.reports.active_link(token)
    if link is None:
        raise AppError(404, "not_found", *LINK_GONE)
    return link


def _hazards(row: Row, taxonomy: Taxonomy) -> list[s.ReportHazard]:
    out = []
    for h in row["hazards"]:
        f = hazard_fields(taxonomy, h["hazard_id"])
        out.append(s.ReportHazard(hazard_id=h["hazard_id"], name_zh=f["name_zh"], name_en=f["name_en"],
                                  severity=f["severity"], confidence=h.get("confidence"), box=h.get("box"),
                                  unconfirmed=bool(h.get("unconfirmed"))))  # fmt: skip
    return out


def _warnings(row: Row, english: bool = False) -> list[str]:
    key = "message_en" if english else "message_zh"
    return [str(w.get(key) or w.get("code")) for w in row["warnings"]]


def receipt_out(row: Row, taxonomy: Taxonomy) -> s.ReportReceipt:
    return s.ReportReceipt(receipt=row["receipt"], status=row["status"], created_at=iso(row["created_at"]) or "",
                           hazards=_hazards(row, taxonomy), warnings=_warnings(row))  # fmt: skip


def report_out(row: Row, taxonomy: Taxonomy, names: dict[str, str], english: bool = False) -> s.ReportOut:
    return s.ReportOut(
        id=row["id"],
        link_name=row["link_name"],
        place=row["place"],
        description=row["description"],
        contact=row["contact"],
        status=row["status"],
        hazards=_hazards(row, taxonomy),
        warnings=_warnings(row, english),
        width=row["width"],
        height=row["height"],
        photo_url=f"/app/api/reports/{row['id']}/photo.jpg",
        created_at=iso(row["created_at"]) or "",
        decided_at=iso(row["decided_at"]),
        decided_by=names.get(row["decided_by"] or "", row["decided_by"]),
        note=row["note"],
        inspection_id=row["inspection_id"],
    )


def link_out(row: Row) -> s.ReportLinkOut:
    return s.ReportLinkOut(
        id=row["id"],
        name=row["name"],
        path=report_link_path(row["token"]),
        created_at=iso(row["created_at"]) or "",
        revoked_at=iso(row["revoked_at"]),
        reports=int(row.get("reports") or 0),
        new_reports=int(row.get("new_reports") or 0),
    )


# ---- links (admin) ----------------------------------------------------------------------------------------------


@router.get("/report-links", response_model=s.ReportLinkList)
def list_links(user: UserDep, ctx: CtxDep) -> s.ReportLinkList:
    require(user, "admin", LINKS)
    return s.ReportLinkList(items=[link_out(r) for r in ctx.reports.links(user.org_id)])


@router.post("/report-links", response_model=s.ReportLinkOut, status_code=201)
def create_link(body: s.ReportLinkIn, user: UserDep, ctx: CtxDep) -> s.ReportLinkOut:
    """A new link to publish; whoever holds it can send reports to this organisation until it is revoked."""
    require(user, "admin", LINKS)
    return link_out(ctx.reports.create_link(user.org_id, user.id, body.name))


@router.post("/report-links/{link_id}/revoke", response_model=s.ReportLinkOut)
def revoke_link(link_id: str, user: UserDep, ctx: CtxDep) -> s.ReportLinkOut:
    """The link stops taking reports at once; its reports stay, and their senders can still follow them."""
    require(user, "admin", LINKS)
    row = ctx.reports.revoke_link(user.org_id, link_id)
    if row is None:
        raise not_found("report link", "举报链接")
    return link_out(row)


# ---- the public side ------------------------------------------------------------------------------------------


@router.get("/report/{token}", response_model=s.ReportPageOut)
def report_page(token: str, ctx: CtxDep) -> s.ReportPageOut:
    """Whom the link reports to (no login)."""
    link = _link_or_404(ctx, token)
    return s.ReportPageOut(org_name=link["org_name"], link_name=link["name"],
                           max_upload_bytes=ctx.settings.max_upload_bytes)  # fmt: skip


@router.post("/report/{token}", response_model=s.ReportReceipt, status_code=201, responses={429: {}})
def send_report(
    token: str,
    request: Request,
    ctx: CtxDep,
    gated: GatedScannerDep,
    photo: Annotated[UploadFile, File(description="the photo of the hazard (JPEG, PNG, WebP or HEIC)")],
    idempotency_key: Annotated[str, Form(description="a UUID the sender's page made for this report")],
    place: Annotated[str, Form(min_length=1, max_length=200, description="where: the unit, street, building")],
    description: Annotated[str, Form(max_length=2000)] = "",
    contact: Annotated[
        str | None, Form(max_length=50, description="a phone number, if the sender wants a call")
    ] = None,
) -> Any:
    """A report from someone without an account (no login): scored by the model, kept for a supervisor to check.
    The same idempotency_key again answers the first report (200). At most HAZARDSCAN_REPORTS_PER_HOUR from one
    address per link in an hour (429 with Retry-After)."""
    link = _link_or_404(ctx, token)
    tax = gated.scanner.taxonomy
    key = check_key(idempotency_key)
    seen = ctx.reports.by_key(link["id"], key)
    if seen is not None:
        return JSONResponse(receipt_out(seen, tax).model_dump(mode="json"), status_code=200)
    if not place.strip():
        raise AppError(422, "validation_error", "place: say where the photo was taken", "请填写隐患所在位置")
    sender = sender_of(link["id"], request.client.host if request.client else "")
    limit = ctx.settings.reports_per_hour
    if ctx.reports.sent_since(link["id"], sender, time.time() - HOUR_S) >= limit:
        raise AppError(429, "too_many_requests", f"at most {limit} reports an hour from one sender; try later",
                       f"每小时最多提交 {limit} 条举报，请稍后再试", headers={"Retry-After": "600"})  # fmt: skip
    data = read_photo(photo, ctx.settings.max_upload_bytes)
    ctx.records.blobs.check_room(len(data))
    scan, info = scan_photo(gated, data)
    hazards = [{"hazard_id": f.hazard_id, "confidence": round(f.confidence, 4),
                "box": [round(v, 1) for v in f.box] if f.box is not None else None,
                "suspected": f.suspected, "unconfirmed": scan.unconfirmed} for f in scan.findings]  # fmt: skip
    sha = ctx.records.blobs.put(data)
    card = gated.scanner.detector.card
    new = NewReport(key, sha, info["content_type"], len(data), info["width"], info["height"], place.strip(),
                    description.strip(), (contact or "").strip() or None, hazards, info["warnings"], card.model_id,
                    card.version)  # fmt: skip
    row, created = ctx.reports.add(link, sender, new)
    out = receipt_out(row, tax)
    return out if created else JSONResponse(out.model_dump(mode="json"), status_code=200)


@router.get("/report-receipt/{receipt}", response_model=s.ReportStatusOut)
def report_status(receipt: str, ctx: CtxDep) -> s.ReportStatusOut:
    """Where a report stands, for whoever holds its receipt (no login)."""
    row = ctx.reports.by_receipt(receipt.strip().upper())
    if row is None:
        raise AppError(404, "not_found", "no report has this receipt", "没有该回执号对应的举报")
    org = ctx.accounts.org_name(row["org_id"]) or ""
    return s.ReportStatusOut(receipt=row["receipt"], org_name=org, place=row["place"], status=row["status"],
                             created_at=iso(row["created_at"]) or "", decided_at=iso(row["decided_at"]),
                             note=row["note"] if row["status"] == "rejected" else "")  # fmt: skip


# ---- checking reports (supervisor) ---------------------------------------------------------------------------


def _reviewer(user: User) -> None:
    require(user, "supervisor", REPORTS)


def _report(ctx: AppContext, user: User, report_id: str) -> Row:
    _reviewer(user)
    row = ctx.reports.get(user.org_id, report_id)
    if row is None:
        raise not_found("report", "举报")
    return row


@router.get("/reports", response_model=s.ReportList)
def list_reports(
    request: Request,
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    status: Annotated[s.ReportStatus | None, Query(description="new | verified | rejected; default: all")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> s.ReportList:
    _reviewer(user)
    rows, total = ctx.reports.page(user.org_id, status, limit, offset)
    names = user_names(ctx, user.org_id)
    english = wants_english(request)
    return s.ReportList(items=[report_out(r, tax, names, english) for r in rows], total=total,
                        counts=ctx.reports.counts(user.org_id))  # fmt: skip


@router.get("/reports/{report_id}/photo.jpg", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def report_photo(report_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep, max_side: MaxSide = None) -> Response:
    """The report's photo with what the model found drawn on it (dashed: a guess, nobody has confirmed it)."""
    row = _report(ctx, user, report_id)
    side = max_side or 1600
    image = decode_for_display(ctx.records.blobs.get(row["sha256"]), side, max_pixels=ctx.settings.max_pixels)
    notes = []
    for h in _hazards(row, tax):
        if h.box is None:
            continue
        conf = f" {h.confidence:.0%}" if h.confidence is not None else ""
        mark_en, mark_zh = doubt_marks(True, h.unconfirmed)
        colour = SEVERITY_COLOURS.get(h.severity, (0, 170, 110))
        x1, y1, x2, y2 = h.box
        notes.append(Annotation((x1, y1, x2, y2), f"{mark_en}{h.name_en}{conf}", f"{mark_zh}{h.name_zh}{conf}", colour,
                                dashed=True))  # fmt: skip
    jpeg = render_evidence(image, notes, max_side=side, quality=ctx.settings.evidence_quality,
                           font_path=ctx.settings.font_path)  # fmt: skip
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/reports/{report_id}/verify", response_model=s.InspectionOut, status_code=201, responses={409: {}})
def verify_report(
    report_id: str, body: s.ReportVerifyIn, user: UserDep, ctx: CtxDep, gated: GatedScannerDep, tax: TaxonomyDep
) -> Any:
    """查证属实: an inspection of the place with the report's photo in it, its hazards pending as on any photo (the
    supervisor confirms them into the ledger); the same inspection when asked again."""
    row = _report(ctx, user, report_id)
    if body.scene not in SCENE_IDS:
        raise AppError(422, "validation_error", f"unknown scene {body.scene!r}; see GET /app/api/taxonomy",
                       f"未知场景 {body.scene!r}")  # fmt: skip
    if row["status"] == "rejected":
        raise conflict("the report was marked not a hazard (不属实)", "该举报已标记为不属实")
    client_id = REPORT_CLIENT_PREFIX + row["id"]
    made = ctx.records.inspections_by_client(user.org_id, [client_id]).get(client_id)
    if made is None:
        inspection, _ = ctx.records.create_inspection(
            user.org_id,
            user.id,
            unit_name=body.unit_name or row["place"],
            unit_address=row["place"],
            unit_credit_code=None,
            scene=body.scene,
            location=None,
            client_id=client_id,
        )
        made = str(inspection["id"])
    data = ctx.records.blobs.get(row["sha256"])  # scored again, by the rules of the scene the supervisor chose
    _, created, _ = store_photo(ctx, user, made, "inspection", client_id, data, gated, photo_scene_of(body.scene, tax),
                                row["created_at"], time_source="report")  # fmt: skip
    try:
        ctx.reports.decide(user.org_id, row["id"], user.id, "verified", body.note, made)
    except ReportConflict as exc:
        raise conflict(str(exc), "该举报已处理") from exc
    out = full_inspection(ctx, user, made, tax)
    return out if created else JSONResponse(out.model_dump(mode="json"), status_code=200)


@router.post("/reports/{report_id}/reject", response_model=s.ReportOut, responses={409: {}})
def reject_report(
    report_id: str, body: s.ReportRejectIn, request: Request, user: UserDep, ctx: CtxDep, tax: TaxonomyDep
) -> s.ReportOut:
    """不属实, with the reason the sender sees on their receipt."""
    row = _report(ctx, user, report_id)
    try:
        row = ctx.reports.decide(user.org_id, row["id"], user.id, "rejected", body.note)
    except ReportConflict as exc:
        raise conflict(str(exc), "该举报已处理") from exc
    return report_out(row, tax, user_names(ctx, user.org_id), wants_english(request))


def _full_link(request: Request, row: Row) -> str:
    """The link as a phone must open it: this server's address as the admin's browser reached it."""
    return str(request.base_url).rstrip("/") + report_link_path(row["token"])


@router.get("/report-links/{link_id}/poster.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})  # fmt: skip
def link_poster(link_id: str, request: Request, user: UserDep, ctx: CtxDep) -> Response:
    """The notice to print and put up (A4 PDF): whom to report to, the steps, the QR code of the link. The link is
    this server's address as the admin's browser reached it: print it from the address phones will use."""
    require(user, "admin", LINKS)
    row = ctx.reports.link(user.org_id, link_id)
    if row is None:
        raise not_found("report link", "举报链接")
    if row["revoked_at"] is not None:
        raise conflict("the link was revoked: a notice of it would lead nowhere", "该举报链接已停用，不能打印")
    pdf = to_pdf(poster_html(user.org_name, row["name"], _full_link(request, row)), ctx.settings.font_path)
    name = f"report-link-{row['id'][:8]}.pdf"
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'})


EXPORT_HEADER = ("回执号", "提交时间", "举报链接", "位置", "情况说明", "联系电话", "AI 初判", "状态", "核查时间",
                 "核查人", "说明", "检查记录")  # fmt: skip
STATUS_ZH = {"new": "待核查", "verified": "查证属实", "rejected": "不属实"}


@router.get("/reports/export.{fmt}", response_class=Response, responses={200: {"content": {XLSX: {}, "text/csv": {}}}})
def export_reports(
    fmt: Literal["xlsx", "csv"],
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    status: Annotated[s.ReportStatus | None, Query(description="default: all")] = None,
) -> Response:
    """The organisation's reports as a table, e.g. the verified ones with their senders' phone numbers for the
    reward (查证属实的予以奖励); times in the organisation's local time."""
    _reviewer(user)
    names = user_names(ctx, user.org_id)
    offset_h = ctx.settings.deadline_utc_offset_hours
    rows = []
    for r in ctx.reports.every(user.org_id, status):
        guess = "、".join(h.name_zh for h in _hazards(r, tax)) or "未识别出隐患"
        sent, decided = local_time(iso(r["created_at"]), offset_h), local_time(iso(r["decided_at"]), offset_h)
        rows.append((r["receipt"], sent, r["link_name"], r["place"], r["description"], r["contact"] or "", guess,
                     STATUS_ZH.get(r["status"], r["status"]), decided, names.get(r["decided_by"] or "", ""), r["note"],
                     r["inspection_id"] or ""))  # fmt: skip
    base = f"reports-{status or 'all'}"
    disposition = {"Content-Disposition": f'attachment; filename="{base}.{fmt}"'}
    if fmt == "csv":
        return Response(sheets.to_csv(EXPORT_HEADER, rows), media_type="text/csv; charset=utf-8", headers=disposition)
    return Response(sheets.to_xlsx(EXPORT_HEADER, rows, "群众举报"), media_type=XLSX, headers=disposition)
