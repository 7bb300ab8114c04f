"""The app's static files: small, nothing from another host, and all of them in the offline shell (no browser)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from inference_service.app.static_files import GZIP_LEVEL

STATIC = Path(__file__).resolve().parents[2] / "inference_service" / "app" / "static"


def test_static_assets_are_small_and_local() -> None:
    """All JS + CSS under 72 KB as sent (gzip: what a phone on a weak network downloads on its first visit) and
    under 200 KB as parsed; nothing referenced from another host."""
    assets = sorted(STATIC.glob("*.js")) + sorted(STATIC.glob("*.css"))
    assert len(assets) > 3
    # 64 KB until 群众举报 (reports.js and its strings, about 6 KB gzipped) came on top of 63.3 KB
    assert sum(len(gzip.compress(p.read_bytes(), GZIP_LEVEL)) for p in assets) < 72 * 1024
    assert sum(p.stat().st_size for p in assets) < 200 * 1024
    for p in [*assets, STATIC / "index.html"]:
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), p.name
        assert "@import" not in text and "url(http" not in text, p.name
        assert not re.search(r"""\bfrom\s+["'](?!\./)""", text), f"{p.name} imports from outside the app"


def test_every_module_is_in_the_offline_shell() -> None:
    """sw.js caches the page, the styles and every module app.js imports (a reload without signal needs them)."""
    sw = (STATIC / "sw.js").read_text(encoding="utf-8")
    listed = set(re.findall(r"'([\w-]+\.js)'", sw.split("const SHELL")[0]))
    modules = {p.name for p in STATIC.glob("*.js")} - {"sw.js"}
    assert listed == modules
    imported = set()
    for p in STATIC.glob("*.js"):
        imported |= set(re.findall(r"""from\s+'\./([\w-]+\.js)'""", p.read_text(encoding="utf-8")))
    assert imported <= modules


def test_index_fetches_every_module_at_once() -> None:
    """index.html preloads every module app.js reaches, so a cold start waits one round trip for all of them
    rather than one per level of imports; and it shows something while they come."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([\w-]+\.js)">', html))
    assert preloaded == {p.name for p in STATIC.glob("*.js")} - {"sw.js", "app.js"}
    assert re.search(r'<main id="view"[^>]*>\s*<p[^>]*>[^<]+</p>\s*</main>', html)
