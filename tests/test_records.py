"""Inspection records through a real server: inspections, photos scored by the model, idempotent uploads,
decisions, bad input, organisations kept apart."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import app_fixtures
import pytest
from _builders import jpeg_with_orientation, scene
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import FIRE_BOX, AppServer, clean_photo, fire_and_smoke_photo, fire_photo, start_app_server
from PIL import Image

from inference_service.storage import Database
from training.feedback import Filters, load_feedback

app_server = app_fixtures.app_server  # the fixture

UNIT = {"name": "阳泉某建筑公司", "address": "矿区北大街 1 号", "credit_code": "91140300MA0XXXXX1X"}


def new_inspection(c, **extra) -> dict:
    r = c.post("/app/api/inspections", json={"unit": UNIT, "scene": "construction", **extra})
    assert r.status_code in (200, 201), r.text
    return r.json()


def upload(c, inspection_id: str, data: bytes, key: str, name: str = "p.jpg"):
    return c.post(
        f"/app/api/inspections/{inspection_id}/photos",
        files={"photo": (name, data, "image/jpeg")},
        data={"idempotency_key": key},
    )


def count(server: AppServer, sql: str, params: list | None = None) -> int:
    db = Database(server.database_url)
    try:
        return int(db.query(sql, params or [])[0][0])
    finally:
        db.close()


def test_an_inspection_is_created_once_per_client_id(app_server: AppServer):
    c = app_server.client("inspector")
    where = {"lat": 37.86, "lon": 113.58, "accuracy_m": 12}
    first = c.post(
        "/app/api/inspections", json={"unit": UNIT, "scene": "hot_work", "client_id": "c-1", "location": where}
    )
    again = c.post("/app/api/inspections", json={"unit": UNIT, "scene": "hot_work", "client_id": "c-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    body = first.json()
    assert again.json()["id"] == body["id"]
    assert body["unit"] == UNIT and body["scene"] == "hot_work" and body["inspector"]["display_name"] == "张检查"
    assert body["location"] == {"lat": 37.86, "lon": 113.58, "accuracy_m": 12.0}
    assert body["created_at"].endswith("Z") and body["photos"] == [] and body["photo_count"] == 0
    bad = c.post("/app/api/inspections", json={"unit": UNIT, "scene": "moon_base"})
    assert bad.status_code == 422 and "unknown scene" in bad.json()["error"]["message"]
    listed = c.get("/app/api/inspections").json()
    assert body["id"] in [i["id"] for i in listed["items"]] and listed["total"] == len(listed["items"])


def test_a_photo_is_kept_content_addressed_and_scored_with_the_model_named(app_server: AppServer):
    c = app_server.client("inspector")
    insp = new_inspection(c)
    data = fire_photo(seed=1)
    r = upload(c, insp["id"], data, "k-fire-1")
    assert r.status_code == 201, r.text
    photo = r.json()
    sha = hashlib.sha256(data).hexdigest()
    assert photo["sha256"] == sha and (photo["width"], photo["height"]) == (640, 480)
    assert photo["model"] == {"id": "tiny-rgb", "version": "test-1"}
    [finding] = photo["findings"]
    assert (finding["hazard_id"], finding["name_zh"], finding["severity"]) == ("FIRE-001", "现场明火", "critical")
    assert finding["box"] == list(FIRE_BOX) and finding["detector_class"] == "fire"
    assert finding["source"] == "model" and finding["status"] == "pending" and finding["ledger_item_id"] is None
    assert finding["confidence"] > 0.9 and not finding["suspected"] and "消防法" in finding["legal_basis"]
    assert (app_server.data_dir / "photos" / sha[:2] / sha).read_bytes() == data
    original = c.get(photo["original_url"])
    assert original.content == data and original.headers["content-type"] == "image/jpeg"
    evidence = c.get(photo["evidence_url"])
    assert evidence.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(evidence.content)).size == (640, 480)
    full = c.get(f"/app/api/inspections/{insp['id']}").json()
    assert full["photo_count"] == 1 and full["hazard_count"] == 1 and full["photos"][0]["id"] == photo["id"]


def test_a_retried_upload_returns_the_same_photo_and_stores_nothing_twice(app_server: AppServer):
    c = app_server.client("inspector")
    insp = new_inspection(c)
    first = upload(c, insp["id"], fire_photo(seed=2), "k-retry")
    again = upload(c, insp["id"], fire_photo(seed=2), "k-retry")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    # eight clients racing with one key: one photo
    results: list[int] = []
    clients = [app_server.client("inspector") for _ in range(8)]

    def go(client) -> None:
        results.append(upload(client, insp["id"], clean_photo(seed=3), "k-race").status_code)

    threads = [threading.Thread(target=go, args=(cl,)) for cl in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(201) == 1 and set(results) <= {200, 201}
    assert count(app_server, "SELECT COUNT(*) FROM photos WHERE idempotency_key = 'k-race'") == 1
    assert c.get(f"/app/api/inspections/{insp['id']}").json()["photo_count"] == 2


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"%PDF-1.4 not a photo", 415, "unsupported_media_type"),
        (b"\xff\xd8\xff\xe0 truncated jpeg", 400, "invalid_image"),
        (b"", 400, "empty_photo"),
    ],
)
def test_bad_photos_get_a_clear_4xx_and_leave_nothing(app_server: AppServer, data: bytes, status: int, code: str):
    c = app_server.client("inspector")
    insp = new_inspection(c)
    before = count(app_server, "SELECT COUNT(*) FROM photos")
    r = upload(c, insp["id"], data, f"k-bad-{code}")
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    assert count(app_server, "SELECT COUNT(*) FROM photos") == before
    assert not any(p.name == hashlib.sha256(data).hexdigest() for p in (app_server.data_dir / "photos").rglob("*"))
    missing_key = c.post(f"/app/api/inspections/{insp['id']}/photos", files={"photo": ("p.jpg", fire_photo())})
    assert missing_key.status_code == 422 and "idempotency_key" in missing_key.json()["error"]["message"]


def test_a_photo_over_the_limit_is_refused_with_413(tiny_model_dir: Path, tmp_path: Path):
    with start_app_server(tiny_model_dir, tmp_path / "d", HAZARDSCAN_MAX_UPLOAD_BYTES="20000") as server:
        c = server.client("inspector")
        insp = new_inspection(c)
        big = Image.effect_noise((400, 400), 100).convert("RGB")
        buf = io.BytesIO()
        big.save(buf, "JPEG", quality=95)
        assert len(buf.getvalue()) > 20000
        r = upload(c, insp["id"], buf.getvalue(), "k-big")
        assert r.status_code == 413 and r.json()["error"]["code"] in ("photo_too_large", "payload_too_large")
        assert count(server, "SELECT COUNT(*) FROM photos") == 0


def test_boxes_and_sizes_are_of_the_exif_upright_photo(app_server: AppServer):
    c = app_server.client("inspector")
    insp = new_inspection(c)
    upright = scene(480, 640, [(80, 160, 240, 320, (230, 20, 20))])  # portrait; stored rotated with EXIF 6
    photo = upload(c, insp["id"], jpeg_with_orientation(upright, 6), "k-exif").json()
    assert (photo["width"], photo["height"]) == (480, 640)
    boxes = [f["box"] for f in photo["findings"] if f["hazard_id"] == "FIRE-001"]
    assert boxes and all(b[2] <= 480 and b[3] <= 640 for b in boxes)
    assert [80, 160, 240, 320] in boxes


def test_decisions_are_appended_and_confirming_makes_one_ledger_item(app_server: AppServer):
    c = app_server.client("inspector")
    insp = new_inspection(c)
    photo = upload(c, insp["id"], fire_and_smoke_photo(), "k-decide").json()
    fire, smoke = sorted(photo["findings"], key=lambda f: f["hazard_id"])
    url = f"/app/api/findings/{fire['id']}/decision"
    confirmed = c.post(url, json={"decision": "confirm", "box": [150, 70, 330, 250], "note": "灶台旁明火"}).json()
    assert confirmed["status"] == "confirmed" and confirmed["box"] == [150, 70, 330, 250]
    item = confirmed["ledger_item_id"]
    assert item and c.post(url, json={"decision": "confirm"}).json()["ledger_item_id"] == item
    rejected = c.post(f"/app/api/findings/{smoke['id']}/decision", json={"decision": "reject"}).json()
    assert rejected["status"] == "rejected" and rejected["ledger_item_id"] is None
    # changing one's mind while the item is still open (待整改): the item goes, the decisions stay
    assert c.post(url, json={"decision": "reject", "note": "误报"}).json()["ledger_item_id"] is None
    assert count(app_server, "SELECT COUNT(*) FROM ledger_items WHERE finding_id = ?", [fire["id"]]) == 0
    assert count(app_server, "SELECT COUNT(*) FROM decisions WHERE finding_id = ?", [fire["id"]]) == 3
    again = c.post(url, json={"decision": "confirm"}).json()
    assert again["ledger_item_id"] and again["ledger_item_id"] != item
    bad_box = c.post(url, json={"decision": "confirm", "box": [10, 10, 5, 5]})
    assert bad_box.status_code == 422 and "x1 < x2" in bad_box.text
    outside = c.post(url, json={"decision": "confirm", "box": [10, 10, 5000, 50]})
    assert outside.status_code == 422 and "outside" in outside.json()["error"]["message"]
    full = c.get(f"/app/api/inspections/{insp['id']}").json()
    assert full["hazard_count"] == 1  # the rejected smoke no longer counts


def test_an_inspector_adds_a_hazard_the_model_missed(app_server: AppServer):
    c = app_server.client("inspector")
    insp = new_inspection(c)
    photo = upload(c, insp["id"], clean_photo(seed=9), "k-add").json()
    assert photo["findings"] == []
    r = c.post(f"/app/api/photos/{photo['id']}/findings",
               json={"hazard_id": "FIRE-006", "box": [10, 20, 200, 300], "note": "杂物堵塞出口"})  # fmt: skip
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["source"] == "inspector" and f["status"] == "confirmed" and f["confidence"] is None
    assert f["ledger_item_id"] and f["note"] == "杂物堵塞出口" and f["box"] == [10, 20, 200, 300]
    unknown = c.post(f"/app/api/photos/{photo['id']}/findings", json={"hazard_id": "NOPE-1", "box": [1, 1, 2, 2]})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_hazard"


def test_another_organisations_records_are_not_found(app_server: AppServer):
    a, b = app_server.client("inspector"), app_server.client("inspector_b")
    insp = new_inspection(a)
    photo = upload(a, insp["id"], fire_photo(seed=5), "k-org").json()
    finding = photo["findings"][0]["id"]
    assert b.get(f"/app/api/inspections/{insp['id']}").status_code == 404
    assert insp["id"] not in [i["id"] for i in b.get("/app/api/inspections").json()["items"]]
    assert upload(b, insp["id"], fire_photo(seed=6), "k-org-b").status_code == 404
    assert b.get(photo["original_url"]).status_code == 404 and b.get(photo["evidence_url"]).status_code == 404
    r = b.post(f"/app/api/findings/{finding}/decision", json={"decision": "reject"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert b.post(f"/app/api/photos/{photo['id']}/findings", json={"hazard_id": "FIRE-001", "box": [1, 1, 9, 9]}
                  ).status_code == 404  # fmt: skip
    assert a.get(f"/app/api/findings/{finding}").status_code in (404, 405)  # no such route either way
    # the key "k-org" is A's; B may use the same key for its own photo
    own = new_inspection(b)
    assert upload(b, own["id"], fire_photo(seed=5), "k-org").status_code == 201


def test_a_photo_is_judged_in_a_taxonomy_scene(app_server: AppServer):
    c = app_server.client("inspector")
    tax = c.get("/app/api/taxonomy").json()
    assert {"elevator", "corridor", "construction"} <= {s["id"] for s in tax["photo_scenes"]}
    assert {s["id"]: s["photo_scene"] for s in tax["scenes"]}["industry"] == "workshop"
    insp = new_inspection(c)  # construction
    default = upload(c, insp["id"], clean_photo(seed=20), "k-scene-1").json()
    assert default["scene"] == "construction"
    named = c.post(f"/app/api/inspections/{insp['id']}/photos", files={"photo": ("p.jpg", clean_photo(seed=21))},
                   data={"idempotency_key": "k-scene-2", "scene": "elevator"})  # fmt: skip
    assert named.status_code == 201 and named.json()["scene"] == "elevator"
    bad = c.post(f"/app/api/inspections/{insp['id']}/photos", files={"photo": ("p.jpg", clean_photo(seed=22))},
                 data={"idempotency_key": "k-scene-3", "scene": "moon"})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_scene"
    assert count(app_server, "SELECT COUNT(*) FROM photos WHERE idempotency_key = 'k-scene-3'") == 0
    ebike = c.post("/app/api/inspections", json={"unit": UNIT, "scene": "residential_ebike"}).json()
    assert upload(c, ebike["id"], clean_photo(seed=23), "k-scene-4").json()["scene"] is None  # photos name theirs


def test_an_inspection_is_finished_once_its_findings_are_decided(app_server: AppServer):
    """完成检查: refused while the AI's findings await a decision (unless forced); a photo arriving later (a queued
    upload) reopens it, so nothing taken is left out."""
    c = app_server.client("inspector")
    insp = c.post("/app/api/inspections", json={"unit": {"name": "完成测试"}, "scene": "industry"}).json()
    assert (insp["status"], insp["pending_count"], insp["finished_at"]) == ("in_progress", 0, None)
    photo = upload(c, insp["id"], fire_photo(31), "finish-1").json()
    finish = f"/app/api/inspections/{insp['id']}/finish"
    refused = c.post(finish, json={})
    assert refused.status_code == 409 and "1 hazard found by the AI still awaits" in refused.json()["error"]["message"]
    assert c.get(f"/app/api/inspections/{insp['id']}").json()["pending_count"] == 1
    c.post(f"/app/api/findings/{photo['findings'][0]['id']}/decision", json={"decision": "confirm"})
    done = c.post(finish, json={})
    assert done.status_code == 200 and done.json()["status"] == "finished" and done.json()["finished_at"], done.text
    listed = c.get("/app/api/inspections").json()["items"]
    assert {i["id"]: i["status"] for i in listed}[insp["id"]] == "finished"
    assert upload(c, insp["id"], fire_photo(32), "finish-2").status_code == 201
    again = c.get(f"/app/api/inspections/{insp['id']}").json()
    assert (again["status"], again["pending_count"]) == ("in_progress", 1)
    forced = c.post(finish, json={"force": True})
    assert forced.status_code == 200 and forced.json()["status"] == "finished"
    assert upload(c, insp["id"], fire_photo(32), "finish-2").status_code == 200  # a retry changes nothing
    assert c.get(f"/app/api/inspections/{insp['id']}").json()["status"] == "finished"
    reopened = c.post(f"/app/api/inspections/{insp['id']}/reopen")
    assert reopened.status_code == 200 and reopened.json()["status"] == "in_progress"
    other = app_server.client("inspector_b")
    assert other.post(finish, json={"force": True}).status_code == 404
    assert other.post(f"/app/api/inspections/{insp['id']}/reopen").status_code == 404


def test_the_list_is_searched_by_unit_and_address_and_filtered_by_inspector_and_status(app_server: AppServer):
    search_and_filters(app_server)


def test_the_list_search_on_postgresql(tiny_model_dir: Path, tmp_path: Path, pg_url: str):  # noqa: F811
    with start_app_server(tiny_model_dir, tmp_path / "data", pg_url) as server:
        search_and_filters(server)


def search_and_filters(server: AppServer) -> None:
    """GET /app/api/inspections?q=…: the unit's name or address contains it (literally: % and _ are no wildcards);
    mine=true: the caller's own; status=in_progress|finished; with the total of what matches."""
    insp, sup = server.client("inspector"), server.client("supervisor")

    def make(c, name: str, address: str) -> str:
        r = c.post("/app/api/inspections", json={"unit": {"name": name, "address": address}, "scene": "industry"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    plant = make(insp, "检索甲化工厂", "和平路 1 号")
    shop = make(insp, "检索乙车间", "检索路 3 号")
    boss = make(sup, "检索丙仓库", "100%_路")
    assert insp.post(f"/app/api/inspections/{plant}/finish", json={}).status_code == 200

    def ids(c=insp, **params: str) -> list[str]:
        r = c.get("/app/api/inspections", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return [i["id"] for i in body["items"]]

    assert ids(q="检索") == [boss, shop, plant]  # newest first; 检索路 is shop's address
    assert ids(q=" 化工 ") == [plant]
    assert ids(q="和平路") == [plant]
    assert ids(q="100%_") == [boss] and ids(q="%") == [boss] and ids(q="_路") == [boss]  # taken literally
    assert ids(q="检索", mine="true") == [shop, plant]
    assert ids(sup, q="检索", mine="true") == [boss]
    assert ids(q="检索", status="finished") == [plant]
    assert ids(q="检索", status="in_progress", mine="true") == [shop]
    assert ids(server.client("inspector_b"), q="检索") == []  # another organisation's
    assert insp.get("/app/api/inspections", params={"status": "done"}).status_code == 422
    assert insp.get("/app/api/inspections", params={"q": "x" * 101}).status_code == 422


def test_a_photo_taken_by_mistake_is_voided_not_deleted(app_server: AppServer):
    """作废: the photo leaves the inspection, its documents, statistics and training data, its open ledger items are
    withdrawn; the audit keeps it; a photo whose hazard is being rectified cannot be voided."""
    c = app_server.client("inspector")
    insp = new_inspection(c, client_id="void-test")
    wrong = upload(c, insp["id"], fire_photo(41), "void-1").json()
    confirmed = upload(c, insp["id"], fire_photo(42), "void-2").json()
    fixing = upload(c, insp["id"], fire_photo(43), "void-3").json()
    decided = {}
    for photo in (confirmed, fixing):
        fid = photo["findings"][0]["id"]
        decided[photo["id"]] = c.post(f"/app/api/findings/{fid}/decision", json={"decision": "confirm"}).json()
    item = c.get(f"/app/api/ledger/{decided[fixing['id']]['ledger_item_id']}").json()
    c.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]})

    assert c.post(f"/app/api/photos/{wrong['id']}/void", json={"reason": "  "}).status_code == 422
    voided = c.post(f"/app/api/photos/{wrong['id']}/void", json={"reason": "误拍"})
    assert voided.status_code == 200, voided.text
    assert voided.json()["voided"] is True and voided.json()["void_reason"] == "误拍"
    assert [f["status"] for f in voided.json()["findings"]] == ["voided"]
    assert c.post(f"/app/api/photos/{wrong['id']}/void", json={"reason": "again"}).json()["void_reason"] == "误拍"
    finding = wrong["findings"][0]["id"]
    assert c.post(f"/app/api/findings/{finding}/decision", json={"decision": "confirm"}).status_code == 409
    added = c.post(f"/app/api/photos/{wrong['id']}/findings", json={"hazard_id": "FIRE-006", "box": [1, 1, 9, 9]})
    assert added.status_code == 409

    ledger_id = decided[confirmed["id"]]["ledger_item_id"]
    assert c.post(f"/app/api/photos/{confirmed['id']}/void", json={"reason": "重复"}).status_code == 200
    assert c.get(f"/app/api/ledger/{ledger_id}").status_code == 404  # the open item left the ledger
    busy = c.post(f"/app/api/photos/{fixing['id']}/void", json={"reason": "重复"})
    assert busy.status_code == 409 and "in_progress" in busy.json()["error"]["message"]

    shown = c.get(f"/app/api/inspections/{insp['id']}").json()
    assert [p["id"] for p in shown["photos"]] == [fixing["id"]]
    assert (shown["photo_count"], shown["hazard_count"], shown["pending_count"]) == (1, 1, 0)
    assert c.get(f"/app/inspections/{insp['id']}/record").text.count('<section class="page">') == 1 + 1
    assert c.get(f"/app/api/photos/{wrong['id']}/original").status_code == 200  # kept for the audit
    assert count(app_server, "SELECT COUNT(*) FROM decisions WHERE decision = 'void'") == 2
    sup = app_server.client("supervisor")
    for params in ({}, {"scene": "construction"}):  # every table, the model's among them
        assert sup.get("/app/api/stats", params=params).status_code == 200, params
    db = Database(app_server.database_url)
    try:
        exported = {p.photo_id for p in load_feedback(db, Filters(status="decided"))}
    finally:
        db.close()
    assert fixing["id"] in exported and not {wrong["id"], confirmed["id"]} & exported
    other = app_server.client("inspector_b")
    assert other.post(f"/app/api/photos/{fixing['id']}/void", json={"reason": "x"}).status_code == 404
