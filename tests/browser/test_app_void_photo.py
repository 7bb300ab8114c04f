"""作废照片 and 照片 N, from the phone UX review (M11, m10).

A photo taken by mistake is voided from its card (a sheet asks why and says what happens); every photo card says
照片 N as numbered in the printed 现场检查记录 (照片 1 = the oldest). Debian's chromium at 360×640 against a real
server (tests/app_fixtures.py); each test makes its own inspection. HAZARDSCAN_UX_SHOTS keeps screenshots (see
test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from typing import Any

from _builders import encode, scene
from app_fixtures import AppServer, fire_photo, open_item
from browser_helpers import expect, login, wait_until
from test_app_browser import choose_photos, inspection, start_inspection
from test_app_ux_fixes import shot


def api_inspection(
    app_server: AppServer, unit: str, photos: list[bytes], scene: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """An inspection made through the API with ``photos`` uploaded in that order (in 照片场景 ``scene``, if given):
    its id and the photos."""
    c = app_server.client("inspector")
    r = c.post("/app/api/inspections", json={"unit": {"name": unit, "address": "桃北路"}, "scene": "industry"})
    r.raise_for_status()
    iid = r.json()["id"]
    made = []
    for i, data in enumerate(photos):
        r = c.post(
            f"/app/api/inspections/{iid}/photos",
            files={"photo": ("p.jpg", data, "image/jpeg")},
            data={"idempotency_key": f"void-{unit}-{i}", **({"scene": scene} if scene else {})},
        )
        r.raise_for_status()
        made.append(r.json())
    return iid, made


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


def test_void_a_photo_taken_by_mistake(app_server: AppServer, phone: Any) -> None:
    """作废照片 on a card: a sheet says what happens and asks why (误拍 / 重复 / 模糊看不清 / 其他 + text); the card
    leaves, the summary's counts follow, the others are numbered again, and its confirmed hazard leaves the
    ledger."""
    iid, made = api_inspection(app_server, "作废照片测试单位", [fire_photo(91), fire_photo(92), fire_photo(93)])
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    summary = page.locator("[data-summary]")
    expect(summary).to_contain_text("3 处隐患：0 已确认 · 3 待确认")
    second = page.locator(f"[data-photo='{made[1]['id']}']")
    expect(second.locator("[data-photo-title]")).to_have_text("照片 2")
    second.locator("[data-act=confirm]").click()  # into the ledger: voiding the photo withdraws it
    expect(second.locator("[data-finding]")).to_have_attribute("data-status", "confirmed")
    expect(summary).to_contain_text("3 处隐患：1 已确认 · 2 待确认")
    (item_id,) = [f["ledger_item_id"] for p in inspection(app_server.client("inspector"), iid)["photos"]
                  for f in p["findings"] if f["ledger_item_id"]]  # fmt: skip

    void = second.get_by_role("button", name="作废照片")
    expect(void).to_be_visible()
    void.click()
    sheet = page.locator(f"dialog[data-void='{made[1]['id']}']")
    expect(sheet).to_be_visible()
    expect(sheet.locator("h2")).to_have_text("作废照片 2？")
    expect(sheet).to_contain_text("照片保留备查，但不再计入本次检查、文书和统计；其中待整改的隐患将移出台账。")
    for reason in ["误拍", "重复", "模糊看不清", "其他"]:
        expect(sheet.get_by_label(reason, exact=True)).to_be_visible()
    shot(page, "m11-void-sheet")
    ok = sheet.locator("[data-act=void-ok]")
    ok.click()
    expect(sheet.locator("[data-void-err]")).to_have_text("请选择作废原因")
    sheet.get_by_label("其他", exact=True).check()
    other = sheet.locator("input[name=void-other]")
    expect(other).to_be_focused()
    ok.click()
    expect(sheet.locator("[data-void-err]")).to_have_text("请写明作废原因")
    shot(page, "m11-void-other")
    sheet.get_by_label("重复", exact=True).check()
    expect(other).to_be_hidden()
    ok.click()

    expect(sheet).to_have_count(0)
    expect(second).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("照片已作废")
    expect(summary).to_contain_text("2 处隐患：0 已确认 · 2 待确认")
    assert card_numbers(page) == ["照片 2", "照片 1"]  # as the record numbers them now
    shot(page, "m11-voided")
    client = app_server.client("inspector")
    ins = inspection(client, iid)
    assert [p["id"] for p in ins["photos"]] == [made[0]["id"], made[2]["id"]]
    assert ins["photo_count"] == 2 and ins["hazard_count"] == 2
    assert client.get(f"/app/api/ledger/{item_id}").status_code == 404
    record = client.get(f"/app/inspections/{iid}/record").text
    assert "照片 3" not in record and made[1]["sha256"] not in record

    page.reload()  # the server agrees
    expect(page.locator("[data-photo]")).to_have_count(2)
    expect(summary).to_contain_text("2 处隐患：0 已确认 · 2 待确认")
    assert card_numbers(page) == ["照片 2", "照片 1"]
    assert page.errors == []


def test_void_is_refused_once_rectifying_and_needs_the_network(app_server: AppServer, phone: Any) -> None:
    """A photo whose hazard is 整改中: the sheet shows why it is refused (409) and the card stays. Offline the
    sheet says 作废照片 needs the network and its button waits; back online it goes through."""
    item = open_item(app_server.client("inspector"), "作废被拒测试单位", seed=94)
    r = app_server.client("inspector").post(
        f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]}
    )
    r.raise_for_status()
    iid = item["inspection_id"]
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    card = page.locator("[data-photo]")
    expect(card).to_have_count(1)
    card.locator("[data-act=void]").click()
    sheet = page.locator("dialog[data-void]")
    sheet.get_by_label("误拍", exact=True).check()
    sheet.locator("[data-act=void-ok]").click()
    expect(sheet.locator("[data-void-err]")).to_contain_text("该照片的隐患已进入整改，不能作废")
    expect(sheet.locator("[data-act=void-ok]")).to_be_enabled()
    shot(page, "m11-void-refused")
    sheet.get_by_role("button", name="取消").click()
    expect(sheet).to_have_count(0)
    expect(card).to_have_count(1)
    assert len(inspection(app_server.client("inspector"), iid)["photos"]) == 1

    iid2, (photo,) = api_inspection(app_server, "作废离线测试单位", [fire_photo(95)])
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid2}")
    expect(page.locator(f"[data-photo='{photo['id']}']")).to_be_visible()
    page.context.set_offline(True)
    page.locator("[data-act=void]").click()
    sheet = page.locator("dialog[data-void]")
    expect(sheet.locator("[data-void-offline]")).to_have_text("作废照片需要联网，请联网后再试。")
    sheet.get_by_label("模糊看不清", exact=True).check()
    expect(sheet.locator("[data-act=void-ok]")).to_be_disabled()
    shot(page, "m11-void-offline")
    page.context.set_offline(False)
    expect(sheet.locator("[data-void-offline]")).to_be_hidden()
    sheet.locator("[data-act=void-ok]").click()
    expect(page.locator("[data-photo]")).to_have_count(0)
    expect(page.locator("[data-empty=photos]")).to_be_visible()
    assert inspection(app_server.client("inspector"), iid2)["photos"] == []
    assert page.errors == []


def test_a_photo_to_retake_offers_void_in_its_warning(app_server: AppServer, phone: Any) -> None:
    """建议重拍 (a washed-out frame) offers 作废这张照片 right there, with 模糊看不清 already chosen."""
    white = encode(scene(640, 480, [(0, 0, 640, 480, (252, 252, 252))]), "JPEG", quality=92)
    iid, (photo,) = api_inspection(app_server, "建议重拍作废测试单位", [white])
    assert photo["warnings"], photo
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    warn = page.locator("[data-photo] .warn").first
    expect(warn).to_contain_text("建议重拍")
    warn.scroll_into_view_if_needed()
    shot(page, "m11-warning-offers-void")
    warn.get_by_role("button", name="作废这张照片").click()
    sheet = page.locator("dialog[data-void]")
    expect(sheet.get_by_label("模糊看不清", exact=True)).to_be_checked()
    shot(page, "m11-void-from-warning")
    sheet.locator("[data-act=void-ok]").click()
    expect(page.locator("[data-photo]")).to_have_count(0)
    assert inspection(app_server.client("inspector"), iid)["photo_count"] == 0
    assert page.errors == []


def test_retake_and_replace_queues_the_new_photo_then_voids_the_old(
    app_server: AppServer, phone: Any, photos: Any
) -> None:
    """重拍并替换 on a card opens the camera (the file chooser); cancelled, nothing changes. A photo chosen is queued
    like any other and the old one is voided (模糊看不清, retaken): its card leaves and the new one comes. Offline the
    new one still queues, the old one stays and the toast says why; it uploads once online."""
    iid, made = api_inspection(app_server, "重拍替换测试单位", [fire_photo(96), fire_photo(97)])
    client = app_server.client("inspector")
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    second = page.locator(f"[data-photo='{made[1]['id']}']")
    retake = second.locator("[data-act=retake]")
    expect(retake).to_have_text("重拍并替换")
    expect(retake.locator("input[type=file]")).to_have_attribute("capture", "environment")
    shot(page, "retake-card")
    with page.expect_file_chooser():
        retake.click()  # and then cancelled: no photo chosen
    page.wait_for_timeout(300)
    expect(second).to_be_visible()
    assert [p["id"] for p in inspection(client, iid)["photos"]] == [made[0]["id"], made[1]["id"]]

    with page.expect_file_chooser() as chooser:
        retake.click()
    with page.expect_request("**/void") as sent:
        chooser.value.set_files(str(photos["fire"]))
    assert sent.value.post_data_json == {"reason": "模糊看不清（已重拍替换）"}
    expect(page.locator("#toast")).to_have_text("新照片已加入上传，原照片已作废")
    expect(second).to_have_count(0)
    expect(page.locator("[data-photo]")).to_have_count(2)
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    ins = inspection(client, iid)
    assert ins["photos"][0]["id"] == made[0]["id"] and len(ins["photos"]) == 2
    new_id = ins["photos"][1]["id"]
    assert card_numbers(page) == ["照片 2", "照片 1"]
    expect(page.locator("[data-photo]").first).to_have_attribute("data-photo", new_id)
    shot(page, "retake-done")

    first = page.locator(f"[data-photo='{made[0]['id']}']")
    page.context.set_offline(True)
    with page.expect_file_chooser() as chooser:
        first.locator("[data-act=retake]").click()
    chooser.value.set_files(str(photos["fire2"]))
    expect(page.locator("#toast")).to_have_text("新照片已加入上传；原照片未作废：作废照片需要联网，请联网后再试。")
    expect(page.locator("[data-queue] .qi")).to_have_count(1)
    expect(first).to_be_visible()
    shot(page, "retake-offline")
    page.context.set_offline(False)
    page.evaluate("window.hazardscan.pump()")
    expect(page.locator("[data-photo]")).to_have_count(3)
    expect(page.locator("[data-queue] .qi")).to_have_count(0)
    assert len(inspection(client, iid)["photos"]) == 3  # the old one was not voided
    assert page.errors == []


def test_retake_in_english_and_in_the_warning(app_server: AppServer, phone: Any, photos: Any) -> None:
    """In English at 390 and 360 px the card's head keeps 照片 N, Retake & replace and Void photo on one row; a
    建议重拍 warning offers Retake & replace beside 作废这张照片."""
    white = encode(scene(640, 480, [(0, 0, 640, 480, (252, 252, 252))]), "JPEG", quality=92)
    for size, tag in (({"width": 390, "height": 844}, ""), (None, "-360")):
        iid, (photo,) = api_inspection(app_server, f"重拍英文测试单位{tag}", [white])
        page = phone(**({"viewport": size} if size else {}))
        login(page, app_server, "inspector")
        page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
        card = page.locator("[data-photo]")
        expect(card.locator(".photo-head [data-act=retake]")).to_have_text("重拍并替换")
        warn = card.locator(".warn").first
        expect(warn.locator("[data-act=retake]")).to_have_text("重拍并替换")
        page.click("#lang")
        head = card.locator(".photo-head")
        expect(head.locator("[data-act=retake]")).to_have_text("Retake & replace")
        middles = head.locator("h2, [data-act]").evaluate_all(
            "els => new Set(els.map((e) => Math.round(e.getBoundingClientRect().top"
            " + e.getBoundingClientRect().height / 2))).size"
        )
        shot(page, f"retake-head-en{tag}")
        assert middles == 1, tag
        warn.scroll_into_view_if_needed()
        shot(page, f"retake-warning-en{tag}")
        with page.expect_file_chooser() as chooser:
            warn.locator("[data-act=retake]").click()
        chooser.value.set_files(str(photos["clean"]))
        expect(page.locator("#toast")).to_have_text("New photo queued; the old one is voided")
        expect(page.locator(f"[data-photo='{photo['id']}']")).to_have_count(0)
        expect(page.locator("[data-photo]")).to_have_count(1)
        shot(page, f"retake-done-en{tag}")
        assert page.errors == []


def test_retake_keeps_the_old_photos_scene(app_server: AppServer, phone: Any, photos: Any) -> None:
    """A photo taken in 照片场景 走廊 and retaken while the picker shows the default: the new photo is judged as a
    corridor photo too, like the one it replaces."""
    iid, (photo,) = api_inspection(app_server, "重拍场景测试单位", [fire_photo(98)], scene="corridor")
    assert photo["scene"] == "corridor"
    client = app_server.client("inspector")
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    expect(page.locator("#photo-scene")).to_have_value("")
    with page.expect_file_chooser() as chooser:
        page.locator(f"[data-photo='{photo['id']}'] [data-act=retake]").click()
    chooser.value.set_files(str(photos["fire"]))
    expect(page.locator("#toast")).to_have_text("新照片已加入上传，原照片已作废")

    def replaced() -> list[dict[str, Any]]:
        return [p for p in inspection(client, iid)["photos"] if p["id"] != photo["id"]]

    (new,) = wait_until(page, replaced, what="the new photo")
    assert new["scene"] == "corridor"
    assert page.errors == []


def test_retake_of_a_photo_with_a_confirmed_hazard_asks_first(app_server: AppServer, phone: Any, photos: Any) -> None:
    """重拍并替换 on a photo whose hazard is confirmed (待整改 in the ledger): a sheet says the hazard would leave the
    ledger (in English too). 取消 sends nothing; 两张都保留 adds the new photo and keeps the old one with its ledger
    item; 替换 voids the old one. Once the hazard is 整改中, the sheet says the photo cannot be voided and offers
    only 加入新照片."""
    client = app_server.client("inspector")
    item = open_item(client, "重拍确认测试单位", seed=121)
    iid = item["inspection_id"]
    (old,) = inspection(client, iid)["photos"]
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    card = page.locator(f"[data-photo='{old['id']}']")
    expect(card.locator("[data-finding]")).to_have_attribute("data-status", "confirmed")
    expect(card.locator("[data-ledger]")).to_be_visible()  # its ledger item is known before the tap
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)

    def retake_with(photo: Any) -> Any:
        with page.expect_file_chooser() as chooser:
            card.locator(".photo-head [data-act=retake]").click()
        chooser.value.set_files(str(photo))
        sheet = page.locator("dialog[data-ask]")
        expect(sheet).to_be_visible()
        return sheet

    sheet = retake_with(photos["fire2"])
    expect(sheet.locator("h2")).to_have_text("用新照片替换照片 1？")
    expect(sheet).to_contain_text("其上已确认的 1 处隐患（现场明火）将移出台账")
    shot(page, "retake-ask")
    sheet.get_by_role("button", name="取消").click()
    expect(sheet).to_have_count(0)
    page.wait_for_timeout(300)
    assert sent == [] and len(inspection(client, iid)["photos"]) == 1

    sheet = retake_with(photos["fire2"])
    sheet.get_by_role("button", name="两张都保留").click()
    expect(page.locator("#toast")).to_have_text("新照片已加入上传，原照片保留")
    expect(page.locator("[data-photo]")).to_have_count(2)
    expect(card).to_be_visible()
    assert not any(u.endswith("/void") for u in sent)
    assert client.get(f"/app/api/ledger/{item['id']}").json()["status"] == "open"

    client.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]})
    page.reload()
    expect(card.locator("[data-ledger]")).to_have_attribute("data-ledger", "in_progress")
    sheet = retake_with(photos["fire3"])
    expect(sheet.locator("h2")).to_have_text("照片 1 不能替换")
    expect(sheet).to_contain_text("这张照片上的隐患已在整改，照片不能作废")
    expect(sheet.get_by_role("button", name="替换")).to_have_count(0)
    expect(sheet.get_by_role("button", name="加入新照片")).to_be_visible()
    shot(page, "retake-ask-locked")
    sheet.get_by_role("button", name="取消").click()
    expect(sheet).to_have_count(0)

    fresh = open_item(client, "重拍确认测试单位二", seed=122)
    page.goto(f"{app_server.base_url}/app/#/inspection/{fresh['inspection_id']}")
    (old,) = inspection(client, fresh["inspection_id"])["photos"]
    card = page.locator(f"[data-photo='{old['id']}']")
    expect(card.locator("[data-ledger]")).to_be_visible()
    page.click("#lang")  # in English, one hazard
    sheet = retake_with(photos["fire4"])
    expect(sheet.locator("h2")).to_have_text("Replace photo 1 with the new one?")
    expect(sheet).to_contain_text("its confirmed hazard (Open fire on site) leaves the ledger")
    with page.expect_request("**/void"):
        sheet.get_by_role("button", name="Replace").click()
    expect(page.locator("#toast")).to_have_text("New photo queued; the old one is voided")
    expect(card).to_have_count(0)
    wait_until(page, lambda: client.get(f"/app/api/ledger/{fresh['id']}").status_code == 404, what="item gone")
    assert page.errors == []
