"""Fixes of the phone review's m14 (ledger chips), m11 (box labels), m6 (指派 feedback), the camera origin of an
inspection and m5 (the English UI), each in a real browser at 390×844 and 360×640.

Debian's chromium against a real server (tests/app_fixtures.py); each test makes its own items.
HAZARDSCAN_UX_SHOTS keeps screenshots (see test_app_ux_fixes.py).
"""

from __future__ import annotations

from typing import Any

from app_fixtures import PASSWORD, AppServer, fire_photo
from browser_helpers import expect, login, wait_until
from test_app_camera_events_browser import events_db, server
from test_app_inspection_flow import pending_inspection
from test_app_ux_fixes import ledger_card, ledger_item, ledger_of, rectified, shot

WIDE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 640}
__all__ = ["events_db", "server"]  # the camera events' fixtures (test_app_camera_events_browser.py)

CHIPS_IN_VIEW = """(g) => {
  const box = g.getBoundingClientRect();
  return [...g.children].filter((c) => {
    const r = c.getBoundingClientRect();
    return r.left < 0 || r.right > document.documentElement.clientWidth || r.right > box.right + 0.5
      || r.left < box.left - 0.5 || r.bottom > box.bottom + 0.5;
  }).map((c) => c.textContent);
}"""


def test_every_ledger_status_chip_is_on_screen(app_server: AppServer, phone: Any) -> None:
    """m14: at 390 and 360 px, in Chinese and in English, all seven status chips (3 天内到期 last) are inside the
    screen and inside their row: none hides behind a horizontal scroll."""
    for size in (WIDE, NARROW):
        page = phone(viewport=size)
        login(page, app_server, "supervisor")
        page.click("#nav a[href='#/ledger']")
        chips = page.locator(".chips")
        for lang in ("zh", "en"):
            if lang == "en":
                page.click("#lang")
            expect(chips.locator(".chip")).to_have_count(7)
            expect(chips.locator(".chip").last).to_have_text("3 天内到期" if lang == "zh" else "Due in 3 days")
            assert chips.evaluate(CHIPS_IN_VIEW) == [], (size, lang)
            assert chips.evaluate("(g) => g.scrollWidth <= g.clientWidth"), (size, lang)
            shot(page, f"m14-ledger-chips-{size['width']}-{lang}")
        page.click("#lang")
        assert page.errors == []


LABELS_CLASHING = """(photo) => {
  const rs = [...photo.querySelectorAll('.box span')].map((s) => [s.textContent, s.getBoundingClientRect()]);
  const out = [];
  rs.forEach(([a, p], i) => rs.slice(i + 1).forEach(([b, q]) => {
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 0.5 && h > 0.5) out.push([a, b]);
  }));
  return out;
}"""
LABELS_OUTSIDE = """(photo) => {
  const p = photo.getBoundingClientRect();
  return [...photo.querySelectorAll('.box span')].filter((s) => {
    const r = s.getBoundingClientRect();
    return r.left < p.left - 0.5 || r.right > p.right + 0.5 || r.top < p.top - 0.5 || r.bottom > p.bottom + 0.5;
  }).map((s) => s.textContent);
}"""


def edge_boxes_inspection(app_server: AppServer, unit: str, seed: int) -> str:
    """An inspection whose photo has, besides the AI's fire, hazards with long names boxed at its edges."""
    c = app_server.client("inspector")
    iid = pending_inspection(app_server, unit, seed)
    (photo,) = c.get(f"/app/api/inspections/{iid}").json()["photos"]
    w, h = photo["width"], photo["height"]
    for hazard, box in (
        ("HOT-002", [w * 0.88, h * 0.01, w * 0.99, h * 0.99]),  # tall, at the right and top and bottom edges
        ("EBIKE-002", [w * 0.02, h * 0.9, w * 0.1, h * 0.995]),  # at the bottom left corner
        ("FIRE-004", [w * 0.4, h * 0.4, w * 0.48, h * 0.5]),  # narrow, just left of the middle
        ("HOT-001", [w * 0.52, h * 0.03, w * 0.6, h * 0.12]),  # near the top, just right of the middle
    ):
        r = c.post(f"/app/api/photos/{photo['id']}/findings", json={"hazard_id": hazard, "box": box})
        r.raise_for_status()
    return iid


