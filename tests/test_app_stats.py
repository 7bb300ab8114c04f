"""/app/api/stats on hand-made records with fixed expected figures, on SQLite and on PostgreSQL.

The first test makes its records through the app (decisions, ledger transitions); the second writes records
with chosen dates straight into the database the server reads, so weeks, months, days to close and the
per-version field figures are known exactly."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import ORG_A, ORG_B, AppServer, clean_photo, fire_and_smoke_photo, fire_photo, start_app_server
from openpyxl import load_workbook

from inference_service.accounts import Accounts
from inference_service.app.stats import StatsQuery, stats
from inference_service.app.stats_rollup import rebuild
from inference_service.storage import Database
from inference_service.taxonomy import load_taxonomy


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path: Path) -> Iterator[AppServer]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    with start_app_server(tiny_model_dir, tmp_path / "data", url) as s:
        yield s


def _photo(c, inspection: str, data: bytes, key: str) -> dict:
    r = c.post(f"/app/api/inspections/{inspection}/photos", files={"photo": ("p.jpg", data, "image/jpeg")},
               data={"idempotency_key": key})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def test_stats_count_hazards_rectification_and_the_models_field_precision(server: AppServer):
    insp, sup = server.client("inspector"), server.client("supervisor")
    first = insp.post("/app/api/inspections", json={"unit": {"name": "甲单位"}, "scene": "construction"}).json()
    second = sup.post("/app/api/inspections", json={"unit": {"name": "乙单位"}, "scene": "industry"}).json()
    p1 = _photo(insp, first["id"], fire_and_smoke_photo(), "s1")
    fire1, smoke1 = sorted(p1["findings"], key=lambda f: f["hazard_id"])
    insp.post(f"/app/api/findings/{fire1['id']}/decision", json={"decision": "confirm"})
    insp.post(f"/app/api/findings/{smoke1['id']}/decision", json={"decision": "reject"})
    p2 = _photo(sup, second["id"], fire_photo(seed=40), "s2")
    fire2 = sup.post(f"/app/api/findings/{p2['findings'][0]['id']}/decision", json={"decision": "confirm"}).json()
    _photo(sup, second["id"], clean_photo(seed=41), "s3")
    added = sup.post(f"/app/api/photos/{p2['id']}/findings", json={"hazard_id": "FIRE-006", "box": [0, 0, 99, 99]})
    # fire2 closed in time; the blocked exit overdue
    item = sup.get(f"/app/api/ledger/{fire2['ledger_item_id']}").json()
    item = sup.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": 1}).json()
    item = sup.post(f"/app/api/ledger/{item['id']}/rectification", files={"photo": ("f.jpg", clean_photo(seed=42))},
                    data={"idempotency_key": "s4"}).json()  # fmt: skip
    assert sup.post(f"/app/api/ledger/{item['id']}/transition",
                    json={"to": "closed", "version": item["version"]}).status_code == 200  # fmt: skip
    exit_item = sup.get(f"/app/api/ledger/{added.json()['ledger_item_id']}").json()
    sup.post(f"/app/api/ledger/{exit_item['id']}/assign", json={"version": 1, "deadline": "2020-01-01"})

    s = insp.get("/app/api/stats").json()
    assert [(h["hazard_id"], h["count"]) for h in s["by_hazard"]] == [("FIRE-001", 2), ("FIRE-006", 1)]
    assert {x["severity"]: x["count"] for x in s["by_severity"]} == {"critical": 3, "high": 0, "medium": 0, "low": 0}
    assert [(u["unit"], u["count"]) for u in s["by_unit"]] == [("乙单位", 2), ("甲单位", 1)]
    assert sorted((u["display_name"], u["count"]) for u in s["by_inspector"]) == [("张检查", 1), ("李主管", 2)]
    assert sum(w["count"] for w in s["by_week"]) == 3 and len(s["by_week"]) == 1
    r = s["rectification"]
    assert (r["total"], r["open"], r["overdue"], r["closed"], r["closed_in_time"], r["rate"]) == (3, 2, 1, 1, 1, 0.3333)
    assert (r["submitted"], r["ai_recheck_failed"], r["reopened"], r["reopen_rate"]) == (1, 0, 0, 0.0)
    field = {(m["detector_class"], m["hazard_id"]): m for m in s["model_field"]}
    assert (field["fire", "FIRE-001"]["confirmed"], field["fire", "FIRE-001"]["precision"]) == (2, 1.0)
    assert (field["smoke", "FIRE-002"]["rejected"], field["smoke", "FIRE-002"]["precision"]) == (1, 0.0)
    assert (
        field["exit_obstruction", "FIRE-006"]["added"] == 1
        and field["exit_obstruction", "FIRE-006"]["precision"] is None
    )
    # the served model's classes are kept per version: exit_obstruction is a class it lacks, so teach it next
    assert [(t["detector_class"], t["added"]) for t in s["teach_next"]] == [("exit_obstruction", 1)]
    # a range without records, and another organisation: nothing
    empty = insp.get("/app/api/stats", params={"from": "2001-01-01", "to": "2001-12-31"}).json()
    assert empty["by_hazard"] == [] and empty["rectification"]["total"] == 0 and empty["rectification"]["rate"] is None
    other = server.client("inspector_b").get("/app/api/stats").json()
    assert other["by_unit"] == [] and other["model_field"] == []
    # the pre-aggregated figures follow new decisions at once
    p3 = _photo(insp, first["id"], fire_photo(seed=43), "s5")
    fire3 = insp.post(f"/app/api/findings/{p3['findings'][0]['id']}/decision", json={"decision": "confirm"}).json()
    again = insp.get("/app/api/stats").json()
    assert [(h["hazard_id"], h["count"]) for h in again["by_hazard"]] == [("FIRE-001", 3), ("FIRE-006", 1)]
    assert [(u["unit"], u["count"]) for u in again["by_unit"]] == [("乙单位", 2), ("甲单位", 2)]
    assert again["rectification"]["total"] == 4
    # a reviewer sends a rectification back (待复查 -> 整改中): reopened; the closed one took no time at all
    item = sup.post(f"/app/api/ledger/{fire3['ledger_item_id']}/transition",
                    json={"to": "in_progress", "version": 1}).json()  # fmt: skip
    item = sup.post(f"/app/api/ledger/{item['id']}/rectification", files={"photo": ("f.jpg", clean_photo(seed=44))},
                    data={"idempotency_key": "s6"}).json()  # fmt: skip
    back = sup.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]})
    assert back.status_code == 200, back.text
    r = insp.get("/app/api/stats/rectification").json()["rows"]
    assert (r["submitted"], r["sent_back"], r["reopened"], r["reopen_rate"]) == (2, 1, 1, 0.5)
    assert (r["closed"], r["median_days_to_close"]) == (1, 0.0)


# --- hand-made records with chosen dates ----------------------------------------------------------------------


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


class Seed:
    """Writes inspections, photos, findings and ledger items as the app stores them."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        accounts = Accounts(self.db)
        self.org = accounts.ensure_org(ORG_A)
        self.org_b = accounts.ensure_org(ORG_B)
        self.users = {u.username: u.id for org in (self.org, self.org_b) for u in accounts.list_users(org)}

    def inspection(self, unit: str, scene: str, user: str, at: str, org: str | None = None) -> str:
        iid = uuid.uuid4().hex
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO inspections (id, org_id, inspector_id, unit_name, unit_address, scene, created_at) "
                "VALUES (?, ?, ?, ?, '', ?, ?)",
                [iid, org or self.org, self.users[user], unit, scene, _ts(at)],
            )
        return iid

    def photo(self, inspection: str, version: str, at: str, org: str | None = None) -> str:
        pid = uuid.uuid4().hex
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO photos (id, org_id, inspection_id, kind, idempotency_key, sha256, content_type, "
                "size_bytes, width, height, model_id, model_version, warnings, detections, uploaded_by, created_at) "
                "VALUES (?, ?, ?, 'inspection', ?, ?, 'image/jpeg', 1, 640, 480, 'm', ?, '[]', '[]', 'u', ?)",
                [pid, org or self.org, inspection, pid, "0" * 64, version, _ts(at)],
            )
        return pid

    def finding(self, photo: str, inspection: str, hazard: str, cls: str, source: str, status: str, at: str,
                org: str | None = None) -> str:  # fmt: skip
        fid = uuid.uuid4().hex
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO findings (id, org_id, photo_id, inspection_id, hazard_id, detector_class, confidence, "
                "x1, y1, x2, y2, source, status, seq, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 0.9, 0, 0, 10, 10, ?, ?, 0, ?, ?)",
                [fid, org or self.org, photo, inspection, hazard, cls, source, status, _ts(at), _ts(at)],
            )
        return fid

    def item(self, finding: str, inspection: str, status: str, created: str, deadline: str, closed: str | None = None,
             recheck: str | None = None, sent_back: bool = False) -> None:  # fmt: skip
        lid = uuid.uuid4().hex
        rect = "r" if status in ("pending_review", "closed") else None
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO ledger_items (id, org_id, finding_id, inspection_id, photo_id, inspector_id, unit_name, "
                "unit_address, hazard_id, severity, status, deadline, ai_recheck, rectification_photo_id, "
                "created_at, closed_at, version, scene, close_s, sent_back) "
                "VALUES (?, ?, ?, ?, 'p', 'u', 'x', '', 'H', 'high', ?, ?, ?, ?, ?, ?, 1, "
                "(SELECT scene FROM inspections WHERE id = ?), ?, ?)",
                [lid, self.org, finding, inspection, status, _ts(deadline), recheck, rect, _ts(created),
                 _ts(closed) if closed else None, inspection, _ts(closed) - _ts(created) if closed else None,
                 int(sent_back)],
            )  # fmt: skip
            if sent_back:
                cur.execute(
                    "INSERT INTO ledger_history (item_id, at, by_user, from_status, to_status, note) "
                    "VALUES (?, ?, 'u', 'pending_review', 'in_progress', 'again')",
                    [lid, _ts(created) + 60],
                )

    def versions(self, classes: dict[str, list[str]]) -> None:
        with self.db.tx() as cur:
            for version, names in classes.items():
                cur.execute(
                    "INSERT INTO model_versions (model_id, model_version, classes, first_seen) VALUES ('m', ?, ?, 0)",
                    [version, json.dumps(names)],
                )


