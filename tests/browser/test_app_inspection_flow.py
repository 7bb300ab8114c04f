"""The inspection's own flow, from the phone UX review (M6, M10, M12, m1).

备注 on the AI's findings, the 待确认 summary, 完成检查 / 继续检查, the warning before the documents, the offline
list, and buttons that wait while their request runs. Debian's chromium at 360×640 against a real server
(tests/app_fixtures.py); each test makes its own inspection. HAZARDSCAN_UX_SHOTS keeps screenshots (see
test_app_ux_fixes.py).
"""

from __future__ import annotations

import re
from typing import Any

from app_fixtures import AppServer, fire_photo, open_item
from browser_helpers import expect, login, wait_until
from test_app_browser import choose_photos, findings, inspection, start_inspection, submit_offline_inspection
from test_app_ux_fixes import shot

# the element is inside the window and below the sticky header and summary
IN_VIEW = """(el) => {
    const r = el.getBoundingClientRect();
    const bar = document.querySelector('[data-summary]').getBoundingClientRect().bottom;
    return r.top >= bar - 0.5 && r.top < innerHeight - 58;
}"""


def pending_fire(page: Any, app_server: AppServer, unit: str, photo: Any) -> tuple[str, Any]:
    """Log in as the inspector, start an inspection of ``unit`` in the UI and take ``photo`` (a fire): the
    inspection's id and its fire finding's card, 待确认."""
    login(page, app_server, "inspector")
    iid = start_inspection(page, unit)
    choose_photos(page, [photo])
    card = page.locator("[data-hazard=FIRE-001]")
    expect(card).to_have_attribute("data-status", "pending")
    return iid, card


def pending_inspection(app_server: AppServer, unit: str, seed: int) -> str:
    """An inspection (made through the API) with one fire photo whose finding is 待确认; its id."""
    c = app_server.client("inspector")
    iid = c.post("/app/api/inspections", json={"unit": {"name": unit, "address": "桃北路"}, "scene": "industry"})
    iid.raise_for_status()
    r = c.post(
        f"/app/api/inspections/{iid.json()['id']}/photos",
        files={"photo": ("p.jpg", fire_photo(seed), "image/jpeg")},
        data={"idempotency_key": f"flow-{unit}-{seed}"},
    )
    r.raise_for_status()
    assert [f["status"] for f in r.json()["findings"]] == ["pending"]
    return iid.json()["id"]


def test_a_note_goes_with_the_decision_and_shows_on_the_card(app_server: AppServer, phone: Any, photos: Any) -> None:
    """添加备注 on an AI finding: written with 保存并确认 (sent as the decision's note) and shown on the card;
    修改备注 later changes it and keeps the finding confirmed."""
    page = phone()
    iid, card = pending_fire(page, app_server, "备注测试单位", photos["fire"])
    card.locator("[data-act=note]").click()
    note = card.locator("textarea[name=finding-note]")
    expect(note).to_be_focused()
    expect(note).to_have_attribute("placeholder", "如：二楼东侧楼梯间")
    note.fill("二楼东侧楼梯间")
    shot(page, "m10-note-form")
    card.get_by_role("button", name="保存并确认").click()
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator("[data-note]")).to_have_text("二楼东侧楼梯间")
    client = app_server.client("inspector")
    (f,) = findings(client, iid).values()
    assert f["status"] == "confirmed" and f["note"] == "二楼东侧楼梯间" and f["ledger_item_id"]
    shot(page, "m10-note-shown")

    card.locator("[data-act=note]").click()  # afterwards: 修改备注
    expect(card.locator("[data-act=save-note]")).to_have_text("保存")
    card.locator("textarea[name=finding-note]").fill("二楼东侧楼梯间，靠近配电箱")
    card.locator("[data-act=save-note]").click()
    expect(card.locator("[data-note]")).to_have_text("二楼东侧楼梯间，靠近配电箱")
    expect(card).to_have_attribute("data-status", "confirmed")
    (f,) = findings(client, iid).values()
    assert f["status"] == "confirmed" and f["note"] == "二楼东侧楼梯间，靠近配电箱"
    assert page.errors == []


