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
from browser_helpers import expect, login, wait_until
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
    """检查记录: “监控告警 · 待处理 4 ›” under 新建检查 (how many nobody has looked at yet) leads to the events; the
    检查 tab stays current."""
    page = phone(viewport=BIG)
    login(page, server, "inspector")
    line = page.locator("[data-events-line]")
    expect(line).to_have_text("监控告警 · 待处理 4›")
    expect(line.locator("[data-todo]")).to_have_text("待处理 4")
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
    expect(page.locator("[data-events-line]")).to_have_text("Camera alerts · 4 to review›")
    assert page.errors == [] and small.errors == []


def test_the_events_view_shows_the_organisations_events_only(server: AppServer, phone: Any) -> None:
    """Each card: the evidence (lazy; a tap opens it large), the hazard and its severity, 疑似 / 待确认 where so, the
    unit, the camera, the local time, 进行中 / 已结束, 忽略 beside 转为检查; 待处理 is the chip first chosen, the
    others filter; org B sees its own event only."""
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
    expect(shop.locator("[data-act=dismiss]")).to_have_text("忽略")
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

    chips = page.locator(".chips .chip")
    expect(chips).to_have_text(["待处理", "已转检查", "已忽略", "全部"])
    expect(page.locator(".chip[aria-pressed=true]")).to_have_text("待处理")
    expect(page.locator("[data-total]")).to_have_text("共 4 条")
    page.get_by_role("button", name="已忽略").click()
    expect(page.locator(".empty")).to_have_text("没有符合条件的告警")
    expect(cards).to_have_count(0)
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
    expect(old.locator("[data-act=inspect], [data-act=view-insp]")).to_have_count(0)
    expect(old.locator("[data-act=dismiss]")).to_be_visible()  # it can still be dismissed
    assert page.errors == []


def test_an_event_becomes_an_inspection_whose_finding_is_confirmed_into_the_ledger(
    server: AppServer, phone: Any
) -> None:
    """转为检查 waits busy for the answer, then opens the new inspection (its photo the camera's frame, 监控画面) with
    the camera's 现场明火 待确认; 确认
    books it to the ledger; back in 监控告警 it has left 待处理, and under 已转检查 the card says 已转检查 (who, when)
    and 查看检查, which leads to that inspection."""
    page = phone(viewport=BIG)
    events_view(page, server)
    held: list[Any] = []
    page.route("**/app/api/events/*/inspection", lambda route: held.append(route))
    btn = card(page, "shop-a").locator("[data-act=inspect]")
    btn.click()
    expect(btn).to_be_disabled()
    expect(btn).to_have_attribute("aria-busy", "true")
    wait_until(page, lambda: held, what="the held request")  # Playwright runs route handlers in its own calls
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
    expect(page.locator("[data-event]").first).to_be_visible()
    expect(card(page, "shop-a")).to_have_count(0)
    page.get_by_role("button", name="已转检查").click()
    expect(card(page, "shop-a").locator("[data-review-line]")).to_contain_text("已转检查（张检查 ")
    expect(card(page, "shop-a").locator("[data-act=dismiss]")).to_have_count(0)
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
    """No camera of the organisation has raised an event (the service's database holds none): the list asks
    once, and shows no line; 监控告警 opened by its address says that no cameras are connected."""
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


def short_time(iso: str, en: bool = False) -> str:
    """zh-CN's (or en-GB's) month, day, hour and minute of ``iso``, as a card says when it was reviewed."""
    d = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(CST)
    return d.strftime("%d/%m, %H:%M" if en else "%m/%d %H:%M")


def review_of(server: AppServer, camera: str) -> dict[str, Any]:
    """The org A event of ``camera`` as the server has it."""
    (e,) = [e for e in server.client("inspector").get("/app/api/events").json()["items"] if e["camera_id"] == camera]
    return e


