"""Statistics queries at scale: every statistics request timed on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/stats_bench.py [--inspections 100000] [--hazards 300000] [--runs 5] \\
        [--dialects sqlite,postgresql] [--report benchmarks/reports/stats_bench.txt]

Writes one organisation's synthetic records (inspections over two years, 1.5 photos each, findings of every
taxonomy hazard from two model versions and inspectors, a ledger item per confirmed finding with its lifecycle,
some sent back) into a fresh database made by the service's own migrations (PostgreSQL: a throw-away server
from tests/_cctv.py), runs ANALYZE (PostgreSQL: VACUUM ANALYZE), then times each request the statistics
routes serve: the whole ``/app/api/stats`` and each ``/app/api/stats/{table}``, all time and one month,
calling the same functions the routes call (no HTTP), for all time, one month and one scene (unit type). Prints
the median and the slowest of ``--runs`` per request; the target is < 300 ms. Also:

- ``build``: the rollups built from the records, once, at start-up (as the service does after the migration);
- ``fresh``: each request as the first one on a fresh database handle (a service just started), ``--runs`` times;
- ``after``: each request as the first one after 100 new decisions, ``--runs`` times (confirm or reject of
  pending findings, made through the records' own ``decide`` with the ledger hooks, so the rollups follow them in
  the same transactions); ``decide`` is the mean time of one such decision.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import inference_service.app.api_auth  # noqa: E402, F401  (loaded at the service's start-up; the scene names)
from inference_service.accounts import Accounts  # noqa: E402
from inference_service.app import stats_rollup  # noqa: E402
from inference_service.app.stats import StatsQuery, stats, table, table_names  # noqa: E402
from inference_service.ledger import Ledger  # noqa: E402
from inference_service.ledger.rules import DEFAULT_DEADLINE_DAYS, DeadlinePolicy  # noqa: E402
from inference_service.records import BlobStore, Records  # noqa: E402
from inference_service.storage import Cursor, Database  # noqa: E402
from inference_service.taxonomy import load_taxonomy  # noqa: E402

log = logging.getLogger(__name__)

TARGET_MS = 300.0
SCENES = ("construction", "work_at_height", "hot_work", "residential_ebike", "industry", "gas", "public_venue")
START = 1_730_419_200.0  # 2024-11-01 UTC: two years of records up to 2026-11-01, none in the future
SPAN = 730 * 86400.0

COLUMNS = {
    "inspections": ("id", "org_id", "inspector_id", "unit_name", "unit_address", "scene", "created_at"),
    "photos": (
        "id",
        "org_id",
        "inspection_id",
        "kind",
        "idempotency_key",
        "sha256",
        "content_type",
        "size_bytes",
        "width",
        "height",
        "model_id",
        "model_version",
        "warnings",
        "detections",
        "uploaded_by",
        "created_at",
    ),
    "findings": (
        "id",
        "org_id",
        "photo_id",
        "inspection_id",
        "hazard_id",
        "detector_class",
        "confidence",
        "x1",
        "y1",
        "x2",
        "y2",
        "source",
        "status",
        "seq",
        "created_at",
        "updated_at",
    ),
    "ledger_items": (
        "id",
        "org_id",
        "finding_id",
        "inspection_id",
        "photo_id",
        "inspector_id",
        "unit_name",
        "unit_address",
        "hazard_id",
        "severity",
        "status",
        "deadline",
        "ai_recheck",
        "rectification_photo_id",
        "created_at",
        "closed_at",
        "version",
        "scene",
        "close_s",
        "sent_back",
    ),
    "ledger_history": ("item_id", "at", "by_user", "from_status", "to_status", "note"),
}


def synthetic(org: str, users: list[str], n_inspections: int, n_hazards: int, seed: int = 0) -> dict[str, list]:
    rng = random.Random(seed)
    tax = load_taxonomy()
    hazards = [(h.id, h.rule.when[0], h.severity) for h in tax.hazards]
    units = [f"单位{i:03d}" for i in range(300)]
    rows: dict[str, list] = {k: [] for k in COLUMNS}
    photos: list[tuple[str, str, float, str]] = []
    for i in range(n_inspections):
        iid = f"i{i:07d}"
        at = START + rng.random() * SPAN
        scene = rng.choice(SCENES)
        rows["inspections"].append((iid, org, rng.choice(users), rng.choice(units), "", scene, at))
        for k in range(1 + (i % 2)):
            pid = f"p{i:07d}{k}"
            version = "1.0.0" if at < START + SPAN / 2 else "1.1.0"
            rows["photos"].append((pid, org, iid, "inspection", pid, "0" * 64, "image/jpeg", 1, 640, 480,
                                   "hazardscan", version, "[]", "[]", users[0], at + k))  # fmt: skip
            photos.append((pid, iid, at + k, scene))
    for n in range(n_hazards):
        pid, iid, at, scene = photos[rng.randrange(len(photos))]
        hid, cls, severity = rng.choice(hazards)
        fid = f"f{n:07d}"
        source = "inspector" if rng.random() < 0.15 else "model"
        status = "confirmed" if source == "inspector" else rng.choices(
            ("confirmed", "rejected", "pending"), (0.6, 0.25, 0.15))[0]  # fmt: skip
        rows["findings"].append((fid, org, pid, iid, hid, cls, 0.8, 0, 0, 10, 10, source, status, n % 5, at, at))
        if status != "confirmed":
            continue
        lid = f"l{n:07d}"
        deadline = at + DEFAULT_DEADLINE_DAYS[severity] * 86400 + 43200
        state = rng.choices(("open", "in_progress", "pending_review", "closed"), (0.15, 0.15, 0.1, 0.6))[0]
        closed = at + rng.random() * 20 * 86400 if state == "closed" else None
        rect = "r" if state in ("pending_review", "closed") else None
        recheck = ("failed" if rng.random() < 0.1 else "passed") if rect else None
        sent_back = bool(rect and rng.random() < 0.05)
        rows["ledger_items"].append((lid, org, fid, iid, pid, users[0], "u", "", hid, severity, state, deadline,
                                     recheck, rect, at, closed, 1, scene, closed - at if closed else None,
                                     int(sent_back)))  # fmt: skip
        if sent_back:
            rows["ledger_history"].append((lid, at + 3600, users[0], "pending_review", "in_progress", "again"))
    return rows


def load(db: Database, rows: dict[str, list]) -> None:
    for name, data in rows.items():
        cols = COLUMNS[name]
        if db.dialect == "postgresql":
            with db.conn().cursor() as cur, cur.copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in data:
                    copy.write_row(r)
        else:
            with db.tx() as cur:
                cur.raw.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                    data)  # fmt: skip
    # statistics for the planner; on PostgreSQL also the visibility map (as autovacuum leaves a table after a
    # bulk insert), without which no index-only scan is possible
    db.query("ANALYZE") if db.dialect == "sqlite" else db.conn().execute("VACUUM ANALYZE")


@contextmanager
def database(dialect: str, folder: Path) -> Iterator[Database]:
    if dialect == "sqlite":
        db = Database(folder / "bench.db")
        try:
            yield db
        finally:
            db.close()
        return
    from _cctv import postgres_server

    with postgres_server() as url:
        db = Database(url)
        try:
            yield db
        finally:
            db.close()


def timed(fn: Any, runs: int) -> tuple[float, float]:
    fn()  # warm (connection, page cache)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def decider(db: Database, records: Records, ledger: Ledger, tax: Any) -> Any:
    """``decide(finding_id, decision)`` as the app's route makes it (ledger item opened on confirm)."""

    def on_confirm(cur: Cursor, finding: dict[str, Any]) -> str:
        insp = cur.execute("SELECT inspector_id, unit_name, unit_address, scene FROM inspections WHERE id = ?",
                           [finding["inspection_id"]]).fetch_dicts()[0]  # fmt: skip
        return ledger.open_item(cur, finding, insp, tax.hazard(finding["hazard_id"]).severity, "bench")

    hooks: dict[str, Any] = {
        "ledger_status": ledger.status_in,
        "on_confirm": on_confirm,
        "on_withdraw": ledger.withdraw,
    }

    def decide(org: str, fid: str, decision: str) -> None:
        records.decide(org, fid, "bench", decision, None, None, **hooks)

    return decide


