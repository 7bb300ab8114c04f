"""The inspector app in a real browser (Debian's chromium, 360×640) against a real server (tests/app_fixtures.py).

One module-scoped server; each test makes its own inspection, so the order of the tests does not matter.
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from app_fixtures import AppServer
from browser_helpers import expect, login, wait_until
from PIL import Image


def submit_offline_inspection(page: Any, unit: str, address: str, scene: str = "construction") -> None:
    """Fill the open 新建检查 form and send it while offline: the inspection waits on the phone (待同步)."""
    page.fill("#uname", unit)
    page.fill("#addr", address)
    page.select_option("#scene", scene)
    page.click("form button[type=submit]")
    expect(page.locator("[data-local=pending]")).to_be_visible()


def start_inspection(page: Any, unit: str) -> str:
    """Fill 新建检查 in the UI; returns the new inspection's id."""
    page.click("a[href='#/new']")
    page.fill("#uname", unit)
    page.fill("#addr", "江城区东风三路 88 号")
    page.fill("#credit", "91441700MA4UXXXX0X")
    page.select_option("#scene", "construction")
    page.click("form button[type=submit]")
    expect(page.locator("[data-pick=gallery]")).to_be_attached()
    m = re.search(r"#/inspection/([\w-]+)$", page.url)
    assert m, page.url
    return m.group(1)


def choose_photos(page: Any, files: list[Path], pick: str = "gallery") -> None:
    """Open the real file chooser by tapping the button, as a person would, and choose ``files``."""
    with page.expect_file_chooser() as chooser:
        page.locator(f"label:has([data-pick={pick}])").click()
    chooser.value.set_files([str(f) for f in files])


def inspection(client: httpx.Client, iid: str) -> dict[str, Any]:
    r = client.get(f"/app/api/inspections/{iid}")
    r.raise_for_status()
    return r.json()


def findings(client: httpx.Client, iid: str) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for p in inspection(client, iid)["photos"] for f in p["findings"]}


def drag(page: Any, frame: Any, img_w: float, a: tuple[float, float], b: tuple[float, float]) -> None:
    """Drag on the photo from image pixel ``a`` to ``b`` (the photo is shown scaled to the screen)."""
    frame.scroll_into_view_if_needed()
    bb = frame.bounding_box()
    k = bb["width"] / img_w
    page.mouse.move(bb["x"] + a[0] * k, bb["y"] + a[1] * k)
    page.mouse.down()
    page.mouse.move(bb["x"] + (a[0] + b[0]) / 2 * k, bb["y"] + (a[1] + b[1]) / 2 * k, steps=4)
    page.mouse.move(bb["x"] + b[0] * k, bb["y"] + b[1] * k, steps=4)
    page.mouse.up()


