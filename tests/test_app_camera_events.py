"""A hazard a camera saw follows the inspectors' loop: the organisation's camera events in the app, an inspection made
from one (its frame as the photo), confirmed into the ledger. Real parts: the scanner on an image folder with the
tiny colour model, its SQLite events database, the service in its own process reading both."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _cctv import event
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import FIRE_BOX, ORG_A, ORG_B, AppServer, clean_photo, fire_photo, start_app_server
from PIL import Image

from inference_service.cctv.config import parse_cameras
from inference_service.cctv.scanner import StoreSink, StreamScanner
from inference_service.cctv.store import EventReview, EventStore
from inference_service.runtime import Detector
from inference_service.taxonomy import Taxonomy

T0 = dt.datetime(2026, 11, 30, 8, tzinfo=dt.UTC)
POLICY = {"persistence_s": 0.5, "close_after_s": 1.0, "cooldown_s": 0}
SITE_A = {"org": ORG_A, "unit": "阳泉某化工厂", "address": "桃北路 1 号"}


def snaps(folder: Path) -> Path:
    """Six snapshots a second apart, a fire (the tiny model's red cell) in the 3rd to 5th."""
    folder.mkdir()
    for i in range(6):
        data = fire_photo(seed=i) if 2 <= i <= 4 else clean_photo(seed=i)
        (folder / f"snap{i:02d}.jpg").write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def events_db(tmp_path_factory: pytest.TempPathFactory, detector: Detector, taxonomy: Taxonomy) -> Path:
    """The events of three cameras on the same snapshots: one of org A's (a workshop), one of org B's, one
    without a site."""
    root = tmp_path_factory.mktemp("cams")
    folder = snaps(root / "snaps")
    cams: list[dict[str, Any]] = [
        {"id": "shop-a", "scene": "workshop", "site": SITE_A},
        {"id": "gate-b", "site": {"org": ORG_B, "unit": "B 区某商场"}},
        {"id": "api-only"},
    ]
    doc = {
        "defaults": {"events": POLICY},
        "cameras": [{**c, "url": str(folder), "sample_fps": 1, "start_time": T0.isoformat()} for c in cams],
    }
    path = root / "events.db"
    store = EventStore(path)
    StreamScanner(parse_cameras(doc), detector, taxonomy, StoreSink(store)).run()
    # one event of org A's recorded without its frame (an earlier version), one whose frame shows nothing
    # (their evidence images are photos, so that a browser shows them)
    old = event(
        7, camera_id="old-a", org=ORG_A, unit="旧厂", started_at=T0.timestamp() - 3600, evidence_jpeg=fire_photo(7)
    )
    store.record(old, "opened", notify=False)
    clean = replace(
        event(8, camera_id="dim-a", org=ORG_A, unit="暗处", scene=None, started_at=T0.timestamp() - 7200),
        evidence_jpeg=clean_photo(seed=8),
        frame_jpeg=clean_photo(seed=9),
        frame_box=FIRE_BOX,
    )
    store.record(clean, "opened", notify=False)
    store.close()
    return path


@pytest.fixture(scope="module")
def server(events_db: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    data = tmp_path_factory.mktemp("appdata")
    with start_app_server(tiny_model_dir, data, HAZARDSCAN_EVENTS_DB=str(events_db)) as s:
        yield s


def shop_event(c: Any) -> dict:
    items = c.get("/app/api/events").json()["items"]
    return next(e for e in items if e["camera_id"] == "shop-a")


def test_the_scanner_keeps_a_sited_cameras_frame_without_drawings(events_db: Path):
    store = EventStore(events_db)
    try:
        by_camera = {e.camera_id: store.get_event(e.id, with_evidence=True) for e in store.list_events()}
    finally:
        store.close()
    shop, bare = by_camera["shop-a"], by_camera["api-only"]
    assert shop is not None and bare is not None
    assert (shop.org, shop.unit, shop.address, shop.scene) == (ORG_A, "阳泉某化工厂", "桃北路 1 号", "workshop")
    assert shop.hazard_id == "FIRE-001" and shop.frame_jpeg is not None and shop.frame_box is not None
    frame = np.asarray(Image.open(io.BytesIO(shop.frame_jpeg)).convert("RGB"))
    x1, y1, x2, y2 = (round(v) for v in shop.frame_box)
    assert abs(x1 - FIRE_BOX[0]) <= 8 and abs(y2 - FIRE_BOX[3]) <= 8  # the box in the frame's own pixels
    inside = frame[y1 + 10 : y2 - 10, x1 + 10 : x2 - 10].reshape(-1, 3).mean(0)
    assert inside[0] > 180 and inside[1] < 60  # the fire as filmed: no label drawn over it
    above = frame[max(0, y1 - 30) : y1 - 4, x1 : x1 + 120].reshape(-1, 3).astype(int).mean(0)
    assert abs(above[0] - above[1]) < 30  # where the evidence image has its red label, the scene's grey
    # a camera without a site: API only, no frame kept, no organisation
    assert (bare.org, bare.unit, bare.frame_jpeg, bare.frame_box) == (None, None, None, None)


def test_each_organisation_sees_its_own_cameras_events(server: AppServer):
    a, b = server.client("inspector"), server.client("inspector_b")
    got_a, got_b = a.get("/app/api/events").json(), b.get("/app/api/events").json()
    assert got_a["cameras"] is True and got_a["total"] == 3
    assert [e["camera_id"] for e in got_a["items"]] == ["shop-a", "old-a", "dim-a"]  # newest first
    assert [e["camera_id"] for e in got_b["items"]] == ["gate-b"] and got_b["total"] == 1
    shop = got_a["items"][0]
    assert shop["unit"] == "阳泉某化工厂" and shop["name_zh"] == "现场明火" and shop["severity"] == "critical"
    assert shop["status"] == "closed" and shop["has_frame"] is True and shop["inspection_id"] is None
    assert shop["started_at"].startswith("2026-11-30T08:00:0") and shop["alarm"] is True
    assert a.get("/app/api/events?status=open").json()["total"] == 2  # the two written as opened
    none_match = a.get("/app/api/events?status=open&review=dismissed").json()
    assert none_match["total"] == 0 and none_match["cameras"] is True  # none match, yet the cameras are there
    evidence = a.get(shop["evidence_url"])
    assert evidence.status_code == 200 and evidence.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(evidence.content)).size == (640, 480)
    thumb = a.get(shop["evidence_url"], params={"max_side": 160})
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size == (160, 120)
    assert a.get(shop["evidence_url"], params={"max_side": 8}).status_code == 422
    # another organisation's event is as missing as one that does not exist
    gate = got_b["items"][0]
    for path in (f"/app/api/events/{gate['id']}/evidence.jpg", "/app/api/events/nope/evidence.jpg"):
        r = a.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = a.post(f"/app/api/events/{gate['id']}/inspection", json={})
    assert r.status_code == 404
    assert a.get("/app/api/events?status=later").status_code == 422


def test_an_event_becomes_an_inspection_once_and_its_hazard_enters_the_ledger(server: AppServer):
    c = server.client("inspector")
    shop = shop_event(c)
    r = c.post(f"/app/api/events/{shop['id']}/inspection", json={})
    assert r.status_code == 201, r.text
    insp = r.json()
    assert insp["unit"]["name"] == "阳泉某化工厂" and insp["unit"]["address"] == "桃北路 1 号"
    assert insp["scene"] == "industry"  # the workshop camera's scene implies an industrial inspection
    assert insp["camera_event_id"] == shop["id"]
    (photo,) = insp["photos"]
    assert (photo["width"], photo["height"]) == (640, 480)
    assert photo["taken_at"].startswith("2026-11-30T16:00:0") and photo["taken_at_source"] == "camera"  # UTC+8
    (finding,) = photo["findings"]
    assert finding["hazard_id"] == "FIRE-001" and finding["status"] == "pending"  # the inspector decides
    # made again, by anyone of the organisation: the same inspection, still one photo
    again = server.client("supervisor").post(f"/app/api/events/{shop['id']}/inspection", json={"scene": "gas"})
    assert again.status_code == 200 and again.json()["id"] == insp["id"] and len(again.json()["photos"]) == 1
    assert shop_event(c)["inspection_id"] == insp["id"]
    decided = c.post(f"/app/api/findings/{finding['id']}/decision", json={"decision": "confirm"}).json()
    item = c.get(f"/app/api/ledger/{decided['ledger_item_id']}").json()
    assert item["unit"]["name"] == "阳泉某化工厂" and item["status"] == "open"
    record = c.get(f"/app/inspections/{insp['id']}/record").text  # the printed record says where it came from
    assert f"监控告警（事件 {shop['id']}）" in record and "，监控画面 2026-11-30 16:00" in record


def test_the_cameras_hazard_is_kept_when_the_photo_model_does_not_see_it(server: AppServer):
    c = server.client("inspector")
    dim = next(e for e in c.get("/app/api/events").json()["items"] if e["camera_id"] == "dim-a")
    no_scene = c.post(f"/app/api/events/{dim['id']}/inspection", json={})
    assert no_scene.status_code == 422 and no_scene.json()["error"]["code"] == "scene_required"
    unknown = c.post(f"/app/api/events/{dim['id']}/inspection", json={"scene": "moon_base"})
    assert unknown.status_code == 422 and "moon_base" in unknown.json()["error"]["message"]
    r = c.post(f"/app/api/events/{dim['id']}/inspection", json={"scene": "public_venue"})
    assert r.status_code == 201, r.text
    (finding,) = r.json()["photos"][0]["findings"]
    assert finding["hazard_id"] == "FIRE-001" and finding["status"] == "pending"
    assert finding["box"] == list(FIRE_BOX) and finding["confidence"] == 0.9


def test_an_event_without_its_frame_cannot_become_an_inspection(server: AppServer):
    c = server.client("inspector")
    old = next(e for e in c.get("/app/api/events").json()["items"] if e["camera_id"] == "old-a")
    assert old["has_frame"] is False
    r = c.post(f"/app/api/events/{old['id']}/inspection", json={"scene": "industry"})
    assert r.status_code == 409 and "frame" in r.json()["error"]["message"]
    assert c.get(old["evidence_url"]).status_code == 200  # its evidence image is still there


def test_without_events_of_its_cameras_the_list_says_so(tiny_model_dir: Path, tmp_path: Path):
    """The events store is the service database, there from the start: no camera of the organisation has
    raised an event yet."""
    with start_app_server(tiny_model_dir, tmp_path / "data") as s:
        got = s.client("inspector").get("/app/api/events").json()
        assert s.client("inspector").get("/readyz").json()["components"]["events"]["ready"] is True
    assert got == {"items": [], "total": 0, "cameras": False}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_events_written_into_the_service_database_reach_the_app_of_a_running_service(
    backend: str, tiny_model_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
):
    """No HAZARDSCAN_EVENTS_DB: a scanner's events go into the service database (SQLite or PostgreSQL), and the
    camera's organisation sees them in the app of a service started before they were written."""
    data = tmp_path / "data"
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else str(data / "hazardscan.db")
    with start_app_server(tiny_model_dir, data, url) as s:
        c = s.client("inspector")
        assert c.get("/app/api/events").json() == {"items": [], "total": 0, "cameras": False}
        store = EventStore(url)  # as `hazardscan scan` opens it with the same environment
        store.record(replace(event(1, org=ORG_A, unit="甲厂"), frame_jpeg=fire_photo(seed=7)), "opened", notify=False)
        store.record(event(2, org=ORG_B), "opened", notify=False)
        store.close()
        got = c.get("/app/api/events").json()
        assert got["cameras"] is True and [e["id"] for e in got["items"]] == ["ev1"] and got["total"] == 1
        assert s.client("inspector_b").get("/app/api/events").json()["total"] == 1


def test_a_camera_events_client_id_cannot_be_taken_by_hand(server: AppServer):
    body = {"unit": {"name": "某厂"}, "scene": "industry", "client_id": "cctv:someone-elses-event"}
    r = server.client("inspector").post("/app/api/inspections", json=body)
    assert r.status_code == 422 and "cctv:" in r.json()["error"]["message"]


def test_events_need_a_login(server: AppServer):
    assert httpx.get(f"{server.base_url}/app/api/events").status_code == 401


def test_a_site_names_an_organisation_and_a_unit():
    base = {"id": "c", "url": "x.mp4"}
    with pytest.raises(Exception, match=r"site\.unit"):
        parse_cameras({"cameras": [{**base, "site": {"org": ORG_A}}]})
    with pytest.raises(Exception, match=r"site\.org"):
        parse_cameras({"cameras": [{**base, "site": {"org": "  ", "unit": "厂"}}]})
    cams = parse_cameras({"cameras": [{**base, "site": {"org": f" {ORG_A} ", "unit": "厂"}}]})
    assert cams.cameras[0].site is not None and cams.cameras[0].site.org == ORG_A


def test_an_event_is_dismissed_with_a_reason_undone_or_overruled_by_an_inspection(server: AppServer):
    b = server.client("inspector_b")
    gate = b.get("/app/api/events").json()["items"][0]
    assert gate["review"] is None and b.get("/app/api/events?review=none").json()["total"] == 1
    url = f"/app/api/events/{gate['id']}"
    r = b.post(f"{url}/dismiss", json={"reason": "other"})
    assert r.status_code == 422 and "note" in r.json()["error"]["message"]  # 其他 needs a word of why
    assert b.post(f"{url}/dismiss", json={"reason": "lunch"}).status_code == 422
    assert server.client("inspector").post(f"{url}/dismiss", json={"reason": "duplicate"}).status_code == 404
    got = b.post(f"{url}/dismiss", json={"reason": "false_alarm", "note": " 红色广告牌 "}).json()
    assert (got["review"], got["review_reason"], got["review_note"]) == ("dismissed", "false_alarm", "红色广告牌")
    assert got["reviewed_by"] == "赵检查" and got["reviewed_at"].endswith("Z")
    assert b.get("/app/api/events?review=none").json()["total"] == 0  # no longer waiting to be looked at
    assert [e["id"] for e in b.get("/app/api/events?review=dismissed").json()["items"]] == [gate["id"]]
    back = b.post(f"{url}/undismiss").json()
    assert back["review"] is None and back["reviewed_by"] is None
    assert b.get("/app/api/events?review=none").json()["total"] == 1
    # dismissed, then found real after all: the inspection overrules the dismissal, and then it cannot be dismissed
    b.post(f"{url}/dismiss", json={"reason": "handled"})
    made = b.post(f"{url}/inspection", json={"scene": "public_venue"})
    assert made.status_code == 201
    after = b.get("/app/api/events").json()["items"][0]
    assert after["review"] == "inspection" and after["inspection_id"] == made.json()["id"]
    r = b.post(f"{url}/dismiss", json={"reason": "false_alarm"})
    assert r.status_code == 409 and "inspection" in r.json()["error"]["message"]
    assert b.post(f"{url}/undismiss").json()["review"] == "inspection"  # undismiss leaves an inspection alone


def test_events_made_inspections_read_as_reviewed(server: AppServer):
    a = server.client("inspector")
    reviewed = {e["camera_id"]: e["review"] for e in a.get("/app/api/events").json()["items"]}
    assert reviewed == {"shop-a": "inspection", "dim-a": "inspection", "old-a": None}
    assert a.get("/app/api/events?review=none").json()["total"] == 1
    assert a.get("/app/api/events?review=maybe").status_code == 422


@pytest.mark.parametrize("where", ["service", "own"])
def test_dismissed_camera_events_are_exported_as_training_feedback(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """误报 is a known negative of the event's class at its box, 已现场处置 a label; 重复 teaches nothing; an event
    made an inspection goes through that inspection, not twice. The events are read from the service database
    (the default) or from a database of their own (``--events-db``)."""
    from inference_service.cli import main
    from inference_service.records.schema import MIGRATIONS
    from inference_service.storage import Database, migrate

    monkeypatch.delenv("HAZARDSCAN_EVENTS_DB", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    events_db = data / "hazardscan.db" if where == "service" else tmp_path / "events.db"
    events = EventStore(events_db)
    frames = {i: fire_photo(seed=60 * i) for i in range(4)}  # corners far apart in colour: four different files
    reviews = {0: ("dismissed", "false_alarm"), 1: ("dismissed", "handled"), 2: ("dismissed", "duplicate"),
               3: ("inspection", None)}  # fmt: skip
    for i, (review, reason) in reviews.items():
        e = replace(
            event(i + 1, org=ORG_A, unit="甲厂"), frame_jpeg=frames[i], frame_box=FIRE_BOX, hazard_id="FIRE-001"
        )
        events.record(e, "closed", notify=False)
        events.set_review(e.id, EventReview(review, reason, "", "u1", T0.timestamp() + i))  # type: ignore[arg-type]
    events.close()
    db = Database(data / "hazardscan.db")
    migrate(db, "records", MIGRATIONS)
    db.close()
    out = tmp_path / "feedback"
    argv = ["feedback", "export", "--out", str(out), "--data-dir", str(data)]
    argv += ["--events-db", str(events_db)] if where == "own" else []
    assert main(argv) == 0, capsys.readouterr().err
    entries = [json.loads(line) for line in (out / "feedback.jsonl").read_text().splitlines()]
    by_sha = {e["sha256"]: e for e in entries}
    negative, label = (by_sha[hashlib.sha256(frames[i]).hexdigest()] for i in (0, 1))
    assert len(entries) == 2 and negative["labelled"] == ["fire"] == label["labelled"]
    assert negative["negatives"] == [["fire", *FIRE_BOX]] and negative["labels"] == []
    assert label["labels"] == [["fire", *FIRE_BOX]] and label["negatives"] == []
    assert (out / negative["image"]).read_bytes() == frames[0] and negative["scene"] == "camera"
    card = json.loads((out / "feedback_card.json").read_text())
    assert card["decisions"] == {"confirmed": 1, "rejected": 1} and card["units"] == {"甲厂": 2}
    missing = ["feedback", "export", "--out", str(out), "--data-dir", str(data), "--events-db", str(tmp_path / "no.db")]
    assert main(missing) == 2 and "no camera events database" in capsys.readouterr().err


def test_camera_counts_per_camera_and_hazard(server: AppServer):
    """After the tests above: org A's shop-a and dim-a made inspections, old-a waits; org B's gate-b was dismissed
    and then made an inspection."""
    a = server.client("inspector")
    rows = a.get("/app/api/events/by-camera").json()
    got = {r["camera_id"]: (r["events"], r["waiting"], r["inspections"], r["false_alarm"]) for r in rows}
    assert got == {"shop-a": (1, 0, 1, 0), "dim-a": (1, 0, 1, 0), "old-a": (1, 1, 0, 0)}
    assert {r["name_zh"] for r in rows} == {"现场明火"} and all(r["false_alarm_share"] in (0.0, None) for r in rows)
    old = next(r for r in rows if r["camera_id"] == "old-a")
    assert old["false_alarm_share"] is None  # nobody has looked at it yet
    a.post(f"/app/api/events/{a.get('/app/api/events?review=none').json()['items'][0]['id']}/dismiss",
           json={"reason": "false_alarm"})  # fmt: skip
    old = next(r for r in a.get("/app/api/events/by-camera").json() if r["camera_id"] == "old-a")
    assert (old["waiting"], old["false_alarm"], old["false_alarm_share"]) == (0, 1, 1.0)
    assert a.get("/app/api/events/by-camera?from=2030-01-01").json() == []
    csv = a.get("/app/api/events/by-camera?format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "camera_id" in csv.text and "old-a" in csv.text
    xlsx = a.get("/app/api/events/by-camera?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert a.get("/app/api/events/by-camera?format=pdf").status_code == 422
    assert a.get("/app/api/events/by-camera?from=yesterday").status_code == 422
    b_rows = server.client("inspector_b").get("/app/api/events/by-camera").json()
    assert [(r["camera_id"], r["inspections"]) for r in b_rows] == [("gate-b", 1)]
