"""The ledger's history and counts in the screen's language, and box labels that keep clear of one another, in a
real browser at 360×640 (and 390×844).

Debian's chromium against a real server (tests/app_fixtures.py); each test makes its own items.
HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _cctv import event
from app_fixtures import ORG_A, AppServer, fire_photo, start_app_server
from browser_helpers import expect, login, wait_until
from test_app_browser import submit_offline_inspection
from test_app_inspection_flow import pending_inspection
from test_app_ux_fixes import ledger_card, ledger_item, ledger_of, rectified, shot
from test_app_ux_review6 import LABELS_CLASHING, LABELS_OUTSIDE

from inference_service.cctv.store import EventStore

CJK = re.compile(r"[\u4e00-\u9fff]")


def history(page: Any, item: dict[str, Any]) -> list[str]:
    card = ledger_card(page, item)
    card.locator(".card-foot details > summary").click()
    lines = card.locator("ol.hist li")
    expect(lines.first).to_be_visible()
    lines.last.scroll_into_view_if_needed()
    return [s.strip() for s in lines.all_inner_texts()]


def test_the_ledger_history_and_count_speak_the_screens_language(app_server: AppServer, phone: Any) -> None:
    """The notes the server writes in both languages ("确认隐患，登记入账 (confirmed)", the AI re-check's finding)
    show only the screen's half; the count says 共 1 条 in Chinese and "1 item" (not "1 items") in English."""
    unit = "历史语言测试单位"
    item = rectified(app_server, ledger_item(app_server, unit, 91), fire_photo(92))
    assert item["ai_recheck"] == "failed"  # its note is bilingual and carries a class in brackets
    page = phone()
    ledger_of(page, app_server, "supervisor", unit)
    expect(page.locator("[data-ledger]")).to_have_count(1)
    expect(page.get_by_text("共 1 条")).to_be_visible()
    zh = history(page, item)
    assert len(zh) == 3, zh
    assert zh[0].endswith("→ 待整改：确认隐患，登记入账"), zh
    assert zh[2].endswith("[AI 复查：整改照片中仍识别到该隐患（FIRE-001）]"), zh
    assert not any(re.search(r"confirmed|the model", x) for x in zh), zh
    shot(page, "history-zh")

    page.click("#lang")
    expect(page.get_by_text("1 item", exact=True)).to_be_visible()
    en = history(page, item)
    assert en[0].endswith(": confirmed"), en
    assert any("AI re-check: the model still sees FIRE-001 in the rectification photo" in x for x in en), en
    people = "|".join(app_server.users[who][2] for who in ("inspector", "supervisor"))  # names are data
    assert not [x for x in en if CJK.search(re.sub(people, "", x))], en
    shot(page, "history-en")


def test_labels_of_boxes_close_together_do_not_cover_one_another(app_server: AppServer, phone: Any) -> None:
    """Three hazards boxed side by side with their tops level (and the AI's fire): each label stays readable, none
    covers another, all inside the photo, at 360 and 390 px, in Chinese and in English."""
    c = app_server.client("inspector")
    iid = pending_inspection(app_server, "框标签重叠测试单位", 93)
    (photo,) = c.get(f"/app/api/inspections/{iid}").json()["photos"]
    w, h = photo["width"], photo["height"]
    for hazard, box in (
        ("HOT-001", [w * 0.30, h * 0.40, w * 0.40, h * 0.55]),
        ("FIRE-004", [w * 0.42, h * 0.41, w * 0.52, h * 0.56]),
        ("EBIKE-002", [w * 0.34, h * 0.58, w * 0.46, h * 0.70]),
    ):
        c.post(f"/app/api/photos/{photo['id']}/findings", json={"hazard_id": hazard, "box": box}).raise_for_status()
    for size in ({"width": 360, "height": 640}, {"width": 390, "height": 844}):
        page = phone(viewport=size)
        login(page, app_server, "inspector")
        page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
        frame = page.locator(".photo").first
        expect(frame.locator(".box span")).to_have_count(4)
        for lang in ("zh", "en"):
            if lang == "en":
                page.click("#lang")
                expect(frame.locator(".box span").first).not_to_contain_text("现场")
                frame = page.locator(".photo").first
            page.wait_for_function("() => [...document.querySelectorAll('.photo img')].every((i) => i.complete)")
            assert frame.evaluate(LABELS_CLASHING) == [], (size, lang)
            assert frame.evaluate(LABELS_OUTSIDE) == [], (size, lang)
            frame.scroll_into_view_if_needed()
            shot(page, f"labels-close-{size['width']}-{lang}")
        assert page.errors == []


def test_camera_alerts_page_by_twenty_and_a_dismissal_skips_none(
    tiny_model_dir: Path, tmp_path: Path, phone: Any
) -> None:
    """监控告警 with 25 events to review: 20 cards, 共 25 条 and 更多; one dismissed from the first page leaves it
    (共 24 条); 更多 then brings the other four, newest first, none twice and none skipped, and goes."""
    db = tmp_path / "events.db"
    store = EventStore(db)
    t0 = datetime(2026, 12, 1, 8, tzinfo=UTC).timestamp()
    for i in range(25):
        store.record(event(i, camera_id=f"cam-{i:02d}", org=ORG_A, unit="分页测试单位", started_at=t0 + 60 * i,
                           evidence_jpeg=fire_photo(i)), "opened", notify=False)  # fmt: skip
    store.close()
    newest_first = [f"ev{i}" for i in reversed(range(25))]
    with start_app_server(tiny_model_dir, tmp_path / "data", HAZARDSCAN_EVENTS_DB=str(db)) as server:
        page = phone()
        login(page, server, "inspector")
        page.goto(f"{server.base_url}/app/#/events")
        cards = page.locator("[data-event]")
        expect(cards).to_have_count(20)
        expect(page.get_by_text("共 25 条")).to_be_visible()
        more = page.get_by_role("button", name="更多")
        expect(more).to_be_visible()
        assert cards.evaluate_all("els => els.map((e) => e.dataset.event)") == newest_first[:20]
        third = page.locator("[data-event=ev22]")
        third.locator("[data-act=dismiss]").click()
        page.locator("dialog[data-ask] [data-answer=false_alarm]").click()
        expect(third).to_have_count(0)
        expect(page.get_by_text("共 24 条")).to_be_visible()
        more.click()
        expect(cards).to_have_count(24)
        assert cards.evaluate_all("els => els.map((e) => e.dataset.event)") == [e for e in newest_first if e != "ev22"]
        expect(more).to_be_hidden()
        assert page.errors == []


@pytest.mark.parametrize("answer", ["401", "list"])
def test_a_late_answer_for_a_screen_left_behind_does_not_take_the_inspection_away(
    app_server: AppServer, phone: Any, answer: str
) -> None:
    """The inspections list's request is slow; the inspector opens an inspection meanwhile and the session ends:
    neither the list's late 401 nor, after a late list, the 401s of the lines beside it (整改跟踪, 监控告警) take
    the inspection off the screen; a tap there then leads to the login, which says the tap was not saved. Before,
    they threw the inspector to the login from a screen they had left (the flaky expired-session test)."""
    iid = pending_inspection(app_server, f"迟到应答测试单位{answer}", 95)
    page = phone()
    login(page, app_server, "inspector")
    expect(page.locator("a[data-insp]").first).to_be_visible()
    held: list[Any] = []
    page.route("**/app/api/inspections?limit=*", lambda route: held.append(route))
    page.click("#nav a[href='#/ledger']")
    page.click("#nav a[href='#/inspections']")  # the list asks again: held
    wait_until(page, lambda: held, what="the list's request")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    card = page.locator("[data-hazard=FIRE-001]")
    expect(card).to_have_attribute("data-status", "pending")
    page.context.clear_cookies()
    if answer == "401":
        held[0].fulfill(status=401, json={"error": {"code": "not_authenticated", "message": "请先登录"}})
    else:  # the list goes on and asks for its lines, without the session
        with page.expect_response("**/app/api/ledger/summary") as line:
            held[0].fulfill(status=200, json={"items": [], "total": 0})
        assert line.value.status == 401
    page.wait_for_timeout(300)
    expect(card).to_be_visible()
    expect(page.locator("#u")).to_have_count(0)
    card.locator("[data-act=reject]").click()
    expect(page.locator("[data-expired]")).to_contain_text("刚才的操作未保存")
    assert page.errors == []


def test_the_list_leads_to_what_is_overdue_and_what_waits_for_review(app_server: AppServer, phone: Any) -> None:
    """整改跟踪: the inspections list says how many items are past their deadline and not closed (隐患台账 · 逾期未改 N
    条) and, to supervisors, how many rectifications wait for their review; each line opens the ledger with that chip
    chosen (kept in the address, so Back from an inspection returns to it); an item closed late is not counted."""
    late = ledger_item(app_server, "逾期跟踪测试单位", 96, deadline="2020-01-31")
    rectified(app_server, ledger_item(app_server, "复查跟踪测试单位", 97), fire_photo(98))
    summary = app_server.client("inspector").get("/app/api/ledger/summary").json()
    assert summary["overdue"] >= 1 and summary["pending_review"] >= 1

    page = phone()
    login(page, app_server, "inspector")
    overdue = page.locator("[data-todo=overdue]")
    expect(overdue).to_have_text(f"隐患台账 · 逾期未改 {summary['overdue']} 条›")
    expect(page.locator("[data-todo=pending_review]")).to_have_count(0)  # inspectors do not review
    shot(page, "todo-lines-inspector")
    overdue.click()
    expect(page).to_have_url(re.compile(r"#/ledger\?status=overdue$"))
    expect(page.locator("[data-chip=overdue]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#nav a[aria-current=page]")).to_have_attribute("href", "#/ledger")
    expect(page.locator("[data-ledger]")).to_have_count(summary["overdue"])
    expect(page.get_by_text(f"共 {summary['overdue']} 条")).to_be_visible()
    assert all(s != "closed" for s in page.locator("[data-ledger]").evaluate_all("e => e.map((x) => x.dataset.status)"))
    ledger_card(page, late).get_by_role("link", name="查看检查记录").click()
    expect(page).to_have_url(re.compile(r"#/inspection/"))
    page.go_back()
    expect(page.locator("[data-chip=overdue]")).to_have_attribute("aria-pressed", "true")
    page.locator("[data-chip=all]").click()
    expect(page).to_have_url(re.compile(r"#/ledger$"))

    boss = phone()
    login(boss, app_server, "supervisor")
    review = boss.locator("[data-todo=pending_review]")
    expect(review).to_have_text(f"隐患台账 · 待复查 {summary['pending_review']} 条›")
    expect(boss.locator("[data-todo=overdue]")).to_be_visible()
    shot(boss, "todo-lines-supervisor")
    boss.click("#lang")
    expect(review).to_have_text(f"Hazard ledger · {summary['pending_review']} to review›")
    review.click()
    expect(boss.locator("[data-chip=pending_review]")).to_have_attribute("aria-pressed", "true")
    expect(boss.locator("[data-ledger]")).to_have_count(summary["pending_review"])
    assert page.errors == [] and boss.errors == []


def test_the_inspections_list_is_searched_and_filtered_and_back_returns(app_server: AppServer, phone: Any) -> None:
    """检查记录: typing part of a unit's name or address narrows the list (and its count); 我的 / 进行中 / 已完成
    narrow it further; both are in the address, so Back from an inspection opened there shows the same list; nothing
    found says so; an empty box shows everything again."""
    ids = {}
    for who, name, address in (
        ("inspector", "搜索甲化工厂", "和平路 1 号"),
        ("inspector", "搜索乙车间", "胜利街 2 号"),
        ("supervisor", "搜索丙仓库", "和平路 9 号"),
    ):
        c = app_server.client(who)
        r = c.post("/app/api/inspections", json={"unit": {"name": name, "address": address}, "scene": "industry"})
        r.raise_for_status()
        ids[name] = r.json()["id"]
    client = app_server.client("inspector")
    client.post(f"/app/api/inspections/{ids['搜索甲化工厂']}/finish", json={}).raise_for_status()

    page = phone()
    login(page, app_server, "inspector")
    shown = page.locator("a[data-insp]")

    def listed() -> list[str]:
        return shown.evaluate_all("els => els.map((e) => e.dataset.insp)")

    page.fill("#insp-q", "搜索")
    expect(page.locator("h1")).to_have_text("检查记录 (3)")
    assert listed() == [ids["搜索丙仓库"], ids["搜索乙车间"], ids["搜索甲化工厂"]]
    expect(page).to_have_url(re.compile(r"#/inspections\?q=%E6%90%9C%E7%B4%A2$"))
    page.locator("[data-chip=mine]").click()
    expect(page.locator("h1")).to_have_text("检查记录 (2)")
    page.locator("[data-chip=finished]").click()
    expect(page.locator("h1")).to_have_text("检查记录 (1)")
    assert listed() == [ids["搜索甲化工厂"]]
    shot(page, "list-search")
    shown.first.click()
    expect(page).to_have_url(re.compile(rf"#/inspection/{ids['搜索甲化工厂']}$"))
    page.go_back()
    expect(page.locator("h1")).to_have_text("检查记录 (1)")
    expect(page.locator("#insp-q")).to_have_value("搜索")
    expect(page.locator("[data-chip=finished]")).to_have_attribute("aria-pressed", "true")
    page.locator("[data-chip=all]").click()
    page.fill("#insp-q", "和平路")  # the address
    expect(page.locator("h1")).to_have_text("检查记录 (2)")
    page.fill("#insp-q", "没有这个单位")
    expect(page.locator("[data-empty=list]")).to_have_text("没有符合条件的检查。")
    page.fill("#insp-q", "")
    expect(page).to_have_url(re.compile(r"#/inspections$"))
    total = client.get("/app/api/inspections", params={"limit": 1}).json()["total"]
    expect(page.locator("h1")).to_have_text(f"检查记录 ({total})")
    assert page.errors == []


def test_an_inspection_waiting_on_the_phone_comes_back_when_the_search_is_cleared(
    app_server: AppServer, phone: Any
) -> None:
    """An inspection started without signal and not yet created on the server leads the list; a search leaves it
    out (it is not on the server to search), and clearing the search brings it back."""
    page = phone()
    login(page, app_server, "inspector")
    page.click("a[href='#/new']")
    page.context.set_offline(True)
    submit_offline_inspection(page, "本机待建单位", "桃北路 7 号")
    held: list[Any] = []
    page.route("**/app/api/inspections", lambda route: held.append(route))  # its creation waits: still on the phone
    page.context.set_offline(False)
    page.goto(f"{app_server.base_url}/app/#/inspections")
    local = page.locator("a[data-local]")
    expect(local).to_have_count(1)
    page.fill("#insp-q", "桃北路")
    expect(page).to_have_url(re.compile(r"\?q="))
    expect(local).to_have_count(0)
    page.fill("#insp-q", "")
    expect(page).to_have_url(re.compile(r"#/inspections$"))
    expect(local).to_have_count(1)
    expect(local).to_contain_text("本机待建单位")
    assert page.errors == []


def test_without_signal_the_search_narrows_the_copies_kept_on_the_phone(app_server: AppServer, phone: Any) -> None:
    """Offline the list shows the inspections opened lately (离线副本); the search box narrows them on the phone
    instead of failing, says when none matches, and an empty box shows them all again."""
    c = app_server.client("inspector")
    made = {}
    for name in ("离线检索甲厂", "离线检索乙厂"):
        r = c.post("/app/api/inspections", json={"unit": {"name": name, "address": "桃北路"}, "scene": "industry"})
        r.raise_for_status()
        made[name] = r.json()["id"]
    page = phone()
    login(page, app_server, "inspector")
    for iid in made.values():  # opened once online: kept on the phone
        page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
        expect(page.locator("h1")).to_have_text(re.compile("离线检索"))
    page.context.set_offline(True)
    page.goto(f"{app_server.base_url}/app/#/inspections")
    copies = page.locator("a[data-offline-copy]")
    expect(page.locator("[data-offline=list]")).to_be_visible()
    expect(copies.filter(has_text="离线检索")).to_have_count(2)
    page.fill("#insp-q", "检索甲")
    expect(copies).to_have_count(1)
    expect(copies).to_contain_text("离线检索甲厂")
    page.fill("#insp-q", "没有这个单位")
    expect(page.locator("[data-empty=list]")).to_have_text("没有符合条件的检查。")
    expect(page.locator("[data-offline=list]")).to_be_visible()
    page.fill("#insp-q", "")
    expect(copies.filter(has_text="离线检索")).to_have_count(2)
    page.locator("[data-chip=finished]").click()
    expect(copies).to_have_count(0)
    assert page.errors == []
