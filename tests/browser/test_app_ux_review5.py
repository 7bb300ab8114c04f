"""Fixes of the phone UX review's m7, m8, m12, m13 and m14 (work/s18/ux/FINDINGS.md), each in a real browser.

Debian's chromium at 360×640 against a real server (tests/app_fixtures.py); each test makes its own items.
HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from typing import Any

from app_fixtures import PASSWORD, AppServer
from browser_helpers import expect, login
from test_app_browser import findings
from test_app_inspection_flow import pending_inspection
from test_app_ux_fixes import shot


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
