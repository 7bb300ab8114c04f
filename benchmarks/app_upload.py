"""Inspector app: time from choosing a 12 MP photo to its result on screen, in-browser downscale vs none.

    .venv/bin/python benchmarks/app_upload.py [--model models/default] [--runs 5] [--photo PATH]

Runs the real service (tests/app_fixtures.start_app_server: uvicorn, SQLite, seeded users) with the given model,
drives Debian's chromium (/usr/bin/chromium) at 360×640 through the app, and for each run chooses the photo in
the file chooser and waits for the photo's result card. Modes alternate run by run (downscale on, then off via
localStorage 'hazardscan.noDownscale'), on two networks: this machine's loopback and an emulated 4G uplink
(Chrome DevTools network conditions). Prints medians and the ratio (no downscale ÷ downscale) per network, and
the page weight (bytes of all JS + CSS, raw and gzip).
"""

from __future__ import annotations

import argparse
import gzip
import io
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
STATIC = ROOT / "inference_service" / "app" / "static"
NETWORKS = {
    "loopback": None,
    # a decent 4G uplink: 8 Mbit/s up, 30 Mbit/s down, 50 ms round trip
    "4g": {"offline": False, "latency": 50, "downloadThroughput": 30e6 / 8, "uploadThroughput": 8e6 / 8},
}


def photo_12mp(path: Path, source: Path | None) -> bytes:
    """A 4000×3000 JPEG at phone quality: ``source`` scaled up, or a textured scene, with sensor-like noise."""
    rng = np.random.default_rng(0)
    if source is not None:
        base = np.asarray(Image.open(source).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC))
    else:
        y, x = np.mgrid[0:3000, 0:4000]
        base = np.stack(
            [90 + 60 * np.sin(x / 170.0), 110 + 40 * np.cos(y / 130.0), 120 + 30 * np.sin((x + y) / 90.0)], -1
        )
        base[900:1900, 1200:2200] = (230, 40, 20)
    noisy = np.clip(base.astype(np.float32) + rng.normal(0, 9, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=92)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def page_weight() -> tuple[int, int]:
    files = sorted(STATIC.glob("*.js")) + sorted(STATIC.glob("*.css"))
    raw = sum(p.stat().st_size for p in files)
    gz = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    return raw, gz


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    ap.add_argument("--runs", type=int, default=5, help="runs per mode and network")
    ap.add_argument("--photo", type=Path, default=None, help="a real photo to scale up to 12 MP")
    args = ap.parse_args()

    from app_fixtures import PASSWORD, start_app_server
    from playwright.sync_api import expect, sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="app-bench-"))
    photo = tmp / "photo-12mp.jpg"
    size = len(photo_12mp(photo, args.photo))
    times: dict[tuple[str, bool], list[float]] = {}
    with start_app_server(args.model, tmp / "data") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        ctx = browser.new_context(viewport={"width": 360, "height": 640}, has_touch=True)
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"{server.base_url}/app/#/login")
        page.fill("#u", "insp_a")
        page.fill("#p", PASSWORD)
        page.click("form button[type=submit]")
        expect(page.locator("#nav")).to_be_visible()
        client = server.client("inspector")
        cdp = ctx.new_cdp_session(page)
        cdp.send("Network.enable")
        for net, cond in NETWORKS.items():
            cdp.send("Network.emulateNetworkConditions", cond or {"offline": False, "latency": 0,
                     "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
            for i in range(args.runs * 2 + 1):
                downscale = i % 2 == 1  # run 0 warms up (not counted), then on / off alternate
                body = {"unit": {"name": f"bench {net} {i}", "address": "-"}, "scene": "construction"}
                iid = client.post("/app/api/inspections", json=body).json()["id"]
                page.evaluate("(off) => off ? localStorage.setItem('hazardscan.noDownscale', '1')"
                              " : localStorage.removeItem('hazardscan.noDownscale')", not downscale)  # fmt: skip
                page.goto(f"{server.base_url}/app/#/inspection/{iid}")
                page.wait_for_selector("[data-pick=camera]", state="attached")
                t0 = time.perf_counter()
                page.set_input_files("[data-pick=camera]", str(photo))
                expect(page.locator("[data-photo]")).to_be_visible(timeout=120_000)
                dt = time.perf_counter() - t0
                if i:
                    times.setdefault((net, downscale), []).append(dt)
                stored = client.get(f"/app/api/inspections/{iid}").json()["photos"][0]
                log.info(f"{net:8s} {'downscale' if downscale else 'original ':9s} {dt * 1000:7.0f} ms  "
                      f"stored {stored['width']}x{stored['height']}", flush=True)  # fmt: skip
        browser.close()

    raw, gz = page_weight()
    log.info(f"\nphoto: 4000x3000 JPEG, {size / 1e6:.1f} MB; model: {args.model}; {args.runs} runs per cell (medians)")
    log.info(f"{'network':10s} {'downscale':>10s} {'original':>10s} {'original/downscale':>20s}")
    for net in NETWORKS:
        on = statistics.median(times[(net, True)]) * 1000
        off = statistics.median(times[(net, False)]) * 1000
        log.info(f"{net:10s} {on:8.0f}ms {off:8.0f}ms {off / on:19.2f}x")
    log.info(f"page weight: JS+CSS {raw} bytes ({raw / 1024:.1f} KiB), gzip {gz} bytes")


if __name__ == "__main__":
    main()
