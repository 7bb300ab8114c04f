"""Statistics of one organisation's records (GROUP BY on the storage layer; the week buckets in Python).

Hazards counted are confirmed findings (the inspector's word, whether the model or the inspector found them).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from inference_service.ledger import SEVERITY_ZH
from inference_service.storage import Database
from inference_service.taxonomy import Taxonomy


def _range(column: str, since: float | None, until: float | None) -> tuple[str, list[Any]]:
    sql, params = "", []
    if since is not None:
        sql += f" AND {column} >= ?"
        params.append(since)
    if until is not None:
        sql += f" AND {column} < ?"
        params.append(until)
    return sql, params


def stats(
    db: Database,
    org_id: str,
    taxonomy: Taxonomy,
    names: dict[str, str],
    since: float | None,
    until: float | None,
    offset_hours: float,
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    rng, rp = _range("f.created_at", since, until)
    confirmed = (
        "FROM findings f JOIN inspections i ON i.id = f.inspection_id "
        f"WHERE f.org_id = ? AND f.status = 'confirmed'{rng}"
    )

    def grouped(key: str) -> list[tuple[Any, int]]:
        rows = db.query(
            f"SELECT {key}, COUNT(*) {confirmed} GROUP BY {key} ORDER BY COUNT(*) DESC, {key}", [org_id, *rp]
        )
        return [(r[0], int(r[1])) for r in rows]

    def hazard(hid: str) -> tuple[str, str, str]:
        try:
            h = taxonomy.hazard(hid)
            return h.name_zh, h.name_en, h.severity
        except KeyError:
            return hid, hid, "medium"

    by_hazard = []
    for hid, n in grouped("f.hazard_id"):
        zh, en, sev = hazard(hid)
        by_hazard.append({"hazard_id": hid, "name_zh": zh, "name_en": en, "severity": sev, "count": n})
    severity_counts: Counter[str] = Counter()
    for item in by_hazard:
        severity_counts[item["severity"]] += item["count"]
    by_severity = [{"severity": s, "name_zh": SEVERITY_ZH[s], "count": severity_counts.get(s, 0)} for s in SEVERITY_ZH]
    by_unit = [{"unit": u, "count": n} for u, n in grouped("i.unit_name")]
    by_inspector = [
        {"inspector_id": u, "display_name": names.get(u, "?"), "count": n} for u, n in grouped("i.inspector_id")
    ]

    tz = timezone(timedelta(hours=offset_hours))
    weeks: Counter[str] = Counter()
    for (ts,) in db.query(f"SELECT f.created_at {confirmed}", [org_id, *rp]):
        year, week, _ = datetime.fromtimestamp(float(ts), tz).isocalendar()
        weeks[f"{year}-W{week:02d}"] += 1
    by_week = [{"week": w, "count": weeks[w]} for w in sorted(weeks)]

    lrng, lp = _range("created_at", since, until)
    row = db.query(
        "SELECT COUNT(*), "
        "SUM(CASE WHEN status <> 'closed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status <> 'closed' AND deadline < ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'closed' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'closed' AND closed_at <= deadline THEN 1 ELSE 0 END) "
        f"FROM ledger_items WHERE org_id = ?{lrng}",
        [now, org_id, *lp],
    )[0]
    total, open_, overdue, closed, in_time = (int(v or 0) for v in row)
    rectification = {"total": total, "open": open_, "overdue": overdue, "closed": closed, "closed_in_time": in_time,
                     "rate": round(closed / total, 4) if total else None}  # fmt: skip

    field: dict[tuple[str, str], dict[str, Any]] = {}
    for cls, hid, source, status, n in db.query(
        "SELECT COALESCE(f.detector_class, ''), f.hazard_id, f.source, f.status, COUNT(*) FROM findings f "
        f"WHERE f.org_id = ?{rng} GROUP BY f.detector_class, f.hazard_id, f.source, f.status",
        [org_id, *rp],
    ):
        entry = field.setdefault((cls, hid), {"detector_class": cls or None, "hazard_id": hid, "confirmed": 0,
                                              "rejected": 0, "pending": 0, "added": 0})  # fmt: skip
        if source == "inspector":
            entry["added"] += int(n)
        else:
            entry[status] += int(n)
    model_field = []
    for entry in sorted(field.values(), key=lambda e: (e["detector_class"] or "~", e["hazard_id"])):
        decided = entry["confirmed"] + entry["rejected"]
        model_field.append({**entry, "name_zh": hazard(entry["hazard_id"])[0],
                            "precision": round(entry["confirmed"] / decided, 4) if decided else None})  # fmt: skip
    return {
        "by_hazard": by_hazard,
        "by_severity": by_severity,
        "by_unit": by_unit,
        "by_inspector": by_inspector,
        "by_week": by_week,
        "rectification": rectification,
        "model_field": model_field,
    }