def test_login_inspect_decide_and_add_a_missed_hazard(app_server: AppServer, phone: Any, photos: Any) -> None:
    page = phone()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((app_server.base_url, "blob:", "data:"))
            else None)  # fmt: skip
    page.goto(f"{app_server.base_url}/app/")
    expect(page.locator("#u")).to_be_visible()  # not logged in: the login form
    page.fill("#u", "insp_a")
    page.fill("#p", "wrong-password")
    page.click("form button[type=submit]")
    expect(page.locator(".err")).not_to_be_empty()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "阳江市浏览器测试建筑公司")

    choose_photos(page, [photos["fire"], photos["fire_smoke"]])
    expect(page.locator("[data-photo]")).to_have_count(2)
    cards = page.locator("[data-finding]")
    expect(cards).to_have_count(3)  # fire: FIRE-001; fire + smoke: FIRE-001, FIRE-002
    expect(page.locator("[data-hazard=FIRE-001]").first).to_contain_text("现场明火")
    expect(page.locator("[data-hazard=FIRE-001]").first).to_contain_text("消防法")  # the legal basis
    expect(page.locator("[data-hazard=FIRE-001]").first.locator(".sev")).to_have_text("重大")
    expect(page.locator("[data-hazard=FIRE-002]")).to_contain_text("置信度")

    client = app_server.client("inspector")
    ins = inspection(client, iid)
    assert ins["unit"]["credit_code"] == "91441700MA4UXXXX0X" and ins["scene"] == "construction"
    assert ins["photo_count"] == 2
    single = next(p for p in ins["photos"] if len(p["findings"]) == 1)
    double = next(p for p in ins["photos"] if len(p["findings"]) == 2)
    one = page.locator(f"[data-photo='{single['id']}']")
    two = page.locator(f"[data-photo='{double['id']}']")

    # 确认 one, 误报 another
    one.locator("[data-hazard=FIRE-001] [data-act=confirm]").click()
    expect(one.locator("[data-hazard=FIRE-001]")).to_have_attribute("data-status", "confirmed")
    two.locator("[data-hazard=FIRE-002] [data-act=reject]").click()
    expect(two.locator("[data-hazard=FIRE-002]")).to_have_attribute("data-status", "rejected")

    # adjust a box: drag its bottom-right handle, then 保存并确认
    two.locator("[data-hazard=FIRE-001] [data-act=adjust]").click()
    handle = two.locator(".handle[data-corner='23']")
    expect(handle).to_be_visible()
    frame = two.locator(".photo")
    hb = handle.bounding_box()
    k = frame.bounding_box()["width"] / double["width"]
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(hb["x"] + hb["width"] / 2 + 40 * k, hb["y"] + hb["height"] / 2 + 40 * k, steps=5)
    page.mouse.up()
    two.locator("[data-hazard=FIRE-001]").get_by_role("button", name="保存并确认").click()
    expect(two.locator("[data-hazard=FIRE-001]")).to_have_attribute("data-status", "confirmed")

    # add a missed hazard the model cannot detect: draw a box, pick 堵塞安全出口, write a note
    one.locator("[data-act=add-missed]").click()
    drag(page, one.locator(".photo"), single["width"], (400, 260), (560, 420))
    expect(one.locator(".box.new")).to_be_visible()
    one.locator("select[name=hazard]").select_option("FIRE-006")
    one.locator("textarea[name=note]").fill("楼梯间堆放纸箱")
    one.locator("[data-act=save-missed]").click()
    added = one.locator("[data-hazard=FIRE-006]")
    expect(added).to_contain_text("检查员补录")
    expect(added).to_contain_text("楼梯间堆放纸箱")

    fs = findings(client, iid)
    by = {(f["photo_id"], f["hazard_id"]): f for f in fs.values()}
    assert by[(single["id"], "FIRE-001")]["status"] == "confirmed"
    assert by[(double["id"], "FIRE-002")]["status"] == "rejected"
    moved = by[(double["id"], "FIRE-001")]
    assert moved["status"] == "confirmed"
    old = next(f for f in double["findings"] if f["hazard_id"] == "FIRE-001")["box"]
    assert moved["box"][:2] == pytest.approx(old[:2], abs=2)  # the top-left corner stayed
    assert moved["box"][2] == pytest.approx(old[2] + 40, abs=4) and moved["box"][3] == pytest.approx(old[3] + 40, abs=4)
    mine = by[(single["id"], "FIRE-006")]
    assert mine["source"] == "inspector" and mine["status"] == "confirmed" and mine["note"] == "楼梯间堆放纸箱"
    assert mine["box"] == pytest.approx([400, 260, 560, 420], abs=4)

    # the list shows it; English switch
    page.click("#nav a[href='#/inspections']")
    expect(page.locator(f"a[href='#/inspection/{iid}']")).to_contain_text("阳江市浏览器测试建筑公司")
    page.click("#lang")
    expect(page.locator("#nav")).to_contain_text("Ledger")
    page.click("#lang")
    expect(page.locator("#nav")).to_contain_text("台账")
    assert outside == [], f"the app fetched from outside: {outside}"
    assert page.errors == []


