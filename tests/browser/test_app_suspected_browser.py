"""Doubtful findings in the app, in a real browser (Debian's chromium, 360×640): a suspicion (疑似) and a finding of a
doubtful photo (照片存疑) show dashed boxes, their marks and 待检查员确认 until the inspector confirms one.

Its own server, with the tiny model's colours named so a scene rule can fire: red = fire (FIRE-001), blue = person
(a suspected CONST-002 in a declared 高处作业 photo scene). Screenshots are written to
``work/screenshots/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _builders import encode, scene
from app_fixtures import REPO, AppServer, scene_model_server
from browser_helpers import expect, login
from test_app_browser import choose_photos, inspection, start_inspection

SHOTS = REPO / "work" / "screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with scene_model_server(tmp_path_factory.mktemp("sus-browser")) as s:
        yield s


def _photo(path: Path, rgb: tuple[int, int, int], whole: bool = False) -> Path:
    box = (0, 0, 640, 480) if whole else (160, 80, 320, 240)  # one cell of the tiny model's grid
    stripes = [] if whole else [(x, 0, x + 40, 480, (90, 90, 90)) for x in range(400, 640, 80)]
    path.write_bytes(encode(scene(640, 480, [*stripes, (*box, rgb)]), "JPEG", quality=92))
    return path


def test_a_suspicion_and_a_doubtful_photo_wait_for_the_inspector(server: AppServer, phone: Any, tmp_path: Path):
    page = phone()
    login(page, server, "inspector")
    iid = start_inspection(page, "疑似隐患测试工地")
    page.select_option("#photo-scene", "work_at_height")  # 照片场景 高处作业: a person without a harness is suspected
    choose_photos(page, [_photo(tmp_path / "worker.jpg", (30, 30, 230))])
    suspicion = page.locator("[data-hazard=CONST-002]")
    expect(suspicion).to_have_attribute("data-suspected", "true")
    expect(suspicion.locator("[data-mark=suspected]")).to_have_text("疑似")
    expect(suspicion.locator("[data-awaiting]")).to_contain_text("待检查员确认")
    box = page.locator(f"[data-box='{suspicion.get_attribute('data-finding')}']")
    expect(box).to_have_class("box b-critical doubt")
    expect(box).to_contain_text("疑似")
    assert box.evaluate("(el) => getComputedStyle(el).borderTopStyle") == "dashed"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("[data-photo]").filter(has=suspicion).screenshot(path=str(SHOTS / "suspected-finding.png"))

    page.select_option("#photo-scene", "")
    choose_photos(page, [_photo(tmp_path / "flare.jpg", (230, 20, 20), whole=True)])  # one colour all over
    doubtful = page.locator("[data-hazard=FIRE-001]").first
    expect(doubtful).to_have_attribute("data-unconfirmed", "true")
    expect(doubtful.locator("[data-mark=unconfirmed]")).to_have_text("照片存疑")
    expect(page.locator("[data-photo] .warn").first).to_contain_text("建议重拍")
    flare_card = page.locator("[data-photo]").filter(has=doubtful)
    n = page.locator("[data-hazard=FIRE-001]").count()
    expect(flare_card.locator("[data-waiting]")).to_have_text(f"{n} 处待确认")  # every hazard of it waits

    flare_card.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "unconfirmed-photo.png"))

    # the inspector confirms the suspicion: solid box, no 待检查员确认, and it is in the ledger
    suspicion.locator("[data-act=confirm]").click()
    expect(suspicion).to_have_attribute("data-status", "confirmed")
    expect(suspicion.locator("[data-awaiting]")).to_have_count(0)
    expect(box).not_to_have_class("box b-critical doubt")
    client = server.client("inspector")
    found = {f["hazard_id"]: f for p in inspection(client, iid)["photos"] for f in p["findings"]}
    assert found["CONST-002"]["ledger_item_id"] and found["FIRE-001"]["ledger_item_id"] is None
    assert page.errors == []
