"""Tables as CSV (UTF-8 with BOM, so Excel opens the Chinese right) and XLSX (openpyxl), safe to open.

Cells hold what users typed (unit names, addresses, responsible persons, notes). A spreadsheet reads a cell that
starts with ``=``, ``+``, ``-`` or ``@`` as a formula, so a unit named ``=HYPERLINK(...)`` would run in the
supervisor's Excel (CSV injection, OWASP). In CSV such text gets a leading apostrophe; in XLSX it is stored as text,
never as a formula. Characters the XLSX format cannot hold (control characters) are dropped, and text is cut at
Excel's limit for one cell. Dates and date-times are real date cells in XLSX, ``YYYY-MM-DD [HH:MM]`` in CSV.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

# what a spreadsheet may read as the start of a formula (and the tab / carriage return it skips before one)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# control characters XML 1.0 (and so XLSX) cannot hold; tab, newline and carriage return it can
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
EXCEL_CELL_LIMIT = 32767


def csv_cell(value: Any) -> Any:
    """``value`` for a CSV cell: None as empty, a date-time to the minute, text a spreadsheet would run as a formula
    behind an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def xlsx_text(value: str) -> str:
    """Text an XLSX cell can hold: control characters dropped, cut at Excel's limit."""
    return _NOT_IN_XML.sub("", value)[:EXCEL_CELL_LIMIT]


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """The table as CSV bytes (UTF-8 with BOM)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([csv_cell(h) for h in header])
    for row in rows:
        w.writerow([csv_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str,
    *,
    highlight: Iterable[bool] = (),
    min_width: int = 10,
    pad: int = 4,
) -> bytes:
    """The table as one XLSX sheet named ``title``: a bold, frozen header, every text a text cell (never a formula).
    ``highlight``: per row, whether to fill it light red (overdue ledger items); missing entries mean no."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = xlsx_text(title).translate(str.maketrans("", "", "[]:*?/\\"))[:31] or "Sheet"
    fill = PatternFill("solid", fgColor="FFD7D7")
    marks = iter(highlight)
    for r, row in enumerate([header, *rows], start=1):
        marked = r > 1 and next(marks, False)
        for c, value in enumerate(row, start=1):
            cell = ws.cell(r, c)
            if isinstance(value, str):
                cell.value = xlsx_text(value)
                cell.data_type = "s"  # openpyxl would store text starting with "=" as a formula
            else:
                cell.value = value
                if isinstance(value, datetime):  # a real date cell: Excel sorts and filters it
                    cell.number_format = "yyyy-mm-dd hh:mm"
                elif isinstance(value, date):
                    cell.number_format = "yyyy-mm-dd"
            if r == 1:
                cell.font = Font(bold=True)
            elif marked:
                cell.fill = fill
    for i, h in enumerate(header, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(min_width, min(40, len(h) + pad))
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
