"""/app/inspections/{id}/record|notice[.pdf]: the printable documents of an inspection (cookie session)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from inference_service.accounts import User
from inference_service.app.api_auth import SCENE_ZH
from inference_service.app.api_records import evidence_jpeg
from inference_service.app.context import AppContext
from inference_service.app.deps import CtxDep, TaxonomyDep, UserDep
from inference_service.app.documents import TITLES, DocHazard, DocInspection, DocPhoto, Kind, render, to_pdf
from inference_service.app.errors import not_found
from inference_service.app.views import camera_event_of, content_disposition, finding_out, hazard_fields
from inference_service.taxonomy import Taxonomy

router = APIRouter(prefix="/app", tags=["app documents"])
DOC_PHOTO_SIDE = 1400  # long side of the photos in documents (print ~150 dpi over 180 mm)


def _local(ts: float | None, offset_hours: float) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone(timedelta(hours=offset_hours))).strftime("%Y-%m-%d %H:%M")


def build(ctx: AppContext, user: User, inspection_id: str, taxonomy: Taxonomy, kind: Kind) -> DocInspection:
    row = ctx.records.inspection(user.org_id, inspection_id)
    if row is None:
        raise not_found("inspection", "检查记录")
    off = ctx.settings.deadline_utc_offset_hours
    photos = ctx.records.photos_of(inspection_id)
    findings = ctx.records.findings_of([p["id"] for p in photos])
    ledger = ctx.ledger.by_finding(user.org_id, [f["id"] for fs in findings.values() for f in fs])
    wanted = ("confirmed",) if kind == "notice" else ("pending", "confirmed")
    doc_photos: list[DocPhoto] = []
    for p in photos:
        hazards = []
        for f in findings[p["id"]]:
            if f["status"] not in wanted:
                continue
            h = hazard_fields(taxonomy, f["hazard_id"])
            marks = finding_out(f, taxonomy)
            item = ledger.get(f["id"])
            hazards.append(
                DocHazard(
                    h["name_zh"],
                    h["name_en"],
                    h["severity"],
                    f["status"],
                    f["source"],
                    f["confidence"],
                    h["legal_basis"],
                    h["advice_zh"],
                    f["note"] or "",
                    _local(item["deadline"], off) if item else None,
                    item["responsible_person"] if item else "",
                    marks.suspected,
                    marks.unconfirmed,
                )
            )
        if kind == "notice" and not hazards:
            continue
        jpeg = evidence_jpeg(ctx, p, taxonomy, DOC_PHOTO_SIDE, wanted)
        doc_photos.append(
            DocPhoto(
                len(doc_photos) + 1,
                jpeg,
                p["sha256"],
                int(p["width"]),
                int(p["height"]),
                p["taken_at"],
                f"{p['model_id']} {p['model_version']}",
                hazards,
                from_camera=p["taken_at_source"] == "camera",
            )
        )
    names = {u.id: u.display_name for u in ctx.accounts.list_users(user.org_id)}
    loc = f"{row['lat']:.5f}, {row['lon']:.5f}" if row["lat"] is not None and row["lon"] is not None else None
    return DocInspection(
        number=f"{(_local(row['created_at'], off) or '')[:10].replace('-', '')}-{row['id'][:8]}",
        unit_name=row["unit_name"],
        unit_address=row["unit_address"],
        unit_credit_code=row["unit_credit_code"],
        scene=SCENE_ZH.get(row["scene"]) or str(row["scene"]),
        inspector=names.get(row["inspector_id"], "?"),
        org=user.org_name,
        created_at=_local(row["created_at"], off) or "",
        location=loc,
        photos=doc_photos,
        camera_event=camera_event_of(row),
        back_url=f"/app/#/inspection/{inspection_id}",
        pdf_url=f"/app/inspections/{inspection_id}/{kind}.pdf",
    )


def _html(ctx: AppContext, user: User, inspection_id: str, tax: Taxonomy, kind: Kind) -> str:
    return render(build(ctx, user, inspection_id, tax, kind), kind)


def _pdf(ctx: AppContext, user: User, inspection_id: str, tax: Taxonomy, kind: Kind) -> Response:
    doc = build(ctx, user, inspection_id, tax, kind)
    pdf = to_pdf(render(doc, kind), ctx.settings.font_path)
    named = content_disposition(
        "inline", f"{kind}-{doc.number}.pdf", TITLES[kind], doc.unit_name, f"{doc.number[:8]}.pdf"
    )
    return Response(pdf, media_type="application/pdf", headers=named)


@router.get("/inspections/{inspection_id}/record", response_class=HTMLResponse)
def record_html(inspection_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> HTMLResponse:
    """现场检查记录, print-ready HTML: a first page, then a page per photo."""
    return HTMLResponse(_html(ctx, user, inspection_id, tax, "record"))


@router.get("/inspections/{inspection_id}/record.pdf", response_class=Response)
def record_pdf(inspection_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> Response:
    return _pdf(ctx, user, inspection_id, tax, "record")


@router.get("/inspections/{inspection_id}/notice", response_class=HTMLResponse)
def notice_html(inspection_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> HTMLResponse:
    """隐患整改通知书: confirmed hazards with deadlines; a page per photo that has one."""
    return HTMLResponse(_html(ctx, user, inspection_id, tax, "notice"))


@router.get("/inspections/{inspection_id}/notice.pdf", response_class=Response)
def notice_pdf(inspection_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> Response:
    return _pdf(ctx, user, inspection_id, tax, "notice")
