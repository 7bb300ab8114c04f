"""Ledger export: CSV (UTF-8 with BOM, so Excel opens the Chinese right) and XLSX (openpyxl)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

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
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([title for _, title in COLUMNS])
    for item in items:
        row = flat(item)
        w.writerow([row[key] for key, _ in COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(items: Sequence[Mapping[str, Any]], title: str = "隐患台账") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    ws.append([t for _, t in COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    overdue_fill = PatternFill("solid", fgColor="FFD7D7")
    for item in items:
        row = flat(item)
        ws.append([row[key] for key, _ in COLUMNS])
        if item["overdue"]:
            for cell in ws[ws.max_row]:
                cell.fill = overdue_fill
    for i, (_, t) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(12, min(40, len(t) + 6))
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
