"""The ledger's 3 天内到期 chip in a real browser: the open items whose deadline is near, kept in the address.
HAZARDSCAN_UX_SHOTS keeps a screenshot (see test_app_ux_fixes.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from app_fixtures import AppServer, open_item
from browser_helpers import expect, login
from test_app_a11y import CHECK
from test_app_ux_fixes import shot


def test_the_due_soon_chip_lists_what_to_chase_before_its_deadline(app_server: AppServer, phone: Any) -> None:
    insp, sup = app_server.client("inspector"), app_server.client("supervisor")
    today = datetime.now(timezone(timedelta(hours=8))).date()
    for unit, days in (("明天到期的仓库", 1), ("下月到期的车间", 30)):
        item = open_item(insp, unit=unit, seed=800 + days)
        body = {"version": item["version"], "deadline": (today + timedelta(days=days)).isoformat()}
        assert sup.post(f"/app/api/ledger/{item['id']}/assign", json=body).status_code == 200
    page = phone()
    login(page, app_server, "supervisor")
    page.goto(f"{app_server.base_url}/app/#/ledger")
    chip = page.locator("[data-chip=due_soon]")
    expect(chip).to_have_text("3 天内到期")
    chip.click()
    expect(chip).to_have_attribute("aria-pressed", "true")
    assert page.url.endswith("#/ledger?status=due_soon")  # Back from an item returns to this chip
    expect(page.locator("[data-ledger]", has_text="明天到期的仓库")).to_be_visible()
    expect(page.locator("[data-ledger]", has_text="下月到期的车间")).to_have_count(0)
    assert page.evaluate(CHECK) == []
    shot(page, "ledger-due-soon")
    page.reload()
    expect(page.locator("[data-chip=due_soon]")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-ledger]", has_text="明天到期的仓库")).to_be_visible()
    assert page.errors == []