def _seed(url: str) -> None:
    s = Seed(url)
    try:
        s.versions({"v1": ["fire", "smoke"], "v2": ["fire", "smoke", "no_helmet"]})
        i1 = s.inspection("甲单位", "construction", "insp_a", "2026-03-02T10:00+08:00")
        i2 = s.inspection("甲单位", "construction", "insp_a", "2026-03-09T09:00+08:00")
        i3 = s.inspection("乙单位", "industry", "sup_a", "2026-04-01T09:00+08:00")
        s.inspection("丙单位", "gas", "sup_a", "2026-04-02T09:00+08:00")  # nothing found
        p1 = s.photo(i1, "v1", "2026-03-02T10:00+08:00")
        p2 = s.photo(i2, "v2", "2026-03-09T09:00+08:00")
        p3 = s.photo(i3, "v2", "2026-04-01T09:00+08:00")
        f1 = s.finding(p1, i1, "FIRE-001", "fire", "model", "confirmed", "2026-03-02T10:00+08:00")
        s.finding(p1, i1, "FIRE-002", "smoke", "model", "rejected", "2026-03-02T10:00+08:00")
        # a Monday 01:00 in China is Sunday in UTC: weeks follow the local day
        f3 = s.finding(p1, i1, "FIRE-006", "exit_obstruction", "inspector", "confirmed", "2026-03-02T01:00+08:00")
        f4 = s.finding(p2, i2, "FIRE-001", "fire", "model", "confirmed", "2026-03-09T09:00+08:00")
        s.finding(p2, i2, "CONST-001", "no_helmet", "model", "pending", "2026-03-09T09:00+08:00")
        f6 = s.finding(p2, i2, "FIRE-002", "smoke", "inspector", "confirmed", "2026-03-10T09:00+08:00")
        s.finding(p3, i3, "FIRE-001", "fire", "model", "rejected", "2026-04-01T09:00+08:00")
        f8 = s.finding(p3, i3, "CONST-001", "no_helmet", "inspector", "confirmed", "2026-04-01T09:00+08:00")
        f9 = s.finding(p3, i3, "HOT-002", "welding", "inspector", "confirmed", "2026-04-02T09:00+08:00")
        s.item(f1, i1, "closed", "2026-03-02T10:00+08:00", "2026-03-02T23:59:59+08:00", "2026-03-02T12:00+08:00")
        s.item(f3, i1, "open", "2026-03-02T01:00+08:00", "2026-03-02T23:59:59+08:00")  # overdue
        s.item(f4, i2, "closed", "2026-03-09T09:00+08:00", "2026-03-09T23:59:59+08:00", "2026-03-12T09:00+08:00",
               sent_back=True)  # fmt: skip
        s.item(f6, i2, "pending_review", "2026-03-10T09:00+08:00", "2099-01-01T00:00+08:00", recheck="failed")
        s.item(f8, i3, "open", "2026-04-01T09:00+08:00", "2099-01-01T00:00+08:00")
        s.item(f9, i3, "in_progress", "2026-04-02T09:00+08:00", "2099-01-01T00:00+08:00")
        ib = s.inspection("丁单位", "construction", "insp_b", "2026-03-02T10:00+08:00", org=s.org_b)
        pb = s.photo(ib, "v1", "2026-03-02T10:00+08:00", org=s.org_b)
        s.finding(pb, ib, "FIRE-001", "fire", "model", "confirmed", "2026-03-02T10:00+08:00", org=s.org_b)
        rebuild(s.db)  # records written past the app's write path: the rollups are built again from them
    finally:
        s.db.close()


