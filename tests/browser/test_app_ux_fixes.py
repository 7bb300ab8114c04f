"""Usability fixes found by the phone UX review, each checked in a real browser.

Debian's chromium at 360×640 against a real server (tests/app_fixtures.py); each test makes its own items.
Set HAZARDSCAN_UX_SHOTS to a folder to keep a screenshot of each fixed screen there.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from app_fixtures import AppServer, clean_photo, fire_photo, open_item
from browser_helpers import expect, login
from test_app_browser import choose_photos, start_inspection, submit_offline_inspection

CST = timezone(timedelta(hours=8))  # the server's deadlines end at 23:59:59 of a UTC+8 day


def shot(page: Any, name: str) -> None:
    """A screenshot of the screen as the phone shows it, when HAZARDSCAN_UX_SHOTS names a folder."""
    if folder := os.environ.get("HAZARDSCAN_UX_SHOTS"):
        page.screenshot(path=os.path.join(folder, f"{name}.png"))


def ledger_item(app_server: AppServer, unit: str, seed: int, deadline: str | None = None) -> dict[str, Any]:
    """A confirmed 现场明火 in the ledger (the inspector's), its deadline moved to ``deadline`` by the supervisor."""
    item = open_item(app_server.client("inspector"), unit, seed=seed)
    if deadline:
        r = app_server.client("supervisor").post(
            f"/app/api/ledger/{item['id']}/assign", json={"version": item["version"], "deadline": deadline}
        )
        r.raise_for_status()
        item = r.json()
    return item


def rectified(app_server: AppServer, item: dict[str, Any], photo: bytes) -> dict[str, Any]:
    """整改中 → the inspector's rectification photo (the model re-checks it) → 待复查."""
    c = app_server.client("inspector")
    r = c.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]})
    r.raise_for_status()
    r = c.post(
        f"/app/api/ledger/{item['id']}/rectification",
        files={"photo": ("fix.jpg", photo, "image/jpeg")},
        data={"idempotency_key": str(uuid.uuid4())},
    )
    r.raise_for_status()
    return r.json()


def ledger_card(page: Any, item: dict[str, Any]) -> Any:
    return page.locator(f"[data-ledger='{item['id']}']")


def ledger_of(page: Any, app_server: AppServer, who: str, unit: str) -> None:
    """Log in as ``who`` and show the ledger filtered to ``unit``."""
    login(page, app_server, who)
    filter_unit(page, unit)


def filter_unit(page: Any, unit: str) -> None:
    """Open 台账 → 筛选, type the unit, 应用."""
    page.click("#nav a[href='#/ledger']")
    page.locator("details.card > summary").click()
    page.fill("#f-unit", unit)
    page.get_by_role("button", name="应用").click()


def test_deadline_countdown_counts_local_calendar_days(app_server: AppServer, phone: Any) -> None:
    """A 重大 hazard due at the end of today reads 今日到期, not 剩 1 天; tomorrow is 剩 1 天, in three days 剩 3 天."""
    unit = "倒计时测试单位"
    today = ledger_item(app_server, unit, 11, "2030-06-10")
    tomorrow = ledger_item(app_server, unit, 12, "2030-06-11")
    later = ledger_item(app_server, unit, 13, "2030-06-13")
    page = phone(timezone_id="Asia/Shanghai")
    page.clock.set_fixed_time(datetime(2030, 6, 10, 9, 30, tzinfo=CST))
    ledger_of(page, app_server, "inspector", unit)
    expect(page.locator("[data-ledger]")).to_have_count(3)
    expect(ledger_card(page, today)).to_contain_text("今日到期")
    expect(ledger_card(page, tomorrow)).to_contain_text("剩 1 天")
    expect(ledger_card(page, later)).to_contain_text("剩 3 天")
    page.clock.set_fixed_time(datetime(2030, 6, 10, 23, 30, tzinfo=CST))  # late evening: still the same day
    page.get_by_role("button", name="应用").click()
    expect(ledger_card(page, today)).to_contain_text("今日到期")
    expect(ledger_card(page, tomorrow)).to_contain_text("剩 1 天")
    page.locator("details.card > summary").click()  # fold 筛选 away to see the cards
    shot(page, "m1-ledger-due-today")
    assert page.errors == []


