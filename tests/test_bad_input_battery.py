"""The hardening review's hostile inputs (issue 16), one row each, over real HTTP: a clear 4xx or a doubtful
200 that says so, never a 5xx, and the server still answers afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _builders import encode, noisy_photo, png_declaring, scene
from _live import LiveServer
from PIL import Image

from evaluation.stress_service import png16_rgba
from inference_service.api.settings import Settings
from inference_service.cctv.api import get_cctv_settings
from inference_service.cctv.store import EventStore

BIG16 = png16_rgba(2000, 2000)  # 16-bit RGBA: 26 KB sent, 32 MB to decode
JPEG = encode(noisy_photo(640, 480), "JPEG", quality=90)
HALF = len(JPEG) // 2


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("battery")
    EventStore(root / "events.db").close()
    settings = Settings(
        model_path=tiny_model_dir, threads=1, data_dir=root / "data", request_decode_memory_mb=70, max_batch_images=4
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HAZARDSCAN_EVENTS_DB", str(root / "events.db"))
        get_cctv_settings.cache_clear()
        with LiveServer(settings) as client:
            yield client
    get_cctv_settings.cache_clear()


def _one(name: str, data: bytes) -> dict[str, Any]:
    return {"files": {"photo": (name, data)}}


CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    # (case, method, path, request, status, error code or "" for a 200)
    ("16-bit RGBA PNG within the budget", "POST", "/v1/detect", _one("a.png", BIG16), 200, ""),
    (
        "16-bit RGBA PNG over the budget",
        "POST",
        "/v1/detect",
        _one("b.png", png16_rgba(3200, 3200)),
        413,
        "image_too_large",
    ),
    ("decompression bomb", "POST", "/v1/detect", _one("bomb.png", png_declaring(20000, 20000)), 413, "image_too_large"),
    (
        "1x1 red",
        "POST",
        "/v1/detect",
        _one("px.png", encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")),
        422,
        "image_too_small",
    ),
    ("truncated JPEG", "POST", "/v1/detect", _one("cut.jpg", JPEG[:HALF]), 400, "invalid_image"),
    ("JPEG header only", "POST", "/v1/detect", _one("hdr.jpg", JPEG[:300]), 400, "invalid_image"),
    ("empty file", "POST", "/v1/detect", _one("e.jpg", b""), 400, "invalid_image"),
    ("text", "POST", "/v1/detect", _one("n.txt", b"not a photo\n"), 415, "unsupported_media_type"),
    ("no photo field", "POST", "/v1/detect", {"files": {"image": ("a.jpg", JPEG)}}, 422, "validation_error"),
    ("min_confidence 2", "POST", "/v1/detect?min_confidence=2", _one("a.jpg", JPEG), 422, "validation_error"),
    ("unknown class", "POST", "/v1/detect?classes=unicorn", _one("a.jpg", JPEG), 422, "unknown_class"),
    (
        "five photos, four allowed",
        "POST",
        "/v1/detect/batch",
        {"files": [("photos", ("a.jpg", JPEG))] * 5},
        413,
        "too_many_files",
    ),
    ("offset past 2^63", "GET", "/v1/events?offset=9223372036854775808", {}, 422, "validation_error"),
    ("negative offset", "GET", "/v1/events?offset=-1", {}, 422, "validation_error"),
    ("month 13", "GET", "/v1/events?since=2026-13-01T00:00:00", {}, 422, "validation_error"),
    ("no such event", "GET", "/v1/events/nope", {}, 404, "not_found"),
    ("no such route", "GET", "/v1/nothing", {}, 404, "not_found"),
]


@pytest.mark.parametrize(
    ("method", "path", "request_", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_hostile_input_gets_a_clear_answer(server, method, path, request_, status, code):
    r = server.request(method, path, **request_)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
        assert "/tmp" not in r.text and "Traceback" not in r.text
    assert server.get("/healthz").status_code == 200


def test_doubtful_photos_are_answered_with_their_warning(server):
    red = server.post("/v1/detect", **_one("red.png", encode(Image.new("RGB", (64, 64), (255, 0, 0)), "PNG"))).json()
    assert [w["code"] for w in red["warnings"]] == ["featureless"] and red["hazards"]
    assert not any(h["alarm"] for h in red["hazards"])
    corrupt = server.post("/v1/detect", **_one("c.jpg", JPEG[:HALF] + b"\0" * 2000 + JPEG[HALF + 2000 :])).json()
    assert [w["code"] for w in corrupt["warnings"]] == ["corrupt_data"]


def test_a_batch_needing_more_decode_memory_than_a_request_may_use_is_refused_at_once(server):
    small = ("photos", ("s.png", encode(scene(64, 64, []), "PNG")))
    files = [("photos", (f"{i}.png", BIG16)) for i in range(3)] + [small]
    r = server.post("/v1/detect/batch", files=files)
    assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large", r.text
    assert "may use 70 MB" in r.json()["error"]["message"]
    assert "the first 2 fit in one request" in r.json()["error"]["message"]  # 2 x 32 MB fit in 70 MB
    body = server.post("/v1/detect/batch", files=[*files[:2], small]).json()
    assert [item["error"] for item in body["items"]] == [None, None, None]
