"""群众举报 in the app: reports sent through a public report link (no account) checked by a supervisor — 查证属实 into
an inspection with the report's photo, whose finding waits for 确认; 不属实 with a reason its sender reads on the
receipt — the inspections list's line to them (supervisors and admins only), and 举报链接 on 我的 (admins).

Real parts: the service in its own process, reports sent through its public API with httpx (no login), Debian's
chromium at a phone viewport. HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

import io
from typing import Any

import httpx
from app_fixtures import AppServer, clean_photo, fire_photo
from browser_helpers import expect, login
from PIL import Image
from test_app_a11y import CHECK
from test_app_browser import findings, inspection
from test_app_ux_fixes import shot
from test_reports import new_link, send, token_of


def card(page: Any, place: str) -> Any:
    return page.locator("[data-report]", has=page.locator("[data-place]", has_text=place))


def dark_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (6, 6, 6)).save(out, "JPEG", quality=90)
    return out.getvalue()


def waiting(server: AppServer) -> int:
    return server.client("supervisor").get("/app/api/reports", params={"status": "new"}).json()["total"]


def test_a_supervisor_verifies_one_report_and_finds_another_false(app_server: AppServer, phone: Any) -> None:
    """The list's line “群众举报 · N 条待核查” leads to 群众举报 (the 检查 tab current); each card shows the photo, the
    AI's guess, the place, what the sender wrote, their phone number and the link it came through. 查证属实 asks for
    the scene and the unit's name (the place, unless changed), then opens the new inspection: the report's photo,
    its 现场明火 待确认. 不属实 needs a reason, which the sender then reads with their receipt."""
    token = token_of(new_link(app_server, "东风三路工地公示牌"))
    fire = send(app_server, token, fire_photo(80), place="桃园路 6 号仓库", description="仓库门口有人烧纸箱",
                contact="13800000000").json()  # fmt: skip
    clean = send(app_server, token, clean_photo(81), place="北大街菜市场").json()
    send(app_server, token, dark_photo(), place="人民路地下车库")
    n = waiting(app_server)
    page = phone()
    login(page, app_server, "supervisor")
    line = page.locator("[data-reports-line]")
    expect(line).to_have_text(f"群众举报 · {n} 条待核查›")
    expect(line).to_have_attribute("href", "#/reports")
    shot(page, "reports-list-line-360")
    line.click()
    expect(page.locator("h1")).to_have_text("群众举报")
    expect(page.locator("#nav a[aria-current=page]")).to_have_attribute("href", "#/inspections")
    expect(page.locator(".chips .chip")).to_have_text(["待核查", "查证属实", "不属实", "全部"])
    expect(page.locator(".chip[aria-pressed=true]")).to_have_text("待核查")
    expect(page.locator("[data-total]")).to_have_text(f"共 {n} 条")
    hot = card(page, "桃园路 6 号仓库")
    expect(hot.locator("[data-desc]")).to_have_text("仓库门口有人烧纸箱")
    expect(hot.locator("[data-contact]")).to_have_attribute("href", "tel:13800000000")
    expect(hot.locator("[data-link]")).to_have_text("东风三路工地公示牌")
    expect(hot.locator("[data-hazard=FIRE-001]")).to_have_text("现场明火重大")
    expect(hot.locator("[data-act]")).to_have_text(["不属实", "查证属实"])
    img = hot.locator("img[data-photo]")
    expect(img).to_have_attribute("src", f"/app/api/reports/{hot.get_attribute('data-report')}/photo.jpg?max_side=240")
    page.wait_for_function("el => el.complete && el.naturalWidth === 240", arg=img.element_handle())
    expect(card(page, "北大街菜市场").locator("[data-guess]")).to_have_text("AI 初判AI 未识别出隐患")
    export = page.locator("a[data-act=export]")  # the verified ones, for the reward
    table = page.request.get(app_server.base_url + export.get_attribute("href"))
    assert table.status == 200 and table.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert page.evaluate(CHECK) == []
    shot(page, "reports-view-360")
    dark = card(page, "人民路地下车库")
    expect(dark.locator("[data-warnings]")).to_contain_text("照片几乎全黑")
    dark.scroll_into_view_if_needed()
    shot(page, "reports-view-warning-360")

    hot.locator("[data-act=verify]").click()
    sheet = page.locator("dialog[data-ask]")
    expect(sheet.locator("h2")).to_have_text("查证属实，转为检查")
    expect(sheet.get_by_label("被检查单位名称")).to_have_value("桃园路 6 号仓库")
    expect(sheet.locator("[data-answer]")).to_have_count(8)  # the seven scenes and 取消
    assert page.evaluate(CHECK) == []
    shot(page, "reports-verify-sheet-360")
    sheet.get_by_label("被检查单位名称").fill("桃园物流仓库")
    sheet.locator("[data-answer=industry]").click()
    page.wait_for_url("**/app/#/inspection/*")
    iid = page.url.rsplit("/", 1)[1]
    boss = app_server.client("supervisor")
    got = inspection(boss, iid)
    assert (got["unit"]["name"], got["unit"]["address"]) == ("桃园物流仓库", "桃园路 6 号仓库")
    assert got["scene"] == "industry"
    expect(page.locator(".photo img").first).to_be_visible()
    expect(page.locator("[data-hazard=FIRE-001]")).to_have_attribute("data-status", "pending")
    expect(page.locator("[data-taken-source=report]")).to_contain_text("（群众举报）")
    expect(page.locator("a[data-report-from]")).to_have_text("来自群众举报›")
    expect(page.locator("a[data-report-from]")).to_have_attribute("href", "#/reports?status=verified")
    page.goto(f"{app_server.base_url}/app/#/stats")  # 统计: the period's reports, by what became of them
    expect(page.locator(".card", has=page.locator("h2", has_text="群众举报"))).to_contain_text("查证属实")
    page.go_back()
    assert [f["status"] for f in findings(boss, iid).values()] == ["pending"]
    shot(page, "reports-inspection-360")

    page.go_back()
    expect(page.locator("[data-total]")).to_have_text(f"共 {n - 1} 条")
    expect(hot).to_have_count(0)
    market = card(page, "北大街菜市场")
    market.locator("[data-act=reject]").click()
    expect(sheet.locator("h2")).to_have_text("标记为不属实")
    sheet.locator("[data-answer=reject]").click()  # no reason yet: the sheet stays and says so
    expect(sheet.locator("[data-ask-err]")).to_have_text("请填写不属实的原因")
    expect(sheet.get_by_label("原因")).to_be_focused()
    assert page.evaluate(CHECK) == []
    shot(page, "reports-reject-sheet-360")
    sheet.get_by_label("原因").fill("现场核查为正常施工，已有动火审批")
    sheet.locator("[data-answer=reject]").click()
    expect(market).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("已标记为不属实")
    expect(page.locator("[data-total]")).to_have_text(f"共 {n - 2} 条")
    receipt = httpx.get(f"{app_server.base_url}/app/api/report-receipt/{clean['receipt']}").json()  # no login
    assert (receipt["status"], receipt["note"]) == ("rejected", "现场核查为正常施工，已有动火审批")
    assert httpx.get(f"{app_server.base_url}/app/api/report-receipt/{fire['receipt']}").json()["status"] == "verified"

    page.locator("[data-filter=rejected]").click()
    expect(page).to_have_url(f"{app_server.base_url}/app/#/reports?status=rejected")
    expect(market.locator("[data-review-line]")).to_contain_text("不属实（李主管 ")
    expect(market.locator("[data-review-note]")).to_have_text("「现场核查为正常施工，已有动火审批」")
    expect(market.locator("[data-act]")).to_have_count(0)
    shot(page, "reports-rejected-360")
    page.locator("[data-filter=verified]").click()
    expect(hot.locator("[data-review-line]")).to_contain_text("已查证属实（李主管 ")
    view = hot.locator("[data-act=view-insp]")
    expect(view).to_have_text("查看检查")
    expect(view).to_have_attribute("href", f"#/inspection/{iid}")
    assert page.evaluate(CHECK) == []
    shot(page, "reports-verified-360")
    page.click("#lang")
    expect(page.locator("h1")).to_have_text("Public reports")
    expect(hot.locator("[data-review-line]")).to_contain_text("Verified (李主管, ")
    shot(page, "reports-verified-360-en")
    page.goto(f"{app_server.base_url}/app/#/inspections")
    expect(page.locator("[data-reports-line]")).to_contain_text("Public reports · ")
    assert page.errors == []


def test_a_report_decided_meanwhile_says_so_on_its_card(app_server: AppServer, phone: Any) -> None:
    """A colleague found the report 不属实 while it was still on this screen: 查证属实 shows the server's why, and the
    list, fetched again, no longer has it under 待核查. With nothing waiting, the list's line says 无待核查."""
    token = token_of(new_link(app_server, "过期卡片"))
    send(app_server, token, fire_photo(82), place="新华街 3 号")
    page = phone()
    login(page, app_server, "supervisor")
    page.goto(f"{app_server.base_url}/app/#/reports")
    stale = card(page, "新华街 3 号")
    expect(stale.locator("[data-act=verify]")).to_be_visible()
    boss = app_server.client("supervisor")
    for r in boss.get("/app/api/reports", params={"status": "new"}).json()["items"]:
        boss.post(f"/app/api/reports/{r['id']}/reject", json={"note": "重复举报"}).raise_for_status()
    stale.locator("[data-act=verify]").click()
    page.locator("dialog[data-ask] [data-answer=construction]").click()
    expect(page.locator("#toast")).to_have_text("该举报已标记为不属实")
    expect(stale).to_have_count(0)
    expect(page.locator(".empty")).to_have_text("没有待核查的举报")
    page.goto(f"{app_server.base_url}/app/#/inspections")
    line = page.locator("[data-reports-line]")
    expect(line).to_have_text("群众举报 · 无待核查›")
    expect(line).to_have_class("card evline quiet")
    assert page.errors == []


