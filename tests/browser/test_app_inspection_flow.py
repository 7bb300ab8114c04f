"""The inspection's own flow, from the phone UX review (work/s18/ux/FINDINGS.md M6, M10, M12, m1).

备注 on the AI's findings, the 待确认 summary, 完成检查 / 继续检查, the warning before the documents, the offline
list, and buttons that wait while their request runs. Debian's chromium at 360×640 against a real server
(tests/app_fixtures.py); each test makes its own inspection. HAZARDSCAN_UX_SHOTS keeps screenshots (see
test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from typing import Any

from app_fixtures import AppServer, fire_photo, open_item
from browser_helpers import expect, login, wait_until
from test_app_browser import choose_photos, findings, inspection, start_inspection
from test_app_ux_fixes import shot

def test_a_note_goes_with_the_decision_and_shows_on_the_card(app_server: AppServer, phone: Any, photos: Any) -> None:
    """添加备注 on an AI finding: written with 保存并确认 (sent as the decision's note) and shown on the card;
    修改备注 later changes it and keeps the finding confirmed."""
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "备注测试单位")
    choose_photos(page, [photos["fire"]])
    card = page.locator("[data-hazard=FIRE-001]")
    expect(card).to_have_attribute("data-status", "pending")
    card.locator("[data-act=note]").click()
    note = card.locator("textarea[name=finding-note]")
    expect(note).to_be_focused()
    expect(note).to_have_attribute("placeholder", "如：二楼东侧楼梯间")
    note.fill("二楼东侧楼梯间")
    shot(page, "m10-note-form")
    card.get_by_role("button", name="保存并确认").click()
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator("[data-note]")).to_have_text("二楼东侧楼梯间")
    client = app_server.client("inspector")
    (f,) = findings(client, iid).values()
    assert f["status"] == "confirmed" and f["note"] == "二楼东侧楼梯间" and f["ledger_item_id"]
    shot(page, "m10-note-shown")

    card.locator("[data-act=note]").click()  # afterwards: 修改备注
    expect(card.locator("[data-act=save-note]")).to_have_text("保存")
    card.locator("textarea[name=finding-note]").fill("二楼东侧楼梯间，靠近配电箱")
    card.locator("[data-act=save-note]").click()
    expect(card.locator("[data-note]")).to_have_text("二楼东侧楼梯间，靠近配电箱")
    expect(card).to_have_attribute("data-status", "confirmed")
    (f,) = findings(client, iid).values()
    assert f["status"] == "confirmed" and f["note"] == "二楼东侧楼梯间，靠近配电箱"
    assert page.errors == []


