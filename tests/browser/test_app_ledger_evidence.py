"""A ledger card says which hazard it is (UX review M3).

Every card: the photo that found it with its box alone (small, loaded lazily, tap: large), the inspector's 备注, the
day it was found (local) and who entered it. With a rectification photo, the supervisor sees 整改前 and 整改后 side
by side. Debian's chromium at 360×640 against a real server (tests/app_fixtures.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from app_fixtures import AppServer, clean_photo, open_item
from browser_helpers import expect
from test_app_a11y import CHECK
from test_app_ux_fixes import ledger_card, ledger_of, shot

CST = timezone(timedelta(hours=8))


def noted_item(app_server: AppServer, unit: str, seed: int, note: str) -> dict[str, Any]:
    """The inspector confirms a 现场明火 with a 备注: the ledger item."""
    c = app_server.client("inspector")
    finding = open_item(c, unit, seed=seed, confirm=False)
    r = c.post(f"/app/api/findings/{finding['id']}/decision", json={"decision": "confirm", "note": note})
    r.raise_for_status()
    return c.get(f"/app/api/ledger/{r.json()['ledger_item_id']}").json()


def loaded(page: Any, img: Any) -> None:
    """Wait until ``img`` (scrolled into view: it loads lazily) shows a decoded picture."""
    img.scroll_into_view_if_needed()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())


def local_day(iso: str) -> str:
    d = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(CST)
    return f"{d.year}/{d.month}/{d.day}"  # zh-CN's toLocaleDateString


def test_every_ledger_card_shows_its_photo_note_day_and_who_entered_it(app_server: AppServer, phone: Any) -> None:
    """The inspector's card: a small lazily loaded picture of this hazard, 备注, “<day> 发现 · 张检查 录入”; a tap
    opens the picture large, and a tap closes it."""
    unit = "证据照片测试单位"
    item = noted_item(app_server, unit, 71, "二楼东侧楼梯间")
    assert item["note"] == "二楼东侧楼梯间" and item["evidence_url"]
    page = phone(timezone_id="Asia/Shanghai")
    ledger_of(page, app_server, "inspector", unit)
    page.locator("details.card > summary").click()  # fold 筛选 away to see the card
    card = ledger_card(page, item)
    img = card.locator("img[data-evidence]")
    expect(img).to_have_attribute("src", f"{item['evidence_url']}?max_side=240")
    expect(img).to_have_attribute("loading", "lazy")
    expect(img).to_have_attribute("alt", "发现隐患的照片：现场明火")
    loaded(page, img)
    expect(card.locator("[data-note]")).to_have_text("备注：二楼东侧楼梯间")
    expect(card.locator("[data-found]")).to_have_text(f"{local_day(item['created_at'])} 发现 · 张检查 录入")
    shot(page, "M3-ledger-card-evidence")

    card.get_by_role("button", name="发现隐患的照片：现场明火（点按放大）").click()
    big = page.locator("dialog.lightbox img")
    expect(big).to_be_visible()
    expect(big).to_have_attribute("src", f"{item['evidence_url']}?max_side=1280")
    loaded(page, big)
    assert page.evaluate("document.querySelector('dialog.lightbox img').naturalWidth") > 240
    shot(page, "M3-ledger-evidence-large")
    page.get_by_role("button", name="关闭").click()
    expect(page.locator("dialog.lightbox")).to_have_count(0)
    page.click("#lang")
    expect(card.locator("[data-note]")).to_have_text("Note: 二楼东侧楼梯间")
    expect(card.locator("[data-found]")).to_contain_text("entered by 张检查")
    # the labels drawn on the picture follow the screen's language
    expect(card.locator("img[data-evidence]")).to_have_attribute("src", f"{item['evidence_url']}?max_side=240&lang=en")
    loaded(page, card.locator("img[data-evidence]"))
    page.click("#lang")
    assert page.errors == []


def test_the_supervisor_sees_before_and_after_side_by_side(app_server: AppServer, phone: Any) -> None:
    """待复查: the photo that found the hazard (整改前) and the rectification photo (整改后) in one row, both loaded."""
    unit = "整改前后对比测试单位"
    item = noted_item(app_server, unit, 72, "仓库北门")
    c = app_server.client("inspector")
    r = c.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": item["version"]})
    r.raise_for_status()
    r = c.post(
        f"/app/api/ledger/{item['id']}/rectification",
        files={"photo": ("fix.jpg", clean_photo(72), "image/jpeg")},
        data={"idempotency_key": str(uuid.uuid4())},
    )
    r.raise_for_status()
    assert r.json()["status"] == "pending_review"
    page = phone(timezone_id="Asia/Shanghai")
    ledger_of(page, app_server, "supervisor", unit)
    page.locator("details.card > summary").click()
    card = ledger_card(page, item)
    expect(card).to_have_attribute("data-status", "pending_review")
    pair = card.locator("[data-compare]")
    before, after = pair.locator("img[data-evidence]"), pair.locator("img[data-after]")
    expect(before).to_have_attribute("src", f"{item['evidence_url']}?max_side=320")
    expect(after).to_have_attribute("src", f"{r.json()['rectification_evidence_url']}?max_side=320")
    loaded(page, before)
    loaded(page, after)
    expect(pair.locator("figcaption")).to_have_text(["整改前", "整改后"])
    b, a = before.bounding_box(), after.bounding_box()
    assert abs(b["y"] - a["y"]) < 2 and a["x"] >= b["x"] + b["width"], (b, a)  # side by side, not stacked
    assert b["width"] > 120 and abs(b["width"] - a["width"]) < 2
    expect(card.locator("[data-note]")).to_have_text("备注：仓库北门")
    expect(card.get_by_role("button", name="复查销号")).to_be_visible()
    card.scroll_into_view_if_needed()
    shot(page, "M3-supervisor-before-after")
    assert page.evaluate(CHECK) == []
    pair.get_by_role("button", name="整改照片（点按放大）").click()
    expect(page.locator("dialog.lightbox img")).to_have_attribute(
        "src", f"{r.json()['rectification_evidence_url']}?max_side=1280"
    )
    page.keyboard.press("Escape")
    expect(page.locator("dialog.lightbox")).to_have_count(0)
    assert page.errors == []
