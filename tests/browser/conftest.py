"""Real-browser fixtures: Debian's chromium driven by Playwright for Python, on a phone viewport.

No browser is downloaded (never `playwright install`): the tests launch /usr/bin/chromium (apt package
`chromium`, in scripts/setup.sh's dev list); browser_helpers skips the tests with that reason when it is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import app_fixtures
import pytest

app_server = app_fixtures.app_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from browser_helpers import CHROMIUM, sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Callable[..., Any]]:
    """A factory of fresh phone-sized pages (own cookies, own IndexedDB), closed after the test."""
    from browser_helpers import PHONE

    contexts: list[Any] = []

    def new_page(**kw: Any) -> Any:
        ctx = browser.new_context(**{"viewport": PHONE, "locale": "zh-CN", "has_touch": True, **kw})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield new_page
    for ctx in contexts:
        ctx.close()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Photo files for the file chooser (the tiny model scores them; see tests/app_fixtures.py)."""
    d = tmp_path_factory.mktemp("photos")
    files = {
        "fire": app_fixtures.fire_photo(1),
        "fire2": app_fixtures.fire_photo(2),
        "fire3": app_fixtures.fire_photo(3),
        "fire4": app_fixtures.fire_photo(4),
        "fire5": app_fixtures.fire_photo(5),
        "fire_smoke": app_fixtures.fire_and_smoke_photo(),
        "clean": app_fixtures.clean_photo(1),
    }
    out = {}
    for name, data in files.items():
        out[name] = d / f"{name}.jpg"
        out[name].write_bytes(data)
    return out
