"""The app's lists at scale: each page the inspections list, the ledger and the 整改跟踪 line ask for, timed on
SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/lists_bench.py [--inspections 100000] [--hazards 300000] [--runs 5] \\
        [--dialects sqlite,postgresql] [--skip REGEX] [--report benchmarks/reports/lists_bench.txt]

The records are stats_bench's (one organisation, two years, 1.5 photos per inspection, findings of every hazard,
a ledger item per confirmed finding with its lifecycle), written into a fresh database made by the service's own
migrations. Each request calls what its route calls (no HTTP) with the page size the app asks for (20): the
inspections list (newest first; a search; 我的; 进行中; a page deep down), the ledger (every chip, a unit search)
and its summary. Prints the median and the slowest of ``--runs`` per request; the target is < 300 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from stats_bench import SPAN, START, database, populate, scale_parser, timed  # noqa: E402

from inference_service.ledger import Ledger, LedgerFilter  # noqa: E402
from inference_service.records import Records  # noqa: E402

log = logging.getLogger(__name__)

TARGET_MS = 300.0
PAGE = 20  # what the app asks for (views.js, ledger.js)


def requests(records: Records, ledger: Ledger, org: str, user: str) -> list[tuple[str, Callable[[], Any]]]:
    now = START + SPAN  # the records' last day: the ledger's overdue items are those of a real "now"

    def insp(**kw: Any) -> Callable[[], Any]:
        offset = kw.pop("offset", 0)
        return lambda: records.list_inspections(org, PAGE, offset, **kw)

    def items(flt: LedgerFilter) -> Callable[[], Any]:
        return lambda: ledger.search(org, flt, PAGE, 0, now=now)

    return [
        ("inspections: newest", insp()),
        ("inspections: search q", insp(q="单位123")),
        ("inspections: 我的", insp(inspector_id=user)),
        ("inspections: 进行中", insp(finished=False)),
        ("inspections: page 500", insp(offset=500 * PAGE)),
        ("ledger: 全部", items(LedgerFilter())),
        ("ledger: 待整改", items(LedgerFilter(status="open"))),
        ("ledger: 待复查", items(LedgerFilter(status="pending_review"))),
        ("ledger: 已逾期", items(LedgerFilter(overdue=True, closed=False))),
        ("ledger: unit search", items(LedgerFilter(unit="单位12"))),
        ("ledger: summary", lambda: ledger.summary(org, now=now)),
    ]


def bench(dialect: str, args: argparse.Namespace) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp, database(dialect, Path(tmp)) as db:
        made = populate(db, Path(tmp), args.inspections, args.hazards)
        every = requests(made.records, made.ledger, made.org, made.users[1])
        chosen = [(n, fn) for n, fn in every if not args.skip.search(n)]
        return [(name, *timed(fn, args.runs)) for name, fn in chosen]


def main() -> int:
    p = scale_parser(__doc__)
    p.add_argument("--skip", type=re.compile, default=re.compile("^$"), help="leave out the requests this matches")
    p.add_argument("--report", type=Path, help="also write the table here")
    args = p.parse_args()
    lines = [f"lists_bench: {args.inspections} inspections, {args.hazards} hazards, pages of {PAGE}; median / "
             f"slowest of {args.runs} runs in ms; target < {TARGET_MS:.0f} ms", f"machine: {platform.platform()}, "
             f"{platform.processor() or platform.machine()}, python {platform.python_version()}"]  # fmt: skip
    results: dict[str, list[tuple[str, float, float]]] = {}
    for dialect in args.dialects.split(","):
        results[dialect] = rows = bench(dialect, args)
        lines += [f"\n{dialect}", f"  {'request':26} {'median':>8} {'slowest':>8}"]
        lines += [f"  {n:26} {m:8.1f} {w:8.1f}{'' if w < TARGET_MS else '  OVER'}" for n, m, w in rows]
        log.info("\n".join(lines[-len(rows) - 2 :]))
    over = [(d, r[0]) for d, rows in results.items() for r in rows if r[2] >= TARGET_MS]
    lines.append(f"\nover {TARGET_MS:.0f} ms: {len(over)} of {sum(len(r) for r in results.values())} requests")
    if args.report:
        args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info(lines[-1])
    log.info(json.dumps({d: {r[0]: round(r[1], 1) for r in rows} for d, rows in results.items()}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
