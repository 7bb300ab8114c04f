"""监控告警 in the app: the organisation's camera events as cards, 转为检查 into an inspection whose finding the
inspector confirms into the ledger, and the inspections list's line to them (only where there are cameras).

Real parts: the scanner's events database of tests/test_app_camera_events.py (org A's workshop camera saw a fire;
an event of org A's without its frame; one whose camera has no scene; one of org B's), plus one suspected event of
org A's; the service in its own process reading it; Debian's chromium at a phone viewport. HAZARDSCAN_UX_SHOTS
keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import test_app_camera_events as cams
from _cctv import event
from app_fixtures import FIRE_BOX, ORG_A, AppServer, fire_photo, start_app_server
from browser_helpers import expect, login
from test_app_a11y import CHECK
from test_app_browser import findings, inspection
from test_app_ux_fixes import shot

from inference_service.cctv.store import EventStore

events_db = cams.events_db  # the fixture: the scanner's events of org A's, org B's and an unsited camera
CST = timezone(timedelta(hours=8))
BIG = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(events_db: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The service reading a copy of the scanner's events, with one more of org A's: a suspected, unconfirmed
    fire, older than the others."""
    root = tmp_path_factory.mktemp("events")
    db = root / "events.db"
    with sqlite3.connect(events_db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    store = EventStore(db)
    doubt = event(9, camera_id="yard-a", org=ORG_A, unit="堆场", scene="workshop", suspected=True, unconfirmed=True,
                  started_at=cams.T0.timestamp() - 10800, evidence_jpeg=fire_photo(9))  # fmt: skip
    store.record(replace(doubt, frame_jpeg=fire_photo(10), frame_box=FIRE_BOX), "opened", notify=False)
    store.close()
    with start_app_server(tiny_model_dir, root / "data", HAZARDSCAN_EVENTS_DB=str(db)) as s:
        yield s


def card(page: Any, camera: str) -> Any:
    return page.locator(f"[data-event][data-camera='{camera}']")


def events_view(page: Any, server: AppServer, who: str = "inspector") -> None:
    """Log in as ``who`` and open 监控告警 from the inspections list's line."""
    login(page, server, who)
    page.locator("[data-events-line]").click()
    expect(page.locator("h1")).to_have_text("监控告警")


def local_time(iso: str) -> str:
    d = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(CST)
    return d.strftime("%Y/%m/%d %H:%M")  # zh-CN's toLocaleString with 2-digit parts


def test_the_list_has_a_line_to_the_camera_events(server: AppServer, phone: Any) -> None:
    """检查记录: “监控告警 4 条，3 条进行中 ›” under 新建检查 leads to the events; the 检查 tab stays current."""
    page = phone(viewport=BIG)
    login(page, server, "inspector")
    line = page.locator("[data-events-line]")
    expect(line).to_have_text("监控告警 4 条，3 条进行中›")
    expect(line).to_have_attribute("href", "#/events")
    shot(page, "events-list-line")
    small = phone()  # 360×640
    login(small, server, "inspector")
    expect(small.locator("[data-events-line]")).to_be_visible()
    shot(small, "events-list-line-360")
    line.click()
    expect(page).to_have_url(f"{server.base_url}/app/#/events")
    expect(page.locator("h1")).to_have_text("监控告警")
    expect(page.locator("#nav a[aria-current=page]")).to_have_attribute("href", "#/inspections")
    page.click("#lang")
    expect(page.locator("h1")).to_have_text("Camera alerts")
    page.goto(f"{server.base_url}/app/#/inspections")
    expect(page.locator("[data-events-line]")).to_have_text("4 camera alert(s), 3 ongoing›")
    assert page.errors == [] and small.errors == []


def test_the_events_view_shows_the_organisations_events_only(server: AppServer, phone: Any) -> None:
    """Each card: the evidence (lazy; a tap opens it large), the hazard and its severity, 疑似 / 待确认 where so, the
    unit, the camera, the local time, 进行中 / 已结束; the chips filter; org B sees its own event only."""
    page = phone(viewport=BIG, timezone_id="Asia/Shanghai")
    events_view(page, server)
    cards = page.locator("[data-event]")
    expect(cards).to_have_count(4)
    assert cards.evaluate_all("els => els.map((e) => e.dataset.camera)") == ["shop-a", "old-a", "dim-a", "yard-a"]
    shop = card(page, "shop-a")
    got = server.client("inspector").get("/app/api/events").json()["items"][0]
    expect(shop.locator("h3")).to_have_text("现场明火")
    expect(shop.locator(".sev")).to_have_class("sev sev-critical")
    expect(shop.locator("[data-unit]")).to_have_text("阳泉某化工厂")
    expect(shop).to_contain_text("摄像头 shop-a")
    expect(shop.locator("[data-time]")).to_have_text(local_time(got["started_at"]))
    expect(shop.locator("[data-ev-status]")).to_have_text("已结束")
    expect(shop.locator("[data-act=inspect]")).to_have_text("转为检查")
    expect(shop.locator("[data-mark]")).to_have_count(0)
    expect(card(page, "dim-a").locator("[data-ev-status]")).to_have_text("进行中")
    yard = card(page, "yard-a")
    expect(yard.locator("[data-mark=suspected]")).to_have_text("疑似")
    expect(yard.locator("[data-mark=unconfirmed]")).to_have_text("待确认")
    yard.scroll_into_view_if_needed()
    shot(page, "events-view-marks")
    img = shop.locator("img[data-evidence]")
    expect(img).to_have_attribute("src", f"{got['evidence_url']}?max_side=240")  # a thumbnail, not the whole image
    expect(img).to_have_attribute("loading", "lazy")
    page.wait_for_function("el => el.complete && el.naturalWidth === 240", arg=img.element_handle())
    assert page.evaluate(CHECK) == []
    shot(page, "events-view")
    shop.get_by_role("button", name="监控画面：现场明火（点按放大）").click()
    expect(page.locator("dialog.lightbox img")).to_have_attribute("src", got["evidence_url"])
    page.get_by_role("button", name="关闭").click()
    expect(page.locator("dialog.lightbox")).to_have_count(0)

    page.get_by_role("button", name="进行中").click()
    expect(cards).to_have_count(3)
    expect(page.locator("[data-event][data-status=closed]")).to_have_count(0)
    page.get_by_role("button", name="已结束").click()
    expect(cards).to_have_count(1)
    expect(card(page, "shop-a")).to_be_visible()
    page.get_by_role("button", name="全部").click()
    expect(cards).to_have_count(4)
    small = phone(timezone_id="Asia/Shanghai")  # 360×640
    events_view(small, server)
    expect(small.locator("[data-event]")).to_have_count(4)
    shot(small, "events-view-360")
    small.click("#lang")
    expect(card(small, "old-a").locator("[data-no-frame]")).to_contain_text("cannot become an inspection")
    shot(small, "events-view-360-en")

    b = phone()
    events_view(b, server, "inspector_b")
    expect(b.locator("[data-event]")).to_have_count(1)
    expect(card(b, "gate-b").locator("[data-unit]")).to_have_text("B 区某商场")
    assert page.errors == [] and small.errors == [] and b.errors == []


def test_an_event_without_its_frame_says_why_it_cannot_be_converted(server: AppServer, phone: Any) -> None:
    page = phone()
    events_view(page, server)
    old = card(page, "old-a")
    expect(old.locator("[data-no-frame]")).to_have_text("未保存原始画面，无法转为检查")
    expect(old.locator("button[data-act], a[data-act]")).to_have_count(0)
    assert page.errors == []


def test_an_event_becomes_an_inspection_whose_finding_is_confirmed_into_the_ledger(
    server: AppServer, phone: Any
) -> None:
    """转为检查 waits busy for the answer, then opens the new inspection (its photo the camera's frame, 监控画面) with
    the camera's 现场明火 待确认; 确认
    books it to the ledger; back in 监控告警 the card says 查看检查 and leads to that inspection."""
    page = phone(viewport=BIG)
    events_view(page, server)
    held: list[Any] = []
    page.route("**/app/api/events/*/inspection", lambda route: held.append(route))
    btn = card(page, "shop-a").locator("[data-act=inspect]")
    btn.click()
    expect(btn).to_be_disabled()
    expect(btn).to_have_attribute("aria-busy", "true")
    held[0].continue_()
    page.unroute("**/app/api/events/*/inspection")
    page.wait_for_url("**/app/#/inspection/*")
    iid = page.url.rsplit("/", 1)[1]
    c = server.client("inspector")
    assert inspection(c, iid)["unit"]["name"] == "阳泉某化工厂"
    fire = page.locator("[data-hazard=FIRE-001]")
    expect(fire).to_have_attribute("data-status", "pending")
    expect(fire.locator("h3")).to_contain_text("现场明火")
    expect(page.locator("[data-taken-source=camera]")).to_contain_text("（监控画面）")
    shot(page, "events-inspection")
    fire.locator("[data-act=confirm]").click()
    expect(fire).to_have_attribute("data-status", "confirmed")
    (f,) = findings(c, iid).values()
    item = c.get(f"/app/api/ledger/{f['ledger_item_id']}").json()
    assert item["hazard_id"] == "FIRE-001" and item["unit"]["name"] == "阳泉某化工厂" and item["status"] == "open"

    page.go_back()
    view = card(page, "shop-a").locator("[data-act=view-insp]")
    expect(view).to_have_text("查看检查")
    expect(view).to_have_attribute("href", f"#/inspection/{iid}")
    expect(card(page, "shop-a").locator("[data-act=inspect]")).to_have_count(0)
    shot(page, "events-view-converted")
    view.click()
    expect(page).to_have_url(f"{server.base_url}/app/#/inspection/{iid}")
    expect(page.locator("[data-hazard=FIRE-001]")).to_have_attribute("data-status", "confirmed")
    assert page.errors == []


def test_the_scene_is_asked_for_when_the_camera_does_not_imply_one(server: AppServer, phone: Any) -> None:
    """dim-a's camera has no scene: 转为检查 asks for the inspection's scene, then makes the inspection in it."""
    page = phone(viewport=BIG)
    events_view(page, server)
    card(page, "dim-a").locator("[data-act=inspect]").click()
    sheet = page.locator("dialog[data-ask]")
    expect(sheet.locator("h2")).to_have_text("选择检查场景")
    expect(sheet.locator("[data-answer=public_venue]")).to_have_text("人员密集场所")
    expect(sheet.locator("[data-answer]")).to_have_count(8)  # the seven scenes and 取消
    assert page.evaluate(CHECK) == []
    shot(page, "events-scene-picker")
    sheet.locator("[data-answer=public_venue]").click()
    page.wait_for_url("**/app/#/inspection/*")
    iid = page.url.rsplit("/", 1)[1]
    got = inspection(server.client("inspector"), iid)
    assert got["scene"] == "public_venue" and got["unit"]["name"] == "暗处"
    expect(page.locator("[data-hazard=FIRE-001]")).to_have_attribute("data-status", "pending")
    assert page.errors == []


def test_without_cameras_the_list_has_no_line(tiny_model_dir: Path, tmp_path: Path, phone: Any) -> None:
    """A service reading no events database: the list asks once, and shows no line; 监控告警 opened by its
    address says that no cameras are connected."""
    with start_app_server(tiny_model_dir, tmp_path / "data") as s:
        page = phone()
        with page.expect_response(lambda r: "/app/api/events" in r.url) as answer:
            login(page, s, "inspector")
        assert answer.value.json()["cameras"] is False
        expect(page.locator(".item, .empty").first).to_be_visible()
        expect(page.locator("[data-events-line]")).to_be_hidden()
        page.goto(f"{s.base_url}/app/#/events")
        expect(page.locator(".empty")).to_have_text("未接入监控摄像头")
        assert page.errors == []
