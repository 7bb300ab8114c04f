"""The app's static files: small, and nothing from another host (no browser needed)."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "inference_service" / "app" / "static"


def test_static_assets_are_small_and_local() -> None:
    """All JS + CSS under 150 KB; nothing referenced from another host."""
    assets = [STATIC / "app.js", STATIC / "sw.js", STATIC / "app.css"]
    assert sum(p.stat().st_size for p in assets) < 150 * 1024
    for p in [*assets, STATIC / "index.html"]:
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), p.name
        assert "@import" not in text and "url(http" not in text, p.name
