"""Pre-aggregated statistics, kept up to date by the writes themselves: every statistics request stays fast.

Four rollup tables, every row a count ``n`` under a primary key:

- ``stats_day``: findings per local day, hazard, class, source, status and model version (the days at a range's
  edges, with no scene filter);
- ``stats_month``: per local month and inspection scene, confirmed findings by unit, inspector, hazard and local
  day (``dim`` unit / inspector / hazard / day), and inspections (``dim`` inspections);
- ``stats_field``: findings per local month, inspection scene, hazard, class, source, status and model version
  (the model's field tables; model versions compared on the same kind of photos);
- ``stats_ledger``: ledger items per local month of creation, scene, status, closed in time, rectification
  submitted, AI re-check failed and sent back (the rectification figures but overdue and the median).

Records change in three ways only: an inspection is made, a finding is made, a finding's status is decided
(hazard, class, dates, photo and inspection of a finding never change); a ledger item is made, moved, rectified
or withdrawn. :class:`RollupWriter` listens to both the records and the ledger: in the same transaction as the
write it adds +1 / -1 to the rows the change touches, in one sorted order (two transactions never lock the same
rows in opposite orders, so PostgreSQL never deadlocks on them), and deletes a row whose count reaches 0 (the
tables equal a rebuild's). :func:`ensure` builds the tables from the records once, at start-up, when they are
missing or were built for another local offset; a rebuild locks the record tables, so no write falls between the
build and the first delta. Writes that bypass :class:`~inference_service.records.Records` and
:class:`~inference_service.ledger.Ledger` (a bulk load, a test's own SQL) are followed by :func:`rebuild`.

Days and months are local: ``offset_hours`` east of UTC, one offset per database (``stats_config``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from inference_service.ledger.store import STATE_COLUMNS
from inference_service.storage import Cursor, Database, Migration, migrate
from inference_service.storage.migrations import LOCK_KEY

logger = logging.getLogger(__name__)

DAY_S = 86400.0

DAY_KEY = ("org_id", "day", "hazard_id", "detector_class", "source", "status", "model_id", "model_version")
MONTH_KEY = ("org_id", "dim", "month", "scene", "key", "hazard_id")
FIELD_KEY = ("org_id", "month", "scene", "hazard_id", "detector_class", "source", "status", "model_id",
             "model_version")  # fmt: skip
LEDGER_KEY = ("org_id", "month", "scene", "status", "in_time", "submitted", "failed", "sent_back")
TABLE_KEYS = {"stats_day": DAY_KEY, "stats_month": MONTH_KEY, "stats_field": FIELD_KEY, "stats_ledger": LEDGER_KEY}

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
    Migration(
        2,
        "rollups kept by the writes (keyed rows, upserted in the write's transaction); scene in the month rollup; "
        "per-month field rollup by scene; one local offset per database; scene index for the ledger figures",
        (
            "DROP TABLE stats_day",
            "DROP TABLE stats_month",
            "DROP TABLE stats_state",
            f"""CREATE TABLE stats_day (
                org_id TEXT NOT NULL, day INTEGER NOT NULL, hazard_id TEXT NOT NULL, detector_class TEXT NOT NULL,
                source TEXT NOT NULL, status TEXT NOT NULL, model_id TEXT NOT NULL, model_version TEXT NOT NULL,
                n INTEGER NOT NULL, PRIMARY KEY ({", ".join(DAY_KEY)}))""",
            f"""CREATE TABLE stats_month (
                org_id TEXT NOT NULL, dim TEXT NOT NULL, month INTEGER NOT NULL, scene TEXT NOT NULL,
                key TEXT NOT NULL, hazard_id TEXT NOT NULL, n INTEGER NOT NULL,
                PRIMARY KEY ({", ".join(MONTH_KEY)}))""",
            f"""CREATE TABLE stats_field (
                org_id TEXT NOT NULL, month INTEGER NOT NULL, scene TEXT NOT NULL, hazard_id TEXT NOT NULL,
                detector_class TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, model_id TEXT NOT NULL,
                model_version TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY ({", ".join(FIELD_KEY)}))""",
            """CREATE TABLE stats_config (
                id INTEGER PRIMARY KEY, offset_hours DOUBLE PRECISION NOT NULL, built_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX inspections_scene ON inspections (org_id, scene, id)",
            "CREATE INDEX ledger_inspection ON ledger_items (inspection_id)",
        ),
    ),
    Migration(
        3,
        "drop the ledger indexes the statistics no longer read (the ledger's own migration 3 covers its figures)",
        ("DROP INDEX ledger_created", "DROP INDEX ledger_close_time", "DROP INDEX ledger_history_sent_back"),
    ),
    Migration(
        4,
        "ledger items per local month of creation, scene, status, closed in time, submitted, re-check failed and "
        "sent back (the rectification figures); the rollups are built again",
        (
            f"""CREATE TABLE stats_ledger (
                org_id TEXT NOT NULL, month INTEGER NOT NULL, scene TEXT NOT NULL, status TEXT NOT NULL,
                in_time INTEGER NOT NULL, submitted INTEGER NOT NULL, failed INTEGER NOT NULL,
                sent_back INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY ({", ".join(LEDGER_KEY)}))""",
            "DELETE FROM stats_config",  # built before stats_ledger existed: the next start-up builds them all
        ),
    ),
)


