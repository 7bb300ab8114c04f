"""The app's static files: gzip where the phone accepts it, revalidated on every load, 304 when unchanged."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from _live import LiveServer
from starlette.applications import Starlette
from starlette.routing import Mount

from inference_service.api.settings import Settings
from inference_service.app import STATIC
from inference_service.app.static_files import CompressedStaticFiles, accepts_gzip


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br, zstd", True),  # Chromium
        ("gzip;q=0.5", True),
        ("GZIP", True),
        ("", False),
        ("identity", False),
        ("br", False),
        ("gzip;q=0", False),
        ("gzip;q=x", False),  # a broken q-value counts as 0
        ("*", True),
        ("*, gzip;q=0", False),  # named beats the wildcard
        ("*;q=0", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool):
    assert accepts_gzip(header) is expected


@contextmanager
def serving(folder: Path) -> Iterator[httpx.Client]:
    """``folder`` served under /app by uvicorn on a free loopback port."""
    app = Starlette(routes=[Mount("/app", CompressedStaticFiles(directory=folder, html=True))])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def get(c: httpx.Client, path: str, encoding: str | None, **headers: str):
    return c.get(path, headers={"accept-encoding": encoding or "identity", **headers})


@pytest.fixture(scope="module")
def service(tiny_model_dir: Path) -> Iterator[httpx.Client]:
    """The whole service, its middleware included, as ``hazardscan serve`` runs it."""
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as client:
        yield client


def test_the_app_is_sent_compressed_to_a_browser_and_plain_to_others(service: httpx.Client):
    c = service
    for name in ("", "app.js", "inspection.js", "app.css"):
        plain = (STATIC / (name or "index.html")).read_bytes()
        zipped = get(c, f"/app/{name}", "gzip, deflate, br")
        assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == plain  # httpx has undone the gzip
        assert int(zipped.headers["content-length"]) < len(plain) / 2
        assert zipped.headers["vary"] == "Accept-Encoding" and zipped.headers["cache-control"] == "no-cache"
        other = get(c, f"/app/{name}", None)
        assert other.status_code == 200 and "content-encoding" not in other.headers and other.content == plain
        assert other.headers["vary"] == "Accept-Encoding" and other.headers["cache-control"] == "no-cache"
        assert zipped.headers["etag"] != other.headers["etag"]  # a cache never swaps one for the other
    assert (
        get(c, "/app/app.js", "gzip").headers["content-type"].startswith(("text/javascript", "application/javascript"))
    )


def test_unchanged_files_answer_304_and_a_changed_one_is_compressed_anew(tmp_path: Path):
    page = tmp_path / "mod.js"
    page.write_text("export const a = 1;\n" * 100, encoding="utf-8")
    with serving(tmp_path) as c:
        changes_are_seen(c, page)


def changes_are_seen(c: httpx.Client, page: Path) -> None:
    first = get(c, "/app/mod.js", "gzip")
    assert first.status_code == 200 and first.headers["content-encoding"] == "gzip"
    again = get(c, "/app/mod.js", "gzip", **{"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["cache-control"] == "no-cache"
    # the identity copy's tag does not match the gzip copy (nor the other way round)
    plain = get(c, "/app/mod.js", None)
    assert get(c, "/app/mod.js", "gzip", **{"if-none-match": plain.headers["etag"]}).status_code == 200
    page.write_text("export const a = 2;\n" * 100, encoding="utf-8")
    stat = page.stat()
    os.utime(page, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = get(c, "/app/mod.js", "gzip", **{"if-none-match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]
    assert changed.headers["content-encoding"] == "gzip" and changed.content == page.read_bytes()


def test_small_and_binary_files_go_as_they_are(tmp_path: Path):
    (tmp_path / "tiny.js").write_text("export {};\n", encoding="utf-8")
    (tmp_path / "pic.png").write_bytes(b"\x89PNG" + bytes(4096))
    with serving(tmp_path) as c:
        for name in ("tiny.js", "pic.png"):
            r = get(c, f"/app/{name}", "gzip")
            assert r.status_code == 200 and "content-encoding" not in r.headers and "vary" not in r.headers
            assert r.headers["cache-control"] == "no-cache"
        assert get(c, "/app/missing.js", "gzip").status_code == 404


def test_a_head_request_gets_the_headers_only(service: httpx.Client):
    r = service.head("/app/app.js", headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip" and r.content == b""
