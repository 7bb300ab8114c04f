"""``/v1/detect`` answers with the evidence JPEG itself when asked; ``/`` sends a browser somewhere useful."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _builders import encode, scene
from PIL import Image
from test_api import FIRE_PHOTO, RED, LiveServer

from inference_service.api.negotiation import wants_jpeg
from inference_service.api.settings import Settings


@pytest.mark.parametrize(
    ("accept", "fmt", "expected"),
    [
        (None, None, False),
        ("*/*", None, False),  # curl's default: JSON
        ("application/json", None, False),
        ("image/jpeg", None, True),
        ("image/*", None, True),
        ("image/jpeg, application/json;q=0.5", None, True),
        ("application/json, image/jpeg;q=0.5", None, False),
        ("image/jpeg;q=0", None, False),  # q=0: "not this"
        ("image/jpeg;q=x", None, False),  # a broken q-value counts as 0
        ("text/html,image/avif,image/webp,*/*;q=0.8", None, False),  # a browser page load
        ("application/json", "jpeg", True),  # the query parameter wins over the header
        ("image/jpeg", "json", False),
    ],
)
def test_wants_jpeg(accept: str | None, fmt: str | None, expected: bool):
    assert wants_jpeg(accept, fmt) is expected  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> Iterator[httpx.Client]:
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as c:
        yield c


def _fire(client: httpx.Client, url: str, **kw: object) -> httpx.Response:
    return client.post(url, files={"photo": ("fire.jpg", FIRE_PHOTO, "image/jpeg")}, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("url", "headers"), [("/v1/detect?format=jpeg", {}), ("/v1/detect", {"Accept": "image/jpeg"})])
def test_detect_answers_with_the_evidence_jpeg(client: httpx.Client, url: str, headers: dict[str, str]):
    r = _fire(client, url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-hazardscan-hazards"] == "FIRE-001"
    assert r.headers["x-hazardscan-alarms"] == "FIRE-001"  # a clear photo: the hazard is an alarm
    assert r.headers["x-hazardscan-model"] == "tiny-rgb test-1"
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "JPEG" and image.size == (256, 256)
    # the box is drawn: the evidence differs from the photo around the fire's edge
    original = Image.open(io.BytesIO(FIRE_PHOTO)).convert("RGB")
    assert original.getpixel((127, 96)) != image.convert("RGB").getpixel((127, 96))


def test_a_hazard_on_a_doubtful_photo_is_listed_but_raises_no_alarm(client: httpx.Client):
    red = encode(scene(256, 256, [(0, 0, 256, 256, RED)]), "JPEG", quality=95)  # one colour: featureless
    r = client.post("/v1/detect?format=jpeg", files={"photo": ("red.jpg", red, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert "featureless" in r.headers["x-hazardscan-warnings"]
    assert set(r.headers["x-hazardscan-hazards"].split(",")) == {"FIRE-001"}
    assert r.headers["x-hazardscan-alarms"] == ""


def test_detect_stays_json_by_default_and_errors_stay_json(client: httpx.Client):
    r = _fire(client, "/v1/detect")
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["hazards"][0]["id"] == "FIRE-001" and r.json()["evidence_jpeg_base64"] is None
    bad = client.post("/v1/detect?format=jpeg", files={"photo": ("x.jpg", b"not a photo", "image/jpeg")})
    assert bad.status_code == 415 and bad.json()["error"]["code"] == "unsupported_media_type"
    wrong = _fire(client, "/v1/detect?format=png")
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "validation_error"


def test_the_bare_address_redirects_to_the_app_or_the_docs(client: httpx.Client):
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307
    app_on = client.get("/app/").status_code == 200
    assert r.headers["location"] == ("/app/" if app_on else "/docs")
    assert client.get("/", follow_redirects=True).status_code == 200
