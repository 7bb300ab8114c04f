"""Statistics of one organisation's records: one function per table, GROUP BY on the storage layer.

Hazards counted are confirmed findings (the inspector's word, whether the model or the inspector found them),
dated by when the finding was made. Weeks and months are bucketed from per-day counts (local days,
``offset_hours`` east of UTC), so no query returns one row per finding. A "unit type" is the inspection's
scene (建筑工地, 工贸企业 …): the kind of place inspected. The model's field tables are in
:mod:`inference_service.app.stats_model`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from inference_service.app.stats_rollup import configured_offset, day_expr, day_span, ensure_schema, split_months
from inference_service.ledger import SEVERITY_ZH, STATUS_ZH
from inference_service.storage import Database
from inference_service.taxonomy import Taxonomy

logger = logging.getLogger(__name__)
Rows = list[dict[str, Any]]
DAY_S = 86400.0


@dataclass
class StatsQuery:
    db: Database
    org_id: str
    taxonomy: Taxonomy
    names: dict[str, str]  # user id -> display name
    since: float | None = None
    until: float | None = None
    offset_hours: float = 8.0
    now: float = field(default_factory=time.time)
    scene: str | None = None  # only inspections of this scene (unit type)
    use_rollup: bool = True  # False: every figure from the records themselves (the rollups' reference)

    def range(self, column: str, since: float | None = None, until: float | None = None,
              raw: bool = True) -> tuple[str, list[Any]]:  # fmt: skip
        since, until = (self.since, self.until) if raw and since is None and until is None else (since, until)
        sql, params = "", []
        if since is not None:
            sql += f" AND {column} >= ?"
            params.append(since)
        if until is not None:
            sql += f" AND {column} < ?"
            params.append(until)
        return sql, params

    @cached_property
    def days(self) -> tuple[int | None, int | None] | None:
        """The range as local days when the rollups can answer it; else None (every figure from the records)."""
        if not self.use_rollup:
            return None
        span = day_span(self.since, self.until, self.offset_hours)
        if span is None:
            return None
        ensure_schema(self.db)
        built = configured_offset(self.db)
        if built != self.offset_hours:
            logger.warning("statistics rollups are built for offset %s, not %s: reading the records (slow); "
                           "restart the service to rebuild them", built, self.offset_hours)  # fmt: skip
            return None
        return span

    def daily(self, cols: str, where: str, d0: int, d1: int) -> list[tuple[Any, ...]]:
        """``(*cols, n)`` of the days ``[d0, d1)`` from the day rollup (every scene)."""
        return self.db.query(
            f"SELECT {cols}, SUM(n) FROM stats_day WHERE org_id = ?{where} AND day >= ? AND day < ? GROUP BY {cols}",
            [self.org_id, d0, d1],
        )

    def raw_confirmed(
        self,
        key: str,
        join: bool,
        since: float | None,
        until: float | None,
        raw: bool = True,
        where: str = "",
        extra: list[Any] | None = None,
    ) -> list[tuple[Any, int]]:
        rng, params = self.range("f.created_at", since, until, raw)
        scene = ""
        if self.scene is not None:
            join, scene = True, " AND i.scene = ?"
            params.append(self.scene)
        src = "findings f JOIN inspections i ON i.id = f.inspection_id" if join else "findings f"
        rows = self.db.query(
            f"SELECT {key}, COUNT(*) FROM {src} WHERE f.org_id = ? AND f.status = 'confirmed'{where}{rng}{scene} "
            f"GROUP BY {key}",
            [self.org_id, *(extra or []), *params],
        )
        return [(r[0], int(r[1])) for r in rows]

    def monthly(
        self,
        table: str,
        cols: str,
        where: str,
        params: list[Any],
        raw: Callable[[float, float], list[tuple[Any, ...]]],
        daily: Callable[[int, int], list[tuple[Any, ...]]] | None = None,
    ) -> list[tuple[Any, ...]]:
        """``(*cols, n)``: whole months from a month rollup (of the query's scene, if any); the days left over
        from the day rollup (``daily(d0, d1)``, no scene) or else from the records (``raw(t0, t1)`` with the same
        columns, applying the scene itself)."""
        assert self.days is not None
        whole, rest = split_months(*self.days)
        counts: Counter[tuple[Any, ...]] = Counter()
        if whole is not None:
            sql, p = (f" AND {where}" if where else ""), list(params)
            for bound, op in zip(whole, (">=", "<"), strict=True):
                if bound is not None:
                    sql, p = f"{sql} AND month {op} ?", [*p, bound]
            if self.scene is not None:
                sql, p = f"{sql} AND scene = ?", [*p, self.scene]
            for *k, n in self.db.query(
                f"SELECT {cols}, SUM(n) FROM {table} WHERE org_id = ?{sql} GROUP BY {cols}", [self.org_id, *p]
            ):
                counts[tuple(k)] += int(n)
        shift = self.offset_hours * 3600.0
        days = daily if self.scene is None else None  # the day rollup has no scene
        for a, b in rest:
            for *k, n in days(a, b) if days is not None else raw(a * DAY_S - shift, b * DAY_S - shift):
                counts[tuple(k)] += int(n)
        return [(*k, n) for k, n in counts.items() if n]

    def by_dim(
        self,
        dim: str,
        col: str,
        key: str,
        hazards: list[str] | None = None,
        daily: Callable[[int, int], list[tuple[Any, ...]]] | None = None,
    ) -> list[tuple[Any, int]]:
        """Confirmed findings by the month rollup's ``col`` of ``dim`` (``key``: the same as a column of the
        records ``f``/``i``), most first."""
        where, extra = "", list[Any]()
        if hazards is not None:
            where, extra = f" AND f.hazard_id IN ({', '.join('?' * len(hazards))})", list(hazards)
        if self.days is None:
            return _ordered(self.raw_confirmed(key, True, None, None, where=where, extra=extra))
        hz = "" if hazards is None else f" AND hazard_id IN ({', '.join('?' * len(hazards))})"
        rows = self.monthly(
            "stats_month", col, f"dim = ?{hz}", [dim, *extra],
            lambda t0, t1: self.raw_confirmed(key, True, t0, t1, False, where, extra), daily,
        )  # fmt: skip
        return _ordered(rows)

    def hazard(self, hid: str) -> dict[str, str]:
        try:
            h = self.taxonomy.hazard(hid)
            return {"name_zh": h.name_zh, "name_en": h.name_en, "severity": h.severity, "domain": h.domain}
        except KeyError:
            return {"name_zh": hid, "name_en": hid, "severity": "medium", "domain": "?"}

    @cached_property
    def hazard_counts(self) -> list[tuple[str, int]]:
        if self.days is None:
            return _ordered(self.raw_confirmed("f.hazard_id", False, None, None))
        return self.by_dim("hazard", "hazard_id", "f.hazard_id",
                           daily=lambda a, b: self.daily("hazard_id", " AND status = 'confirmed'", a, b))  # fmt: skip

    @cached_property
    def day_counts(self) -> list[tuple[int, int]]:
        """``(local day number since 1970-01-01, confirmed findings)``."""
        day = day_expr(self.db, "f.created_at", self.offset_hours)
        if self.days is None:
            return [(int(d), n) for d, n in self.raw_confirmed(day, False, None, None)]
        rows = self.monthly("stats_month", "CAST(key AS INTEGER)", "dim = 'day'", [],
                            lambda t0, t1: self.raw_confirmed(day, True, t0, t1, False),
                            lambda a, b: self.daily("day", " AND status = 'confirmed'", a, b))  # fmt: skip
        return [(int(d), int(n)) for d, n in rows]


def _ordered(pairs: Any) -> list[tuple[Any, int]]:
    return sorted(((k, int(n)) for k, n in pairs), key=lambda t: (-t[1], str(t[0])))


def by_hazard(q: StatsQuery) -> Rows:
    out = []
    for hid, n in q.hazard_counts:
        h = q.hazard(hid)
        out.append({"hazard_id": hid, "name_zh": h["name_zh"], "name_en": h["name_en"], "severity": h["severity"],
                    "domain": h["domain"], "count": n})  # fmt: skip
    return out


def by_severity(q: StatsQuery) -> Rows:
    counts: Counter[str] = Counter()
    for hid, n in q.hazard_counts:
        counts[q.hazard(hid)["severity"]] += n
    return [{"severity": s, "name_zh": SEVERITY_ZH[s], "count": counts.get(s, 0)} for s in SEVERITY_ZH]


def by_domain(q: StatsQuery) -> Rows:
    counts: Counter[str] = Counter()
    for hid, n in q.hazard_counts:
        counts[q.hazard(hid)["domain"]] += n
    return [{"domain": d, "count": n} for d, n in sorted(counts.items(), key=lambda t: (-t[1], t[0]))]


def by_unit(q: StatsQuery) -> Rows:
    return [{"unit": u, "count": n} for u, n in q.by_dim("unit", "key", "i.unit_name")]


def by_inspector(q: StatsQuery) -> Rows:
    return [{"inspector_id": u, "display_name": q.names.get(u, "?"), "count": n}
            for u, n in q.by_dim("inspector", "key", "i.inspector_id")]  # fmt: skip


def _scene_names(q: StatsQuery) -> dict[str, tuple[str, str]]:
    """The app's inspection scenes (unit types), then the taxonomy's."""
    from inference_service.app.api_auth import SCENES

    return {**{s.id: (s.zh, s.en) for s in q.taxonomy.scenes}, **{s[0]: (s[1], s[2]) for s in SCENES}}


def by_scene(q: StatsQuery) -> Rows:
    names = _scene_names(q)
    return [{"scene": s, "name_zh": names.get(s, (s, s))[0], "name_en": names.get(s, (s, s))[1], "count": n}
            for s, n in q.by_dim("hazard", "scene", "i.scene")]  # fmt: skip


def _buckets(q: StatsQuery, label: Callable[[date], str], key: str) -> Rows:
    counts: Counter[str] = Counter()
    for day, n in q.day_counts:
        counts[label(date(1970, 1, 1) + timedelta(days=day))] += n
    return [{key: k, "count": counts[k]} for k in sorted(counts)]


def by_week(q: StatsQuery) -> Rows:
    def week(d: date) -> str:
        year, number, _ = d.isocalendar()
        return f"{year}-W{number:02d}"

    return _buckets(q, week, "week")


def by_month(q: StatsQuery) -> Rows:
    return _buckets(q, lambda d: f"{d.year}-{d.month:02d}", "month")


_LEDGER_FLAGS = (  # the columns of the ledger rollup, from the items themselves
    "l.status, CASE WHEN l.status = 'closed' AND l.closed_at <= l.deadline THEN 1 ELSE 0 END, "
    "CASE WHEN l.rectification_photo_id IS NOT NULL THEN 1 ELSE 0 END, "
    "CASE WHEN l.ai_recheck = 'failed' THEN 1 ELSE 0 END, l.sent_back"
)
_NOT_CLOSED = tuple(s for s in STATUS_ZH if s != "closed")


def rectification(q: StatsQuery) -> dict[str, Any]:
    """Ledger items made in the range: open, overdue, closed (in time), median days to close, reopen rate.

    Reopened: an item whose rectification the AI re-check failed, or that a reviewer sent back (待复查 →
    整改中); the rate is over the items whose rectification was submitted. Counts come from the ledger rollup
    (whole months); overdue (it depends on now) and the median are read from the items by index."""
    rng, params = q.range("l.created_at")
    scene, sp = ("", []) if q.scene is None else (" AND l.scene = ?", [q.scene])  # the inspection's scene
    where = f"l.org_id = ?{rng}{scene}"
    args = [q.org_id, *params, *sp]

    def raw(since: float | None, until: float | None, whole: bool = False) -> list[tuple[Any, ...]]:
        r, p = q.range("l.created_at", since, until, whole)
        return q.db.query(
            f"SELECT {_LEDGER_FLAGS}, COUNT(*) FROM ledger_items l WHERE l.org_id = ?{r}{scene} GROUP BY 1, 2, 3, 4, 5",
            [q.org_id, *p, *sp],
        )

    cols = "status, in_time, submitted, failed, sent_back"
    rows = raw(None, None, True) if q.days is None else q.monthly("stats_ledger", cols, "", [], raw)
    total = closed = in_time = submitted = failed = sent_back = 0
    for status, it, sub, fail, back, n in rows:
        total += int(n)
        closed += int(n) if status == "closed" else 0
        in_time += int(it) * int(n)
        submitted += int(sub) * int(n)
        failed += int(fail) * int(n)
        sent_back += int(n) if int(back) and not int(fail) else 0
    overdue = int(q.db.query(
        f"SELECT COUNT(*) FROM ledger_items l WHERE {where} AND l.status IN ({', '.join('?' * len(_NOT_CLOSED))}) "
        "AND l.deadline < ?", [*args, *_NOT_CLOSED, q.now],
    )[0][0])  # fmt: skip
    median = None
    if closed:
        mid = q.db.query(
            f"SELECT l.close_s FROM ledger_items l WHERE {where} AND l.status = 'closed' "
            "ORDER BY l.close_s LIMIT ? OFFSET ?",
            [*args, 2 - closed % 2, (closed - 1) // 2],
        )
        median = round(sum(float(r[0]) for r in mid) / len(mid) / DAY_S, 2)
    reopened = failed + sent_back
    return {"total": total, "open": total - closed, "overdue": overdue, "closed": closed, "closed_in_time": in_time,
            "rate": round(closed / total, 4) if total else None, "median_days_to_close": median,
            "submitted": submitted, "ai_recheck_failed": failed, "sent_back": sent_back, "reopened": reopened,
            "reopen_rate": round(reopened / submitted, 4) if submitted else None}  # fmt: skip


def _inspections_by_scene(q: StatsQuery) -> dict[str, int]:
    scene, sp = ("", []) if q.scene is None else (" AND scene = ?", [q.scene])

    def raw(since: float | None, until: float | None, whole: bool = False) -> list[tuple[Any, ...]]:
        rng, ip = q.range("created_at", since, until, whole)
        return q.db.query(
            f"SELECT scene, COUNT(*) FROM inspections WHERE org_id = ?{rng}{scene} GROUP BY scene", [q.org_id, *ip, *sp]
        )

    if q.days is None:
        return {k: int(n) for k, n in raw(None, None, True)}
    rows = q.monthly("stats_month", "scene", "dim = 'inspections'", [], raw)
    return {k: int(n) for k, n in rows}


def critical_per_1000(q: StatsQuery) -> Rows:
    """重大隐患 per 1,000 inspections, per unit type (the inspection's scene)."""
    names = _scene_names(q)
    inspections = _inspections_by_scene(q)
    critical = [h.id for h in q.taxonomy.hazards if h.severity == "critical"]
    found = dict(q.by_dim("hazard", "scene", "i.scene", critical)) if critical else {}
    out = []
    for s in sorted(set(inspections) | set(found)):
        n, c = int(inspections.get(s, 0)), found.get(s, 0)
        out.append({"scene": s, "name_zh": names.get(s, (s, s))[0], "inspections": n, "critical": c,
                    "per_1000": round(1000 * c / n, 1) if n else None})  # fmt: skip
    return out


def stats(q: StatsQuery) -> dict[str, Any]:
    """Every table (the JSON of GET /app/api/stats)."""
    from inference_service.app.stats_model import field_by_scene, field_by_version, model_field, teach_next

    out = {name: fn(q) for name, fn in TABLES.items()}
    out["model_field"] = model_field(q)
    out["field_by_version"] = field_by_version(q)
    out["field_by_scene"] = field_by_scene(q)
    out["teach_next"] = teach_next(q, out["field_by_version"])
    return out


def table(q: StatsQuery, name: str) -> Any:
    """One table by name (KeyError for an unknown one)."""
    from inference_service.app.stats_model import TABLES as MODEL_TABLES

    return {**TABLES, **MODEL_TABLES}[name](q)


def table_names() -> list[str]:
    from inference_service.app.stats_model import TABLES as MODEL_TABLES

    return [*TABLES, *MODEL_TABLES]


TABLES: dict[str, Callable[[StatsQuery], Any]] = {
    "by_hazard": by_hazard,
    "by_severity": by_severity,
    "by_domain": by_domain,
    "by_unit": by_unit,
    "by_inspector": by_inspector,
    "by_scene": by_scene,
    "by_week": by_week,
    "by_month": by_month,
    "rectification": rectification,
    "critical_per_1000": critical_per_1000,
}
