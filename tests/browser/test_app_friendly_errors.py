"""Raw server and proxy errors never reach the Chinese UI (UX review m3).

A proxy's HTML 502, a server that does not answer: a friendly sentence instead of “502 Bad Gateway”. A photo the
server refuses for good (not a photo: 415; too large: 413) says why and offers 放弃 only, no pointless 重试.
Debian's chromium at 360×640 against a real server (tests/app_fixtures.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app_fixtures import AppServer
from browser_helpers import expect, login
from test_app_browser import choose_photos, start_inspection
from test_app_ux_fixes import shot

FRIENDLY = "服务器暂时无法访问，请稍后重试"


def test_a_proxy_502_or_a_server_that_does_not_answer_reads_as_one_friendly_sentence(
    app_server: AppServer, phone: Any
) -> None:
    """台账 behind a proxy answering 502 in HTML, then with the connection refused: the page says 服务器暂时无法访问，
    请稍后重试 (with 重试), never the proxy's words; the same in English; it works again once the server is back."""
    page = phone()
    login(page, app_server, "inspector")
    page.route(
        "**/app/api/ledger?*",
        lambda r: r.fulfill(status=502, content_type="text/html", body="<html><body>502 Bad Gateway</body></html>"),
    )
    page.click("#nav a[href='#/ledger']")
    main = page.locator("main")
    expect(main).to_contain_text(FRIENDLY)
    expect(main).not_to_contain_text("Bad Gateway")
    expect(main).not_to_contain_text("502")
    expect(page.get_by_role("button", name="重试")).to_be_visible()
    shot(page, "m3-502-ledger")
    page.unroute("**/app/api/ledger?*")
    page.route("**/app/api/ledger?*", lambda r: r.abort("connectionrefused"))
    with page.expect_event("requestfailed"):
        page.get_by_role("button", name="重试").click()
    expect(main).to_contain_text(FRIENDLY)
    expect(main).not_to_contain_text("网络不可用")  # the phone has signal: it is the server
    page.click("#lang")
    expect(main).to_contain_text("The server cannot be reached right now. Please try again later.")
    page.click("#lang")
    expect(main).to_contain_text(FRIENDLY)  # the page asked again, and was refused again, before the server is back
    page.unroute("**/app/api/ledger?*")
    page.get_by_role("button", name="重试").click()
    expect(page.locator("h1")).to_have_text("隐患台账")
    assert page.errors == []


def test_a_file_refused_as_not_a_photo_or_too_large_offers_no_retry(
    app_server: AppServer, phone: Any, tmp_path: Path, photos: Any
) -> None:
    """A text file chosen as a photo (the server answers 415) and a photo a proxy refuses as too large (413): each
    queued one says why in Chinese, with 放弃 but no 重试; 放弃 removes it."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo", encoding="utf-8")
    page = phone()
    login(page, app_server, "inspector")
    start_inspection(page, "拒收文件测试单位")
    choose_photos(page, [notes])
    row = page.locator("[data-queue] .qi")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("这不是照片，无法上传。请放弃，再选择一张照片。")
    expect(row).not_to_contain_text("text")  # not the server's English detail
    expect(row.get_by_role("button", name="放弃")).to_be_visible()
    expect(row.get_by_role("button", name="重试")).to_have_count(0)
    row.scroll_into_view_if_needed()
    shot(page, "m3-not-a-photo")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="放弃").click()
    expect(row).to_have_count(0)

    body = json.dumps({"error": {"code": "payload_too_large", "message": "request body too large"}})
    page.route(
        "**/app/api/inspections/*/photos",
        lambda r: r.fulfill(status=413, content_type="application/json", body=body),
    )
    choose_photos(page, [photos["fire"]])
    expect(row).to_have_count(1)
    expect(row).to_contain_text("照片太大，无法上传。")
    expect(row.get_by_role("button", name="重试")).to_have_count(0)
    expect(row.get_by_role("button", name="放弃")).to_be_visible()
    shot(page, "m3-too-large")
    assert page.errors == []
