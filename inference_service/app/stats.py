"""Statistics of one organisation's records: one function per table, GROUP BY on the storage layer.

Hazards counted are confirmed findings (the inspector's word, whether the model or the inspector found them),
dated by when the finding was made. Weeks and months are bucketed from per-day counts (local days,
``offset_hours`` east of UTC), so no query returns one row per finding. A "unit type" is the inspection's
scene (建筑工地, 工贸企业 …): the kind of place inspected. The model's field tables are in
:mod:`inference_service.app.stats_model`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from inference_service.app.stats_rollup import day_expr, day_span, month_days, month_extent, refresh, split_months
from inference_service.ledger import SEVERITY_ZH
from inference_service.storage import Database
from inference_service.taxonomy import Taxonomy

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
        """The range as local days when the rollups can answer it (refreshed first); else None."""
        if not self.use_rollup or self.scene is not None:
            return None
        span = day_span(self.since, self.until, self.offset_hours)
        if span is not None:
            refresh(self.db, self.org_id, self.offset_hours)
        return span

    def day_filter(self) -> tuple[str, list[Any]]:
        assert self.days is not None
        d0, d1 = self.days
        sql, params = "", list[Any]()
        if d0 is not None:
            sql, params = sql + " AND day >= ?", [*params, d0]
        if d1 is not None:
            sql, params = sql + " AND day < ?", [*params, d1]
        return sql, params

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

    def month_parts(self) -> tuple[list[int], list[tuple[float, float]]]:
        """Whole months the month rollup answers, and the epoch ranges left over (read raw)."""
        assert self.days is not None
        d0, d1 = self.days
        extent = month_extent(self.db, self.org_id)
        if extent is None:
            return [], []
        d0 = month_days(extent[0])[0] if d0 is None else d0
        d1 = month_days(extent[1])[1] if d1 is None else d1
        whole, rest = split_months(d0, d1)
        shift = self.offset_hours * 3600.0
        return whole, [(a * DAY_S - shift, b * DAY_S - shift) for a, b in rest]

    def by_dim(self, dim: str, key: str, hazards: list[str] | None = None) -> list[tuple[Any, int]]:
        """Confirmed findings by unit, inspector or scene (``key``: the column of ``i``), most first."""
        where, extra = "", []
        if hazards is not None:
            where, extra = f" AND f.hazard_id IN ({', '.join('?' * len(hazards))})", list(hazards)
        if self.days is None:
            return _ordered(self.raw_confirmed(key, True, None, None, where=where, extra=extra))
        whole, rest = self.month_parts()
        counts: Counter[Any] = Counter()
        if whole:
            hz = "" if hazards is None else f" AND hazard_id IN ({', '.join('?' * len(hazards))})"
            for k, n in self.db.query(
                f"SELECT key, SUM(n) FROM stats_month WHERE org_id = ? AND dim = ?{hz} "
                f"AND month IN ({', '.join('?' * len(whole))}) GROUP BY key",
                [self.org_id, dim, *(hazards or []), *whole],
            ):
                counts[k] += int(n)
        for t0, t1 in rest:
            for k, n in self.raw_confirmed(key, True, t0, t1, raw=False, where=where, extra=extra):
                counts[k] += n
        return _ordered(counts.items())

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
        sql, params = self.day_filter()
        return _ordered(self.db.query(
            f"SELECT hazard_id, SUM(n) FROM stats_day WHERE org_id = ? AND status = 'confirmed'{sql} "
            "GROUP BY hazard_id",
            [self.org_id, *params]))  # fmt: skip

    @cached_property
    def day_counts(self) -> list[tuple[int, int]]:
        """``(local day number since 1970-01-01, confirmed findings)``."""
        if self.days is None:
            day = day_expr(self.db, "f.created_at", self.offset_hours)
            return [(int(d), n) for d, n in self.raw_confirmed(day, False, None, None)]
        sql, params = self.day_filter()
        return [(int(d), int(n)) for d, n in self.db.query(
            f"SELECT day, SUM(n) FROM stats_day WHERE org_id = ? AND status = 'confirmed'{sql} GROUP BY day",
            [self.org_id, *params])]  # fmt: skip


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
    return [{"unit": u, "count": n} for u, n in q.by_dim("unit", "i.unit_name")]


def by_inspector(q: StatsQuery) -> Rows:
    return [{"inspector_id": u, "display_name": q.names.get(u, "?"), "count": n}
            for u, n in q.by_dim("inspector", "i.inspector_id")]  # fmt: skip


def _scene_names(q: StatsQuery) -> dict[str, tuple[str, str]]:
    """The app's inspection scenes (unit types), then the taxonomy's."""
    from inference_service.app.api_auth import SCENES

    return {**{s.id: (s.zh, s.en) for s in q.taxonomy.scenes}, **{s[0]: (s[1], s[2]) for s in SCENES}}


def by_scene(q: StatsQuery) -> Rows:
    names = _scene_names(q)
    return [{"scene": s, "name_zh": names.get(s, (s, s))[0], "name_en": names.get(s, (s, s))[1], "count": n}
            for s, n in q.by_dim("scene", "i.scene")]  # fmt: skip


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


def rectification(q: StatsQuery) -> dict[str, Any]:
    """Ledger items made in the range: open, overdue, closed (in time), median days to close, reopen rate.

    Reopened: an item whose rectification the AI re-check failed, or that a reviewer sent back (待复查 →
    整改中); the rate is over the items whose rectification was submitted."""
    rng, params = q.range("l.created_at")
    scene, sp = "", []
    if q.scene is not None:
        scene = " AND l.inspection_id IN (SELECT id FROM inspections WHERE org_id = ? AND scene = ?)"
        sp = [q.org_id, q.scene]
    where = f"l.org_id = ?{rng}{scene}"
    args = [q.org_id, *params, *sp]
    row = q.db.query(
        "SELECT COUNT(*), "
        "SUM(CASE WHEN l.status <> 'closed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN l.status <> 'closed' AND l.deadline < ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN l.status = 'closed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN l.status = 'closed' AND l.closed_at <= l.deadline THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN l.rectification_photo_id IS NOT NULL THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN l.ai_recheck = 'failed' THEN 1 ELSE 0 END) "
        f"FROM ledger_items l WHERE {where}",
        [q.now, *args],
    )[0]
    total, open_, overdue, closed, in_time, submitted, failed = (int(v or 0) for v in row)
    sent_back = int(q.db.query(
        "SELECT COUNT(DISTINCT h.item_id) FROM ledger_history h JOIN ledger_items l ON l.id = h.item_id "
        "WHERE h.to_status = 'in_progress' AND h.from_status = 'pending_review' "
        f"AND (l.ai_recheck IS NULL OR l.ai_recheck <> 'failed') AND {where}", args,
    )[0][0])  # fmt: skip
    median = None
    if closed:
        mid = q.db.query(
            f"SELECT l.closed_at - l.created_at FROM ledger_items l WHERE {where} AND l.status = 'closed' "
            "ORDER BY l.closed_at - l.created_at LIMIT ? OFFSET ?",
            [*args, 2 - closed % 2, (closed - 1) // 2],
        )
        median = round(sum(float(r[0]) for r in mid) / len(mid) / DAY_S, 2)
    reopened = failed + sent_back
    return {"total": total, "open": open_, "overdue": overdue, "closed": closed, "closed_in_time": in_time,
            "rate": round(closed / total, 4) if total else None, "median_days_to_close": median,
            "submitted": submitted, "ai_recheck_failed": failed, "sent_back": sent_back, "reopened": reopened,
            "reopen_rate": round(reopened / submitted, 4) if submitted else None}  # fmt: skip


def _inspections_by_scene(q: StatsQuery) -> dict[str, int]:
    scene, sp = ("", []) if q.scene is None else (" AND scene = ?", [q.scene])
    parts: list[tuple[float | None, float | None, bool]] = [(None, None, True)]
    counts: Counter[str] = Counter()
    if q.days is not None:
        whole, rest = q.month_parts()
        parts = [(t0, t1, False) for t0, t1 in rest]
        if whole:
            for k, n in q.db.query(
                f"SELECT key, SUM(n) FROM stats_month WHERE org_id = ? AND dim = 'inspections' "
                f"AND month IN ({', '.join('?' * len(whole))}) GROUP BY key",
                [q.org_id, *whole],
            ):
                counts[k] += int(n)
    for t0, t1, raw in parts:
        rng, ip = q.range("created_at", t0, t1, raw)
        for k, n in q.db.query(
            f"SELECT scene, COUNT(*) FROM inspections WHERE org_id = ?{rng}{scene} GROUP BY scene", [q.org_id, *ip, *sp]
        ):
            counts[k] += int(n)
    return dict(counts)


def critical_per_1000(q: StatsQuery) -> Rows:
    """重大隐患 per 1,000 inspections, per unit type (the inspection's scene)."""
    names = _scene_names(q)
    inspections = _inspections_by_scene(q)
    critical = [h.id for h in q.taxonomy.hazards if h.severity == "critical"]
    found = dict(q.by_dim("scene", "i.scene", critical)) if critical else {}
    out = []
    for s in sorted(set(inspections) | set(found)):
        n, c = int(inspections.get(s, 0)), found.get(s, 0)
        out.append({"scene": s, "name_zh": names.get(s, (s, s))[0], "inspections": n, "critical": c,
                    "per_1000": round(1000 * c / n, 1) if n else None})  # fmt: skip
    return out


def stats(q: StatsQuery) -> dict[str, Any]:
    """Every table (the JSON of GET /app/api/stats)."""
    from inference_service.app.stats_model import field_by_version, model_field, teach_next

    out = {name: fn(q) for name, fn in TABLES.items()}
    out["model_field"] = model_field(q)
    out["field_by_version"] = field_by_version(q)
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
