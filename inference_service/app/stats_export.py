"""A statistics table as CSV or XLSX (:mod:`inference_service.sheets`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inference_service import sheets


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
    return sheets.to_csv(cols, ([r.get(c) for c in cols] for r in rows))


def to_xlsx(data: Any, title: str) -> bytes:
    rows = rows_of(data)
    cols = _columns(rows)
    return sheets.to_xlsx(cols, ([r.get(c) for c in cols] for r in rows), title)