def test_box_labels_stay_inside_the_photo(app_server: AppServer, phone: Any) -> None:
    """m11: the labels of boxes at the photo's edges, with long English names, stay inside the photo (flipped to
    the side with room, cut short with …) and clear of one another; the whole name is the label's title."""
    iid = edge_boxes_inspection(app_server, "框标签测试单位", 61)
    for size in (WIDE, NARROW):
        page = phone(viewport=size)
        login(page, app_server, "inspector")
        page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
        photo = page.locator(".photo").first
        expect(photo.locator(".box span")).to_have_count(5)
        for lang in ("zh", "en"):
            if lang == "en":
                page.click("#lang")
                expect(photo.locator(".box span").first).not_to_contain_text("现场")
            page.wait_for_function("() => [...document.querySelectorAll('.photo img')].every((i) => i.complete)")
            assert photo.evaluate(LABELS_OUTSIDE) == [], (size, lang)
            assert photo.evaluate(LABELS_CLASHING) == [], (size, lang)
            labels = photo.locator(".box span")
            for i in range(labels.count()):
                assert labels.nth(i).get_attribute("title") == labels.nth(i).text_content()
            photo.scroll_into_view_if_needed()
            shot(page, f"m11-box-labels-{size['width']}-{lang}")
        page.click("#lang")
        assert page.errors == []


def test_assign_says_what_changed_and_the_card_shows_it(app_server: AppServer, phone: Any) -> None:
    """m6: 指派 / 调整期限 → 保存 waits (保存中…, disabled) while the request runs, then toasts what changed
    (指派给 张检查，整改期限 <date>) and the card shows the assignee and the new deadline; a refusal (someone changed
    the item meanwhile) is said in words on the card, which shows the item as it is now."""
    unit = "指派反馈测试单位"
    item = ledger_item(app_server, unit, 62)
    page = phone(viewport=WIDE)
    ledger_of(page, app_server, "supervisor", unit)
    page.locator("details.card > summary").first.click()  # fold 筛选 away
    card = ledger_card(page, item)
    card.locator("details.assign > summary").click()
    card.locator("select[name=assigned_to]").select_option(label="张检查")
    card.locator("input[name=deadline]").fill("2030-03-15")
    held: list[Any] = []
    page.route("**/assign", lambda route: held.append(route))
    card.locator("[data-act=assign]").click()
    wait_until(page, lambda: held, what="the assign request")
    btn = card.locator("[data-act=assign]")
    expect(btn).to_be_disabled()
    expect(btn).to_have_attribute("aria-busy", "true")
    expect(btn).to_have_text("保存中…")
    shot(page, "m6-assign-saving")
    held[0].continue_()
    due = page.evaluate("() => new Date('2030-03-15T12:00:00+08:00').toLocaleDateString('zh-CN')")
    expect(page.locator("#toast")).to_have_text(f"已保存：指派给 张检查，整改期限 {due}")
    expect(card.locator("[data-assignee]")).to_have_text("指派给 张检查")
    expect(card).to_contain_text(f"整改期限 {due}")
    expect(card.locator("details.assign")).not_to_have_attribute("open", "")
    page.wait_for_timeout(300)  # the toast fades in
    shot(page, "m6-assign-saved")
    page.unroute("**/assign")

    now = app_server.client("supervisor").get(f"/app/api/ledger/{item['id']}").json()
    r = app_server.client("supervisor").post(
        f"/app/api/ledger/{item['id']}/assign", json={"version": now["version"], "responsible_person": "王五"}
    )
    r.raise_for_status()
    card.locator("details.assign > summary").click()
    card.locator("input[name=deadline]").fill("2030-04-01")
    card.locator("[data-act=assign]").click()
    expect(card.locator(".err")).to_have_text("该条目已被他人更新，请刷新后重试")
    expect(card).to_contain_text("责任人: 王五")
    card.scroll_into_view_if_needed()
    shot(page, "m6-assign-conflict")
    assert page.errors == []


