"""Every page of the app at 360×640 and on a desktop: labelled fields, 44 px touch targets, text contrast (WCAG AA),
no sideways scroll."""

from __future__ import annotations

from typing import Any

import pytest
from app_fixtures import AppServer, fire_and_smoke_photo
from browser_helpers import expect, login
from test_reports import new_link, send, token_of

CHECK = r"""() => {
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
  // WCAG contrast of every piece of text against the first opaque background behind it (photos excluded)
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.photo, svg, .skip, [hidden]') || !shown(el)) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    let bg = null;
    for (let a = el; a && !bg; a = a.parentElement) {
      const c = rgb(getComputedStyle(a).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) bg = c.slice(0, 3);
    }
    const cs = getComputedStyle(el);
    let dim = 1;
    for (let a = el; a; a = a.parentElement) dim *= Number(getComputedStyle(a).opacity);
    if (dim < 1) continue;  // disabled buttons and rejected boxes are faded on purpose
    const l1 = lum(rgb(cs.color)), l2 = lum(bg || [255, 255, 255]);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const px = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
    const need = px >= 24 || (bold && px >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(`contrast ${ratio.toFixed(2)} < ${need}: "${el.textContent.trim().slice(0, 24)}"`);
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
    token = token_of(new_link(app_server, "无障碍公示牌"))  # a public report for 群众举报
    send(app_server, token, fire_and_smoke_photo(), place="无障碍路 1 号", contact="13900000000")

    page = phone(viewport=viewport)
    page.goto(f"{app_server.base_url}/app/#/login")
    expect(page.locator("#u")).to_be_visible()
    problems = {"#/login": page.evaluate(CHECK)}
    login(page, app_server, "supervisor")
    ready = {"#/inspections": ".item", "#/new": "#uname", f"#/inspection/{iid}": "[data-finding]",
             "#/ledger": "[data-ledger]", "#/stats": "[data-kpi]", "#/me": "[data-act=logout]",
             "#/reports": "[data-report]"}  # fmt: skip
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
