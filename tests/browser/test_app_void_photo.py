"""照片 N, from the phone UX review (work/s18/ux/FINDINGS.md m10).

Every photo card says 照片 N as numbered in the printed 现场检查记录 (照片 1 = the oldest). Debian's chromium at
360×640 against a real server (tests/app_fixtures.py); each test makes its own inspection. HAZARDSCAN_UX_SHOTS
keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from typing import Any

from app_fixtures import AppServer
from browser_helpers import expect, login
from test_app_browser import choose_photos, inspection, start_inspection
from test_app_ux_fixes import shot


def card_numbers(page: Any) -> list[str]:
    """照片 N of each photo card, top to bottom."""
    return [t.strip() for t in page.locator("[data-photo] [data-photo-title]").all_inner_texts()]


def test_photos_are_numbered_as_in_the_record(app_server: AppServer, phone: Any, photos: Any) -> None:
    """Each photo card says 照片 N, N as in 现场检查记录 (照片 1 = the oldest), the newest shown first; a photo
    taken later is 照片 4 at the top."""
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "照片编号测试单位")
    choose_photos(page, [photos["fire"], photos["clean"], photos["fire2"]])
    expect(page.locator("[data-photo]")).to_have_count(3)
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    assert card_numbers(page) == ["照片 3", "照片 2", "照片 1"]  # the newest on top, under 拍照
    shot(page, "m10-photo-numbers")

    record = app_server.client("inspector").get(f"/app/inspections/{iid}/record")
    record.raise_for_status()
    printed = dict(re.findall(r"<h2>照片 (\d+)</h2>.*?SHA-256 ([0-9a-f]{64})", record.text, flags=re.S))
    assert sorted(printed) == ["1", "2", "3"]
    sha = {p["id"]: p["sha256"] for p in inspection(app_server.client("inspector"), iid)["photos"]}
    for card in page.locator("[data-photo]").all():
        n = card.get_attribute("data-photo-no")
        assert card.locator("[data-photo-title]").inner_text().strip() == f"照片 {n}"
        assert printed[n] == sha[card.get_attribute("data-photo")]  # 照片 N here is 照片 N of the record

    choose_photos(page, [photos["fire3"]])
    expect(page.locator("[data-photo]")).to_have_count(4)
    expect(page.locator("[data-photo]").first.locator("[data-photo-title]")).to_have_text("照片 4")
    assert card_numbers(page) == ["照片 4", "照片 3", "照片 2", "照片 1"]
    assert page.errors == []