def test_offline_photo_waits_in_the_queue_and_uploads_once(app_server: AppServer, phone: Any, photos: Any) -> None:
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "地下车库离线测试单位")
    client = app_server.client("inspector")

    page.context.set_offline(True)
    choose_photos(page, [photos["fire2"]], pick="camera")
    expect(page.locator("[data-queue] .qi")).to_have_count(1)
    expect(page.locator("#net")).to_contain_text("离线")
    page.wait_for_timeout(500)  # give a wrong implementation the chance to upload anyway
    assert inspection(client, iid)["photo_count"] == 0

    page.context.set_offline(False)  # the 'online' event starts the upload
    expect(page.locator("[data-photo]")).to_have_count(1)
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    assert inspection(client, iid)["photo_count"] == 1

    # the server stores a photo but the answer is lost: the retried upload (same key) makes no second record
    lost: list[int] = []

    def answer_lost(route: Any) -> None:
        resp = route.fetch()
        lost.append(resp.status)
        route.abort()

    page.route("**/photos", answer_lost, times=1)
    choose_photos(page, [photos["fire3"]])
    wait_until(page, lambda: inspection(client, iid)["photo_count"] == 2, what="the server storing the second photo")
    assert lost == [201]
    expect(page.locator("[data-queue] .qi")).to_have_count(1)  # the phone still holds it
    page.reload()  # the app starts again and retries what is queued
    expect(page.locator("[data-photo]")).to_have_count(2)
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    ins = inspection(client, iid)
    assert ins["photo_count"] == 2 and len(ins["photos"]) == 2
    assert page.errors == []


def test_a_busy_server_is_said_so_and_tried_again_when_it_says(app_server: AppServer, phone: Any, photos: Any) -> None:
    """A 503 with Retry-After (the model's queue is full) is not a lost network: the card says the server is busy
    and the upload goes again after the server's Retry-After, not the 15 s an offline phone waits."""
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "繁忙时段测试单位")
    busy = {"error": {"code": "server_busy", "message": "the server is busy (17 photos running or queued)"}}
    page.route("**/photos", lambda route: route.fulfill(status=503, headers={"Retry-After": "3"}, json=busy), times=1)
    choose_photos(page, [photos["fire4"]])
    expect(page.locator("[data-queue] .q-status")).to_have_text("服务器繁忙，稍后自动重试…")
    refused_at = time.monotonic()
    expect(page.locator("[data-photo]")).to_have_count(1, timeout=12_000)
    assert 1.0 < time.monotonic() - refused_at < 12  # after the server's 3 s (less the time to see the text), before 15
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    assert inspection(app_server.client("inspector"), iid)["photo_count"] == 1
    assert page.errors == []


def test_a_phone_refused_again_and_again_backs_off(app_server: AppServer, phone: Any, photos: Any) -> None:
    """Refused again, a phone waits longer each time (1, 2, 4 … s, with some jitter), so that a crowd of phones
    does not upload in step every second while the server is overloaded."""
    page = phone()
    page.add_init_script("Math.random = () => 0.5")  # the jitter's middle: the waits are 1 s and 2 s exactly
    login(page, app_server, "inspector")
    iid = start_inspection(page, "持续繁忙测试单位")
    busy = {"error": {"code": "server_busy", "message": "the server is busy"}}
    tries: list[float] = []

    def refuse(route: Any) -> None:
        tries.append(time.monotonic())
        route.fulfill(status=503, headers={"Retry-After": "1"}, json=busy)

    page.route("**/photos", refuse, times=3)
    choose_photos(page, [photos["fire5"]])
    expect(page.locator("[data-photo]")).to_have_count(1, timeout=20_000)  # the fourth try goes through
    assert len(tries) == 3
    first, second = tries[1] - tries[0], tries[2] - tries[1]
    assert 0.9 < first < 1.7 and second > 1.9 and second > first + 0.6, (first, second)
    assert inspection(app_server.client("inspector"), iid)["photo_count"] == 1