def test_an_inspector_sees_no_reports(app_server: AppServer, phone: Any) -> None:
    """Reports are for supervisors: an inspector's list has no line (and does not ask for one), and #/reports typed
    in says so plainly."""
    token = token_of(new_link(app_server, "检查员看不到"))
    send(app_server, token, clean_photo(83), place="检查员看不到的举报")
    page = phone()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/app/api/reports" in r.url else None)
    login(page, app_server, "inspector")
    expect(page.locator(".item, .empty").first).to_be_visible()
    expect(page.locator("[data-reports-line]")).to_have_count(0)
    page.wait_for_timeout(300)
    assert asked == []
    page.goto(f"{app_server.base_url}/app/#/reports")
    expect(page.locator("[data-no-perm]")).to_have_text("群众举报仅主管和管理员可以查看。")
    expect(page.locator("h1")).to_have_text("群众举报")
    shot(page, "reports-inspector-360")
    assert page.errors == []


def test_an_admin_publishes_a_link_and_revokes_it(app_server: AppServer, phone: Any) -> None:
    """我的 → 举报链接: 新建 makes a link whose address (shown whole, to copy or print as a QR code) the public page
    answers; 复制链接 puts it on the clipboard; a report through it is counted; 停用, after a confirmation, ends it
    at once (404) and the link is shown 已停用, without buttons."""
    page = phone(permissions=["clipboard-read", "clipboard-write"])
    login(page, app_server, "admin")
    page.goto(f"{app_server.base_url}/app/#/me")
    box = page.locator("#report-links")
    expect(box.locator("h2")).to_have_text("举报链接")
    expect(box).to_contain_text("公开后任何人无需登录即可拍照举报隐患；可打印成二维码张贴在现场")
    box.locator("button[type=submit]").click()
    expect(box.locator(".err")).to_have_text("请填写链接名称")
    box.get_by_label("链接名称（张贴位置）").fill("人民广场公示栏")
    box.locator("button[type=submit]").click()
    expect(page.locator("#toast")).to_have_text("已新建举报链接")
    row = box.locator("li[data-link]").first
    expect(row.locator("strong")).to_have_text("人民广场公示栏")
    expect(row.locator("[data-counts]")).to_have_text("共 0 条举报，待核查 0 条")
    url = row.locator("[data-url]").inner_text()
    assert url.startswith(f"{app_server.base_url}/app/report/#")
    token = url.rpartition("#")[2]
    assert httpx.get(f"{app_server.base_url}/app/api/report/{token}").status_code == 200
    row.locator("[data-act=copy]").click()
    expect(page.locator("#toast")).to_have_text("链接已复制")
    assert page.evaluate("navigator.clipboard.readText()") == url
    poster = row.locator("a[data-act=poster]")
    expect(poster).to_have_text("打印二维码")
    pdf = page.request.get(app_server.base_url + poster.get_attribute("href"))  # with the admin's session
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    send(app_server, token, clean_photo(84), place="人民广场东门")
    page.reload()
    row = box.locator("li[data-link]", has_text="人民广场公示栏")
    expect(row.locator("[data-counts]")).to_have_text("共 1 条举报，待核查 1 条")
    row.scroll_into_view_if_needed()
    assert page.evaluate(CHECK) == []
    shot(page, "report-links-360")

    row.locator("[data-act=revoke]").click()
    sheet = page.locator("dialog[data-ask]")
    expect(sheet.locator("h2")).to_have_text("停用“人民广场公示栏”？")
    shot(page, "report-links-revoke-sheet-360")
    sheet.locator("[data-answer=revoke]").click()
    expect(page.locator("#toast")).to_have_text("已停用“人民广场公示栏”")
    row = box.locator("li[data-link]", has_text="人民广场公示栏")
    expect(row).to_have_attribute("data-revoked", "true")
    expect(row.locator(".tag-bad")).to_have_text("已停用")
    expect(row.locator("[data-counts]")).to_have_text("共 1 条举报，待核查 1 条")
    expect(row.locator("button, [data-url], [data-act]")).to_have_count(0)
    assert httpx.get(f"{app_server.base_url}/app/api/report/{token}").status_code == 404
    shot(page, "report-links-revoked-360")
    page.click("#lang")
    expect(box.locator("h2")).to_have_text("Report links")
    box.locator("li[data-link]").first.scroll_into_view_if_needed()
    shot(page, "report-links-360-en")
    assert page.errors == []


def test_without_a_clipboard_the_address_is_selected_to_copy(app_server: AppServer, phone: Any) -> None:
    """No clipboard permission (as on a plain http address): 复制链接 selects the whole address instead."""
    new_link(app_server, "无剪贴板")
    page = phone()
    login(page, app_server, "admin")
    page.goto(f"{app_server.base_url}/app/#/me")
    page.evaluate("Object.defineProperty(navigator, 'clipboard', { value: undefined })")
    row = page.locator("#report-links li[data-link]", has_text="无剪贴板")
    row.locator("[data-act=copy]").click()
    expect(page.locator("#toast")).to_have_text("已选中链接，请长按复制")
    assert page.evaluate("getSelection().toString()") == row.locator("[data-url]").inner_text()
    assert page.errors == []
