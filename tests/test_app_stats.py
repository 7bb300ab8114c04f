"""/app/api/stats on hand-made records with fixed expected figures, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import AppServer, clean_photo, fire_and_smoke_photo, fire_photo, start_app_server


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
    assert s["rectification"] == {"total": 3, "open": 2, "overdue": 1, "closed": 1, "closed_in_time": 1,
                                  "rate": 0.3333}  # fmt: skip
    field = {(m["detector_class"], m["hazard_id"]): m for m in s["model_field"]}
    assert (field["fire", "FIRE-001"]["confirmed"], field["fire", "FIRE-001"]["precision"]) == (2, 1.0)
    assert (field["smoke", "FIRE-002"]["rejected"], field["smoke", "FIRE-002"]["precision"]) == (1, 0.0)
    assert (
        field["exit_obstruction", "FIRE-006"]["added"] == 1
        and field["exit_obstruction", "FIRE-006"]["precision"] is None
    )
    # a range without records, and another organisation: nothing
    empty = insp.get("/app/api/stats", params={"from": "2001-01-01", "to": "2001-12-31"}).json()
    assert empty["by_hazard"] == [] and empty["rectification"]["total"] == 0 and empty["rectification"]["rate"] is None
    other = server.client("inspector_b").get("/app/api/stats").json()
    assert other["by_unit"] == [] and other["model_field"] == []
