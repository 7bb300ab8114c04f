"""统计 shows the organisation's camera events per camera (only where cameras raised events): how many, how many
still wait, how many became inspections or were 误报. Real parts: the scanner's events database of
tests/test_app_camera_events.py, the service in its own process, Debian's chromium at a phone viewport."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_app_camera_events as cams
from app_fixtures import AppServer, start_app_server
from browser_helpers import expect, login
from test_app_ux_fixes import shot

events_db = cams.events_db  # the fixture: the scanner's events of org A's, org B's and an unsited camera


@pytest.fixture(scope="module")
def server(events_db: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    root = tmp_path_factory.mktemp("camstats")
    shutil.copyfile(events_db, root / "events.db")
    with start_app_server(tiny_model_dir, root / "data", HAZARDSCAN_EVENTS_DB=str(root / "events.db")) as s:
        yield s


def test_statistics_show_each_cameras_events(server: AppServer, phone: Any) -> None:
    c = server.client("inspector")
    old = next(e for e in c.get("/app/api/events").json()["items"] if e["camera_id"] == "old-a")
    assert c.post(f"/app/api/events/{old['id']}/dismiss", json={"reason": "false_alarm"}).status_code == 200
    page = phone()
    login(page, server, "inspector")
    page.goto(f"{server.base_url}/app/#/stats")
    lines = page.locator("ul.hist li[data-camera]")
    expect(lines).to_have_count(3)
    expect(page.locator("li[data-camera='old-a']")).to_have_text(
        "old-a · 现场明火：1 条 · 待处理 0 · 转为检查 0 · 误报 1（误报率 100%）"
    )
    expect(page.locator("li[data-camera='shop-a']")).to_contain_text("待处理 1")
    xlsx = page.get_by_role("link", name="Excel").last
    expect(xlsx).to_have_attribute("href", "/app/api/events/by-camera?format=xlsx")
    page.locator("li[data-camera='shop-a']").scroll_into_view_if_needed()
    shot(page, "stats-cameras")
    page.click("#lang")
    expect(page.locator("li[data-camera='old-a']")).to_have_text(
        "old-a · Open fire on site: 1 · to review 0 · inspections 0 · false alarms 1 (100%)"
    )
    assert page.errors == []


def test_no_camera_card_without_camera_events(tiny_model_dir: Path, tmp_path: Path, phone: Any) -> None:
    with start_app_server(tiny_model_dir, tmp_path / "data") as s:
        page = phone()
        login(page, s, "inspector")
        page.goto(f"{s.base_url}/app/#/stats")
        expect(page.locator("h1")).to_have_text("统计分析")
        page.wait_for_timeout(500)
        expect(page.locator("li[data-camera]")).to_have_count(0)
        assert page.errors == []
