"""/app/api: inspections, photos (scored by the service's model on upload), findings and decisions."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from PIL import Image

from inference_service.accounts import User
from inference_service.app import schemas as s
from inference_service.app.api_auth import PHOTO_SCENE_OF, SCENE_IDS
from inference_service.app.context import AppContext
from inference_service.app.deps import CtxDep, GatedScanner, GatedScannerDep, TaxonomyDep, UserDep
from inference_service.app.errors import AppError, conflict, not_found
from inference_service.app.photo_time import TakenAtError, exif_taken_at, parse_taken_at, shown
from inference_service.app.views import (
    CAMERA_CLIENT_PREFIX,
    REPORT_CLIENT_PREFIX,
    finding_out,
    inspection_out,
    photo_out,
)
from inference_service.detections import box_iou
from inference_service.evidence import SEVERITY_COLOURS, Annotation, doubt_marks, render_evidence
from inference_service.imaging import decode_for_display
from inference_service.records import Box, NewFinding, NewPhoto, PendingFindings, RecordConflict
from inference_service.scan import Scanner, ScanOptions, ScanResult
from inference_service.storage import MAX_OFFSET, Cursor
from inference_service.taxonomy import Taxonomy

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/app/api", tags=["app"])

IDEMPOTENCY_MAX = 100
Lang = Literal["zh", "en"]
_PHOTO_SCENE = "taxonomy scene id of this photo (e.g. elevator, corridor); default: the inspection's"
TAKEN_AT = (
    "when the photo was taken (the file's time): ISO 8601, local time without a zone, or epoch seconds or "
    "milliseconds; not in the future (5 minutes of clock skew allowed); the photo's EXIF time wins"
)


def photo_scene_of(inspection_scene: str, taxonomy: Taxonomy) -> str | None:
    """The taxonomy scene an inspection's photos are judged in unless a photo names its own."""
    default = PHOTO_SCENE_OF.get(inspection_scene)
    return default if default in taxonomy.scene_ids else None


