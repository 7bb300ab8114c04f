"""The app's lists read indexes, never every row: what benchmarks/lists_bench.py measured (an inspections page of
20 took 1.4 to 2.2 s at 100,000 inspections, one 500 pages down minutes) kept so by the query plans, on SQLite.

Records are benchmarks/stats_bench.py's synthetic ones, a few thousand, analysed as after a bulk load; each list
request runs with SQLite's trace on, and every statement it ran is planned again with EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inference_service.ledger import Ledger, LedgerFilter
from inference_service.records import Records
from inference_service.storage import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from stats_bench import SPAN, START, populate


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Records, Ledger, str, str]]:
    folder = tmp_path_factory.mktemp("lists")
    db = Database(folder / "lists.db")
    made = populate(db, folder, 3000, 9000, n_users=4)
    yield db, made.records, made.ledger, made.org, made.users[1]
    db.close()


def plans(db: Database, request: Callable[[], Any]) -> list[str]:
    """Run ``request``; the query plan of every statement it ran, one line each."""
    ran: list[str] = []
    conn = db.conn()
    conn.set_trace_callback(ran.append)
    try:
        request()
    finally:
        conn.set_trace_callback(None)
    return [" / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")) for sql in ran]


def test_an_inspections_page_counts_photos_and_findings_by_index_and_only_its_own(stores):
    db, records, _, org, me = stores
    for kw in ({}, {"q": "单位12"}, {"inspector_id": me}, {"finished": False}):
        for offset in (0, 500):
            for plan in plans(db, lambda kw=kw, offset=offset: records.list_inspections(org, 20, offset, **kw)):
                assert "SCAN f" not in plan and "SCAN p" not in plan, plan  # every finding or photo, per row
                assert "findings_inspection" in plan or "findings" not in plan, plan


def test_a_deep_page_has_the_counts_of_its_own_rows(stores):
    db, records, _, org, _ = stores
    page, total = records.list_inspections(org, 20, 500)
    assert total == 3000 and len(page) == 20
    for row in page:
        photos = db.query(
            "SELECT COUNT(*) FROM photos WHERE inspection_id = ? AND kind = 'inspection' AND voided_at IS NULL",
            [row["id"]],
        )[0][0]
        hazards, pending = db.query(
            "SELECT SUM(status IN ('pending', 'confirmed')), SUM(status = 'pending') FROM findings "
            "WHERE inspection_id = ?",
            [row["id"]],
        )[0]
        assert (row["photo_count"], row["hazard_count"], row["pending_count"]) == (photos, hazards or 0, pending or 0)
    everything, _ = records.list_inspections(org, 3000, 0)
    assert [r["id"] for r in page] == [r["id"] for r in everything[500:520]]  # the same order as one long page


@pytest.mark.parametrize(
    "flt", [LedgerFilter(), LedgerFilter(unit="单位12"), LedgerFilter(overdue=True, closed=False)], ids=str
)
def test_a_ledger_page_is_read_in_order_from_an_index(stores, flt: LedgerFilter):
    """No sort of every item of the organisation for a page of 20; a unit search reads the index alone."""
    db, _, ledger, org, _ = stores
    count, page = plans(db, lambda: ledger.search(org, flt, 20, 0, now=START + SPAN))[:2]  # as search runs them
    assert "TEMP B-TREE" not in page and "ledger_deadline" in page, page
    if flt.unit:
        assert "COVERING INDEX" in count, count