def test_an_inspection_made_from_a_camera_event_says_so(server: AppServer, phone: Any) -> None:
    """An inspection made from a camera event says 来自监控告警 under its head, a link to 监控告警; one made by hand
    says nothing of the kind."""
    c = server.client("inspector")
    (ev,) = [e for e in c.get("/app/api/events").json()["items"] if e["camera_id"] == "yard-a"]
    r = c.post(f"/app/api/events/{ev['id']}/inspection", json={})
    r.raise_for_status()
    iid = r.json()["id"]
    for size in (WIDE, NARROW):
        page = phone(viewport=size)
        login(page, server, "inspector")
        page.goto(f"{server.base_url}/app/#/inspection/{iid}")
        line = page.locator("[data-camera-event]")
        expect(line).to_have_text("来自监控告警›")
        expect(line).to_have_attribute("href", "#/events")
        shot(page, f"camera-origin-{size['width']}")
        page.click("#lang")
        expect(line).to_have_text("From a camera alert›")
        page.click("#lang")
        line.click()
        expect(page.locator("h1")).to_have_text("监控告警")
        assert page.errors == []
    hand = pending_inspection(server, "手工检查测试单位", 63)
    page.goto(f"{server.base_url}/app/#/inspection/{hand}")
    expect(page.locator("[data-hazard=FIRE-001]")).to_be_visible()
    expect(page.locator("[data-camera-event]")).to_have_count(0)


# the Chinese on screen in English mode, apart from data: the names given (units, addresses, people, the
# organisation), what is marked Chinese (lang="zh-CN": the Chinese legal basis), the ledger's history (its notes
# are people's words or the server's 中文 (English)) and the language switch, which names 中文 in Chinese
CJK_CHROME = """(names) => {
  const cjk = /[\\u4e00-\\u9fff]/;
  const bare = (v) => names.reduce((x, n) => x.split(n).join(''), v);
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
  for (let n = walk.currentNode; n; n = walk.nextNode()) {
    const el = n.nodeType === 3 ? n.parentElement : n;
    if (el.closest('[hidden], script, style, #lang, [lang^=zh]')) continue;
    if (n.nodeType === 3 && cjk.test(bare(n.nodeValue))) out.push(n.nodeValue.trim());
    if (n.nodeType === 1) {
      for (const a of ['aria-label', 'title', 'placeholder', 'alt']) {
        const v = n.getAttribute(a);
        if (v && cjk.test(bare(v))) out.push(`${a}=${v}`);
      }
    }
  }
  return [...new Set(out)];
}"""


def open_all(page: Any) -> None:
    """Unfold every <details> on the screen (filters, 指派, history, 重置密码)."""
    closed = page.locator("details:not([open]) > summary")
    for _ in range(40):
        if not closed.count():
            break
        closed.first.click()


def no_chinese(page: Any, screen: str, names: list[str]) -> None:
    page.wait_for_load_state("networkidle")
    assert page.evaluate(CJK_CHROME, names) == [], screen


