"""A statistics table as CSV (UTF-8 with BOM, so Excel opens the Chinese right) or XLSX (openpyxl)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any


def rows_of(data: Any) -> list[dict[str, Any]]:
    """A table's JSON as flat rows: a dict is one row; list cells are joined with '; '."""
    rows = [data] if isinstance(data, Mapping) else list(data)
    return [{k: "; ".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()} for r in rows]


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    return cols


def to_csv(data: Any) -> bytes:
    rows = rows_of(data)
    cols = _columns(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(data: Any, title: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    rows = rows_of(data)
    cols = _columns(rows)
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    ws.append(cols)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append([r.get(c) for c in cols])
    for i, c in enumerate(cols, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(10, min(40, len(c) + 4))
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
