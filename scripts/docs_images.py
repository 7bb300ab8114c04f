"""Regenerate the app's pictures in docs/img/ (run from the repository root, after `make test` installed the tools):

    .venv/bin/python scripts/docs_images.py

* ``app-inspection.png``: a whole inspection on a 360 px wide phone, with the tests' tiny model (fire confirmed with a
  note, smoke awaiting a decision);
* ``app-demo.jpg``: the photo card of ``hazardscan demo-photo``'s picture scored by the shipped model.

Each runs its own server on loopback with a throwaway data folder; Debian's chromium takes the screenshots.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

import httpx  # noqa: E402
from _builders import build_model_dir  # noqa: E402
from app_fixtures import PASSWORD, fire_and_smoke_photo, start_app_server  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

IMG = REPO / "docs" / "img"
ADMIN_PASSWORD = "docs-images-1"


def logged_in(base: str, username: str, password: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=60)
    r = c.post("/app/api/login", json={"username": username, "password": password})
    r.raise_for_status()
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def shoot(
    base: str, username: str, password: str, inspection_id: str, out: Path, scale: float, element: str = ""
) -> None:
    """The inspection's page (or one ``element`` of it) on a 360 px phone, the viewport as tall as the page so the
    fixed bars stay where they belong."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        ctx = browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=scale, locale="zh-CN")
        page = ctx.new_page()
        page.goto(f"{base}/app/#/login")
        page.fill("#u", username)
        page.fill("#p", password)
        page.click("form button[type=submit]")
        page.locator("#nav").wait_for()
        page.goto(f"{base}/app/#/inspection/{inspection_id}")
        page.locator("[data-finding] img, [data-photo] img").first.wait_for()
        page.set_viewport_size({"width": 360, "height": page.evaluate("document.documentElement.scrollHeight")})
        page.wait_for_load_state("networkidle")
        if element:
            page.locator(element).first.screenshot(path=str(out))
        else:
            page.screenshot(path=str(out), full_page=True)
        browser.close()


def tiny_inspection(tmp: Path) -> None:
    with start_app_server(build_model_dir(tmp / "tiny"), tmp / "data") as s:
        username = s.users["inspector"][0]
        c = logged_in(s.base_url, username, PASSWORD)
        unit = {"name": "阳江市某建筑工程有限公司", "address": "阳江市江城区东风三路 88 号"}
        insp = c.post("/app/api/inspections", json={"unit": unit, "scene": "construction"}).json()
        files = {"photo": ("p.jpg", fire_and_smoke_photo(), "image/jpeg")}
        photo = c.post(f"/app/api/inspections/{insp['id']}/photos", files=files, data={"idempotency_key": "d1"}).json()
        fire = next(f for f in photo["findings"] if f["hazard_id"] == "FIRE-001")
        c.post(f"/app/api/findings/{fire['id']}/decision", json={"decision": "confirm", "note": "二楼东侧楼梯间"})
        shot = tmp / "inspection.png"
        shoot(s.base_url, username, PASSWORD, insp["id"], shot, 1.5)
        Image.open(shot).convert("RGB").quantize(256).save(IMG / "app-inspection.png", optimize=True)  # a third


def shipped_demo(tmp: Path) -> None:
    env = {**os.environ, "HAZARDSCAN_DATA_DIR": str(tmp / "shipped")}
    cli = [sys.executable, "-m", "inference_service.cli"]
    add = [*cli, "users", "add", "--username", "admin", "--role", "admin", "--org", "示例安监站", "--password-stdin"]
    subprocess.run(add, input=f"{ADMIN_PASSWORD}\n", text=True, env=env, check=True, capture_output=True)
    subprocess.run([*cli, "demo-photo", str(tmp / "demo.jpg")], env=env, check=True, capture_output=True)
    server = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", "8131"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = "http://127.0.0.1:8131"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        c = logged_in(base, "admin", ADMIN_PASSWORD)
        insp = c.post("/app/api/inspections", json={"unit": {"name": "示例单位"}, "scene": "industry"}).json()
        files = {"photo": ("demo.jpg", (tmp / "demo.jpg").read_bytes(), "image/jpeg")}
        c.post(f"/app/api/inspections/{insp['id']}/photos", files=files, data={"idempotency_key": "demo"})
        card = tmp / "card.png"
        shoot(base, "admin", ADMIN_PASSWORD, insp["id"], card, 1.4, element="[data-photo]")
        Image.open(card).convert("RGB").save(IMG / "app-demo.jpg", quality=85, optimize=True)
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tiny_inspection(Path(tmp))
        shipped_demo(Path(tmp))


if __name__ == "__main__":
    main()