def test_a_false_alarm_is_dismissed_from_the_waiting_list_and_brought_back(server: AppServer, phone: Any) -> None:
    """忽略 on a 待处理 card asks why; 误报 with a note waits busy, then the card leaves 待处理 (its count too); 已忽略
    lists it with 已忽略：误报（张检查 <time>）「note」, as the server does; the list's line counts one fewer 待处理.
    撤销忽略 there puts it back among 待处理."""
    c = server.client("inspector")
    n = c.get("/app/api/events?review=none").json()["total"]
    assert n >= 2
    page = phone(viewport=BIG, timezone_id="Asia/Shanghai")
    login(page, server, "inspector")
    line = page.locator("[data-events-line]")
    expect(line).to_have_text(f"监控告警 · 待处理 {n}›")
    line.click()
    yard = card(page, "yard-a")
    yard.locator("[data-act=dismiss]").click()
    sheet = page.locator("dialog[data-ask]")
    expect(sheet.locator("h2")).to_have_text("忽略此告警")
    expect(sheet.locator("[data-answer]")).to_have_text(["误报", "重复", "已现场处置", "其他", "取消"])
    assert page.evaluate(CHECK) == []
    shot(page, "events-dismiss-sheet")
    sheet.get_by_label("备注（选“其他”时必填）").fill("反光，非明火")
    held: list[Any] = []
    page.route("**/app/api/events/*/dismiss", lambda route: held.append(route))
    sheet.locator("[data-answer=false_alarm]").click()
    expect(sheet).to_have_count(0)
    busy = yard.locator("[data-act=dismiss]")
    expect(busy).to_be_disabled()
    expect(busy).to_have_attribute("aria-busy", "true")
    expect(yard.locator("[data-act=inspect]")).to_be_disabled()
    wait_until(page, lambda: held, what="the held request")  # Playwright runs route handlers in its own calls
    held[0].continue_()
    page.unroute("**/app/api/events/*/dismiss")
    expect(yard).to_have_count(0)
    expect(page.locator("[data-total]")).to_have_text(f"共 {n - 1} 条")
    expect(page.locator("#toast")).to_have_text("已忽略：误报")
    (ev,) = [e for e in c.get("/app/api/events?review=dismissed").json()["items"] if e["camera_id"] == "yard-a"]
    assert (ev["review"], ev["review_reason"], ev["review_note"], ev["reviewed_by"]) == (
        "dismissed",
        "false_alarm",
        "反光，非明火",
        "张检查",
    )

    page.get_by_role("button", name="已忽略").click()
    expect(page.locator("[data-event]")).to_have_count(1)
    expect(yard.locator("[data-review-line]")).to_have_text(
        f"已忽略：误报（张检查 {short_time(ev['reviewed_at'])}）「反光，非明火」"
    )
    expect(yard.locator("[data-act=dismiss]")).to_have_count(0)
    expect(yard.locator("[data-act=inspect]")).to_be_visible()  # it can still be made an inspection
    assert page.evaluate(CHECK) == []
    shot(page, "events-dismissed")
    small = phone(timezone_id="Asia/Shanghai")  # 360×640
    events_view(small, server)
    expect(small.locator("[data-events-line]")).to_have_count(0)
    small.get_by_role("button", name="已忽略").click()
    card(small, "yard-a").scroll_into_view_if_needed()
    shot(small, "events-dismissed-360")

    page.goto(f"{server.base_url}/app/#/inspections")
    expect(line).to_have_text(f"监控告警 · 待处理 {n - 1}›")
    shot(page, "events-list-line-after")
    line.click()
    page.get_by_role("button", name="已忽略").click()
    undo = yard.locator("[data-act=undismiss]")
    expect(undo).to_have_text("撤销忽略")
    undo.click()
    expect(yard).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("已撤销忽略，回到待处理")
    expect(page.locator(".empty")).to_have_text("没有符合条件的告警")
    assert review_of(server, "yard-a")["review"] is None
    page.get_by_role("button", name="待处理").click()
    expect(yard.locator("[data-act=dismiss]")).to_be_visible()
    expect(yard.locator("[data-act=inspect]")).to_be_visible()
    expect(page.locator("[data-total]")).to_have_text(f"共 {n} 条")
    assert page.errors == [] and small.errors == []