def test_ledger_filter_reset_clears_the_active_filter(app_server: AppServer, phone: Any) -> None:
    """筛选 → a unit that matches nothing → 应用 → 重置: the list, the chips and the exports are unfiltered again,
    and the 筛选 heading says when a filter is active."""
    item = ledger_item(app_server, "重置筛选测试单位", 21)
    page = phone()
    ledger_of(page, app_server, "inspector", "不存在的单位")
    expect(page.locator("main")).to_contain_text("没有符合条件的隐患")
    expect(page.locator("details.card > summary")).to_have_text("筛选（1）")
    csv = page.get_by_role("link", name="CSV")
    expect(csv).to_have_attribute("href", re.compile(r"unit="))
    shot(page, "m2-ledger-filter-active")
    page.get_by_role("button", name="重置").click()
    expect(page.locator("#f-unit")).to_have_value("")
    expect(ledger_card(page, item)).to_be_visible()
    expect(page.locator("details.card > summary")).to_have_text("筛选")
    expect(csv).not_to_have_attribute("href", re.compile(r"unit="))
    page.get_by_role("button", name="待整改").click()
    expect(page.get_by_role("button", name="待整改")).to_have_attribute("aria-pressed", "true")
    expect(ledger_card(page, item)).to_be_visible()
    expect(csv).to_have_attribute("href", re.compile(r"status=open"))
    expect(csv).not_to_have_attribute("href", re.compile(r"unit="))
    shot(page, "m2-ledger-after-reset")
    assert page.errors == []


def fill_new_inspection(page: Any, unit: str) -> None:
    page.fill("#uname", unit)
    page.fill("#addr", "江城区东风三路 88 号")
    page.select_option("#scene", "construction")


def test_back_after_starting_an_inspection_goes_to_the_list_not_a_blank_form(app_server: AppServer, phone: Any) -> None:
    """开始检查 → the phone's back button: the list (it was a blank 新建检查 form whose new client_id made a second
    inspection when sent again). A half-filled form survives a look at 台账."""
    unit = "返回键测试单位"
    page = phone()
    login(page, app_server, "inspector")
    page.click("a[href='#/new']")
    fill_new_inspection(page, unit)
    page.click("#nav a[href='#/ledger']")  # a look elsewhere before starting
    expect(page.locator("main h1")).to_have_text("隐患台账")
    page.go_back()
    expect(page.locator("#uname")).to_have_value(unit)
    expect(page.locator("#scene")).to_have_value("construction")
    page.click("form button[type=submit]")
    expect(page.locator("[data-pick=gallery]")).to_be_attached()
    iid = re.search(r"#/inspection/([\w-]+)$", page.url).group(1)
    page.go_back()  # the phone's back button
    expect(page).to_have_url(re.compile(r"#/inspections$"))
    expect(page.locator(f"a[href='#/inspection/{iid}']")).to_be_visible()
    expect(page.locator("#uname")).to_have_count(0)
    shot(page, "m13-back-after-create")
    page.click("a[href='#/new']")  # the next inspection starts from a blank form
    expect(page.locator("#uname")).to_have_value("")
    items = app_server.client("inspector").get("/app/api/inspections?limit=200").json()["items"]
    assert [i["id"] for i in items if i["unit"]["name"] == unit] == [iid]
    assert page.errors == []


# the whole photo between the sticky header and the window's bottom; the handle the topmost thing at its spot
PHOTO_BELOW_HEADER = """([sel, corner]) => {
    const frame = document.querySelector(sel);
    const top = document.querySelector('.top').getBoundingClientRect().bottom;
    const r = frame.getBoundingClientRect();
    if (r.top < top - 0.5 || r.bottom > innerHeight) return false;
    if (!corner) return true;
    const hd = frame.querySelector(`.handle[data-corner="${corner}"]`).getBoundingClientRect();
    return document.elementFromPoint(hd.left + hd.width / 2, hd.top + hd.height / 2)?.dataset.corner === corner;
}"""