def ensure_schema(db: Database) -> None:
    """The rollup tables (once per database handle; needs the records and ledger schemas first)."""
    if not getattr(db, "_stats_schema", False):
        migrate(db, "stats", MIGRATIONS)
        db._stats_schema = True  # type: ignore[attr-defined]


# ---- local days and months -------------------------------------------------------------------------------------


def day_expr(db: Database, column: str, offset_hours: float) -> str:
    shift = offset_hours * 3600.0
    if db.dialect == "sqlite":
        return f"CAST(({column} + {shift!r}) / {DAY_S!r} AS INTEGER)"  # timestamps are positive
    return f"CAST(FLOOR(({column} + {shift!r}) / {DAY_S!r}) AS INTEGER)"


def month_expr(db: Database, column: str, offset_hours: float) -> str:
    """SQL for :func:`month_of_day` of the local day of ``column``."""
    shift = offset_hours * 3600.0
    if db.dialect == "sqlite":
        t = f"{column} + {shift!r}"
        return (f"(CAST(strftime('%Y', {t}, 'unixepoch') AS INTEGER) * 12 "
                f"+ CAST(strftime('%m', {t}, 'unixepoch') AS INTEGER) - 1)")  # fmt: skip
    t = f"(to_timestamp(FLOOR({column} + {shift!r})) AT TIME ZONE 'UTC')"
    return f"(CAST(EXTRACT(YEAR FROM {t}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {t}) AS INTEGER) - 1)"