def test_photo_is_downscaled_upright_in_the_browser(app_server: AppServer, phone: Any, tmp_path: Path) -> None:
    """A 4000×3000 photo with EXIF orientation 6 (a phone held upright) is kept and sent as 1536×2048, upright."""
    img = Image.new("RGB", (4000, 3000), (90, 120, 150))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80, exif=exif)
    path.write_bytes(buf.getvalue())
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "压缩测试单位")
    expect(page.locator("#photo-scene option").first).to_contain_text("默认")  # construction's own photo scene
    page.select_option("#photo-scene", "corridor")  # 照片场景: the rules of a corridor apply to this photo
    page.context.set_offline(True)  # the phone downscales what it keeps, signal or not
    choose_photos(page, [path])
    kept = wait_until(page, lambda: page.evaluate("() => window.hazardscan.queue().filter((r) => r.scaled)"))
    assert kept[0]["type"] == "image/jpeg" and kept[0]["size"] < path.stat().st_size / 4
    page.context.set_offline(False)
    expect(page.locator("[data-photo]")).to_have_count(1)
    p = inspection(app_server.client("inspector"), iid)["photos"][0]
    assert (p["width"], p["height"]) == (1536, 2048)
    assert p["scene"] == "corridor"
    expect(page.locator("[data-photo] [data-scene=corridor]")).to_be_visible()
    stored = app_server.client("inspector").get(p["original_url"])
    assert Image.open(io.BytesIO(stored.content)).size == (1536, 2048)  # the bytes sent were the small ones


def test_photo_keeps_the_files_time_and_goes_without_it_when_the_clock_is_ahead(
    app_server: AppServer, phone: Any, tmp_path: Path
) -> None:
    """The queue sends each file's time (File.lastModified) as taken_at; the server keeps it on the photo and the
    photo's header shows it. A file dated a day ahead (a phone clock gone wrong) is refused by the server with
    invalid_taken_at, and the queue sends the photo again without the time instead of leaving it stuck."""
    files = []
    for name, shade, when in (("t1.jpg", 60, 1_772_416_800), ("t2.jpg", 200, int(time.time()) + 86_400)):
        path = tmp_path / name  # 1_772_416_800: 2026-03-02 10:00:00 in China
        Image.new("RGB", (640, 480), (shade, 120, 150)).save(path, "JPEG", quality=80)
        os.utime(path, (when, when))
        files.append(path)
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "拍摄时间测试单位")
    choose_photos(page, files[:1])
    expect(page.locator("[data-photo]")).to_have_count(1)
    taken = page.locator('[data-photo] [data-taken="2026-03-02T10:00:00"]')
    expect(taken).to_contain_text("拍摄于 2026-03-02 10:00:00（文件时间）")
    choose_photos(page, files[1:])
    expect(page.locator("[data-photo]")).to_have_count(2)
    expect(page.locator("[data-queue] .qi")).to_have_count(0)  # not left failed in the queue
    got = [(p["taken_at"], p["taken_at_source"]) for p in inspection(app_server.client("inspector"), iid)["photos"]]
    assert got == [("2026-03-02T10:00:00", "client"), (None, None)]
    expect(page.locator("[data-photo] [data-taken]")).to_have_count(1)
    assert page.errors == []


def test_another_organisation_cannot_see_the_record(app_server: AppServer, phone: Any, photos: Any) -> None:
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "甲单位机密检查")
    choose_photos(page, [photos["fire"]])
    expect(page.locator("[data-photo]")).to_have_count(1)

    other = phone()
    login(other, app_server, "inspector_b")
    expect(other.locator("main h1")).to_contain_text("检查记录")
    expect(other.locator("main")).not_to_contain_text("甲单位机密检查")
    other.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    expect(other.locator("main .err")).to_be_visible()
    expect(other.locator("[data-photo]")).to_have_count(0)
    expect(other.locator("main")).not_to_contain_text("甲单位机密检查")
    assert app_server.client("inspector_b").get(f"/app/api/inspections/{iid}").status_code == 404
    # nor its ledger: org B's is empty, and says how hazards get there; a filter that finds nothing says so instead
    other.click("#nav a[href='#/ledger']")
    expect(other.locator("main p.empty")).to_contain_text("检查中“确认”的隐患会记入这里")
    other.locator("details.card > summary").click()
    other.fill("#f-unit", "甲单位机密检查")
    other.get_by_role("button", name="应用").click()
    expect(other.locator("main p.empty")).to_have_text("没有符合条件的隐患。")


