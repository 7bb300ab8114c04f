"""Fixes of the phone review's m14 (ledger chips), m11 (box labels), m6 (指派 feedback), the camera origin of an
inspection and m5 (the English UI), each in a real browser at 390×844 and 360×640.

Debian's chromium against a real server (tests/app_fixtures.py); each test makes its own items.
HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

from typing import Any

from app_fixtures import AppServer
from browser_helpers import expect, login
from test_app_ux_fixes import shot

WIDE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 640}

CHIPS_IN_VIEW = """(g) => {
  const box = g.getBoundingClientRect();
  return [...g.children].filter((c) => {
    const r = c.getBoundingClientRect();
    return r.left < 0 || r.right > document.documentElement.clientWidth || r.right > box.right + 0.5
      || r.left < box.left - 0.5 || r.bottom > box.bottom + 0.5;
  }).map((c) => c.textContent);
}"""


def test_every_ledger_status_chip_is_on_screen(app_server: AppServer, phone: Any) -> None:
    """m14: at 390 and 360 px, in Chinese and in English, all six status chips (已逾期 last) are inside the screen
    and inside their row: none hides behind a horizontal scroll."""
    for size in (WIDE, NARROW):
        page = phone(viewport=size)
        login(page, app_server, "supervisor")
        page.click("#nav a[href='#/ledger']")
        chips = page.locator(".chips")
        for lang in ("zh", "en"):
            if lang == "en":
                page.click("#lang")
            expect(chips.locator(".chip")).to_have_count(6)
            expect(chips.locator(".chip").last).to_have_text("已逾期" if lang == "zh" else "Overdue")
            assert chips.evaluate(CHIPS_IN_VIEW) == [], (size, lang)
            assert chips.evaluate("(g) => g.scrollWidth <= g.clientWidth"), (size, lang)
            shot(page, f"m14-ledger-chips-{size['width']}-{lang}")
        page.click("#lang")
        assert page.errors == []