def day_of(t: float, offset_hours: float) -> int:
    return int((t + offset_hours * 3600.0) // DAY_S)


def month_of_day(day: int) -> int:
    d = date.fromordinal(date(1970, 1, 1).toordinal() + day)
    return d.year * 12 + d.month - 1


def month_days(month: int) -> tuple[int, int]:
    """``[first, next month's first)`` as local day numbers."""
    y, m = divmod(month, 12)
    first = date(y, m + 1, 1).toordinal() - date(1970, 1, 1).toordinal()
    ny, nm = divmod(month + 1, 12)
    return first, date(ny, nm + 1, 1).toordinal() - date(1970, 1, 1).toordinal()


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


def split_months(d0: int | None, d1: int | None) -> tuple[tuple[int | None, int | None] | None, list[tuple[int, int]]]:
    """Whole months inside ``[d0, d1)`` as a month range ``[m0, m1)`` (None: no whole month; an open end stays
    None), and the day ranges left over (at most two, read from the records)."""
    if d0 is not None and d1 is not None and d1 <= d0:
        return None, []
    rest: set[tuple[int, int]] = set()
    m0: int | None = None
    if d0 is not None:
        m = month_of_day(d0)
        first, nxt = month_days(m)
        m0 = m if d0 == first else m + 1
        if d0 != first:
            rest.add((d0, nxt if d1 is None else min(nxt, d1)))
    m1: int | None = None
    if d1 is not None:
        m1 = month_of_day(d1)  # months before d1's are whole
        first, _ = month_days(m1)
        a = first if d0 is None else max(first, d0)
        if a < d1:
            rest.add((a, d1))
    whole = None if m0 is not None and m1 is not None and m1 <= m0 else (m0, m1)
    return whole, sorted(rest)


# ---- what one change adds -----------------------------------------------------------------------------------------

Key = tuple[str, tuple[Any, ...]]  # (table, primary key values)


def finding_keys(f: dict[str, Any], status: str, offset_hours: float) -> list[Key]:
    """The rollup rows a finding counts in while it has ``status``.

    ``f``: the finding's ``org_id, created_at, hazard_id, detector_class, source, model_id, model_version`` and its
    inspection's ``scene, unit_name, inspector_id``."""
    day = day_of(float(f["created_at"]), offset_hours)
    month = month_of_day(day)
    org, hid, cls, scene = f["org_id"], f["hazard_id"], f["detector_class"] or "", f["scene"]
    model = (f["source"], status, f["model_id"], f["model_version"])
    keys: list[Key] = [
        ("stats_day", (org, day, hid, cls, *model)),
        ("stats_field", (org, month, scene, hid, cls, *model)),
    ]
    if status == "confirmed":
        keys += [
            ("stats_month", (org, "unit", month, scene, f["unit_name"], "")),
            ("stats_month", (org, "inspector", month, scene, f["inspector_id"], "")),
            ("stats_month", (org, "hazard", month, scene, "", hid)),
            ("stats_month", (org, "day", month, scene, str(day), "")),
        ]
    return keys


def ledger_key(item: dict[str, Any], offset_hours: float) -> Key:
    """The rollup row a ledger item counts in (``item``: its ``STATE_COLUMNS``)."""
    month = month_of_day(day_of(float(item["created_at"]), offset_hours))
    closed = item["status"] == "closed"
    in_time = int(closed and item["closed_at"] is not None and float(item["closed_at"]) <= float(item["deadline"]))
    return ("stats_ledger", (item["org_id"], month, item["scene"] or "", item["status"], in_time,
                             int(item["rectification_photo_id"] is not None), int(item["ai_recheck"] == "failed"),
                             int(item["sent_back"])))  # fmt: skip


def inspection_key(org_id: str, created_at: float, scene: str, offset_hours: float) -> Key:
    month = month_of_day(day_of(created_at, offset_hours))
    return ("stats_month", (org_id, "inspections", month, scene, "", ""))


def finding_deltas(changes: Iterable[tuple[dict[str, Any], str | None]], offset_hours: float) -> Counter[Key]:
    """+1 for each finding's rows under its status now, -1 under its status before (None: a new finding)."""
    out: Counter[Key] = Counter()
    for f, before in changes:
        if before == f["status"]:
            continue
        for k in finding_keys(f, f["status"], offset_hours):
            out[k] += 1
        if before is not None:
            for k in finding_keys(f, before, offset_hours):
                out[k] -= 1
    return out


def apply(cur: Cursor, deltas: Counter[Key]) -> None:
    """Add the deltas in one sorted order; rows whose count reaches 0 are deleted."""
    for (table, key), n in sorted(deltas.items()):
        if n == 0:
            continue
        cols = TABLE_KEYS[table]
        where = " AND ".join(f"{c} = ?" for c in cols)
        cur.execute(
            f"INSERT INTO {table} ({', '.join(cols)}, n) VALUES ({', '.join('?' * (len(cols) + 1))}) "
            f"ON CONFLICT ({', '.join(cols)}) DO UPDATE SET n = {table}.n + excluded.n",
            [*key, n],
        )
        if n < 0:
            cur.execute(f"DELETE FROM {table} WHERE {where} AND n = 0", list(key))


_FINDING_SQL = (
    "SELECT f.id, f.org_id, f.created_at, f.hazard_id, f.detector_class, f.source, f.status, p.model_id, "
    "p.model_version, i.scene, i.unit_name, i.inspector_id FROM findings f JOIN photos p ON p.id = f.photo_id "
    "JOIN inspections i ON i.id = f.inspection_id WHERE f.id IN ({marks})"
)


def configured_offset(db: Database | Cursor) -> float | None:
    """The local offset the rollups were built for; None while they have not been built."""
    sql = "SELECT offset_hours FROM stats_config WHERE id = 1"
    rows = db.query(sql) if isinstance(db, Database) else db.execute(sql).fetchall()
    return float(rows[0][0]) if rows else None


class RollupWriter:
    """The records' listener: the rollups follow each write in its own transaction (a no-op until built)."""

    def inspection_added(self, cur: Cursor, inspection_id: str) -> None:
        offset = configured_offset(cur)  # read after the write: a rebuild holding the lock has finished by now
        if offset is None:
            return
        row = cur.execute("SELECT org_id, created_at, scene FROM inspections WHERE id = ?", [inspection_id]).fetchone()
        if row is not None:
            apply(cur, Counter({inspection_key(row[0], float(row[1]), row[2], offset): 1}))

    def findings_changed(self, cur: Cursor, changes: Sequence[tuple[str, str | None]]) -> None:
        """``changes``: (finding id, its status before; None for a new finding), after the write."""
        if not changes:
            return
        offset = configured_offset(cur)
        if offset is None:
            return
        before = dict(changes)
        rows = cur.execute(_FINDING_SQL.format(marks=", ".join("?" * len(before))), list(before)).fetch_dicts()
        apply(cur, finding_deltas(((r, before[r["id"]]) for r in rows), offset))

    def ledger_changed(self, cur: Cursor, item_id: str, before: dict[str, Any] | None) -> None:
        """``before``: the item's state before the write (None: a new item); after it is read here."""
        offset = configured_offset(cur)
        if offset is None:
            return
        after = cur.execute(f"SELECT {STATE_COLUMNS} FROM ledger_items WHERE id = ?", [item_id]).fetch_dicts()
        deltas: Counter[Key] = Counter()
        if after:
            deltas[ledger_key(after[0], offset)] += 1
        if before is not None:
            deltas[ledger_key(before, offset)] -= 1
        apply(cur, deltas)


# ---- building from the records ----------------------------------------------------------------------------------


def rebuild(db: Database, offset_hours: float | None = None, *, unless_built: bool = False) -> bool:
    """Every organisation's rollups from the records, in one transaction that keeps writers out meanwhile.

    ``offset_hours`` None: the offset they were built for (8, China, if never). ``unless_built``: nothing when
    they are built for this offset once the lock is held (another process starting at the same time built them).
    True when built now."""
    ensure_schema(db)
    if offset_hours is None:
        offset_hours = configured_offset(db)
        offset_hours = 8.0 if offset_hours is None else offset_hours
    t0 = time.perf_counter()
    day = day_expr(db, "f.created_at", offset_hours)
    month = month_expr(db, "f.created_at", offset_hours)
    with db.tx() as cur:
        if db.dialect == "postgresql":
            cur.execute("SELECT pg_advisory_xact_lock(?)", [LOCK_KEY])
            # writers wait until the build commits (and the build waits for writes in flight), so each write is
            # either in the build or applies its delta after it
            cur.execute("LOCK TABLE inspections, photos, findings, ledger_items IN SHARE MODE")
        if unless_built and configured_offset(cur) == offset_hours:
            return False
        for table in ("stats_day", "stats_month", "stats_field", "stats_ledger", "stats_config"):
            cur.execute(f"DELETE FROM {table}")
        cur.execute(
            f"INSERT INTO stats_day ({', '.join(DAY_KEY)}, n) SELECT f.org_id, {day}, f.hazard_id, "
            "COALESCE(f.detector_class, ''), f.source, f.status, p.model_id, p.model_version, COUNT(*) "
            "FROM findings f JOIN photos p ON p.id = f.photo_id "
            "GROUP BY f.org_id, 2, f.hazard_id, 4, f.source, f.status, p.model_id, p.model_version"
        )
        cur.execute(
            f"INSERT INTO stats_field ({', '.join(FIELD_KEY)}, n) SELECT f.org_id, {month}, i.scene, f.hazard_id, "
            "COALESCE(f.detector_class, ''), f.source, f.status, p.model_id, p.model_version, COUNT(*) "
            "FROM findings f JOIN photos p ON p.id = f.photo_id JOIN inspections i ON i.id = f.inspection_id "
            "GROUP BY f.org_id, 2, i.scene, f.hazard_id, 5, f.source, f.status, p.model_id, p.model_version"
        )
        day_text = f"CAST({day} AS TEXT)"
        for dim, key, hazard in (("unit", "i.unit_name", "''"), ("inspector", "i.inspector_id", "''"),
                                 ("hazard", "''", "f.hazard_id"), ("day", day_text, "''")):  # fmt: skip
            cur.execute(
                f"INSERT INTO stats_month ({', '.join(MONTH_KEY)}, n) SELECT f.org_id, '{dim}', {month}, i.scene, "
                f"{key}, {hazard}, COUNT(*) FROM findings f JOIN inspections i ON i.id = f.inspection_id "
                f"WHERE f.status = 'confirmed' GROUP BY f.org_id, 3, i.scene, 5, 6"
            )
        cur.execute(
            f"INSERT INTO stats_month ({', '.join(MONTH_KEY)}, n) SELECT i.org_id, 'inspections', "
            f"{month.replace('f.created_at', 'i.created_at')}, i.scene, '', '', COUNT(*) FROM inspections i "
            "GROUP BY i.org_id, 3, i.scene"
        )
        cur.execute(
            f"INSERT INTO stats_ledger ({', '.join(LEDGER_KEY)}, n) SELECT l.org_id, "
            f"{month.replace('f.created_at', 'l.created_at')}, COALESCE(l.scene, ''), l.status, "
            "CASE WHEN l.status = 'closed' AND l.closed_at <= l.deadline THEN 1 ELSE 0 END, "
            "CASE WHEN l.rectification_photo_id IS NOT NULL THEN 1 ELSE 0 END, "
            "CASE WHEN l.ai_recheck = 'failed' THEN 1 ELSE 0 END, l.sent_back, COUNT(*) FROM ledger_items l "
            "GROUP BY l.org_id, 2, 3, l.status, 5, 6, 7, l.sent_back"
        )
        cur.execute("INSERT INTO stats_config (id, offset_hours, built_at) VALUES (1, ?, ?)",
                    [offset_hours, time.time()])  # fmt: skip
        for table in TABLE_KEYS:  # the planner's statistics of tables just refilled: the first requests plan well
            cur.execute(f"ANALYZE {table}")
    if db.dialect == "sqlite":  # the build's pages from the write-ahead log into the database file
        db.query("PRAGMA wal_checkpoint(PASSIVE)")
    logger.info("statistics rollups built from the records in %.1f s", time.perf_counter() - t0)
    return True


def ensure(db: Database, offset_hours: float) -> bool:
    """At start-up: the schema, and the rollups built unless they already are for this offset (True: built now)."""
    ensure_schema(db)
    if configured_offset(db) == offset_hours:
        return False
    return rebuild(db, offset_hours, unless_built=True)


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup row, sorted (the rebuild-equals-incremental check)."""
    out = {}
    for table, key in TABLE_KEYS.items():
        rows = db.query(f"SELECT {', '.join(key)}, n FROM {table}")
        out[table] = sorted(tuple(r) for r in rows)
    return out
