"""The ledger's history and counts in the screen's language, in a real browser at 360×640.

Debian's chromium against a real server (tests/app_fixtures.py); each test makes its own items.
HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from typing import Any

from app_fixtures import AppServer, fire_photo
from browser_helpers import expect
from test_app_ux_fixes import ledger_card, ledger_item, ledger_of, rectified, shot

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