def read_photo(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; a clear 413 over ``limit`` and 400 when empty."""
    name = upload.filename or "photo"
    if upload.size is not None and upload.size > limit:
        raise AppError(413, "photo_too_large", f"{name} is {upload.size:,} bytes; the limit is {limit:,} bytes",
                       f"照片过大（{upload.size:,} 字节），上限 {limit:,} 字节")  # fmt: skip
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise AppError(413, "photo_too_large", f"{name} is larger than the {limit:,}-byte limit",
                       f"照片超过 {limit:,} 字节上限")  # fmt: skip
    if not data:
        raise AppError(400, "empty_photo", f"{name} is empty", "照片文件为空")
    return data


def check_taken_at(text: str | None, offset_hours: float) -> float | None:
    """The upload form's ``taken_at`` as epoch seconds (None when not sent); a clear 422 when impossible."""
    if text is None:
        return None
    try:
        return parse_taken_at(text, now=time.time(), offset_hours=offset_hours)
    except TakenAtError as exc:
        zh = f"拍摄时间（taken_at）无效：{exc}；请发送 ISO 8601 时间或纪元秒，且不晚于当前时间"
        raise AppError(422, "invalid_taken_at", str(exc), zh) from exc


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > IDEMPOTENCY_MAX:
        raise AppError(422, "validation_error", f"idempotency_key must be 1 to {IDEMPOTENCY_MAX} characters",
                       f"idempotency_key 须为 1 到 {IDEMPOTENCY_MAX} 个字符")  # fmt: skip
    return key


def scan_photo(gated: GatedScanner, data: bytes, scene: str | None = None) -> tuple[ScanResult, dict[str, Any]]:
    """Score a photo with the rules of ``scene`` (a taxonomy scene id), through the service's model gate; also what
    its row needs. ImageError -> 400/413/415 and a full gate -> 503, by the service's error table."""
    scan = gated.scan(data, ScanOptions(scene=scene))
    card = gated.scanner.detector.card
    dets = scan.detect.detections
    detections = [
        {"class": card.classes[int(dets.class_id[i])], "confidence": round(float(dets.score[i]), 4),
         "box": [round(float(v), 1) for v in dets.xyxy[i]]}
        for i in range(len(dets))
    ]  # fmt: skip
    fmt = scan.detect.image.format
    return scan, {
        "content_type": Image.MIME.get(fmt.upper(), "application/octet-stream"),
        "width": scan.detect.width,
        "height": scan.detect.height,
        "warnings": [{"code": w.code, "message_zh": w.message_zh, "message_en": w.message} for w in scan.warnings],
        "detections": detections,
    }


def model_findings(scanner: Scanner, scan: ScanResult) -> list[NewFinding]:
    """The scan's hazards as pending findings, each marked as the API marks it: a suspicion, and every hazard
    of a photo with a warning unconfirmed. None enters the ledger before the inspector confirms it."""
    classes = scanner.detector.card.classes
    out = []
    for f in scan.findings:
        if f.box is None:
            continue
        cls = classes[int(scan.detect.detections.class_id[f.detection_indices[0]])] if f.detection_indices else None
        out.append(NewFinding(f.hazard_id, f.box, cls, round(f.confidence, 4), suspected=f.suspected,
                              unconfirmed=scan.unconfirmed))  # fmt: skip
    return out


def store_photo(
    ctx: AppContext,
    user: User,
    inspection_id: str,
    kind: str,
    key: str,
    data: bytes,
    gated: GatedScanner,
    scene: str | None = None,
    client_taken_at: float | None = None,
    known: NewFinding | None = None,
    time_source: str = "client",
) -> tuple[dict[str, Any], bool, ScanResult | None]:
    """Score and keep a photo: bytes on disk by content address first, then its rows in one transaction.

    ``client_taken_at``: the upload form's ``taken_at`` (epoch seconds); the photo's EXIF time wins over it.
    ``time_source``: what ``client_taken_at`` is (client: the upload form's; camera: a CCTV frame's time).
    ``known``: a hazard already found on the photo (a camera's event), kept as a finding unless the model finds
    the same hazard where it lies."""
    seen = ctx.records.photo_by_key(user.org_id, key)
    if seen is not None:
        return seen, False, None
    ctx.records.blobs.check_room(len(data))  # before the model runs: a photo that cannot be kept is not scanned
    scan, info = scan_photo(gated, data, scene)
    sha = ctx.records.blobs.put(data)
    scanner = gated.scanner
    card = scanner.detector.card
    taken_at, source = shown(exif_taken_at(data), client_taken_at, ctx.settings.deadline_utc_offset_hours)
    source = time_source if source == "client" else source
    photo = NewPhoto(kind, key, sha, info["content_type"], len(data), info["width"], info["height"], taken_at,
                     card.model_id, card.version, info["warnings"], info["detections"], scene,
                     tuple(card.classes), source, client_taken_at)  # fmt: skip
    findings = model_findings(scanner, scan) if kind == "inspection" else []
    if known is not None and not any(f.hazard_id == known.hazard_id and overlap(f.box, known.box) for f in findings):
        findings.append(known)
    row, created = ctx.records.add_photo(user.org_id, inspection_id, user.id, photo, findings)
    return row, created, scan


def overlap(a: Box, b: Box, least: float = 0.3) -> bool:
    """Whether two xyxy boxes overlap by at least ``least`` IoU."""
    return float(box_iou(np.asarray([a], np.float32), np.asarray([b], np.float32))[0, 0]) >= least


def user_names(ctx: AppContext, org_id: str) -> dict[str, str]:
    """The display names of the organisation's users by id."""
    return {u.id: u.display_name for u in ctx.accounts.list_users(org_id)}


def full_inspection(ctx: AppContext, user: User, inspection_id: str, taxonomy: Taxonomy) -> s.InspectionOut:
    row = ctx.records.inspection(user.org_id, inspection_id)
    if row is None:
        raise not_found("inspection", "检查记录")
    photos = ctx.records.photos_of(inspection_id)
    findings = ctx.records.findings_of([p["id"] for p in photos])
    out = [photo_out(p, findings[p["id"]], taxonomy) for p in photos]
    return inspection_out(row, user_names(ctx, user.org_id), out)


@router.post("/inspections", response_model=s.InspectionOut, status_code=201)
def create_inspection(body: s.InspectionIn, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> Any:
    for prefix in (CAMERA_CLIENT_PREFIX, REPORT_CLIENT_PREFIX):
        if body.client_id and body.client_id.startswith(prefix):
            en = f"client_id must not start with {prefix!r}: those name inspections made from camera events or reports"
            raise AppError(422, "validation_error", en, f"client_id 不能以 {prefix} 开头")
    if body.scene not in SCENE_IDS:
        raise AppError(422, "validation_error", f"unknown scene {body.scene!r}; see GET /app/api/taxonomy",
                       f"未知场景 {body.scene!r}")  # fmt: skip
    loc = body.location
    row, created = ctx.records.create_inspection(
        user.org_id,
        user.id,
        unit_name=body.unit.name,
        unit_address=body.unit.address,
        unit_credit_code=body.unit.credit_code or None,
        scene=body.scene,
        location=(loc.lat, loc.lon, loc.accuracy_m) if loc else None,
        client_id=body.client_id,
    )
    out = full_inspection(ctx, user, row["id"], tax)
    if not created:
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    return out


@router.get("/inspections", response_model=s.InspectionList)
def list_inspections(
    user: UserDep,
    ctx: CtxDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    q: Annotated[str | None, Query(max_length=100, description="in the unit's name or address")] = None,
    mine: Annotated[bool, Query(description="only the caller's own inspections")] = False,
    status: Annotated[s.InspectionStatus | None, Query(description="in_progress | finished")] = None,
) -> s.InspectionList:
    rows, total = ctx.records.list_inspections(
        user.org_id,
        limit,
        offset,
        q=(q or "").strip() or None,
        inspector_id=user.id if mine else None,
        finished=None if status is None else status == "finished",
    )
    names = user_names(ctx, user.org_id)
    return s.InspectionList(items=[inspection_out(r, names) for r in rows], total=total)


@router.get("/inspections/{inspection_id}", response_model=s.InspectionOut)
def get_inspection(inspection_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.InspectionOut:
    return full_inspection(ctx, user, inspection_id, tax)


@router.post("/inspections/{inspection_id}/finish", response_model=s.InspectionOut, responses={409: {}})
def finish_inspection(
    inspection_id: str, body: s.FinishIn, user: UserDep, ctx: CtxDep, tax: TaxonomyDep
) -> s.InspectionOut:
    """完成检查: the on-site check is over. 409 while the AI's findings await a decision, unless ``force``; a photo
    uploaded later reopens the inspection."""
    try:
        row = ctx.records.finish(user.org_id, inspection_id, user.id, force=body.force)
    except PendingFindings as exc:
        raise conflict(f"{exc}: confirm or reject them first, or finish with force",
                       f"还有 {exc.count} 处 AI 识别的隐患待确认，请先确认或标为误报") from exc  # fmt: skip
    if row is None:
        raise not_found("inspection", "检查记录")
    return full_inspection(ctx, user, inspection_id, tax)


@router.post("/inspections/{inspection_id}/reopen", response_model=s.InspectionOut)
def reopen_inspection(inspection_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.InspectionOut:
    """Undo 完成检查."""
    if ctx.records.reopen(user.org_id, inspection_id) is None:
        raise not_found("inspection", "检查记录")
    return full_inspection(ctx, user, inspection_id, tax)


@router.post("/inspections/{inspection_id}/photos", response_model=s.PhotoOut, status_code=201)
def upload_photo(
    inspection_id: str,
    photo: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, HEIC …)")],
    idempotency_key: Annotated[str, Form(description="a UUID the client made for this photo")],
    user: UserDep,
    ctx: CtxDep,
    gated: GatedScannerDep,
    scene: Annotated[str | None, Form(description=_PHOTO_SCENE)] = None,
    taken_at: Annotated[str | None, Form(description=TAKEN_AT)] = None,
) -> Any:
    scanner = gated.scanner
    key = check_key(idempotency_key)
    client_taken_at = check_taken_at(taken_at, ctx.settings.deadline_utc_offset_hours)
    inspection = ctx.records.inspection(user.org_id, inspection_id)
    if inspection is None:
        raise not_found("inspection", "检查记录")
    photo_scene = scanner.taxonomy.check_scene(scene or None) or photo_scene_of(inspection["scene"], scanner.taxonomy)
    data = read_photo(photo, ctx.settings.max_upload_bytes)
    row, created, _ = store_photo(ctx, user, inspection_id, "inspection", key, data, gated, photo_scene,
                                  client_taken_at)  # fmt: skip
    if row["inspection_id"] != inspection_id or row["kind"] != "inspection":
        raise conflict("this idempotency_key was used for another photo upload", "该 idempotency_key 已用于其他照片")
    if created and inspection["finished_at"] is not None:  # a photo taken later (or queued offline) reopens it
        ctx.records.reopen(user.org_id, inspection_id)
    out = photo_out(row, ctx.records.findings_of([row["id"]])[row["id"]], scanner.taxonomy)
    if not created:
        return JSONResponse(out.model_dump(mode="json"), status_code=200)
    return out


def _photo_or_404(ctx: AppContext, user: User, photo_id: str) -> dict[str, Any]:
    row = ctx.records.photo(user.org_id, photo_id)
    if row is None:
        raise not_found("photo", "照片")
    return row


@router.get("/photos/{photo_id}/original", response_class=Response)
def photo_original(photo_id: str, user: UserDep, ctx: CtxDep) -> Response:
    row = _photo_or_404(ctx, user, photo_id)
    data = ctx.records.blobs.get(row["sha256"])
    headers = {
        "Cache-Control": "private, max-age=31536000, immutable",
        "ETag": f'"{row["sha256"]}"',
        "X-Content-Type-Options": "nosniff",
    }
    return Response(data, media_type=row["content_type"], headers=headers)


def evidence_jpeg(
    ctx: AppContext,
    row: dict[str, Any],
    taxonomy: Taxonomy,
    max_side: int = 1600,
    statuses: tuple[str, ...] = ("pending", "confirmed"),
    only: str | None = None,
    lang: Lang = "zh",
) -> bytes:
    """The photo with its findings of these statuses drawn (current boxes), or with the finding ``only`` alone
    (whatever its status); a pending suspicion or a pending finding of a doubtful photo dashed and labelled
    疑似 / 待确认, as the detection API draws them."""
    data = ctx.records.blobs.get(row["sha256"])
    image = decode_for_display(data, max_side, max_pixels=ctx.settings.max_pixels)
    notes = []
    for f in ctx.records.findings_of([row["id"]])[row["id"]]:
        if (f["id"] != only) if only is not None else (f["status"] not in statuses):
            continue
        out = finding_out(f, taxonomy)
        conf = f" {out.confidence:.0%}" if out.confidence is not None else ""
        doubt_en, doubt_zh = doubt_marks(out.suspected, out.unconfirmed) if out.awaiting_confirmation else ("", "")
        mark_en, mark_zh = ("✓ ", "✓ ") if f["status"] == "confirmed" else (doubt_en, doubt_zh)
        box = (float(f["x1"]), float(f["y1"]), float(f["x2"]), float(f["y2"]))
        colour = SEVERITY_COLOURS.get(out.severity, (0, 170, 110))
        label_zh = f"{mark_zh}{out.name_zh}{conf}" if lang == "zh" else ""  # none: the English label is drawn
        notes.append(Annotation(box, f"{mark_en}{out.name_en}{conf}", label_zh, colour,
                                dashed=out.awaiting_confirmation))  # fmt: skip
    return render_evidence(
        image, notes, max_side=max_side, quality=ctx.settings.evidence_quality, font_path=ctx.settings.font_path
    )


MaxSide = Annotated[int | None, Query(ge=64, le=1600, description="long side of the image, pixels")]
LangQ = Annotated[Lang, Query(description="the language of the labels drawn: zh (default) or en")]


@router.get("/photos/{photo_id}/evidence.jpg", response_class=Response)
def photo_evidence(
    photo_id: str, user: UserDep, ctx: CtxDep, tax: TaxonomyDep, max_side: MaxSide = None, lang: LangQ = "zh"
) -> Response:
    """The photo with its hazards drawn (a rectification photo: the photo alone), at most ``max_side`` pixels."""
    row = _photo_or_404(ctx, user, photo_id)
    side = min(max_side or ctx.settings.evidence_max_side, ctx.settings.evidence_max_side)
    return Response(evidence_jpeg(ctx, row, tax, side, lang=lang), media_type="image/jpeg",
                    headers={"Cache-Control": "private, no-cache"})  # fmt: skip


@router.get("/findings/{finding_id}/evidence.jpg", response_class=Response)
def finding_evidence(
    finding_id: str,
    user: UserDep,
    ctx: CtxDep,
    tax: TaxonomyDep,
    max_side: MaxSide = 480,
    lang: LangQ = "zh",
) -> Response:
    """The photo that found the hazard with only its box drawn: which hazard a ledger item is, at a glance."""
    finding = ctx.records.finding(user.org_id, finding_id)
    if finding is None:
        raise not_found("finding", "隐患")
    row = _photo_or_404(ctx, user, finding["photo_id"])
    side = min(max_side or 480, ctx.settings.evidence_max_side)
    return Response(evidence_jpeg(ctx, row, tax, side, only=finding_id, lang=lang), media_type="image/jpeg",
                    headers={"Cache-Control": "private, no-cache"})  # fmt: skip


def _ledger_hooks(ctx: AppContext, user: User, taxonomy: Taxonomy) -> dict[str, Any]:
    def on_confirm(cur: Cursor, finding: dict[str, Any]) -> str:
        insp = cur.execute(
            "SELECT inspector_id, unit_name, unit_address, scene FROM inspections WHERE id = ?",
            [finding["inspection_id"]],
        ).fetch_dicts()[0]
        try:
            severity = taxonomy.hazard(finding["hazard_id"]).severity
        except KeyError:
            severity = "medium"
        return ctx.ledger.open_item(cur, finding, insp, severity, user.id)

    return {"ledger_status": ctx.ledger.status_in, "on_confirm": on_confirm, "on_withdraw": ctx.ledger.withdraw}


def _check_box(box: list[float], photo: dict[str, Any]) -> tuple[float, float, float, float]:
    """The box clipped to the photo; refused unless some of it lies on the photo (1 px of slack at the far edges)."""
    w, h = int(photo["width"]), int(photo["height"])
    if box[0] >= w or box[1] >= h or box[2] > w + 1 or box[3] > h + 1:
        raise AppError(422, "validation_error", f"box {box} lies outside the {w}×{h} photo",
                       f"框 {box} 超出照片范围（{w}×{h}）")  # fmt: skip
    return (box[0], box[1], min(box[2], w), min(box[3], h))


@router.post("/photos/{photo_id}/void", response_model=s.PhotoOut, responses={409: {}})
def void_photo(photo_id: str, body: s.VoidIn, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.PhotoOut:
    """作废 a photo taken by mistake (a wrong pick, a duplicate, a blurred frame): kept for the audit, left out of the
    inspection, its documents, the statistics and training data; its hazards still 待整改 leave the ledger. 409 once
    one of them is being rectified."""
    try:
        row = ctx.records.void_photo(user.org_id, photo_id, user.id, body.reason, **_void_hooks(ctx))
    except RecordConflict as exc:
        raise conflict(str(exc), "该照片的隐患已进入整改，不能作废") from exc
    if row is None:
        raise not_found("photo", "照片")
    return photo_out(row, ctx.records.findings_of([photo_id])[photo_id], tax)


def _void_hooks(ctx: AppContext) -> dict[str, Any]:
    return {"ledger_status": ctx.ledger.status_in, "on_withdraw": ctx.ledger.withdraw}


@router.post("/findings/{finding_id}/decision", response_model=s.FindingOut)
def decide(finding_id: str, body: s.DecisionIn, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.FindingOut:
    current = ctx.records.finding(user.org_id, finding_id)
    if current is None:
        raise not_found("finding", "隐患")
    box = None
    if body.box is not None:
        photo = ctx.records.photo(user.org_id, current["photo_id"])
        assert photo is not None
        box = _check_box(body.box, photo)
    try:
        row = ctx.records.decide(
            user.org_id, finding_id, user.id, body.decision, box, body.note, **_ledger_hooks(ctx, user, tax)
        )
    except RecordConflict as exc:
        raise conflict(str(exc), "该隐患已进入整改流程，不能再更改确认结果") from exc
    if row is None:
        raise not_found("finding", "隐患")
    return finding_out(row, tax)


@router.post("/photos/{photo_id}/findings", response_model=s.FindingOut, status_code=201)
def add_finding(photo_id: str, body: s.FindingIn, user: UserDep, ctx: CtxDep, tax: TaxonomyDep) -> s.FindingOut:
    photo = _photo_or_404(ctx, user, photo_id)
    if photo["kind"] != "inspection":
        raise conflict("hazards are added to inspection photos, not rectification photos", "只能在检查照片上添加隐患")
    if photo["voided_at"] is not None:
        raise conflict("the photo was voided; it takes no more hazards", "该照片已作废，不能再添加隐患")
    try:
        hazard = tax.hazard(body.hazard_id)
    except KeyError as exc:
        raise AppError(422, "unknown_hazard", f"unknown hazard id {body.hazard_id!r}; see GET /app/api/taxonomy",
                       f"未知隐患编号 {body.hazard_id!r}") from exc  # fmt: skip
    box = _check_box(body.box, photo)
    finding = NewFinding(hazard.id, box, hazard.rule.when[0], None, "inspector", "confirmed", body.note)
    row = ctx.records.add_finding(user.org_id, photo, user.id, finding, _ledger_hooks(ctx, user, tax)["on_confirm"])
    return finding_out(row, tax)