def test_adjust_and_add_missed_show_the_whole_photo_below_the_header(
    app_server: AppServer, phone: Any, photos: Any
) -> None:
    """调整框 / 补录 on a photo scrolled half under the sticky header bring all of it into view below the header,
    top handles included (they scrolled it to the window's top, behind the header)."""
    page = phone()
    login(page, app_server, "inspector")
    start_inspection(page, "调整框滚动测试单位")
    choose_photos(page, [photos["fire_smoke"]])
    card = page.locator("[data-photo]")
    expect(card.locator("[data-finding]")).to_have_count(2)
    sel = "[data-photo] .photo"

    def scroll_photo_under_header() -> None:
        page.evaluate("(sel) => scrollBy(0, document.querySelector(sel).getBoundingClientRect().top + 100)", sel)
        assert page.evaluate("(sel) => document.querySelector(sel).getBoundingClientRect().top", sel) < 0

    scroll_photo_under_header()
    card.locator("[data-hazard=FIRE-001] [data-act=adjust]").dispatch_event("click")  # no scrolling by the test
    expect(card.locator(".handle[data-corner='01']")).to_be_attached()
    page.wait_for_function(PHOTO_BELOW_HEADER, arg=[sel, "01"])
    assert page.evaluate(PHOTO_BELOW_HEADER, [sel, "21"])
    expect(card.locator("[data-hint=adjust]")).to_contain_text("拖动圆点")
    shot(page, "m9-adjust-mode")
    card.get_by_role("button", name="取消").click()
    expect(card.locator(".handle")).to_have_count(0)
    expect(card.locator("[data-hint=adjust]")).to_have_count(0)

    scroll_photo_under_header()
    card.locator("[data-act=add-missed]").dispatch_event("click")
    expect(card.locator(".photo.drawing")).to_be_attached()
    page.wait_for_function(PHOTO_BELOW_HEADER, arg=[sel, None])
    shot(page, "m9-add-missed")
    assert page.errors == []


def test_an_item_sent_back_says_so_with_the_reason_and_drops_the_old_recheck(app_server: AppServer, phone: Any) -> None:
    """退回整改 after an AI 复查通过: the inspector's card says it was sent back and why, above 上传整改照片, and
    no longer shows the green AI 复查通过 of the photo the supervisor refused."""
    unit = "退回整改测试单位"
    item = rectified(app_server, ledger_item(app_server, unit, 31), clean_photo(31))
    assert item["status"] == "pending_review" and item["ai_recheck"] == "passed"
    reason = "照片角度不同，请拍同一位置"
    r = app_server.client("supervisor").post(
        f"/app/api/ledger/{item['id']}/transition",
        json={"to": "in_progress", "version": item["version"], "note": reason},
    )
    r.raise_for_status()
    page = phone()
    ledger_of(page, app_server, "inspector", unit)
    card = ledger_card(page, item)
    expect(card).to_have_attribute("data-status", "in_progress")
    back = card.locator("[data-sent-back]")
    expect(back).to_contain_text("主管已退回整改")
    expect(back).to_contain_text(f"退回原因：{reason}")
    expect(back).to_contain_text("李主管")
    expect(card).not_to_contain_text("AI 复查通过")
    upload = card.locator("label:has([data-pick=rectification])")
    expect(upload).to_be_visible()
    assert back.bounding_box()["y"] < upload.bounding_box()["y"]
    page.locator("details.card > summary").click()  # fold 筛选 away to see the card
    card.scroll_into_view_if_needed()
    shot(page, "m4-sent-back")
    assert page.errors == []


