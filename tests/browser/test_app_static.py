"""The app's static files: small, nothing from another host, and all of them in the offline shell (no browser)."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "inference_service" / "app" / "static"


def test_static_assets_are_small_and_local() -> None:
    """All JS + CSS under 150 KB; nothing referenced from another host."""
    assets = sorted(STATIC.glob("*.js")) + sorted(STATIC.glob("*.css"))
    assert len(assets) > 3
    assert sum(p.stat().st_size for p in assets) < 150 * 1024
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