def test_the_english_ui_shows_no_chinese_but_data(server: AppServer, phone: Any) -> None:
    """m5: in English, the login (and its error), the list, 新建检查 (and its error), an inspection with findings,
    its 备注, 作废照片 and 完成检查 sheets, the ledger with its filter, 指派 and history open, a refusal, the
    statistics, 监控告警 (忽略's sheet and its refusal, an event dismissed, one made an inspection), 我的 and the user
    admin, and the offline list, inspection and queue show no Chinese apart from data."""
    unit, addr = "英文界面测试单位", "桃北路"
    iid = edge_boxes_inspection(server, unit, 71)
    rectified(server, ledger_item(server, unit, 72), fire_photo(73))
    names = [
        unit,
        addr,
        "张检查",
        "李主管",
        "王管理",
        "A 市应急管理局",
        "阳泉某化工厂",
        "旧厂",
        "暗处",
        "堆场",
        "手工检查测试单位",
    ]
    page = phone(viewport=WIDE)
    page.goto(f"{server.base_url}/app/#/login")
    page.click("#lang")
    expect(page.locator("form button[type=submit]")).to_have_text("Log in")
    page.fill("#u", "nobody_m5")
    page.fill("#p", "wrong-password")
    page.click("form button[type=submit]")
    expect(page.locator("form.login .err")).not_to_be_empty()
    no_chinese(page, "login", names)
    page.fill("#u", server.users["supervisor"][0])
    page.fill("#p", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("a[data-insp]").first).to_be_visible()
    no_chinese(page, "list", names)
    page.click("a[href='#/new']")
    page.click("form button[type=submit]")
    expect(page.locator("form .err")).not_to_be_empty()
    no_chinese(page, "new", names)

    page.goto(f"{server.base_url}/app/#/inspection/{iid}")
    expect(page.locator(".box span")).to_have_count(5)
    page.locator("[data-act=note]").first.click()
    no_chinese(page, "inspection", names)
    shot(page, "m5-inspection-en")
    page.locator("[data-act=void]").first.click()
    expect(page.locator("dialog[open]")).to_be_visible()
    no_chinese(page, "void sheet", names)
    page.keyboard.press("Escape")
    page.locator("[data-act=finish]").click()
    expect(page.locator("dialog[data-ask]")).to_be_visible()
    no_chinese(page, "finish sheet", names)
    page.keyboard.press("Escape")

    page.click("#nav a[href='#/ledger']")
    expect(page.locator("[data-ledger]").first).to_be_visible()
    open_all(page)
    page.locator("[data-recheck=failed] [data-act=close]").first.click()
    expect(page.locator("[data-recheck=failed] .err").first).not_to_be_empty()
    no_chinese(page, "ledger", names)
    shot(page, "m5-ledger-en")
    page.click("#nav a[href='#/stats']")
    expect(page.locator(".chart svg").first).to_be_visible()
    no_chinese(page, "stats", names)
    c = server.client("inspector")
    ev = {e["camera_id"]: e["id"] for e in c.get("/app/api/events").json()["items"]}
    c.post(f"/app/api/events/{ev['yard-a']}/inspection", json={}).raise_for_status()  # made once already, or now
    c.post(f"/app/api/events/{ev['dim-a']}/dismiss", json={"reason": "duplicate"}).raise_for_status()
    page.goto(f"{server.base_url}/app/#/inspections")
    expect(page.locator("[data-events-line]")).to_have_text("Camera alerts · 2 to review›")  # shop-a, old-a
    page.goto(f"{server.base_url}/app/#/events")
    expect(page.locator("[data-event]").first).to_be_visible()
    no_chinese(page, "events", names)
    page.locator("[data-act=dismiss]").first.click()
    page.locator("dialog[data-ask] [data-answer=other]").click()
    expect(page.locator("[data-ask-err]")).not_to_be_empty()
    no_chinese(page, "dismiss sheet", names)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="All").click()
    expect(page.locator("[data-event][data-review=dismissed] [data-act=undismiss]")).to_be_visible()
    expect(page.locator("[data-event][data-review=inspection] [data-review-line]")).to_be_visible()
    no_chinese(page, "events, all", names)
    shot(page, "events-all-en")
    page.click("#nav a[href='#/me']")
    no_chinese(page, "me", names)

    admin = phone(viewport=WIDE)
    login(admin, server, "admin")
    admin.click("#lang")
    admin.click("#nav a[href='#/me']")
    expect(admin.locator(".users > li").first).to_be_visible()
    open_all(admin)
    no_chinese(admin, "user admin", names)
    shot(admin, "m5-me-admin-en")

    page.click("#nav a[href='#/inspections']")
    expect(page.locator("a[data-insp]").first).to_be_visible()
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#net")).not_to_be_empty()
    no_chinese(page, "offline list", names)
    page.goto(f"{server.base_url}/app/#/inspection/{iid}")
    expect(page.locator("[data-offline=view]")).to_be_visible()
    page.locator("input[data-pick=gallery]").set_input_files(
        [{"name": "f.jpg", "mimeType": "image/jpeg", "buffer": fire_photo(75)}]
    )
    expect(page.locator("[data-queue] .qi")).to_have_count(1)
    no_chinese(page, "offline inspection and queue", names)
    shot(page, "m5-offline-queue-en")
    page.context.set_offline(False)
    assert page.errors == [] and admin.errors == []