def test_summary_jump_finish_and_reopen(app_server: AppServer, phone: Any, photos: Any) -> None:
    """The summary at the top counts 已确认 / 待确认 and jumps to the next pending finding; 完成检查 with findings
    pending says how many and offers 去确认 or 仍然完成; a finished inspection says 已完成 and offers 继续检查; the
    list shows each inspection's 进行中 / 已完成 and its pending count."""
    unit = "完成检查测试单位"
    page = phone()
    login(page, app_server, "inspector")
    iid = start_inspection(page, unit)
    expect(page.locator("[data-insp-status]")).to_have_text("进行中")
    choose_photos(page, [photos["fire_smoke"], photos["fire2"]])
    expect(page.locator("[data-finding]")).to_have_count(3)
    summary = page.locator("[data-summary]")
    expect(summary).to_contain_text("3 处隐患：0 已确认 · 3 待确认")
    first = page.locator("[data-finding]").first
    first.locator("[data-act=confirm]").click()
    expect(summary).to_contain_text("3 处隐患：1 已确认 · 2 待确认")
    page.locator("[data-finding]").nth(1).locator("[data-act=reject]").click()
    expect(summary).to_contain_text("2 处隐患：1 已确认 · 1 待确认")

    page.mouse.wheel(0, -5000)  # back at the top
    page.wait_for_function("() => scrollY === 0")
    shot(page, "m12-summary-top")
    summary.get_by_role("button", name="去确认").click()
    pending = page.locator("[data-finding][data-status=pending]")
    expect(pending).to_have_class(re.compile(r"\bjumped\b"))
    page.wait_for_function(IN_VIEW, arg=pending.element_handle())
    shot(page, "m12-summary-jump")

    page.locator("[data-act=finish]").click()
    dialog = page.locator("dialog[data-ask]")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("还有 1 处隐患待确认")
    shot(page, "m12-finish-pending")
    dialog.get_by_role("button", name="去确认").click()
    expect(dialog).to_have_count(0)
    page.wait_for_function(IN_VIEW, arg=pending.element_handle())
    assert inspection(app_server.client("inspector"), iid)["status"] == "in_progress"

    page.locator("[data-act=finish]").click()
    page.locator("dialog[data-ask]").get_by_role("button", name="仍然完成").click()
    expect(page.locator("[data-finish]")).to_have_attribute("data-finish", "finished")
    expect(page.locator("[data-insp-status]")).to_have_text("已完成")
    expect(page.locator("[data-finish]")).to_contain_text("已于")
    ins = inspection(app_server.client("inspector"), iid)
    assert ins["status"] == "finished" and ins["pending_count"] == 1
    page.locator("[data-finish]").scroll_into_view_if_needed()
    shot(page, "m12-finished")

    page.click("#nav a[href='#/inspections']")
    item = page.locator(f"a[data-insp='{iid}']")
    expect(item.locator("[data-insp-status]")).to_have_text("已完成")
    expect(item.locator("[data-pending]")).to_have_text("1 处待确认")
    shot(page, "m12-list-status")
    item.click()
    page.locator("[data-act=reopen]").click()
    expect(page.locator("[data-insp-status]")).to_have_text("进行中")
    expect(page.locator("[data-act=finish]")).to_be_visible()
    assert inspection(app_server.client("inspector"), iid)["status"] == "in_progress"

    page.locator("[data-finding][data-status=pending] [data-act=confirm]").click()  # nothing pending: finished at once
    expect(summary).to_contain_text("2 处隐患：2 已确认 · 0 待确认")
    expect(summary.get_by_role("button", name="去确认")).to_have_count(0)
    page.locator("[data-act=finish]").click()
    expect(page.locator("[data-insp-status]")).to_have_text("已完成")
    expect(page.locator("dialog[data-ask]")).to_have_count(0)
    page.click("#nav a[href='#/inspections']")
    expect(item.locator("[data-insp-status]")).to_have_text("已完成")
    expect(item.locator("[data-pending]")).to_have_count(0)
    assert page.errors == []


def test_documents_warn_while_findings_are_pending(app_server: AppServer, phone: Any) -> None:
    """现场检查记录 / 隐患整改通知书 with a finding 待确认: a sheet says so first (取消 opens nothing, 仍然打开
    opens it); once all is decided the document opens at once."""
    iid = pending_inspection(app_server, "文书提醒测试单位", 71)
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    expect(page.locator("[data-finding]")).to_have_count(1)
    record = page.locator("a[data-doc=record]")
    opened: list[Any] = []
    page.context.on("page", lambda p: opened.append(p))
    record.click()
    dialog = page.locator("dialog[data-ask]")
    expect(dialog).to_contain_text("还有 1 处隐患待确认")
    expect(dialog).to_contain_text("不会写入隐患整改通知书")
    shot(page, "m12-doc-warning")
    dialog.get_by_role("button", name="取消").click()
    expect(dialog).to_have_count(0)
    assert opened == []

    page.locator("a[data-doc=notice]").click()
    with page.context.expect_page() as popup:
        page.locator("dialog[data-ask]").get_by_role("button", name="仍然打开").click()
    expect(popup.value).to_have_url(re.compile(rf"/app/inspections/{iid}/notice$"))
    popup.value.close()

    page.locator("[data-finding] [data-act=confirm]").click()
    expect(page.locator("[data-finding]")).to_have_attribute("data-status", "confirmed")
    with page.context.expect_page() as popup:
        record.click()
    expect(popup.value).to_have_url(re.compile(rf"/app/inspections/{iid}/record$"))
    expect(page.locator("dialog[data-ask]")).to_have_count(0)
    assert page.errors == []


