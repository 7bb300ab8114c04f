"""The documentation as a newcomer sees it, in the real browser and offline: the service's /docs page, and
the Markdown pages rendered to HTML with every picture showing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _live import LiveServer
from browser_helpers import expect
from markdown_it import MarkdownIt

from inference_service.api.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@pytest.fixture(scope="module")
def service_url(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(model_path=tiny_model_dir, threads=1, data_dir=tmp_path_factory.mktemp("docs-data"))
    with LiveServer(settings) as client:
        yield str(client.base_url).rstrip("/")


def test_the_api_docs_page_shows_every_route_offline(browser: Any, service_url: str) -> None:
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(service_url) else route.abort())
    page.goto(f"{service_url}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/v1/detect").first).to_be_visible(timeout=15_000)
    page.close()


@pytest.mark.parametrize("md", [p for p in PAGES if "<img" in p.read_text(encoding="utf-8")], ids=lambda p: p.name)
def test_every_picture_of_a_page_shows(browser: Any, md: Path, tmp_path: Path) -> None:
    """Rendered as GitHub would (CommonMark with tables and HTML), next to the page, every <img> loads."""
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(md.read_text(encoding="utf-8"))
    out = tmp_path / "page.html"  # relative picture paths resolve against the page's own folder
    base = md.parent.as_uri() + "/"
    out.write_text(f"<!doctype html><meta charset=utf-8><base href='{base}'><body>{html}", encoding="utf-8")
    page = browser.new_page()
    page.goto(out.as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
    page.close()
    assert images and [src for src, width in images if not width] == []