def test_other_needs_a_note_and_under_all_the_card_says_what_became_of_it(server: AppServer, phone: Any) -> None:
    """其他 without a note: the sheet stays open and says so, and nothing changes; with one, under 全部 the card
    stays and says 已忽略：其他（…）「note」 with 撤销忽略, which makes it 待处理 again in place."""
    page = phone(timezone_id="Asia/Shanghai")  # 360×640
    events_view(page, server)
    page.get_by_role("button", name="全部").click()
    old = card(page, "old-a")
    old.locator("[data-act=dismiss]").click()
    sheet = page.locator("dialog[data-ask]")
    sheet.locator("[data-answer=other]").click()
    expect(sheet.locator("[data-ask-err]")).to_have_text("选择“其他”时请在备注中写明原因")
    expect(sheet).to_be_visible()
    expect(sheet.locator("#ev-note")).to_be_focused()
    shot(page, "events-dismiss-other-360")
    assert review_of(server, "old-a")["review"] is None
    sheet.locator("[data-answer='']").click()
    expect(sheet).to_have_count(0)
    expect(old).to_have_attribute("data-review", "none")
    assert review_of(server, "old-a")["review"] is None

    old.locator("[data-act=dismiss]").click()
    sheet.locator("#ev-note").fill("摄像头检修")
    sheet.locator("[data-answer=other]").click()
    expect(old).to_have_attribute("data-review", "dismissed")
    ev = review_of(server, "old-a")
    assert (ev["review_reason"], ev["review_note"]) == ("other", "摄像头检修")
    expect(old.locator("[data-review-line]")).to_have_text(
        f"已忽略：其他（张检查 {short_time(ev['reviewed_at'])}）「摄像头检修」"
    )
    expect(old.locator("[data-no-frame], [data-act=dismiss]")).to_have_count(0)
    old.scroll_into_view_if_needed()
    shot(page, "events-dismissed-all-360")
    old.locator("[data-act=undismiss]").click()
    expect(old).to_have_attribute("data-review", "none")
    expect(old.locator("[data-act=dismiss]")).to_be_visible()
    expect(old.locator("[data-no-frame]")).to_be_visible()
    assert review_of(server, "old-a")["review"] is None
    assert page.errors == []


def test_with_nothing_waiting_the_line_says_so_and_a_stale_card_says_why_it_cannot_be_dismissed(
    server: AppServer, phone: Any
) -> None:
    """An event made an inspection meanwhile (by a colleague): 忽略 on the card still shown says the server's why,
    and the card leaves 待处理 where it no longer belongs; once every event is reviewed, the list's line says
    无待处理."""
    c = server.client("inspector")
    page = phone()
    events_view(page, server)
    yard = card(page, "yard-a")
    expect(yard.locator("[data-act=dismiss]")).to_be_visible()
    c.post(f"/app/api/events/{review_of(server, 'yard-a')['id']}/inspection", json={}).raise_for_status()
    yard.locator("[data-act=dismiss]").click()
    page.locator("dialog[data-ask] [data-answer=duplicate]").click()
    expect(page.locator("#toast")).to_have_text("该事件已转为检查，请在检查中确认或标为误报")
    expect(yard).to_have_count(0)

    waiting = c.get("/app/api/events?review=none").json()["items"]
    for e in waiting:
        c.post(f"/app/api/events/{e['id']}/dismiss", json={"reason": "handled"}).raise_for_status()
    page.goto(f"{server.base_url}/app/#/inspections")
    line = page.locator("[data-events-line]")
    expect(line).to_have_text("监控告警 · 无待处理›")
    shot(page, "events-list-line-none")
    line.click()
    expect(page.locator(".empty")).to_have_text("没有待处理的告警")
    for e in waiting:
        c.post(f"/app/api/events/{e['id']}/undismiss").raise_for_status()
    assert page.errors == []