def ledger_card(page: Any, finding_id: str) -> Any:
    return page.locator(f"[data-ledger][data-finding='{finding_id}']")


def test_ledger_items_to_closed_documents_and_statistics(
    app_server: AppServer, phone: Any, photos: Any, tmp_path: Path
) -> None:
    insp = phone()
    login(insp, app_server, "inspector")
    iid = start_inspection(insp, "台账闭环测试单位")
    choose_photos(insp, [photos["fire4"], photos["fire5"]])
    expect(insp.locator("[data-photo]")).to_have_count(2)
    client = app_server.client("inspector")
    stats_before = client.get("/app/api/stats").json()["rectification"]
    fids = [p["findings"][0]["id"] for p in inspection(client, iid)["photos"]]
    for fid in fids:
        insp.locator(f"[data-finding='{fid}'] [data-act=confirm]").click()
        expect(insp.locator(f"[data-finding='{fid}']")).to_have_attribute("data-status", "confirmed")

    # the printable notice as a PDF: a first page and a page per photo
    with insp.expect_download() as dl:
        insp.locator("[data-doc='notice.pdf']").click()
    pdf = tmp_path / "notice.pdf"
    dl.value.save_as(pdf)
    from pypdf import PdfReader

    pages = PdfReader(pdf).pages
    assert len(pages) == 1 + 2
    assert "隐患整改通知书" in "".join(pages[0].extract_text().split())
    with insp.expect_download() as dl:
        insp.locator("[data-doc='record.pdf']").click()
    assert len(PdfReader(dl.value.path()).pages) == 1 + 2

    # 待整改 -> 整改中 -> (rectification photo) -> 待复查, for both: one fixed, one where the fire is still there
    insp.click("#nav a[href='#/ledger']")
    for fid, fix in ((fids[0], photos["clean"]), (fids[1], photos["fire"])):
        card = ledger_card(insp, fid)
        expect(card).to_have_attribute("data-status", "open")
        expect(card).to_contain_text("待整改")
        card.locator("input[name=responsible]").fill("王安全")
        card.locator("[data-act=start]").click()
        card = ledger_card(insp, fid)
        expect(card).to_have_attribute("data-status", "in_progress")
        with insp.expect_file_chooser() as chooser:
            card.locator("label:has([data-pick=rectification])").click()
        chooser.value.set_files(str(fix))
        expect(ledger_card(insp, fid)).to_have_attribute("data-status", "pending_review")
    expect(ledger_card(insp, fids[0])).to_contain_text("AI 复查通过")
    expect(ledger_card(insp, fids[1])).to_contain_text("AI 复查未通过")
    expect(ledger_card(insp, fids[1])).to_contain_text("等待主管复查销号")  # an inspector cannot close
    expect(ledger_card(insp, fids[1]).locator("[data-act=close]")).to_have_count(0)

    sup = phone()
    login(sup, app_server, "supervisor")
    sup.click("#nav a[href='#/ledger']")
    sup.locator("details.card > summary").click()  # 筛选: this unit's items by 张检查
    sup.fill("#f-unit", "台账闭环测试单位")
    sup.select_option("#f-inspector", label="张检查")
    sup.select_option("#f-severity", "critical")
    sup.get_by_role("button", name="应用").click()
    expect(sup.locator("[data-ledger]")).to_have_count(2)
    expect(sup.locator("main")).to_contain_text("共 2 条")
    ledger_card(sup, fids[0]).locator("[data-act=close]").click()
    expect(ledger_card(sup, fids[0])).to_have_attribute("data-status", "closed")
    expect(ledger_card(sup, fids[0])).to_contain_text("已销号")
    failed = ledger_card(sup, fids[1])
    expect(failed).to_have_attribute("data-recheck", "failed")
    # 指派 / 调整期限: a deadline in the past makes the item overdue, highlighted
    failed.locator("details.assign > summary").click()
    failed.locator("input[name=responsible]").fill("李四")
    failed.locator("input[name=deadline]").fill("2026-01-05")
    failed.locator("[data-act=assign]").click()
    expect(failed).to_have_class(re.compile(r"\boverdue\b"))
    expect(failed).to_contain_text("已逾期")
    expect(failed).to_contain_text("李四")
    failed.locator("[data-act=close]").click()  # not without checking it and saying why
    expect(failed.locator(".err")).to_contain_text("请填写说明")
    expect(failed).to_have_attribute("data-status", "pending_review")
    failed.locator("input[type=checkbox]").check()
    failed.locator("textarea").fill("现场复核：红色为消防器材，非明火")
    failed.locator("[data-act=close]").click()
    expect(ledger_card(sup, fids[1])).to_have_attribute("data-status", "closed")

    items = {
        i["finding_id"]: i for i in app_server.client("supervisor").get("/app/api/ledger?limit=200").json()["items"]
    }
    assert items[fids[0]]["status"] == "closed" and items[fids[0]]["responsible_person"] == "王安全"
    assert items[fids[1]]["status"] == "closed" and items[fids[1]]["ai_recheck"] == "failed"
    assert items[fids[1]]["responsible_person"] == "李四" and items[fids[1]]["deadline"].startswith("2026-01-05")

    # the 已销号 chip filters the list; the statistics count the two closed items
    sup.get_by_role("button", name="已销号").click()
    expect(ledger_card(sup, fids[1])).to_be_visible()
    expect(sup.locator("[data-ledger]:not([data-status=closed])")).to_have_count(0)
    with sup.expect_download() as dl:
        sup.get_by_role("link", name="CSV").click()
    csv = Path(dl.value.path()).read_text(encoding="utf-8-sig")
    assert "台账闭环测试单位" in csv and "李四" in csv
    sup.click("#nav a[href='#/stats']")
    expect(sup.locator("[data-kpi=closed] .big")).to_have_text(str(stats_before["closed"] + 2))
    expect(sup.locator("main")).to_contain_text("台账闭环测试单位")  # 按单位
    assert insp.errors == [] and sup.errors == []


