"""Decisions made without signal (the phone UX review's M8), in a real browser.

确认 / 误报 / 备注 on a finding of an uploaded photo, tapped in a basement: kept on the phone (IndexedDB, like the
photos), shown on the card as 待同步 and in the header's badge, sent when the network returns; a later decision on
the same finding replaces the queued one; one the server refuses meanwhile (the hazard went into rectification) is
dropped and the inspector is told which and why. Debian's chromium at 360×640 against a real server
(tests/app_fixtures.py); each test makes its own inspection. HAZARDSCAN_UX_SHOTS keeps screenshots (see
test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from typing import Any

from app_fixtures import PASSWORD, AppServer, open_item
from browser_helpers import expect, login, wait_until
from test_app_browser import findings
from test_app_inspection_flow import pending_inspection
from test_app_ux_fixes import shot

QUEUED_DECISIONS = "() => hazardscan.queue().filter((r) => r.kind === 'dec').map((r) => r.body)"


def open_inspection(page: Any, app_server: AppServer, iid: str) -> Any:
    """Log in as the inspector, open the inspection once online (the app shell cached) and go offline: the card of
    its fire finding."""
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    card = page.locator("[data-hazard=FIRE-001]")
    expect(card).to_be_visible()
    assert page.evaluate("async () => Boolean(await navigator.serviceWorker.ready)")
    page.context.set_offline(True)
    return card


def test_a_decision_made_offline_waits_on_the_phone_survives_a_reload_and_is_sent_when_online(
    app_server: AppServer, phone: Any
) -> None:
    """备注 with 保存并确认 offline: the card reads 已确认 · 待同步 with the note, the badge 离线 · 1 项确认待传;
    after a reload without signal it still waits; once online it reaches the server and the 待同步 mark goes."""
    iid = pending_inspection(app_server, "离线确认测试单位", 91)
    client = app_server.client("inspector")
    page = phone()
    card = open_inspection(page, app_server, iid)
    card.locator("[data-act=note]").click()
    card.locator("textarea[name=finding-note]").fill("地下一层东侧")
    card.get_by_role("button", name="保存并确认").click()
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator("[data-mark=queued]")).to_have_text("待同步")
    expect(card.locator("[data-note]")).to_have_text("地下一层东侧")
    expect(page.locator("#net")).to_have_text("离线 · 1 项确认待传")
    expect(page.locator("[data-summary]")).to_contain_text("1 处隐患：1 已确认 · 0 待确认")
    card.scroll_into_view_if_needed()
    shot(page, "m8-decision-queued")
    page.wait_for_timeout(500)  # give a wrong implementation the chance to send it anyway
    (f,) = findings(client, iid).values()
    assert f["status"] == "pending"

    page.reload()  # the page is reloaded in the basement: the decision is still on the phone
    expect(page.locator("[data-offline=view]")).to_be_visible()
    expect(page.locator("#net")).to_have_text("离线 · 1 项确认待传")
    assert page.evaluate(QUEUED_DECISIONS) == [{"decision": "confirm", "note": "地下一层东侧"}]
    waiting = page.locator(f"[data-queue-decisions='{iid}']")  # no photos offline: the decision is listed instead
    expect(waiting.locator("h2")).to_have_text("待同步的确认 (1)")
    expect(waiting.locator(".qi")).to_have_text(re.compile(r"照片 1 · 现场明火\s*确认\s*待同步"))
    shot(page, "m8-decision-queued-reloaded")
    page.click("#lang")
    expect(page.locator("#net")).to_have_text("Offline · 1 decision queued")
    page.click("#lang")

    page.context.set_offline(False)
    wait_until(page, lambda: next(iter(findings(client, iid).values()))["status"] == "confirmed", what="the decision")
    (f,) = findings(client, iid).values()
    assert f["note"] == "地下一层东侧" and f["ledger_item_id"]
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator("[data-mark=queued]")).to_have_count(0)
    expect(card.locator("[data-ledger]")).to_have_text("台账：待整改")
    expect(page.locator("#net")).to_have_text("")
    expect(waiting).to_have_count(0)  # online, the photos and their cards again
    assert page.evaluate(QUEUED_DECISIONS) == []
    assert page.errors == []


def test_a_second_decision_offline_replaces_the_first(app_server: AppServer, phone: Any) -> None:
    """确认 then 误报 on the same finding without signal: one decision waits (误报), one request is sent."""
    iid = pending_inspection(app_server, "离线改判测试单位", 92)
    page = phone()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/decision") else None)
    card = open_inspection(page, app_server, iid)
    card.locator("[data-act=confirm]").click()
    expect(card).to_have_attribute("data-status", "confirmed")
    card.locator("[data-act=reject]").click()
    expect(card).to_have_attribute("data-status", "rejected")
    expect(card.locator("[data-mark=queued]")).to_be_visible()
    expect(page.locator("#net")).to_have_text("离线 · 1 项确认待传")
    assert page.evaluate(QUEUED_DECISIONS) == [{"decision": "reject"}]

    sent.clear()  # the first tap tried the network before it was queued
    page.context.set_offline(False)
    client = app_server.client("inspector")
    wait_until(page, lambda: next(iter(findings(client, iid).values()))["status"] == "rejected", what="the decision")
    expect(card.locator("[data-mark=queued]")).to_have_count(0)
    expect(page.locator("#net")).to_have_text("")
    page.wait_for_timeout(300)
    assert len(sent) == 1, sent
    assert page.errors == []


def test_a_queued_decision_the_server_refuses_is_dropped_and_the_inspector_told_why(
    app_server: AppServer, phone: Any
) -> None:
    """误报 offline on a confirmed finding; meanwhile the supervisor starts its rectification: back online the
    server refuses it (409), the queue lets it go and a sheet says which finding and why; the card is locked."""
    item = open_item(app_server.client("inspector"), "离线改判被拒测试单位", seed=93)
    page = phone()
    card = open_inspection(page, app_server, item["inspection_id"])
    expect(card.locator("[data-ledger]")).to_have_text("台账：待整改")
    card.locator("[data-act=reject]").click()
    expect(card).to_have_attribute("data-status", "rejected")
    expect(card.locator("[data-mark=queued]")).to_have_text("待同步")

    r = app_server.client("supervisor").post(
        f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]}
    )
    r.raise_for_status()
    page.context.set_offline(False)
    sheet = page.locator("dialog[data-ask]")
    expect(sheet).to_contain_text("“误报”未能保存")
    expect(sheet).to_contain_text("照片 1 · 现场明火")
    expect(sheet).to_contain_text("该隐患已进入整改流程")
    shot(page, "m8-decision-refused")
    sheet.get_by_role("button", name="知道了").click()
    expect(sheet).to_have_count(0)
    expect(page.locator("#net")).to_have_text("")
    assert page.evaluate(QUEUED_DECISIONS) == []
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator("[data-mark=queued]")).to_have_count(0)
    expect(card.locator("[data-locked]")).to_have_text("隐患整改中，不能再改判")
    (f,) = findings(app_server.client("inspector"), item["inspection_id"]).values()
    assert f["status"] == "confirmed"
    assert page.errors == []


def test_a_queued_decision_whose_session_ended_waits_for_the_login_and_is_sent_after_it(
    app_server: AppServer, phone: Any
) -> None:
    """误报 offline; the session ends meanwhile: back online the app asks for the login (登录已过期) instead of
    retrying in the background; once logged in it returns to the inspection and the decision reaches the server."""
    iid = pending_inspection(app_server, "离线确认过期测试单位", 94)
    client = app_server.client("inspector")
    page = phone()
    card = open_inspection(page, app_server, iid)
    card.locator("[data-act=reject]").click()
    expect(card.locator("[data-mark=queued]")).to_have_text("待同步")
    page.context.clear_cookies()  # the session is gone (as when it expires on the server)
    page.context.set_offline(False)
    expect(page.locator("#u")).to_be_visible()
    expect(page.locator("[data-expired]")).to_contain_text("登录已过期")
    (f,) = findings(client, iid).values()
    assert f["status"] == "pending"  # not sent: kept on the phone (sent below, once logged in)
    page.fill("#u", app_server.users["inspector"][0])
    page.fill("#p", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).to_have_url(re.compile(rf"#/inspection/{iid}$"))
    wait_until(page, lambda: next(iter(findings(client, iid).values()))["status"] == "rejected", what="the decision")
    expect(page.locator("[data-hazard=FIRE-001]")).to_have_attribute("data-status", "rejected")
    expect(page.locator("#net")).to_have_text("")
    assert page.errors == []
