"""The app against a server whose disk has no room for photos (its reserve set above what the disk has).
HAZARDSCAN_UX_SHOTS keeps a screenshot (see test_app_ux_fixes.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_fixtures import AppServer, start_app_server
from browser_helpers import expect, login, wait_until
from test_app_browser import choose_photos, inspection, start_inspection
from test_app_ux_fixes import shot


@pytest.fixture(scope="module")
def full_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    data = tmp_path_factory.mktemp("fullphone")
    reserve_mb = shutil.disk_usage(data).free // (1 << 20) + 1_000_000
    with start_app_server(tiny_model_dir, data, HAZARDSCAN_MIN_FREE_DISK_MB=str(reserve_mb)) as server:
        yield server


def test_a_full_disk_is_said_so_and_the_photo_stays_on_the_phone(full_server: AppServer, phone: Any, photos: Any):
    """Not 等待网络 (the network is fine) nor a refusal of the photo (only 放弃 would be left): the card says the
    server's disk is full, and the photo waits on the phone to be sent once there is room."""
    page = phone()
    login(page, full_server, "inspector")
    iid = start_inspection(page, "磁盘已满时的检查")
    refused: list[int] = []
    page.on("response", lambda r: r.url.endswith("/photos") and refused.append(r.status))
    choose_photos(page, [photos["fire4"]])
    wait_until(page, lambda: refused, what="the upload's answer")
    assert refused == [507]
    card = page.locator("[data-queue] .qi")
    expect(card).to_have_count(1)
    expect(card.locator(".q-status")).to_have_text("服务器存储空间已满，照片保留在手机上，稍后自动上传…")
    expect(card.locator("button", has_text="放弃")).to_have_count(0)
    shot(page, "disk-full-queue")
    kept = page.evaluate("""() => new Promise((ok) => { const r = indexedDB.open('hazardscan');
        r.onsuccess = () => { const c = r.result.transaction('bytes').objectStore('bytes').count();
          c.onsuccess = () => ok(c.result); }; })""")
    assert kept == 1  # the photo's bytes, on the phone
    page.wait_for_timeout(3000)  # Retry-After is 60 s: no second try within seconds (the 503 path's would)
    assert refused == [507]
    assert inspection(full_server.client("inspector"), iid)["photo_count"] == 0
    assert page.errors == []