def test_inspection_started_without_signal_is_created_once_online(
    app_server: AppServer, phone: Any, photos: Any
) -> None:
    page = phone()
    login(page, app_server, "inspector")
    client = app_server.client("inspector")
    page.click("a[href='#/new']")
    page.context.set_offline(True)  # the basement garage
    submit_offline_inspection(page, "无信号地下车库单位", "地下二层", "residential_ebike")
    assert "#/inspection/local-" in page.url
    choose_photos(page, [photos["fire"], photos["clean"]])
    expect(page.locator("[data-queue] .qi")).to_have_count(2)
    page.wait_for_timeout(300)
    names = [i["unit"]["name"] for i in client.get("/app/api/inspections?limit=200").json()["items"]]
    assert "无信号地下车库单位" not in names

    page.context.set_offline(False)
    expect(page.locator("[data-photo]")).to_have_count(2)
    assert "local-" not in page.url
    mine = [i for i in client.get("/app/api/inspections?limit=200").json()["items"]
            if i["unit"]["name"] == "无信号地下车库单位"]  # fmt: skip
    assert len(mine) == 1 and mine[0]["photo_count"] == 2 and mine[0]["scene"] == "residential_ebike"
    assert page.url.endswith(f"#/inspection/{mine[0]['id']}")
    page.reload()  # nothing left to send twice
    expect(page.locator("[data-photo]")).to_have_count(2)
    assert inspection(client, mine[0]["id"])["photo_count"] == 2
    assert page.errors == []


