"""The model in the field, as the inspectors' decisions judge it.

- ``model_field``: per detector class and hazard over all model versions (precision = confirmed ÷ (confirmed +
  rejected) of the model's findings; ``added`` = hazards inspectors drew themselves).
- ``field_by_version``: per model version and detector class: precision, ``misses`` (hazards inspectors added for
  a class that version detects) and ``added_new`` (added for a class it does not have). A version's classes are
  the ones it was serving with (the records keep them per version, ``model_versions``); a version the records
  lack falls back to the taxonomy's ``trained_by_default_model`` classes.
- ``field_by_scene``: ``field_by_version`` per inspection scene (unit type), so a new release is judged on the
  same kind of photos as the one before (one request; ``scene`` in the query keeps one).
- ``teach_next``: the classes inspectors added that the model that scored the photo does not have, most first:
  what to teach next.

``scene`` in the query compares versions on the same kind of photos.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from inference_service.app.stats import Rows, StatsQuery


def _precision(confirmed: int, rejected: int) -> float | None:
    return round(confirmed / (confirmed + rejected), 4) if confirmed + rejected else None


def _grouped(q: StatsQuery, keys: str, group: str, rolled: str) -> list[tuple[Any, ...]]:
    """``(*keys, source, status, count)``; ``rolled``: the same keys as columns of the rollups."""

    def raw(since: float | None, until: float | None, whole: bool = False) -> list[tuple[Any, ...]]:
        rng, params = q.range("f.created_at", since, until, whole)
        join, scene = "", ""
        if q.scene is not None:
            join, scene = " JOIN inspections i ON i.id = f.inspection_id", " AND i.scene = ?"
            params.append(q.scene)
        return q.db.query(
            f"SELECT {keys}, f.source, f.status, COUNT(*) FROM findings f JOIN photos p ON p.id = f.photo_id{join} "
            f"WHERE f.org_id = ?{rng}{scene} GROUP BY {group}, f.source, f.status",
            [q.org_id, *params],
        )

    if q.days is None:
        return raw(None, None, True)
    cols = f"{rolled}, source, status"  # whole months from the month rollup (by scene), edges from the day rollup
    return q.monthly("stats_field", cols, "", [], raw, lambda a, b: q.daily(cols, "", a, b))


def model_field(q: StatsQuery) -> Rows:
    field: dict[tuple[str, str], dict[str, Any]] = {}
    keys = ("COALESCE(f.detector_class, ''), f.hazard_id", "f.detector_class, f.hazard_id", "detector_class, hazard_id")
    for cls, hid, source, status, n in _grouped(q, *keys):
        entry = field.setdefault((cls, hid), {"detector_class": cls or None, "hazard_id": hid, "confirmed": 0,
                                              "rejected": 0, "pending": 0, "added": 0})  # fmt: skip
        if status == "voided":  # a photo taken by mistake says nothing of the model
            continue
        if source == "inspector":
            entry["added"] += int(n) if status == "confirmed" else 0
        else:
            entry[status] += int(n)
    ordered = sorted(field.values(), key=lambda e: (e["detector_class"] or "~", e["hazard_id"]))
    return [{**e, "name_zh": q.hazard(e["hazard_id"])["name_zh"],
             "precision": _precision(e["confirmed"], e["rejected"])} for e in ordered]  # fmt: skip


def version_classes(q: StatsQuery) -> dict[tuple[str, str], set[str]]:
    return {(m, v): set(json.loads(c)) for m, v, c in
            q.db.query("SELECT model_id, model_version, classes FROM model_versions")}  # fmt: skip


def _by_version(q: StatsQuery, rows: list[tuple[Any, ...]], scene: bool) -> Rows:
    """Field rows per (scene,) model version and class from ``(scene?, model_id, model_version, class, source,
    status, n)``."""
    known = version_classes(q)
    default = {c.name for c in q.taxonomy.detector_classes if c.trained_by_default_model}
    zh = {c.name: c.zh for c in q.taxonomy.detector_classes}
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        where, (mid, ver, cls, source, status, n) = row[: int(scene)], row[int(scene) :]
        if status == "voided":
            continue
        has = cls in known.get((mid, ver), default)
        first = {"scene": where[0]} if scene else {}
        e = out.setdefault((*where, mid, ver, cls), {**first, "model_id": mid, "model_version": ver,
                                                     "detector_class": cls or None, "name_zh": zh.get(cls, cls),
                                                     "model_has_class": has, "confirmed": 0, "rejected": 0,
                                                     "pending": 0, "misses": 0, "added_new": 0})  # fmt: skip
        if source == "inspector":
            if status == "confirmed":
                e["misses" if has else "added_new"] += int(n)
        else:
            e[status] += int(n)
    return [{**e, "precision": _precision(e["confirmed"], e["rejected"])} for _, e in sorted(out.items())]


def field_by_version(q: StatsQuery) -> Rows:
    rows = _grouped(
        q,
        "p.model_id, p.model_version, COALESCE(f.detector_class, '')",
        "p.model_id, p.model_version, f.detector_class",
        "model_id, model_version, detector_class",
    )
    return _by_version(q, rows, scene=False)


def field_by_scene(q: StatsQuery) -> Rows:
    """``field_by_version`` per inspection scene: model versions compared on the same kind of photos."""
    keys = "i.scene, p.model_id, p.model_version, COALESCE(f.detector_class, '')"

    def raw(since: float | None, until: float | None, whole: bool = False) -> list[tuple[Any, ...]]:
        rng, params = q.range("f.created_at", since, until, whole)
        scene = "" if q.scene is None else " AND i.scene = ?"
        return q.db.query(
            f"SELECT {keys}, f.source, f.status, COUNT(*) FROM findings f JOIN photos p ON p.id = f.photo_id "
            f"JOIN inspections i ON i.id = f.inspection_id WHERE f.org_id = ?{rng}{scene} "
            f"GROUP BY i.scene, p.model_id, p.model_version, f.detector_class, f.source, f.status",
            [q.org_id, *params, *([] if q.scene is None else [q.scene])],
        )

    cols = "scene, model_id, model_version, detector_class, source, status"
    rows = raw(None, None, True) if q.days is None else q.monthly("stats_field", cols, "", [], raw)
    return _by_version(q, rows, scene=True)


def teach_next(q: StatsQuery, by_version: Rows | None = None) -> Rows:
    out: dict[str, dict[str, Any]] = {}
    for e in by_version if by_version is not None else field_by_version(q):
        if e["added_new"]:
            t = out.setdefault(e["detector_class"], {"detector_class": e["detector_class"], "name_zh": e["name_zh"],
                                                     "added": 0, "model_versions": []})  # fmt: skip
            t["added"] += e["added_new"]
            t["model_versions"].append(f"{e['model_id']} {e['model_version']}")
    return sorted(out.values(), key=lambda t: (-t["added"], t["detector_class"]))


TABLES: dict[str, Callable[[StatsQuery], Any]] = {
    "model_field": model_field,
    "field_by_version": field_by_version,
    "field_by_scene": field_by_scene,
    "teach_next": teach_next,
}
