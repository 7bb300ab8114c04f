"""Helpers of the browser tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 360, "height": 640}

if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
expect = sync_api.expect
expect.set_options(timeout=20_000)  # a 2-core machine running a training job next to the tests is slow

from app_fixtures import PASSWORD, AppServer  # noqa: E402


def login(page: Any, server: AppServer, who: str) -> None:
    page.goto(f"{server.base_url}/app/#/login")
    page.fill("#u", server.users[who][0])
    page.fill("#p", PASSWORD)
    page.click("form button[type=submit]")
    expect(page.locator("#nav")).to_be_visible()


def wait_until(page: Any, check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (server-side state the browser brings about).

    Waits with ``page.wait_for_timeout``: Playwright's sync API runs route handlers only inside its own calls.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(200)
