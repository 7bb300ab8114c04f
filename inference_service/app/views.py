"""Storage rows -> response models (pure functions; the taxonomy names every hazard)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from inference_service.app import schemas as s
from inference_service.ledger import STATUS_ZH, is_overdue, iso
from inference_service.taxonomy import Taxonomy

Row = Mapping[str, Any]
CAMERA_CLIENT_PREFIX = "cctv:"  # the client_id of an inspection made from a CCTV event: "cctv:<event id>"
REPORT_CLIENT_PREFIX = "report:"  # ... and of one made from a public report: "report:<report id>"
SUSPECT_BELOW = 0.5  # a model finding under this confidence is shown as 疑似 (suspected)


def _iso(ts: float | None) -> str:
    return iso(ts) or ""


def hazard_fields(taxonomy: Taxonomy, hazard_id: str) -> dict[str, str]:
    try:
        h = taxonomy.hazard(hazard_id)
    except KeyError:  # a hazard retired from the taxonomy since it was recorded
        return {"name_zh": hazard_id, "name_en": hazard_id, "severity": "medium", "domain": "", "legal_basis": "",
                "advice_zh": "", "advice_en": ""}  # fmt: skip
    return {"name_zh": h.name_zh, "name_en": h.name_en, "severity": h.severity, "domain": h.domain,
            "legal_basis": h.legal_basis, "advice_zh": h.advice_zh, "advice_en": h.advice_en}  # fmt: skip


def finding_out(row: Row, taxonomy: Taxonomy) -> s.FindingOut:
    conf = row["confidence"]
    suspected = bool(row["suspected"]) or (
        row["source"] == "model" and conf is not None and float(conf) < SUSPECT_BELOW
    )
    unconfirmed = bool(row.get("unconfirmed"))
    return s.FindingOut(
        id=row["id"],
        photo_id=row["photo_id"],
        hazard_id=row["hazard_id"],
        **hazard_fields(taxonomy, row["hazard_id"]),
        detector_class=row["detector_class"],
        confidence=None if conf is None else round(float(conf), 4),
        box=[round(float(row[k]), 1) for k in ("x1", "y1", "x2", "y2")],
        source=row["source"],
        status=row["status"],
        suspected=suspected,
        unconfirmed=unconfirmed,
        awaiting_confirmation=row["status"] == "pending" and (suspected or unconfirmed),
        note=row["note"] or "",
        ledger_item_id=row["ledger_item_id"],
    )


def photo_out(row: Row, findings: Sequence[Row], taxonomy: Taxonomy) -> s.PhotoOut:
    pid = row["id"]
    return s.PhotoOut(
        id=pid,
        inspection_id=row["inspection_id"],
        sha256=row["sha256"],
        width=int(row["width"]),
        height=int(row["height"]),
        scene=row["scene"],
        taken_at=row["taken_at"],
        taken_at_source=row.get("taken_at_source"),
        original_url=f"/app/api/photos/{pid}/original",
        evidence_url=f"/app/api/photos/{pid}/evidence.jpg",
        model=s.ModelRef(id=row["model_id"], version=row["model_version"]),
        warnings=[s.WarningOut(**w) for w in row["warnings"]],
        findings=[finding_out(f, taxonomy) for f in findings],
        voided=row.get("voided_at") is not None,
        void_reason=row.get("void_reason"),
    )


def inspection_out(row: Row, names: Mapping[str, str], photos: list[s.PhotoOut] | None = None) -> s.InspectionOut:
    # stored values are shown as they are, not checked again against the input's limits (model_construct): a row
    # stored under older, looser rules must not make the whole list fail
    loc = None
    if row["lat"] is not None and row["lon"] is not None:
        accuracy = row["accuracy_m"]
        accuracy = accuracy if accuracy is None or math.isfinite(accuracy) else None
        loc = s.Location.model_construct(lat=row["lat"], lon=row["lon"], accuracy_m=accuracy)
    return s.InspectionOut(
        id=row["id"],
        unit=s.Unit.model_construct(
            name=row["unit_name"], address=row["unit_address"], credit_code=row["unit_credit_code"]
        ),
        scene=row["scene"],
        inspector=s.Inspector(id=row["inspector_id"], display_name=names.get(row["inspector_id"], "?")),
        created_at=_iso(row["created_at"]),
        location=loc,
        photo_count=int(row["photo_count"]),
        hazard_count=int(row["hazard_count"]),
        pending_count=int(row["pending_count"]),
        status="finished" if row["finished_at"] is not None else "in_progress",
        finished_at=iso(row["finished_at"]),
        camera_event_id=camera_event_of(row),
        report_id=made_of(row, REPORT_CLIENT_PREFIX),
        photos=photos,
    )


def camera_event_of(inspection: Row) -> str | None:
    """The id of the CCTV event an inspection was made from (None: made by hand)."""
    return made_of(inspection, CAMERA_CLIENT_PREFIX)


def made_of(inspection: Row, prefix: str) -> str | None:
    """The id of what an inspection was made from, by the prefix of its client_id (a CCTV event, a report)."""
    client_id = inspection.get("client_id") or ""
    return client_id.removeprefix(prefix) if client_id.startswith(prefix) else None


def ledger_out(row: Row, taxonomy: Taxonomy, now: float | None = None, finding: Row | None = None) -> s.LedgerItemOut:
    """A ledger item; with its ``finding`` row, also where the hazard is (box) and the inspector's note."""
    now = time.time() if now is None else now
    h = hazard_fields(taxonomy, row["hazard_id"])
    rect = row["rectification_photo_id"]
    history = [
        s.HistoryOut.model_validate(
            {
                "at": _iso(e["at"]),
                "by": e["display_name"] or e["by_user"],
                "by_id": e["by_user"],
                "from": e["from_status"],
                "to": e["to_status"],
                "note": e["note"],
            }
        )
        for e in row.get("history", [])
    ]
    return s.LedgerItemOut(
        id=row["id"],
        finding_id=row["finding_id"],
        inspection_id=row["inspection_id"],
        photo_id=row["photo_id"],
        unit=s.LedgerUnit(name=row["unit_name"], address=row["unit_address"]),
        hazard_id=row["hazard_id"],
        name_zh=h["name_zh"],
        name_en=h["name_en"],
        severity=row["severity"],
        status=row["status"],
        status_zh=STATUS_ZH[row["status"]],
        deadline=_iso(row["deadline"]),
        overdue=is_overdue(row["status"], float(row["deadline"]), row["closed_at"], now),
        responsible_person=row["responsible_person"],
        assigned_to=row["assigned_to"],
        ai_recheck=row["ai_recheck"],
        rectification_photo_url=f"/app/api/photos/{rect}/original" if rect else None,
        rectification_evidence_url=f"/app/api/photos/{rect}/evidence.jpg" if rect else None,
        evidence_url=f"/app/api/findings/{row['finding_id']}/evidence.jpg",
        box=[float(finding[k]) for k in ("x1", "y1", "x2", "y2")] if finding else None,
        note=(finding["note"] or "") if finding else "",
        created_at=_iso(row["created_at"]),
        closed_at=iso(row["closed_at"]),
        history=history,
        version=int(row["version"]),
    )


def content_disposition(how: str, ascii_name: str, title: str, part: str, tail: str) -> dict[str, str]:
    """``Content-Disposition`` (``how``: attachment | inline) naming the file ``<title>-<part>-<tail>`` in UTF-8, with
    ``ascii_name`` for old clients; ``part`` (a unit or organisation, typed by users) made safe for a file name."""
    safe = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", part).strip() or "_"
    return {
        "Content-Disposition": f"{how}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(f'{title}-{safe}-{tail}')}"
    }
