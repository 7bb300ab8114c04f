"""Pre-aggregated statistics, refreshed from a watermark: the statistics stay fast at 300,000 hazards.

Records are append-only and a finding changes only by a decision, which sets its ``updated_at``; an inspection
never changes. So a refresh reads the findings changed since the last one (with a two-minute overlap for
transactions still open then), and recomputes the local days and months they belong to:

- ``stats_day``: confirmed/rejected/pending findings per local day, hazard, class, source, status, model version
  (serves hazards by type/severity/domain, week, month and the model's field tables);
- ``stats_month``: confirmed findings per local month and unit, inspector or scene (scene with its hazard, for
  the critical ratio), and inspections per month and scene.

Each refresh is one transaction under the migration lock, so two service processes never interleave. Day and
month are local (``offset_hours``); a different offset rebuilds the organisation's rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import date

from inference_service.storage import Cursor, Database, Migration, migrate
from inference_service.storage.migrations import LOCK_KEY

OVERLAP_S = 120.0  # findings written by a transaction still open at the last refresh are read again
DAY_S = 86400.0

MIGRATIONS = (
    Migration(
        1,
        "statistics rollups by day and by month, refresh state; indexes the refresh and the ledger figures use",
        (
            """CREATE TABLE stats_day (
                org_id TEXT NOT NULL, day INTEGER NOT NULL, hazard_id TEXT NOT NULL, detector_class TEXT NOT NULL,
                source TEXT NOT NULL, status TEXT NOT NULL, model_id TEXT NOT NULL, model_version TEXT NOT NULL,
                n INTEGER NOT NULL)""",
            "CREATE INDEX stats_day_org ON stats_day (org_id, day)",
            """CREATE TABLE stats_month (
                org_id TEXT NOT NULL, month INTEGER NOT NULL, dim TEXT NOT NULL, key TEXT NOT NULL,
                hazard_id TEXT NOT NULL, n INTEGER NOT NULL)""",
            "CREATE INDEX stats_month_org ON stats_month (org_id, dim, month)",
            """CREATE TABLE stats_state (
                org_id TEXT PRIMARY KEY, watermark DOUBLE PRECISION NOT NULL,
                offset_hours DOUBLE PRECISION NOT NULL, seen TEXT NOT NULL)""",
            "CREATE INDEX findings_updated ON findings (org_id, updated_at)",
            "CREATE INDEX inspections_created ON inspections (org_id, created_at)",
            "CREATE INDEX ledger_created ON ledger_items (org_id, created_at, status, deadline, closed_at, "
            "rectification_photo_id, ai_recheck)",
            "CREATE INDEX ledger_history_sent_back ON ledger_history (to_status, from_status, item_id)",
            "CREATE INDEX ledger_close_time ON ledger_items (org_id, status, (closed_at - created_at), created_at)",
        ),
    ),
)


def ensure_schema(db: Database) -> None:
    """The rollup tables (once per database handle; needs the records and ledger schemas first)."""
    if not getattr(db, "_stats_schema", False):
        migrate(db, "stats", MIGRATIONS)
        db._stats_schema = True  # type: ignore[attr-defined]


def day_expr(db: Database, column: str, offset_hours: float) -> str:
    shift = offset_hours * 3600.0
    if db.dialect == "sqlite":
        return f"CAST(({column} + {shift!r}) / {DAY_S!r} AS INTEGER)"  # timestamps are positive
    return f"CAST(FLOOR(({column} + {shift!r}) / {DAY_S!r}) AS INTEGER)"


def month_of_day(day: int) -> int:
    d = date.fromordinal(date(1970, 1, 1).toordinal() + day)
    return d.year * 12 + d.month - 1


def month_days(month: int) -> tuple[int, int]:
    """``[first, next month's first)`` as local day numbers."""
    y, m = divmod(month, 12)
    first = date(y, m + 1, 1).toordinal() - date(1970, 1, 1).toordinal()
    ny, nm = divmod(month + 1, 12)
    return first, date(ny, nm + 1, 1).toordinal() - date(1970, 1, 1).toordinal()


def _bounds(days: Iterable[int], offset_hours: float) -> list[tuple[float, float]]:
    """Contiguous runs of local days as ``[t0, t1)`` epoch ranges."""
    runs: list[list[int]] = []
    for d in sorted(set(days)):
        if runs and runs[-1][1] == d:
            runs[-1][1] = d + 1
        else:
            runs.append([d, d + 1])
    shift = offset_hours * 3600.0
    return [(a * DAY_S - shift, b * DAY_S - shift) for a, b in runs]


def _seen(db: Database | Cursor, org_id: str, since: float) -> str:
    """What the overlap window holds: counts and sums of the change times (a new or later change alters it)."""
    run = db.query if isinstance(db, Database) else (lambda sql, p: db.execute(sql, p).fetchall())
    f = run("SELECT COUNT(*), SUM(updated_at) FROM findings WHERE org_id = ? AND updated_at > ?", [org_id, since])
    i = run("SELECT COUNT(*), SUM(created_at) FROM inspections WHERE org_id = ? AND created_at > ?", [org_id, since])
    return repr((int(f[0][0]), float(f[0][1] or 0), int(i[0][0]), float(i[0][1] or 0)))


def refresh(db: Database, org_id: str, offset_hours: float) -> None:
    """Bring the organisation's rollups up to date (a no-op when nothing changed)."""
    ensure_schema(db)
    state = db.query("SELECT watermark, offset_hours, seen FROM stats_state WHERE org_id = ?", [org_id])
    since: float | None = None
    if state and float(state[0][1]) == offset_hours:
        since = float(state[0][0]) - OVERLAP_S
        if _seen(db, org_id, since) == state[0][2]:
            return
    now = time.time()
    with db.tx() as cur:
        if db.dialect == "postgresql":
            cur.execute("SELECT pg_advisory_xact_lock(?)", [LOCK_KEY])
        day = day_expr(db, "created_at", offset_hours)
        if since is None:
            for table in ("stats_day", "stats_month"):
                cur.execute(f"DELETE FROM {table} WHERE org_id = ?", [org_id])
            days = {int(r[0]) for r in cur.execute(f"SELECT DISTINCT {day} FROM findings WHERE org_id = ?",
                                                   [org_id]).fetchall()}  # fmt: skip
            months = {int(r[0]) for r in cur.execute(f"SELECT DISTINCT {day} FROM inspections WHERE org_id = ?",
                                                     [org_id]).fetchall()}  # fmt: skip
        else:
            days = {int(r[0]) for r in cur.execute(
                f"SELECT DISTINCT {day} FROM findings WHERE org_id = ? AND updated_at > ?", [org_id, since]
            ).fetchall()}  # fmt: skip
            months = {int(r[0]) for r in cur.execute(
                f"SELECT DISTINCT {day} FROM inspections WHERE org_id = ? AND created_at > ?", [org_id, since]
            ).fetchall()}  # fmt: skip
        months = {month_of_day(d) for d in months | days}
        _days(cur, org_id, days, offset_hours)
        _months(cur, org_id, months, offset_hours)
        cur.execute("DELETE FROM stats_state WHERE org_id = ?", [org_id])
        cur.execute("INSERT INTO stats_state (org_id, watermark, offset_hours, seen) VALUES (?, ?, ?, ?)",
                    [org_id, now, offset_hours, _seen(cur, org_id, now - OVERLAP_S)])  # fmt: skip


def _days(cur: Cursor, org_id: str, days: set[int], offset_hours: float) -> None:
    day = day_expr(cur.db, "created_at", offset_hours)
    for t0, t1 in _bounds(days, offset_hours):
        d0, d1 = round((t0 + offset_hours * 3600) / DAY_S), round((t1 + offset_hours * 3600) / DAY_S)
        cur.execute("DELETE FROM stats_day WHERE org_id = ? AND day >= ? AND day < ?", [org_id, d0, d1])
        cur.execute(
            "INSERT INTO stats_day (org_id, day, hazard_id, detector_class, source, status, model_id, model_version, "
            f"n) SELECT f.org_id, {day.replace('created_at', 'f.created_at')}, f.hazard_id, "
            "COALESCE(f.detector_class, ''), f.source, f.status, p.model_id, p.model_version, COUNT(*) "
            "FROM findings f JOIN photos p ON p.id = f.photo_id "
            "WHERE f.org_id = ? AND f.created_at >= ? AND f.created_at < ? "
            "GROUP BY f.org_id, 2, f.hazard_id, f.detector_class, f.source, f.status, p.model_id, p.model_version",
            [org_id, t0, t1],
        )


def _months(cur: Cursor, org_id: str, months: set[int], offset_hours: float) -> None:
    shift = offset_hours * 3600.0
    insert = cur.db.sql("INSERT INTO stats_month (org_id, month, dim, key, hazard_id, n) VALUES (?, ?, ?, ?, ?, ?)")
    for m in sorted(months):
        d0, d1 = month_days(m)
        t0, t1 = d0 * DAY_S - shift, d1 * DAY_S - shift
        cur.execute("DELETE FROM stats_month WHERE org_id = ? AND month = ?", [org_id, m])
        counts: dict[tuple[str, str, str], int] = {}
        for unit, inspector, scene, hazard, n in cur.execute(  # one scan of the month for the three dimensions
            "SELECT i.unit_name, i.inspector_id, i.scene, f.hazard_id, COUNT(*) FROM findings f "
            "JOIN inspections i ON i.id = f.inspection_id WHERE f.org_id = ? AND f.status = 'confirmed' "
            "AND f.created_at >= ? AND f.created_at < ? GROUP BY i.unit_name, i.inspector_id, i.scene, f.hazard_id",
            [org_id, t0, t1],
        ).fetchall():
            for key in (("unit", unit, ""), ("inspector", inspector, ""), ("scene", scene, hazard)):
                counts[key] = counts.get(key, 0) + int(n)
        for scene, n in cur.execute(
            "SELECT scene, COUNT(*) FROM inspections WHERE org_id = ? AND created_at >= ? AND created_at < ? "
            "GROUP BY scene",
            [org_id, t0, t1],
        ).fetchall():
            counts[("inspections", scene, "")] = int(n)
        if counts:
            cur.raw.executemany(insert, [(org_id, m, d, k, h, n) for (d, k, h), n in sorted(counts.items())])


def day_span(since: float | None, until: float | None, offset_hours: float) -> tuple[int | None, int | None] | None:
    """The range as local day numbers ``[d0, d1)``, or None when a bound is not at a local midnight."""
    shift = offset_hours * 3600.0
    out: list[int | None] = []
    for t in (since, until):
        if t is None:
            out.append(None)
            continue
        d = (t + shift) / DAY_S
        if abs(d - round(d)) > 1e-9:
            return None
        out.append(round(d))
    return out[0], out[1]


def month_extent(db: Database, org_id: str) -> tuple[int, int] | None:
    """The first and last month the organisation's rollup holds (None: no records)."""
    row = db.query("SELECT MIN(month), MAX(month) FROM stats_month WHERE org_id = ?", [org_id])[0]
    return None if row[0] is None else (int(row[0]), int(row[1]))


def split_months(d0: int, d1: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Whole months inside ``[d0, d1)`` (read from the month rollup) and the day ranges left over (read raw)."""
    whole: list[int] = []
    rest: list[tuple[int, int]] = []
    if d1 <= d0:
        return whole, rest
    for m in range(month_of_day(d0), month_of_day(d1 - 1) + 1):
        first, nxt = month_days(m)
        a, b = max(first, d0), min(nxt, d1)
        if (a, b) == (first, nxt):
            whole.append(m)
        elif a < b:
            rest.append((a, b))
    return whole, rest
