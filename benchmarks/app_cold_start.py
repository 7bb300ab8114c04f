"""Inspector app: how long a phone waits for the app on its first visit, on slow networks.

    .venv/bin/python benchmarks/app_cold_start.py [--runs 5] [--compare-root OLD_CHECKOUT]

Runs the real service (tests/app_fixtures.start_app_server) and drives Debian's chromium (/usr/bin/chromium) at
360×640 under emulated networks (Chrome DevTools network conditions). A first visit is a fresh browser profile
(no cache, no service worker) opening /app/ until the login form is on screen. Reported per network: medians of
the first paint (something on screen), the login form, and the bytes moved. Reloads are not measured: DevTools'
emulation does not slow the service worker's own fetches, which serve them. With ``--compare-root``
the service of another checkout (e.g. a ``git worktree`` of an earlier commit) runs beside this one and the two
take turns run by run, so both sets of figures come from one run of one machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
NETWORKS = {
    # DevTools' "3G" preset: 1.6 Mbit/s down, 750 kbit/s up, 300 ms round trip (a basement, a lift lobby)
    "3g": {"offline": False, "latency": 300, "downloadThroughput": 1.6e6 / 8, "uploadThroughput": 750e3 / 8},
    # a decent 4G link: 30 Mbit/s down, 8 Mbit/s up, 50 ms round trip
    "4g": {"offline": False, "latency": 50, "downloadThroughput": 30e6 / 8, "uploadThroughput": 8e6 / 8},
}
TRANSFERRED = """() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
  .reduce((n, e) => n + (e.transferSize || 0), 0)"""
FIRST_PAINT = "() => performance.getEntriesByName('first-paint')[0]?.startTime ?? null"


def visit(browser: Any, url: str, cond: dict[str, Any]) -> dict[str, float]:
    """One first visit in a fresh profile: milliseconds to paint and to the login form, bytes moved."""
    ctx = browser.new_context(viewport={"width": 360, "height": 640}, has_touch=True)
    page = ctx.new_page()
    page.set_default_timeout(120_000)
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", cond)
    t0 = time.perf_counter()
    page.goto(f"{url}/app/", wait_until="commit")
    page.wait_for_selector("#u", state="visible")
    login = (time.perf_counter() - t0) * 1000
    got = {"paint": page.evaluate(FIRST_PAINT), "login": login, "bytes": page.evaluate(TRANSFERRED)}
    ctx.close()
    return got


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    ap.add_argument("--runs", type=int, default=5, help="first visits per server and network")
    ap.add_argument("--compare-root", type=Path, default=None, help="another checkout to serve beside this one")
    args = ap.parse_args()

    from app_fixtures import start_app_server
    from app_upload import page_weight
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="app-cold-"))
    roots = {"this": ROOT} | ({"compare": args.compare_root.resolve()} if args.compare_root else {})
    got: dict[tuple[str, str], list[dict[str, float]]] = {}
    with sync_playwright() as pw:
        servers = {name: start_app_server(args.model, tmp / name, repo=root) for name, root in roots.items()}
        urls = {name: server.__enter__().base_url for name, server in servers.items()}
        try:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            for net, cond in NETWORKS.items():
                for i in range(args.runs + 1):  # round 0 warms up each server, not counted
                    for name, url in urls.items():
                        one = visit(browser, url, cond)
                        if i:
                            got.setdefault((net, name), []).append(one)
                        log.info(f"{net:3s} {name:8s} paint {one['paint'] or 0:6.0f} ms  login {one['login']:6.0f} ms  "
                                 f"{one['bytes'] / 1024:6.1f} KiB")  # fmt: skip
            browser.close()
        finally:
            for server in servers.values():
                server.__exit__(None, None, None)

    raw, gz = page_weight()
    log.info(f"\n{args.runs} first visits per server and network, medians; roots: {roots}")
    log.info(f"{'network':8s}{'server':>9s}{'paint':>9s}{'login':>9s}{'moved':>11s}")
    for (net, name), rows in got.items():
        med = {k: statistics.median(r[k] or 0 for r in rows) for k in rows[0]}
        log.info(f"{net:8s}{name:>9s}{med['paint']:7.0f}ms{med['login']:7.0f}ms"
                 f"{med['bytes'] / 1024:7.1f} KiB")  # fmt: skip
    if args.compare_root:
        for net in NETWORKS:
            this, other = (statistics.median(r["login"] for r in got[(net, n)]) for n in ("this", "compare"))
            log.info(f"{net}: login form {other / this:.2f}x sooner than the compare root's")
    log.info(f"page weight of this checkout: JS+CSS {raw} bytes, gzip {gz} bytes")


if __name__ == "__main__":
    main()