@dataclass
class Populated:
    db: Database
    records: Records
    ledger: Ledger
    org: str
    users: list[str]
    rows: dict[str, list]


def populate(db: Database, folder: Path, n_inspections: int, n_hazards: int, n_users: int = 8) -> Populated:
    """The service's stores on ``db`` (made by their migrations), one organisation with ``n_users`` inspectors, and
    :func:`synthetic` records written into it."""
    records = Records(db, BlobStore(folder / "photos"))
    ledger = Ledger(db, DeadlinePolicy(DEFAULT_DEADLINE_DAYS))
    accounts = Accounts(db)
    org = accounts.ensure_org("bench")
    users = [accounts.add_user(f"u{i}", "password-123", "inspector", org, f"检查员{i}").id for i in range(n_users)]
    t0 = time.perf_counter()
    rows = synthetic(org, users, n_inspections, n_hazards)
    load(db, rows)
    log.info(f"{db.dialect}: {', '.join(f'{len(v)} {k}' for k, v in rows.items())} written in "
             f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    return Populated(db, records, ledger, org, users, rows)


def bench(dialect: str, args: argparse.Namespace) -> list[tuple[str, str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp, database(dialect, Path(tmp)) as db:
        made = populate(db, Path(tmp), args.inspections, args.hazards)
        records, ledger, org, users, rows = made.records, made.ledger, made.org, made.users, made.rows
        tax = load_taxonomy()
        names = {u: f"检查员{i}" for i, u in enumerate(users)}
        month_start = datetime(2026, 10, 1, tzinfo=timezone(timedelta(hours=8))).timestamp()
        month = (month_start, month_start + 31 * 86400)  # October 2026, local days
        out = []
        t0 = time.perf_counter()
        stats_rollup.ensure(db, 8.0)  # what the service does at start-up after the migration, once
        build = (time.perf_counter() - t0) * 1000
        out.append(("build", "rollups at start-up", build, build))
        records.listener = ledger.listener = stats_rollup.RollupWriter()  # as the service wires them
        requests: list[tuple[str, Any]] = [("stats (every table)", stats)]
        requests += [(name, lambda q, name=name: table(q, name)) for name in table_names()]

        for name, fn in requests:  # each the first request of a service just started: a fresh handle, --runs times
            times = []
            for _ in range(args.runs):
                fresh = Database(db.url)
                try:
                    stats_rollup.ensure(fresh, 8.0)  # the service's start-up: finds them built, does nothing
                    t0 = time.perf_counter()
                    fn(StatsQuery(fresh, org, tax, names, None, None, 8.0))
                    times.append((time.perf_counter() - t0) * 1000)
                finally:
                    fresh.close()
            out.append(("fresh", name, statistics.median(times), max(times)))

        # inspectors decide on recent pending findings, the newest last (popped first)
        pending = [r[0] for r in sorted(rows["findings"], key=lambda r: r[14]) if r[12] == "pending"]
        decide = decider(db, records, ledger, tax)
        spent, made = 0.0, 0
        for name, fn in requests:  # each the first request after 100 new decisions, --runs times
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                batch = [pending.pop() for _ in range(min(100, len(pending)))]
                for k, fid in enumerate(batch):
                    decide(org, fid, "confirm" if k % 2 else "reject")
                spent, made = spent + time.perf_counter() - t0, made + len(batch)
                t0 = time.perf_counter()
                fn(StatsQuery(db, org, tax, names, None, None, 8.0))
                times.append((time.perf_counter() - t0) * 1000)
            out.append(("after", name, statistics.median(times), max(times)))
        out.append(("decide", "one decision (mean)", spent / made * 1000, spent / made * 1000))

        for label, (since, until), scene in (("all time", (None, None), None), ("one month", month, None),
                                             ("one scene", (None, None), "construction")):  # fmt: skip

            def q(since: float | None = since, until: float | None = until, scene: str | None = scene) -> StatsQuery:
                return StatsQuery(db, org, tax, names, since, until, 8.0, scene=scene)  # a request makes its own

            for name, fn in requests:
                out.append((label, name, *timed(lambda fn=fn, q=q: fn(q()), args.runs)))
        return out


def scale_parser(doc: str) -> argparse.ArgumentParser:
    """The options of a benchmark over :func:`populate`'s records (and its logging): how many, how often, where."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--inspections", type=int, default=100_000)
    p.add_argument("--hazards", type=int, default=300_000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dialects", default="sqlite,postgresql")
    return p


def main() -> int:
    p = scale_parser(__doc__)
    p.add_argument("--report", type=Path, help="also write the table here")
    args = p.parse_args()
    lines = [f"stats_bench: {args.inspections} inspections, {args.hazards} hazards; median / slowest of {args.runs} "
             f"runs in ms; target < {TARGET_MS:.0f} ms", f"machine: {platform.platform()}, "
             f"{platform.processor() or platform.machine()}, python {platform.python_version()}"]  # fmt: skip
    results: dict[str, Any] = {}
    for dialect in args.dialects.split(","):
        rows = bench(dialect, args)
        results[dialect] = rows
        lines.append(f"\n{dialect}")
        lines.append(f"  {'range':10} {'request':24} {'median':>8} {'slowest':>8}")
        for label, name, med, worst in rows:
            flag = "" if worst < TARGET_MS else "  OVER"
            lines.append(f"  {label:10} {name:24} {med:8.1f} {worst:8.1f}{flag}")
        log.info("\n".join(lines[-len(rows) - 2 :]))
    over = [(d, r[0], r[1]) for d, rows in results.items() for r in rows if r[3] >= TARGET_MS]
    lines.append(f"\nover {TARGET_MS:.0f} ms: {len(over)} of {sum(len(r) for r in results.values())} requests")
    if args.report:
        args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info(lines[-1])
    log.info(json.dumps({d: {f"{r[0]}/{r[1]}": round(r[2], 1) for r in rows} for d, rows in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