def test_stats_tables_have_the_expected_figures(server: AppServer):
    _seed(server.database_url)
    c = server.client("inspector")
    s = c.get("/app/api/stats").json()
    assert [(h["hazard_id"], h["count"]) for h in s["by_hazard"]] == [
        ("FIRE-001", 2), ("CONST-001", 1), ("FIRE-002", 1), ("FIRE-006", 1), ("HOT-002", 1)]  # fmt: skip
    assert [(x["severity"], x["count"]) for x in s["by_severity"]] == [
        ("critical", 3), ("high", 2), ("medium", 1), ("low", 0)]  # fmt: skip
    assert [(d["domain"], d["count"]) for d in s["by_domain"]] == [("消防", 4), ("动火作业", 1), ("建筑施工", 1)]
    assert [(u["unit"], u["count"]) for u in s["by_unit"]] == [("甲单位", 4), ("乙单位", 2)]
    assert [(u["display_name"], u["count"]) for u in s["by_inspector"]] == [("张检查", 4), ("李主管", 2)]
    assert [(x["scene"], x["name_zh"], x["count"]) for x in s["by_scene"]] == [
        ("construction", "建筑工地", 4), ("industry", "工贸企业", 2)]  # fmt: skip
    assert [(w["week"], w["count"]) for w in s["by_week"]] == [("2026-W10", 2), ("2026-W11", 2), ("2026-W14", 2)]
    assert [(m["month"], m["count"]) for m in s["by_month"]] == [("2026-03", 4), ("2026-04", 2)]
    assert s["rectification"] == {
        "total": 6, "open": 4, "overdue": 1, "closed": 2, "closed_in_time": 1, "rate": 0.3333,
        "median_days_to_close": 1.54,  # (2 hours + 3 days) / 2
        "submitted": 3, "ai_recheck_failed": 1, "sent_back": 1, "reopened": 2, "reopen_rate": 0.6667,
    }  # fmt: skip
    assert [(x["scene"], x["inspections"], x["critical"], x["per_1000"]) for x in s["critical_per_1000"]] == [
        ("construction", 2, 3, 1500.0), ("gas", 1, 0, 0.0), ("industry", 1, 0, 0.0)]  # fmt: skip
    field = {(m["detector_class"], m["hazard_id"]): (m["confirmed"], m["rejected"], m["pending"], m["added"],
                                                       m["precision"]) for m in s["model_field"]}  # fmt: skip
    assert field == {
        ("exit_obstruction", "FIRE-006"): (0, 0, 0, 1, None),
        ("fire", "FIRE-001"): (2, 1, 0, 0, 0.6667),
        ("no_helmet", "CONST-001"): (0, 0, 1, 1, None),
        ("smoke", "FIRE-002"): (0, 1, 0, 1, 0.0),
        ("welding", "HOT-002"): (0, 0, 0, 1, None),
    }
    keys = ("model_version", "detector_class", "model_has_class", "confirmed", "rejected", "pending", "misses",
            "added_new", "precision")  # fmt: skip
    by_version = [tuple(v[k] for k in keys) for v in s["field_by_version"]]
    assert by_version == [
        ("v1", "exit_obstruction", False, 0, 0, 0, 0, 1, None),
        ("v1", "fire", True, 1, 0, 0, 0, 0, 1.0),
        ("v1", "smoke", True, 0, 1, 0, 0, 0, 0.0),
        ("v2", "fire", True, 1, 1, 0, 0, 0, 0.5),
        ("v2", "no_helmet", True, 0, 0, 1, 1, 0, None),  # an added no_helmet is a miss of v2
        ("v2", "smoke", True, 0, 0, 0, 1, 0, None),
        ("v2", "welding", False, 0, 0, 0, 0, 1, None),
    ]
    # the same per scene: v2's fire precision is 1.0 on construction sites and 0.0 in the industry scene
    by_scene = [(v["scene"], *(v[k] for k in keys)) for v in s["field_by_scene"]]
    assert by_scene == [
        ("construction", "v1", "exit_obstruction", False, 0, 0, 0, 0, 1, None),
        ("construction", "v1", "fire", True, 1, 0, 0, 0, 0, 1.0),
        ("construction", "v1", "smoke", True, 0, 1, 0, 0, 0, 0.0),
        ("construction", "v2", "fire", True, 1, 0, 0, 0, 0, 1.0),
        ("construction", "v2", "no_helmet", True, 0, 0, 1, 0, 0, None),
        ("construction", "v2", "smoke", True, 0, 0, 0, 1, 0, None),
        ("industry", "v2", "fire", True, 0, 1, 0, 0, 0, 0.0),
        ("industry", "v2", "no_helmet", True, 0, 0, 0, 1, 0, None),
        ("industry", "v2", "welding", False, 0, 0, 0, 0, 1, None),
    ]  # fmt: skip
    # every finding is counted under the model id and version that scored its photo
    assert {(v["model_id"], v["model_version"]) for v in s["field_by_scene"]} == {("m", "v1"), ("m", "v2")}
    assert [(t["detector_class"], t["added"], t["model_versions"]) for t in s["teach_next"]] == [
        ("exit_obstruction", 1, ["m v1"]), ("welding", 1, ["m v2"])]  # fmt: skip

    # the rollups answer exactly what the records themselves say (all time, and a range cutting months)
    db = Database(server.database_url)
    try:
        org = Accounts(db).ensure_org(ORG_A)
        names = {u.id: u.display_name for u in Accounts(db).list_users(org)}
        for since, until in ((None, None), ("2026-03-02T00:00+08:00", "2026-04-02T00:00+08:00")):
            span = (_ts(since), _ts(until)) if since and until else (None, None)
            rolled = stats(StatsQuery(db, org, load_taxonomy(), names, *span))
            assert rolled == stats(StatsQuery(db, org, load_taxonomy(), names, *span, use_rollup=False))
        assert rolled["by_week"] == [{"week": "2026-W10", "count": 2}, {"week": "2026-W11", "count": 2},
                                     {"week": "2026-W14", "count": 1}]  # fmt: skip
    finally:
        db.close()

    # a date range (local days, inclusive) and a scene (unit type) narrow every table
    march = c.get("/app/api/stats", params={"from": "2026-03-01", "to": "2026-03-31"}).json()
    assert march["by_month"] == [{"month": "2026-03", "count": 4}] and march["rectification"]["total"] == 4
    assert [(x["scene"], x["inspections"]) for x in march["critical_per_1000"]] == [("construction", 2)]
    industry = c.get("/app/api/stats", params={"scene": "industry"}).json()
    assert [(u["unit"], u["count"]) for u in industry["by_unit"]] == [("乙单位", 2)]
    assert industry["rectification"]["total"] == 2
    assert [(v["model_version"], v["detector_class"]) for v in industry["field_by_version"]] == [
        ("v2", "fire"), ("v2", "no_helmet"), ("v2", "welding")]  # fmt: skip
    assert [v for v in s["field_by_scene"] if v["scene"] == "industry"] == industry["field_by_scene"]

    # one table as JSON, CSV and XLSX
    one = c.get("/app/api/stats/by_unit").json()
    assert one == {"table": "by_unit", "rows": [{"unit": "甲单位", "count": 4}, {"unit": "乙单位", "count": 2}]}
    got = c.get("/app/api/stats/by_unit.csv")
    assert got.headers["content-type"].startswith("text/csv") and "hazardscan-by_unit.csv" in got.headers[
        "content-disposition"]  # fmt: skip
    assert list(csv.reader(io.StringIO(got.content.decode("utf-8-sig")))) == [
        ["unit", "count"], ["甲单位", "4"], ["乙单位", "2"]]  # fmt: skip
    rect = list(csv.reader(io.StringIO(c.get("/app/api/stats/rectification.csv").content.decode("utf-8-sig"))))
    assert rect[0][:3] == ["total", "open", "overdue"] and rect[1][:3] == ["6", "4", "1"]
    sheet = load_workbook(io.BytesIO(c.get("/app/api/stats/teach_next.xlsx").content)).active
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["detector_class", "name_zh", "added", "model_versions"],
        ["exit_obstruction", "堵塞出口/通道的堆物", 1, "m v1"], ["welding", "电焊/气割作业", 1, "m v2"]]  # fmt: skip
    for bad in ("nope", "by_unit.pdf"):
        r = c.get(f"/app/api/stats/{bad}")
        assert r.status_code == 404 and "tables: by_hazard" in r.json()["error"]["message"]
    import httpx

    assert httpx.get(f"{server.base_url}/app/api/stats/by_unit.csv").status_code == 401  # behind the login
    other = server.client("inspector_b").get("/app/api/stats").json()
    assert [(u["unit"], u["count"]) for u in other["by_unit"]] == [("丁单位", 1)] and other["teach_next"] == []