def add_event(server: AppServer, i: int, camera: str) -> str:
    """One more 现场明火 of org A's with its frame, newer than the others (the scanner writing meanwhile): its id."""
    store = EventStore(server.data_dir.parent / "events.db")
    e = event(i, camera_id=camera, org=ORG_A, unit="门岗", scene="workshop", started_at=cams.T0.timestamp() + 60 * i,
              evidence_jpeg=fire_photo(i))  # fmt: skip
    store.record(replace(e, frame_jpeg=fire_photo(i + 1), frame_box=FIRE_BOX), "opened", notify=False)
    store.close()
    return e.id


ONE_ROW = (
    "el => new Set([...el.querySelectorAll('.chip, .st, button, a')].map((b) => Math.round("
    "b.getBoundingClientRect().top + b.getBoundingClientRect().height / 2))).size"
)


def one_row(el: Any) -> bool:
    """Whether ``el``'s status and buttons sit on one row (their middles level)."""
    return bool(el.evaluate(ONE_ROW) == 1)


def test_in_english_the_chips_and_a_cards_buttons_fit_on_one_row_and_dismiss_names_the_event(
    server: AppServer, phone: Any
) -> None:
    """At 390 and 360 px in English, as in Chinese: the four chips on one row; a 待处理 card's status, Dismiss and
    转为检查 on one row, and an 已忽略 card's status, 撤销忽略 and 转为检查. The 忽略 sheet names the hazard, the
    camera and when."""
    add_event(server, 21, "gate-a")
    c = server.client("inspector")
    (late,) = [e for e in c.get("/app/api/events?review=none").json()["items"] if e["camera_id"] == "gate-a"]
    for size, tag in ((BIG, ""), (None, "-360")):
        page = phone(**({"viewport": size} if size else {}), timezone_id="Asia/Shanghai")
        events_view(page, server)
        for lang in ("zh", "en"):
            if lang == "en":
                page.click("#lang")
                expect(page.locator("h1")).to_have_text("Camera alerts")
            chips = page.locator(".chips")
            assert chips.evaluate(ONE_ROW) == 1, (lang, tag)
            gate = card(page, "gate-a")
            expect(gate.locator("[data-act=inspect]")).to_be_visible()
            assert one_row(gate.locator(".card-foot")), (lang, tag)
            shot(page, f"events-buttons-{lang}{tag}")
        gate.locator("[data-act=dismiss]").click()
        sheet = page.locator("dialog[data-ask]")
        expect(sheet.locator("[data-ask-event]")).to_have_text(
            f"Open fire on site · Camera gate-a · {short_time(late['started_at'], en=True)}"
        )
        shot(page, f"events-dismiss-sheet-en{tag}")
        sheet.locator("[data-answer='']").click()
        page.click("#lang")
        gate.locator("[data-act=dismiss]").click()
        named = f"现场明火 · 摄像头 gate-a · {short_time(late['started_at'])}"
        expect(sheet.locator("[data-ask-event]")).to_have_text(named)
        shot(page, f"events-dismiss-sheet{tag}")
        sheet.locator("[data-answer=handled]").click()
        expect(gate).to_have_count(0)
        page.locator(".chip[data-filter=dismissed]").click()
        expect(gate.locator("[data-act=undismiss]")).to_be_visible()
        assert one_row(gate.locator(".card-foot")), tag
        page.click("#lang")
        expect(gate.locator("[data-act=undismiss]")).to_be_visible()
        shot(page, f"events-dismissed-en{tag}")
        assert one_row(gate.locator(".card-foot")), tag
        gate.locator("[data-act=undismiss]").click()
        expect(gate).to_have_count(0)
        assert page.errors == []


