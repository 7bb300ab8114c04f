"""Fixes of the phone UX review's m7, m8, m12, m13 and m14, each in a real browser.

Debian's chromium at 360×640 against a real server (tests/app_fixtures.py); each test makes its own items.
HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from app_fixtures import PASSWORD, AppServer, fire_photo
from browser_helpers import expect, login
from test_app_browser import choose_photos, findings, submit_offline_inspection
from test_app_inspection_flow import pending_inspection
from test_app_ux_fixes import filter_unit, ledger_card, ledger_item, ledger_of, rectified, shot


def test_expired_session_returns_to_the_inspection_and_says_the_tap_was_not_saved(
    app_server: AppServer, phone: Any
) -> None:
    """m13: the session ends while the inspection is open; 误报 leads to the login, which says the action was not
    saved; after logging in the app is back on the same inspection and says 未保存，请重新操作."""
    iid = pending_inspection(app_server, "会话过期测试单位", 41)
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    card = page.locator("[data-hazard=FIRE-001]")
    expect(card).to_have_attribute("data-status", "pending")
    page.context.clear_cookies()  # the session is gone on the phone (as when it expires on the server)
    card.locator("[data-act=reject]").click()
    expect(page.locator("#u")).to_be_visible()
    expect(page.locator("[data-expired]")).to_contain_text("刚才的操作未保存")
    shot(page, "m13-expired-login")
    page.fill("#u", app_server.users["inspector"][0])
    page.fill("#p", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(rf"#/inspection/{iid}$"))
    expect(page.locator("#toast")).to_have_text("未保存，请重新操作")
    expect(card).to_have_attribute("data-status", "pending")
    shot(page, "m13-back-on-inspection")
    (f,) = findings(app_server.client("inspector"), iid).values()
    assert f["status"] == "pending"
    card.locator("[data-act=reject]").click()  # done again, now saved
    expect(card).to_have_attribute("data-status", "rejected")


def test_confirm_says_the_ledger_deadline_and_the_card_shows_the_ledger_state(
    app_server: AppServer, phone: Any
) -> None:
    """m8: 确认 toasts 已记入台账，整改期限 <deadline>; the card shows 台账：待整改; once the item is 整改中 the card
    says so and offers no 确认 / 误报 / 调整框 / 备注 (the server would refuse them)."""
    iid = pending_inspection(app_server, "台账状态测试单位", 42)
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    card = page.locator("[data-hazard=FIRE-001]")
    card.locator("[data-act=confirm]").click()
    expect(card).to_have_attribute("data-status", "confirmed")
    client = app_server.client("inspector")
    (f,) = findings(client, iid).values()
    item = client.get(f"/app/api/ledger/{f['ledger_item_id']}").json()
    due = page.evaluate("(iso) => new Date(iso).toLocaleDateString('zh-CN')", item["deadline"])
    expect(page.locator("#toast")).to_have_text(f"已记入台账，整改期限 {due}")
    expect(card.locator("[data-ledger]")).to_have_text("台账：待整改")
    expect(card.locator("[data-act=reject]")).to_be_visible()  # still 待整改: the decision may change
    shot(page, "m8-confirmed-toast")

    r = client.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]})
    r.raise_for_status()
    page.reload()
    expect(card.locator("[data-ledger]")).to_have_text("台账：整改中")
    expect(card.locator("[data-locked]")).to_have_text("隐患整改中，不能再改判")
    for act in ("confirm", "reject", "adjust", "note"):
        expect(card.locator(f"[data-act={act}]")).to_have_count(0)
    card.locator("[data-locked]").scroll_into_view_if_needed()
    shot(page, "m8-in-progress-locked")
    assert page.errors == []


def test_closed_after_a_failed_recheck_reads_closed_with_the_note_and_leaves_the_review_list(
    app_server: AppServer, phone: Any
) -> None:
    """m7: closed with 核实后仍然销号 under the 待复查 chip, the card leaves that list; under 已销号 it reads
    已销号（主管核实：…） and no longer shows the red AI 复查未通过 banner."""
    unit = "销号说明测试单位"
    item = rectified(app_server, ledger_item(app_server, unit, 43), fire_photo(44))
    assert item["status"] == "pending_review" and item["ai_recheck"] == "failed"
    page = phone()
    ledger_of(page, app_server, "supervisor", unit)
    page.locator(".chips").get_by_role("button", name="待复查").click()
    card = ledger_card(page, item)
    expect(card.locator(".recheck-failed")).to_be_visible()
    card.locator(f"#ov-{item['id']}").check()
    card.locator(f"#cn-{item['id']}").fill("AI 将演示图误认为明火，现场已整改")
    card.locator("[data-act=close]").click()
    expect(card).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("已转为“已销号”，移出此列表")
    page.locator(".chips").get_by_role("button", name="已销号").click()
    expect(card).to_have_attribute("data-status", "closed")
    expect(card.locator("[data-closed-note]")).to_have_text("已销号（主管核实：AI 将演示图误认为明火，现场已整改）")
    expect(card.locator(".recheck-failed")).to_have_count(0)
    card.scroll_into_view_if_needed()
    shot(page, "m7-closed-override")
    assert page.errors == []


def test_offline_badge_counts_photos_and_inspections_apart(app_server: AppServer, phone: Any, photos: Any) -> None:
    """m12: an inspection started without signal and one photo of it: 离线 · 1 张照片、1 项检查待传, not 2 张待传."""
    page = phone()
    login(page, app_server, "inspector")
    page.click("a[href='#/new']")
    page.context.set_offline(True)
    submit_offline_inspection(page, "离线徽标测试单位", "地下一层", "residential_ebike")
    expect(page.locator("#net")).to_have_text("离线 · 1 项检查待传")
    choose_photos(page, [photos["fire"]])
    expect(page.locator("[data-queue] .qi")).to_have_count(1)
    expect(page.locator("#net")).to_have_text("离线 · 1 张照片、1 项检查待传")
    shot(page, "m12-offline-badge")
    page.click("#lang")
    expect(page.locator("#net")).to_have_text("Offline · 1 photo, 1 inspection queued")
    page.click("#lang")
    page.context.set_offline(False)
    expect(page.locator("[data-photo]")).to_have_count(1)
    expect(page.locator("#net")).to_have_text("")
    assert page.errors == []


WEEK_TICKS = """(card) => [...card.querySelectorAll('svg text[x="0"]')].map((x) => Number(x.textContent))"""


def test_wording_and_layout_fixes(app_server: AppServer, phone: Any) -> None:
    """m14: the login says who may log in, has no empty error line, and the throttle reads in minutes; an overdue
    item says 已逾期 once; 统计 says 逾期 (not 超期), its weekly chart ticks are evenly spaced whole numbers and its
    weeks read 12/01 周 (not W49); the 检查 list shows each inspection's 检查人."""
    page = phone()
    page.goto(f"{app_server.base_url}/app/#/login")
    expect(page.locator("form.login p.muted")).to_have_text("请使用本单位账号登录")
    err = page.locator("form.login .err")
    assert err.evaluate("(e) => e.getBoundingClientRect().height") == 0
    page.fill("#u", "no_such_user_m14")
    for _ in range(6):
        page.fill("#p", "wrong-password")
        page.click("form button[type=submit]")
        expect(page.locator("form button[type=submit]")).to_be_enabled()
        expect(err).not_to_be_empty()
    expect(err).to_have_text(re.compile(r"^密码错误次数过多，请 \d+ 分钟后再试$"))
    shot(page, "m14-login-throttled")

    unit = "措辞测试单位"
    item = ledger_item(app_server, unit, 45, "2026-01-05")
    assert item["overdue"]
    login(page, app_server, "inspector")
    expect(page.locator("a[data-insp]").first).to_contain_text("检查人: 张检查")
    shot(page, "m14-list-inspector")
    filter_unit(page, unit)
    due = ledger_card(page, item).locator(".tag-bad")
    expect(due).to_have_text(re.compile(r"^已逾期 \d+ 天$"))

    page.click("#nav a[href='#/stats']")
    week = page.locator(".card", has_text="每周发现隐患")
    expect(week.locator("svg text", has_text=re.compile(r"^\d{2}/\d{2} 周$")).first).to_be_attached()
    expect(page.locator("#view")).to_contain_text("已销号 (逾期)")
    expect(page.locator("#view")).not_to_contain_text("超期")
    ticks = week.evaluate(WEEK_TICKS)
    assert ticks[0] == 0 and len(ticks) >= 2, ticks
    assert len({b - a for a, b in itertools.pairwise(ticks)}) == 1, ticks
    week.scroll_into_view_if_needed()
    shot(page, "m14-stats-week")
    assert page.errors == []
