"""``POST /v1/detect`` with the photo as the request body itself (``Content-Type: image/jpeg`` …): the answer the
multipart form gets, the same limits, keys and refusals, and a clear 415 for a body of another type."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _builders import encode, scene
from _live import LiveServer, api_error

from inference_service.api.keys import open_key_store
from inference_service.api.settings import Settings

RED = (255, 0, 0)
FIRE = scene(256, 256, [(128, 64, 192, 128, RED)])
FIRE_JPEG = encode(FIRE, "JPEG", quality=95)
MB = 1024 * 1024


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> Iterator[httpx.Client]:
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1, max_upload_bytes=2 * MB)) as c:
        yield c


def _same_answer(a: dict[str, object], b: dict[str, object]) -> None:
    assert {k: v for k, v in a.items() if k != "timings_ms"} == {k: v for k, v in b.items() if k != "timings_ms"}


@pytest.mark.parametrize(
    ("content_type", "photo"),
    [
        ("image/jpeg", FIRE_JPEG),
        ("image/png", encode(FIRE, "PNG")),
        ("image/webp", encode(FIRE, "WEBP", lossless=True)),
        ("application/octet-stream", FIRE_JPEG),
        ("IMAGE/JPEG; charset=binary", FIRE_JPEG),
    ],
)
def test_a_photo_as_the_body_gets_the_answer_the_form_gets(client: httpx.Client, content_type: str, photo: bytes):
    raw = client.post("/v1/detect", content=photo, headers={"content-type": content_type})
    form = client.post("/v1/detect", files={"photo": ("site", photo)})
    assert raw.status_code == form.status_code == 200, raw.text
    assert raw.json()["hazards"][0]["id"] == "FIRE-001"
    _same_answer(raw.json(), form.json())


def test_options_come_from_the_query_string(client: httpx.Client):
    headers = {"content-type": "image/jpeg"}
    none = client.post("/v1/detect?classes=smoke", content=FIRE_JPEG, headers=headers)
    assert none.status_code == 200 and none.json()["detections"] == []
    strict = client.post("/v1/detect?min_confidence=2", content=FIRE_JPEG, headers=headers)
    assert "min_confidence" in api_error(strict, 422, "validation_error")
    unknown = client.post("/v1/detect?classes=no_such_class", content=FIRE_JPEG, headers=headers)
    api_error(unknown, 422, "unknown_class")
    with_evidence = client.post("/v1/detect?evidence=true", content=FIRE_JPEG, headers=headers)
    assert with_evidence.json()["evidence_jpeg_base64"]


@pytest.mark.parametrize(
    "query", ["min_confidence=2", "min_confidence=x&format=png", "evidence=perhaps", "format=json&format=gif"]
)
def test_a_bad_query_gets_the_words_the_form_route_gives(client: httpx.Client, query: str):
    raw = client.post(f"/v1/detect?{query}", content=FIRE_JPEG, headers={"content-type": "image/jpeg"})
    form = client.post(f"/v1/detect?{query}", files={"photo": ("site", FIRE_JPEG)})
    assert api_error(raw, 422, "validation_error") == api_error(form, 422, "validation_error")


def test_the_evidence_jpeg_itself_for_a_photo_body(client: httpx.Client):
    r = client.post("/v1/detect?format=jpeg", content=FIRE_JPEG, headers={"content-type": "image/jpeg"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content.startswith(b"\xff\xd8") and r.headers["X-Hazardscan-Hazards"] == "FIRE-001"


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded"])
def test_a_body_of_another_type_is_415_naming_what_to_send(client: httpx.Client, content_type: str):
    r = client.post("/v1/detect", content=FIRE_JPEG, headers={"content-type": content_type})
    message = api_error(r, 415, "unsupported_media_type")
    assert repr(content_type) in message and "image/jpeg" in message and "multipart/form-data" in message
    assert r.headers["Connection"] == "close"  # refused before its body was read


def test_an_empty_body_is_a_400_and_not_a_photo_a_415(client: httpx.Client):
    assert "empty" in api_error(client.post("/v1/detect", headers={"content-type": "image/jpeg"}), 400, "invalid_image")
    text = client.post("/v1/detect", content=b"hello, not a photo\n" * 4, headers={"content-type": "image/jpeg"})
    api_error(text, 415, "unsupported_media_type")


def test_a_body_over_the_photo_limit_is_413_declared_or_streamed(client: httpx.Client):
    big = b"\xff\xd8\xff" + b"\0" * (2 * MB)  # one photo limit, not the form's allowance on top of it
    r = client.post("/v1/detect", content=big, headers={"content-type": "image/jpeg"})
    assert "2,097,152-byte limit" in api_error(r, 413, "payload_too_large")
    assert r.headers["Connection"] == "close"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b"\xff\xd8\xff"
        for _ in range(3):
            yield b"\0" * MB

    streamed = client.post("/v1/detect", content=chunks(), headers={"content-type": "image/jpeg"})
    api_error(streamed, 413, "payload_too_large")
    assert client.post("/v1/detect", content=FIRE_JPEG, headers={"content-type": "image/jpeg"}).status_code == 200


def test_a_photo_over_the_pixel_budget_is_413(tiny_model_dir: Path):
    settings = Settings(model_path=tiny_model_dir, threads=1, max_pixels=200 * 200)
    with LiveServer(settings) as client:
        r = client.post("/v1/detect", content=FIRE_JPEG, headers={"content-type": "image/jpeg"})
        assert "megapixels" in api_error(r, 413, "image_too_large")


def test_a_form_and_a_bare_post_still_go_to_the_form(client: httpx.Client):
    assert "'photo'" in api_error(client.post("/v1/detect"), 422, "validation_error")
    wrong_field = client.post("/v1/detect", files={"image": ("a.jpg", FIRE_JPEG)})
    assert "'photo'" in api_error(wrong_field, 422, "validation_error")


def test_a_photo_body_needs_a_key_with_the_detect_scope(tiny_model_dir: Path, tmp_path: Path):
    db_url = str(tmp_path / "service.db")
    store = open_key_store(db_url)
    _, detect = store.create("camera-gateway", "detect")
    _, events = store.create("dashboard", "events:read")
    settings = Settings(model_path=tiny_model_dir, threads=1, database_url=db_url)
    with LiveServer(settings, open_v1=False) as client:
        headers = {"content-type": "image/jpeg"}
        anonymous = client.post("/v1/detect", content=FIRE_JPEG, headers=headers)
        assert "Authorization: Bearer" in api_error(anonymous, 401, "unauthorized")
        assert anonymous.headers["Connection"] == "close"
        denied = client.post("/v1/detect", content=FIRE_JPEG, headers={**headers, "Authorization": f"Bearer {events}"})
        api_error(denied, 403, "forbidden")
        ok = client.post("/v1/detect", content=FIRE_JPEG, headers={**headers, "Authorization": f"Bearer {detect}"})
        assert ok.status_code == 200 and ok.json()["hazards"][0]["id"] == "FIRE-001"


def test_the_schema_documents_both_request_bodies(client: httpx.Client):
    body = client.get("/openapi.json").json()["paths"]["/v1/detect"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
    for media in ("image/jpeg", "image/png", "image/webp", "image/heic", "application/octet-stream"):
        assert body[media]["schema"]["format"] == "binary"