def test_after_a_failed_ai_recheck_the_inspector_can_send_a_better_photo(
    app_server: AppServer, phone: Any, photos: Any
) -> None:
    """待复查 with AI 复查未通过: the inspector's card offers 重新上传整改照片 (the API takes a new photo); the new
    photo is re-checked and replaces the old one, without a supervisor sending the item back first."""
    unit = "重新上传整改照片测试单位"
    item = rectified(app_server, ledger_item(app_server, unit, 41), fire_photo(41))
    assert item["status"] == "pending_review" and item["ai_recheck"] == "failed"
    page = phone()
    ledger_of(page, app_server, "inspector", unit)
    card = ledger_card(page, item)
    expect(card).to_have_attribute("data-recheck", "failed")
    expect(card).to_contain_text("等待主管复查销号")
    again = card.locator("label:has([data-pick=rectification])")
    expect(again).to_contain_text("重新上传整改照片")
    page.locator("details.card > summary").click()  # fold 筛选 away to see the card
    card.scroll_into_view_if_needed()
    shot(page, "m5-reupload-offered")
    with page.expect_file_chooser() as chooser:
        again.click()
    chooser.value.set_files(str(photos["clean"]))
    expect(ledger_card(page, item)).to_have_attribute("data-recheck", "passed")
    expect(ledger_card(page, item)).to_contain_text("AI 复查通过")
    expect(ledger_card(page, item)).to_have_attribute("data-status", "pending_review")
    now = app_server.client("inspector").get(f"/app/api/ledger/{item['id']}").json()
    assert now["ai_recheck"] == "passed" and now["rectification_photo_url"] != item["rectification_photo_url"]
    assert page.errors == []


def test_offline_an_inspection_with_photos_does_not_say_it_has_none(
    app_server: AppServer, phone: Any, photos: Any
) -> None:
    """Offline, a known inspection with photos says how many wait on the server (not 还没有照片), and its document
    buttons are disabled; an inspection started offline whose photos wait on the phone does not say 还没有照片."""
    item = ledger_item(app_server, "离线照片数量测试单位", 51)
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{item['inspection_id']}")
    expect(page.locator("[data-photo]")).to_have_count(1)  # seen once online: kept on the phone
    page.context.set_offline(True)
    page.click("#nav a[href='#/inspections']")
    expect(page.locator("main")).to_contain_text("网络不可用")
    page.go_back()
    expect(page.locator("[data-offline=view]")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("还没有照片")
    expect(page.locator("main")).to_contain_text("离线：照片和隐患需联网后查看（本检查有 1 张照片、1 处隐患）。")
    expect(page.locator("[data-doc='record.pdf']")).to_be_disabled()
    expect(page.locator("[data-doc='notice']")).to_be_disabled()
    shot(page, "m7-offline-known-inspection")

    page.click("#nav a[href='#/inspections']")
    page.click("a[href='#/new']")
    submit_offline_inspection(page, "离线排队照片测试单位", "地下一层")
    expect(page.locator("main")).to_contain_text("还没有照片")  # nothing taken yet
    choose_photos(page, [photos["fire3"]])
    expect(page.locator("[data-queue] .qi")).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("还没有照片")
    shot(page, "m7-offline-queued-photo")
    page.context.set_offline(False)
    expect(page.locator("[data-photo]")).to_have_count(1)
    expect(page.locator("main")).not_to_contain_text("还没有照片")
    assert page.errors == []


def test_the_chinese_ui_shows_no_english_detector_class(app_server: AppServer, phone: Any, photos: Any) -> None:
    """The model's class name (fire, smoke) is English: not under a finding nor in 统计's labels in 中文; in English
    it still shows."""
    ledger_item(app_server, "类别名称测试单位", 61)  # a confirmed 现场明火 for the statistics
    page = phone()
    login(page, app_server, "inspector")
    start_inspection(page, "类别名称测试单位")
    choose_photos(page, [photos["fire_smoke"]])
    fire = page.locator("[data-hazard=FIRE-001]")
    expect(fire).to_contain_text("置信度")
    expect(fire).not_to_contain_text("fire")
    expect(page.locator("[data-hazard=FIRE-002]")).not_to_contain_text("smoke")
    fire.scroll_into_view_if_needed()
    shot(page, "m4-finding-no-class")
    page.click("#nav a[href='#/stats']")
    expect(page.locator("main")).to_contain_text("现场明火")
    expect(page.locator("main")).not_to_contain_text(re.compile(r"· (fire|smoke)"))
    page.get_by_text("模型现场准确率（按类别）").first.scroll_into_view_if_needed()
    shot(page, "m4-stats-no-class")
    page.click("#lang")
    expect(page.locator("main")).to_contain_text("· fire")
    page.click("#lang")
    assert page.errors == []
