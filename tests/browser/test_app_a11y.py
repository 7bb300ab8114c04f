"""Every page of the app at 360×640 and on a desktop: labelled fields, 44 px touch targets, no sideways scroll."""

from __future__ import annotations

from typing import Any

import pytest
from app_fixtures import AppServer, fire_and_smoke_photo
from browser_helpers import expect, login

CHECK = """() => {
  const bad = [];
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > 0 && getComputedStyle(el).visibility !== 'hidden';
  };
  const targets = 'button, a[href], select, textarea, summary, input:not([type=file]):not([type=checkbox])';
  for (const el of document.querySelectorAll(targets)) {
    if (!shown(el)) continue;
    const h = el.getBoundingClientRect().height;
    if (h < 43.5) bad.push(`target ${Math.round(h)} px high: ${el.tagName} "${el.textContent.trim().slice(0, 24)}"`);
  }
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label');
    if (!named) bad.push(`no label: ${el.outerHTML.slice(0, 80)}`);
  }
  for (const el of document.querySelectorAll('svg[role=img]')) {
    if (!el.getAttribute('aria-label')) bad.push('a chart without a text alternative');
  }
  const w = document.documentElement.scrollWidth;
  if (w > window.innerWidth) bad.push(`sideways scroll: page ${w} px wide in ${window.innerWidth}`);
  return bad;
}"""


@pytest.mark.parametrize("viewport", [{"width": 360, "height": 640}, {"width": 1280, "height": 800}])
def test_every_page_is_labelled_tappable_and_fits(app_server: AppServer, phone: Any, viewport: dict[str, int]) -> None:
    client = app_server.client("inspector")
    body = {"unit": {"name": "无障碍检查单位", "address": "江城区"}, "scene": "construction"}
    iid = client.post("/app/api/inspections", json=body).json()["id"]
    photo = client.post(
        f"/app/api/inspections/{iid}/photos",
        files={"photo": ("p.jpg", fire_and_smoke_photo(), "image/jpeg")},
        data={"idempotency_key": f"a11y-{viewport['width']}"},
    ).json()
    client.post(f"/app/api/findings/{photo['findings'][0]['id']}/decision", json={"decision": "confirm"})

    page = phone(viewport=viewport)
    page.goto(f"{app_server.base_url}/app/#/login")
    expect(page.locator("#u")).to_be_visible()
    problems = {"#/login": page.evaluate(CHECK)}
    login(page, app_server, "supervisor")
    ready = {"#/inspections": ".item", "#/new": "#uname", f"#/inspection/{iid}": "[data-finding]",
             "#/ledger": "[data-ledger]", "#/stats": "[data-kpi]", "#/me": "[data-act=logout]"}  # fmt: skip
    for route, sel in ready.items():
        page.goto(f"{app_server.base_url}/app/{route}")
        expect(page.locator(sel).first).to_be_visible()
        problems[route] = page.evaluate(CHECK)
    page.goto(f"{app_server.base_url}/app/#/inspection/{iid}")
    page.locator("[data-act=add-missed]").first.click()
    expect(page.locator(".add-form")).to_be_visible()
    problems["add missed hazard"] = page.evaluate(CHECK)
    assert {k: v for k, v in problems.items() if v} == {}
    assert page.errors == []