def test_reload_without_signal_shows_the_app_and_keeps_taking_photos(
    app_server: AppServer, phone: Any, photos: Any
) -> None:
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "断网重开页面单位")
    assert page.evaluate("async () => Boolean(await navigator.serviceWorker.ready)")  # the app shell is cached
    page.context.set_offline(True)
    page.reload()  # the phone reloads the page in the basement
    expect(page.locator("[data-offline=view]")).to_be_visible()
    expect(page.locator("main h1")).to_have_text("断网重开页面单位")
    choose_photos(page, [photos["fire2"]], pick="camera")
    expect(page.locator("[data-queue] .qi")).to_have_count(1)
    client = app_server.client("inspector")
    assert inspection(client, iid)["photo_count"] == 0
    page.context.set_offline(False)
    expect(page.locator("[data-photo]")).to_have_count(1)
    expect(page.locator("[data-offline=view]")).to_have_count(0)
    assert inspection(client, iid)["photo_count"] == 1
    assert page.errors == []


def test_a_file_that_is_not_a_photo_is_refused_with_a_message(
    app_server: AppServer, phone: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "scan.jpg"
    bad.write_text("not a photo at all", encoding="utf-8")
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, "坏文件测试单位")
    choose_photos(page, [bad])
    item = page.locator("[data-queue] .qi")
    expect(item.locator(".err")).to_contain_text("上传失败")  # the server's reason, in Chinese
    expect(item.get_by_role("button", name="重试")).to_have_count(0)  # 415: sending it again cannot help
    assert inspection(app_server.client("inspector"), iid)["photo_count"] == 0
    page.on("dialog", lambda d: d.accept())
    item.get_by_role("button", name="放弃").click()
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    page.reload()
    expect(page.locator("[data-pick=gallery]")).to_be_attached()
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    assert page.errors == []


def test_upload_progress_shows_on_a_slow_uplink(app_server: AppServer, phone: Any, tmp_path: Path) -> None:
    """On a 1 Mbit/s uplink a 2048-px photo takes seconds: the queue shows 上传中 N% with a progress bar."""
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 255, (1536, 2048, 3), dtype="uint8"))
    path = tmp_path / "noisy.jpg"
    noisy.save(path, "JPEG", quality=90)  # noise: about 2 MB even after the browser's re-encode
    page = phone()
    login(page, app_server, "inspector")
    start_inspection(page, "慢速网络单位")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 40, "downloadThroughput": 4e6 / 8, "uploadThroughput": 1e6 / 8})  # fmt: skip
    choose_photos(page, [path])
    bar = page.locator("[data-queue] progress")
    expect(bar).to_be_visible(timeout=30_000)
    expect(page.locator("[data-queue] .q-status")).to_contain_text(re.compile(r"上传中 \d+%"))
    expect(bar).to_have_attribute("value", re.compile(r"^[1-9]\d*$"))  # bytes are moving
    cdp.send("Network.emulateNetworkConditions",
             {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
    expect(page.locator("[data-photo]")).to_have_count(1, timeout=60_000)
    assert page.errors == []


def test_admin_adds_an_inspector_who_can_log_in(app_server: AppServer, phone: Any) -> None:
    admin = phone()
    login(admin, app_server, "admin")
    admin.click("#nav a[href='#/me']")
    admin.fill("#nu", "insp_new")
    admin.fill("#nd", "钱检查")
    admin.fill("#np", "a-long-password-1")
    admin.select_option("#nr", "inspector")
    admin.get_by_role("button", name="添加用户").click()
    expect(admin.locator("#toast")).to_contain_text("insp_new")
    new = phone()
    new.goto(f"{app_server.base_url}/app/#/login")
    new.fill("#u", "insp_new")
    new.fill("#p", "a-long-password-1")
    new.click("form button[type=submit]")
    new.click("#nav a[href='#/me']")
    expect(new.locator("main")).to_contain_text("钱检查")
    expect(new.locator("main")).to_contain_text("A 市应急管理局")
