"""Spreadsheet exports (inference_service.sheets): what users typed never runs as a formula, never breaks a file."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from inference_service import sheets


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x","点击")', '\'=HYPERLINK("http://x","点击")'),  # a formula
        ("+86 138", "'+86 138"),  # Excel reads +… as a formula too
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),  # spreadsheets skip leading whitespace before a formula
        ("阳泉某化工厂", "阳泉某化工厂"),  # ordinary text unchanged
        ("a=b", "a=b"),  # only the start matters
        (-3, -3),  # a number stays a number
        (0.5, 0.5),
        (None, ""),
        ("", ""),
        (datetime(2026, 12, 2, 15, 24, 25, 368274), "2026-12-02 15:24"),  # to the minute
        (date(2026, 12, 2), "2026-12-02"),
    ],
)
def test_csv_cell(value, cell):
    assert sheets.csv_cell(value) == cell


def test_csv_keeps_the_text_readable_and_inert():
    data = sheets.to_csv(["单位", "n"], [["=1+1", 2], ["普通单位", -1]])
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8")[1:])))
    assert rows == [["单位", "n"], ["'=1+1", "2"], ["普通单位", "-1"]]


def test_xlsx_stores_formula_like_text_as_text_and_drops_control_characters():
    hostile = '=HYPERLINK("http://evil.example","看这里")'
    data = sheets.to_xlsx(
        ["单位", "地址", "n"],
        [[hostile, "桃北路\x07\x00 12 号\n2 楼", 3], ["x" * 40000, None, -2.5]],
        "台账: 2026/12 [all]?",
        highlight=[True],
    )
    ws = load_workbook(io.BytesIO(data)).active
    assert ws.title == "台账 202612 all"
    unit, address, n = ws[2]
    assert unit.value == hostile and unit.data_type == "s"  # not "f": Excel shows it, never runs it
    assert address.value == "桃北路 12 号\n2 楼" and n.value == 3
    assert unit.fill.fgColor.rgb.endswith("FFD7D7")
    long, empty, neg = ws[3]
    assert len(long.value) == sheets.EXCEL_CELL_LIMIT and empty.value is None and neg.value == -2.5
    assert long.fill.fgColor.rgb in (None, "00000000")
    assert ws.freeze_panes == "A2" and ws["A1"].font.b


def test_xlsx_writes_dates_as_date_cells():
    data = sheets.to_xlsx(["when", "day"], [[datetime(2026, 12, 2, 15, 24), date(2026, 12, 9)]], "t")
    when, day = load_workbook(io.BytesIO(data)).active[2]
    assert when.is_date and when.value == datetime(2026, 12, 2, 15, 24) and when.number_format == "yyyy-mm-dd hh:mm"
    assert day.is_date and day.value == datetime(2026, 12, 9) and day.number_format == "yyyy-mm-dd"