def test_a_dismissed_event_is_converted_directly_and_back_returns_to_the_chip_chosen(
    server: AppServer, phone: Any
) -> None:
    """An 已忽略 card offers 转为检查 beside 撤销忽略 (the inspection overrules the dismissal); the chip chosen is in
    the address, so Back from the inspection returns to 已忽略, where the event no longer is, and from 查看检查 to
    已转检查."""
    eid = add_event(server, 23, "door-a")
    c = server.client("inspector")
    c.post(f"/app/api/events/{eid}/dismiss", json={"reason": "duplicate"}).raise_for_status()
    page = phone(viewport=BIG)
    events_view(page, server)
    page.get_by_role("button", name="已忽略").click()
    expect(page).to_have_url(f"{server.base_url}/app/#/events?review=dismissed")
    door = card(page, "door-a")
    expect(door.locator("[data-act=undismiss]")).to_have_text("撤销忽略")
    expect(door.locator("[data-act=inspect]")).to_have_text("转为检查")
    shot(page, "events-dismissed-convert")
    door.locator("[data-act=inspect]").click()
    page.wait_for_url("**/app/#/inspection/*")
    iid = page.url.rsplit("/", 1)[1]
    expect(page.locator("[data-hazard=FIRE-001]")).to_have_attribute("data-status", "pending")
    assert review_of(server, "door-a")["review"] == "inspection"
    page.go_back()
    expect(page).to_have_url(f"{server.base_url}/app/#/events?review=dismissed")
    expect(page.locator(".chip[aria-pressed=true]")).to_have_text("已忽略")
    expect(page.locator("[data-total]")).to_be_visible()
    expect(door).to_have_count(0)
    page.get_by_role("button", name="已转检查").click()
    expect(door.locator("[data-review-line]")).to_contain_text("已转检查")
    door.locator("[data-act=view-insp]").click()
    expect(page).to_have_url(f"{server.base_url}/app/#/inspection/{iid}")
    page.go_back()
    expect(page.locator(".chip[aria-pressed=true]")).to_have_text("已转检查")
    expect(door.locator("[data-act=view-insp]")).to_be_visible()
    page.get_by_role("button", name="待处理").click()
    expect(page).to_have_url(f"{server.base_url}/app/#/events")
    page.goto(f"{server.base_url}/app/#/events?review=all")
    expect(page.locator(".chip[aria-pressed=true]")).to_have_text("全部")
    expect(door).to_be_visible()
    expect(page.locator("#nav a[aria-current=page]")).to_have_attribute("href", "#/inspections")
    assert page.errors == []


def test_a_stale_card_under_all_shows_the_events_real_state_after_the_servers_why(
    server: AppServer, phone: Any
) -> None:
    """Under 全部, 忽略 on an event a colleague made an inspection meanwhile: the server's why stays on the card,
    which now says 已转检查 with 查看检查 instead of its stale buttons."""
    eid = add_event(server, 25, "dock-a")
    page = phone(viewport=BIG)
    events_view(page, server)
    page.get_by_role("button", name="全部").click()
    dock = card(page, "dock-a")
    expect(dock.locator("[data-act=dismiss]")).to_be_visible()
    server.client("inspector").post(f"/app/api/events/{eid}/inspection", json={}).raise_for_status()
    dock.locator("[data-act=dismiss]").click()
    page.locator("dialog[data-ask] [data-answer=duplicate]").click()
    expect(dock).to_have_attribute("data-review", "inspection")
    expect(dock.locator(".err")).to_have_text("该事件已转为检查，请在检查中确认或标为误报")
    expect(dock.locator("[data-act=dismiss], [data-act=inspect]")).to_have_count(0)
    expect(dock.locator("[data-act=view-insp]")).to_be_visible()
    shot(page, "events-stale-refreshed")
    assert page.errors == []
