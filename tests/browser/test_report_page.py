"""The public reporting page (隐患随手拍, /app/report/#<token>) in a real browser on a phone, without an account,
against a real server. HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from app_fixtures import AppServer
from browser_helpers import expect
from test_app_a11y import CHECK
from test_app_ux_fixes import shot


def new_link(server: AppServer, name: str) -> tuple[str, str]:
    link = server.client("admin").post("/app/api/report-links", json={"name": name}).json()
    return link["id"], server.base_url + link["path"]


def test_a_passer_by_reports_a_hazard_and_follows_it_by_receipt(app_server: AppServer, phone: Any, photos: Any):
    _, url = new_link(app_server, "桃北路工地围挡公示牌")
    page = phone()
    page.goto(url)
    expect(page.locator("[data-org]")).to_have_text("A 市应急管理局")
    expect(page.locator("text=桃北路工地围挡公示牌")).to_be_visible()
    assert page.evaluate(CHECK) == []  # labelled, tappable, nothing wider than the phone
    shot(page, "report-form")
    page.click("button[type=submit] >> text=提交举报")
    expect(page.locator("p.err").first).to_have_text("请先拍照或选择一张照片")
    with page.expect_file_chooser() as chooser:
        page.locator("label:has([data-pick=gallery])").click()
    chooser.value.set_files(str(photos["fire2"]))
    expect(page.locator("img.rp-preview")).to_be_visible()
    page.fill("#place", "桃北路 12 号 3 单元楼道")
    page.fill("#desc", "楼道里有人烧纸")
    page.fill("#contact", "13900000000")
    page.click("button[type=submit] >> text=提交举报")
    card = page.locator("[data-receipt]")
    expect(card).to_be_visible(timeout=30_000)
    receipt = card.get_attribute("data-receipt")
    assert receipt and re.fullmatch(r"[2-9A-Z]{12}", receipt)
    expect(card.locator(".rp-receipt")).to_have_text(re.sub(r"(.{4})(?=.)", r"\1 ", receipt))
    expect(card.locator("[data-guess] li")).to_have_text(["重大现场明火"])
    assert page.evaluate(CHECK) == []
    shot(page, "report-receipt")

    boss = app_server.client("supervisor")
    report = next(r for r in boss.get("/app/api/reports").json()["items"] if r["place"] == "桃北路 12 号 3 单元楼道")
    assert report["description"] == "楼道里有人烧纸" and report["contact"] == "13900000000"
    assert report["width"] == 640  # a small photo goes as it is (the page downscales only large ones)

    lookup = page.locator("[data-lookup]")
    lookup.locator("#rc").fill(receipt.lower()[:4] + " " + receipt.lower()[4:])  # as read out: any case, spaces
    lookup.locator("button[type=submit]").click()
    expect(lookup.locator("[data-status]")).to_have_text("待核查")
    boss.post(f"/app/api/reports/{report['id']}/reject", json={"note": "现场核查为祭扫用火，已劝离"})
    lookup.locator("button[type=submit]").click()
    expect(lookup.locator("[data-status]")).to_have_text("经核查不属实")
    expect(lookup.locator("[data-note]")).to_have_text("说明：现场核查为祭扫用火，已劝离")
    shot(page, "report-status")
    assert page.errors == []


def test_a_withdrawn_link_says_so_and_takes_nothing(app_server: AppServer, phone: Any):
    link_id, url = new_link(app_server, "已撤下的公示牌")
    assert app_server.client("admin").post(f"/app/api/report-links/{link_id}/revoke").status_code == 200
    page = phone()
    page.goto(url)
    expect(page.locator("[data-gone] h1")).to_have_text("该举报链接已停用")
    expect(page.locator("#place")).to_have_count(0)
    page.goto(url.split("#")[0])  # no token at all
    expect(page.locator("h1").first).to_have_text("举报链接不完整")
    assert page.errors == []


def test_the_page_needs_no_login_and_loads_nothing_from_elsewhere(app_server: AppServer):
    page = httpx.get(f"{app_server.base_url}/app/report/")
    assert page.status_code == 200 and "隐患随手拍" in page.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text)
    script = httpx.get(f"{app_server.base_url}/app/report/report.js")
    assert script.status_code == 200 and "from '../dom.js'" in script.text


def test_the_printed_notices_qr_code_opens_the_reporting_page(app_server: AppServer, phone: Any, tmp_path: Any):
    """The notice as a browser draws it, photographed (a screenshot), its QR code read as a phone's camera reads
    it: the page of the link, ready to take a report."""
    import cv2

    from inference_service.reports.poster import poster_html

    _, url = new_link(app_server, "南门公示栏")
    page = phone(viewport={"width": 794, "height": 1123})
    (tmp_path / "notice.html").write_text(poster_html("A 市应急管理局", "南门公示栏", url), encoding="utf-8")
    page.goto((tmp_path / "notice.html").as_uri())
    page.screenshot(path=str(tmp_path / "notice.png"))
    read, _, _ = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(tmp_path / "notice.png"), cv2.IMREAD_GRAYSCALE))
    assert read == url
    scanned = phone()
    scanned.goto(read)
    expect(scanned.locator("[data-org]")).to_have_text("A 市应急管理局")
    expect(scanned.locator("#place")).to_be_visible()
