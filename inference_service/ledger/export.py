"""Ledger export: CSV and XLSX (:mod:`inference_service.sheets`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    ("created_at", "登记时间 Created"),
    ("closed_at", "销号时间 Closed"),
)


def flat(item: Mapping[str, Any]) -> dict[str, Any]:
    """One ledger item (the API's JSON form) as the export's cells."""
    recheck = {"passed": "通过 passed", "failed": "未通过 failed"}.get(item.get("ai_recheck") or "", "")
    return {
        **item,
        "unit_name": item["unit"]["name"],
        "unit_address": item["unit"]["address"],
        "severity_zh": f"{SEVERITY_ZH.get(item['severity'], item['severity'])} {item['severity']}",
        "status_zh": f"{item['status_zh']} {item['status']}",
        "overdue": "是 yes" if item["overdue"] else "",
        "ai_recheck": recheck,
        "closed_at": item.get("closed_at") or "",
    }


def to_csv(items: Sequence[Mapping[str, Any]]) -> bytes:
    return sheets.to_csv(_header(), (_row(item) for item in items))


def to_xlsx(items: Sequence[Mapping[str, Any]], title: str = "隐患台账") -> bytes:
    """The ledger as one sheet, overdue items in light red."""
    overdue = [bool(item["overdue"]) for item in items]
    return sheets.to_xlsx(_header(), [_row(item) for item in items], title, highlight=overdue, min_width=12, pad=6)


def _header() -> list[str]:
    return [title for _, title in COLUMNS]


def _row(item: Mapping[str, Any]) -> list[Any]:
    row = flat(item)
    return [row[key] for key, _ in COLUMNS]
