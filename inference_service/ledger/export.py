"""Ledger export for 汇总上报: CSV and XLSX (:mod:`inference_service.sheets`), times in the local time zone (real
date cells in XLSX), a deadline at the end of a local day as that day."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from inference_service import sheets
from inference_service.ledger.rules import SEVERITY_ZH

COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "编号 ID"),
    ("unit_name", "被检查单位 Unit"),
    ("unit_address", "地址 Address"),
    ("hazard_id", "隐患编号 Hazard"),
    ("name_zh", "隐患名称"),
    ("name_en", "Hazard name"),
    ("severity_zh", "等级 Severity"),
    ("status_zh", "状态 Status"),
    ("deadline", "整改期限 Deadline"),
    ("overdue", "逾期 Overdue"),
    ("responsible_person", "责任人 Responsible"),
    ("ai_recheck", "AI 复查 AI re-check"),
    ("entered_by", "登记人 Entered by"),
    ("created_at", "登记时间 Created"),
    ("closed_at", "销号时间 Closed"),
)


def local_time(iso: str | None, offset_hours: float) -> datetime | None:
    """An API time (ISO, UTC) as a naive local date-time to the minute, as a spreadsheet shows it."""
    if not iso:
        return None
    when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=offset_hours)))
    return when.replace(tzinfo=None, second=0, microsecond=0)


def local_deadline(iso: str, offset_hours: float) -> date | datetime:
    """The deadline as its local day when it ends that day (23:59:59, as deadlines are set), else to the minute."""
    when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=offset_hours)))
    if (when.hour, when.minute, when.second) == (23, 59, 59):
        return when.date()
    return when.replace(tzinfo=None, second=0, microsecond=0)


def flat(item: Mapping[str, Any], offset_hours: float = 8.0) -> dict[str, Any]:
    """One ledger item (the API's JSON form) as the export's cells."""
    recheck = {"passed": "通过 passed", "failed": "未通过 failed"}.get(item.get("ai_recheck") or "", "")
    history = item.get("history") or []
    return {
        **item,
        "unit_name": item["unit"]["name"],
        "unit_address": item["unit"]["address"],
        "severity_zh": f"{SEVERITY_ZH.get(item['severity'], item['severity'])} {item['severity']}",
        "status_zh": f"{item['status_zh']} {item['status']}",
        "deadline": local_deadline(item["deadline"], offset_hours),
        "overdue": "是 yes" if item["overdue"] else "否 no",
        "ai_recheck": recheck,
        "entered_by": history[0]["by"] if history else "",
        "created_at": local_time(item["created_at"], offset_hours),
        "closed_at": local_time(item.get("closed_at"), offset_hours),
    }


def to_csv(items: Sequence[Mapping[str, Any]], offset_hours: float = 8.0) -> bytes:
    return sheets.to_csv(_header(), (_row(item, offset_hours) for item in items))


def to_xlsx(items: Sequence[Mapping[str, Any]], offset_hours: float = 8.0, title: str = "隐患台账") -> bytes:
    """The ledger as one sheet, overdue items in light red."""
    overdue = [bool(item["overdue"]) for item in items]
    rows = [_row(item, offset_hours) for item in items]
    return sheets.to_xlsx(_header(), rows, title, highlight=overdue, min_width=12, pad=6)


def _header() -> list[str]:
    return [title for _, title in COLUMNS]


def _row(item: Mapping[str, Any], offset_hours: float) -> list[Any]:
    row = flat(item, offset_hours)
    return [row[key] for key, _ in COLUMNS]