def test_offline_the_list_shows_queued_and_recently_opened_inspections(
    app_server: AppServer, phone: Any, photos: Any
) -> None:
    """Offline, also after a reload: the 检查 list shows the inspection waiting in the phone's queue (with its
    queued photo) and the inspections opened lately, marked 离线副本, which open from the phone's copy."""
    item = open_item(app_server.client("inspector"), "离线列表已打开单位", seed=81)
    page = phone()
    login(page, app_server, "inspector")
    page.goto(f"{app_server.base_url}/app/#/inspection/{item['inspection_id']}")
    expect(page.locator("[data-photo]")).to_have_count(1)  # opened once online: kept on the phone
    assert page.evaluate("async () => Boolean(await navigator.serviceWorker.ready)")  # the app shell is cached

    page.context.set_offline(True)
    page.click("#nav a[href='#/inspections']")
    page.click("a[href='#/new']")
    submit_offline_inspection(page, "离线列表排队单位", "地下一层")
    choose_photos(page, [photos["fire4"]])
    expect(page.locator("[data-queue] .qi")).to_have_count(1)

    page.click("#nav a[href='#/inspections']")
    page.reload()  # the phone reloads the page in the basement
    local = page.locator("a[data-local]")
    expect(local).to_have_count(1)
    expect(local).to_contain_text("离线列表排队单位")
    expect(local).to_contain_text("待同步")
    expect(local.locator("[data-queued]")).to_have_text("1 张待传")
    kept = page.locator(f"a[data-insp='{item['inspection_id']}']")
    expect(kept).to_contain_text("离线列表已打开单位")
    expect(kept.locator("[data-mark=offline-copy]")).to_have_text("离线副本")
    expect(kept).to_contain_text("1 张照片")
    expect(page.locator("[data-offline=list]")).to_contain_text("网络不可用")
    shot(page, "m6-offline-list-after-reload")
    kept.click()
    expect(page.locator("[data-offline=view]")).to_be_visible()
    expect(page.locator("main h1")).to_have_text("离线列表已打开单位")

    page.go_back()
    page.context.set_offline(False)  # the queued inspection is created, and the list is the server's again
    expect(page.locator("[data-offline=list]")).to_have_count(0)
    client = app_server.client("inspector")

    def created() -> Any:
        items = client.get("/app/api/inspections?limit=200").json()["items"]
        return [i for i in items if i["unit"]["name"] == "离线列表排队单位" and i["photo_count"] == 1]

    (made,) = wait_until(page, created, what="the queued inspection and its photo on the server")
    page.reload()
    expect(page.locator(f"a[data-insp='{made['id']}']")).to_be_visible()
    expect(page.locator("a[data-local]")).to_have_count(0)
    assert page.errors == []


def test_buttons_wait_while_their_request_runs(app_server: AppServer, phone: Any, photos: Any) -> None:
    """On a slow network 确认 / 误报 / 完成检查 are disabled and the tapped one says 保存中… until the answer: a
    second tap sends nothing."""
    page = phone()
    iid, card = pending_fire(page, app_server, "保存中测试单位", photos["fire5"])
    held: list[Any] = []
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.route("**/decision", lambda route: held.append(route))
    page.route("**/finish", lambda route: held.append(route))

    confirm = card.locator("[data-act=confirm]")
    confirm.click()
    wait_until(page, lambda: held, what="the decision request")
    expect(confirm).to_have_text("保存中…")
    expect(confirm).to_be_disabled()
    expect(card.locator("[data-act=reject]")).to_be_disabled()
    shot(page, "m1-saving")
    confirm.click(force=True)  # a second, impatient tap
    held.pop().continue_()
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator("[data-act=confirm]")).to_have_text("确认")
    assert len([u for u in sent if u.endswith("/decision")]) == 1

    finish = page.locator("[data-act=finish]")
    finish.click()
    wait_until(page, lambda: held, what="the finish request")
    expect(finish).to_have_text("保存中…")
    expect(finish).to_be_disabled()
    held.pop().continue_()
    expect(page.locator("[data-insp-status]")).to_have_text("已完成")
    assert inspection(app_server.client("inspector"), iid)["status"] == "finished"
    assert page.errors == []
