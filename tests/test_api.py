"""The HTTP API over real HTTP: uvicorn on 127.0.0.1 in a thread, httpx as the client."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _builders import build_model_dir, encode, jpeg_with_orientation, noisy_photo, png_declaring, scene
from _live import LiveServer, api_error
from PIL import Image

from inference_service.api.settings import Settings

RED, GREEN = (255, 0, 0), (0, 255, 0)
FIRE_PHOTO = encode(scene(256, 256, [(128, 64, 192, 128, RED)]), "JPEG", quality=95)
MB = 1024 * 1024


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> Iterator[httpx.Client]:
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1, max_batch_images=4)) as c:
        yield c


def test_a_washed_out_photo_gets_a_warning_and_a_normal_one_none(client: httpx.Client):
    white = encode(Image.new("RGB", (320, 240), (250, 250, 250)), "JPEG")
    r = client.post("/v1/detect", files={"photo": ("fog.jpg", white, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert [w["code"] for w in r.json()["warnings"]] == ["washed_out"]
    assert "烟雾" in r.json()["warnings"][0]["message_zh"]
    r = client.post("/v1/detect", files={"photo": ("site.jpg", FIRE_PHOTO, "image/jpeg")})
    assert r.status_code == 200 and r.json()["warnings"] == []


def test_detect_happy_path(client: httpx.Client):
    r = client.post("/v1/detect", files={"photo": ("site.jpg", FIRE_PHOTO, "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"width": 256, "height": 256}
    assert body["model"] == {"id": "tiny-rgb", "version": "test-1"}
    assert body["detections"] == [
        {
            "class_name": "fire",
            "class_id": 0,
            "confidence": pytest.approx(0.999, abs=1e-3),
            "box": [128.0, 64.0, 192.0, 128.0],
        }
    ]
    (hazard,) = body["hazards"]
    assert hazard["id"] == "FIRE-001" and hazard["severity"] == "critical" and hazard["name_zh"] == "现场明火"
    assert hazard["box"] == [128.0, 64.0, 192.0, 128.0] and hazard["legal_basis"] and hazard["advice_zh"]
    assert set(body["timings_ms"]) >= {"decode", "preprocess", "infer", "postprocess", "hazards"}
    assert body["evidence_jpeg_base64"] is None


def test_options_from_query_and_form(client: httpx.Client):
    two = encode(scene(256, 256, [(128, 64, 192, 128, RED), (0, 0, 64, 64, GREEN)]), "PNG")
    r = client.post("/v1/detect?evidence=true&classes=smoke", files={"photo": ("a.png", two)})
    assert [d["class_name"] for d in r.json()["detections"]] == ["smoke"]
    jpeg = base64.b64decode(r.json()["evidence_jpeg_base64"])
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    r = client.post(
        "/v1/detect", files={"photo": ("a.png", two)}, data={"classes": "fire, smoke", "min_confidence": "0.9999"}
    )
    assert r.status_code == 200 and r.json()["detections"] == []


def test_exif_rotated_photo_gives_upright_boxes(client: httpx.Client):
    upright = scene(128, 256, [(0, 0, 64, 64, RED)])
    r = client.post("/v1/detect", files={"photo": ("rot.jpg", jpeg_with_orientation(upright, 6))})
    assert r.json()["image"] == {"width": 128, "height": 256}
    assert r.json()["detections"][0]["box"] == [0.0, 0.0, 64.0, 64.0]


def _absurd_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 99
    return encode(scene(256, 256, [(128, 64, 192, 128, RED)]), "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize(
    ("filename", "content", "status"),
    [
        ("absurd.jpg", _absurd_exif(), 200),  # orientation 99 is ignored
        ("broken.jpg", encode(scene(64, 64, []), "JPEG", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff"), 200),
        ("photo.webp", encode(scene(64, 64, []), "WEBP"), 200),
        ("photo.heic", encode(scene(64, 64, []), "HEIF"), 200),
    ],
)
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_odd_but_valid_photos_succeed(client: httpx.Client, filename: str, content: bytes, status: int):
    assert client.post("/v1/detect", files={"photo": (filename, content)}).status_code == status


BAD_UPLOADS = [
    # (name, bytes, status, code, words in the message)
    ("empty.jpg", b"", 400, "invalid_image", "empty"),
    ("notes.txt", b"inspection notes: all fine\n", 415, "unsupported_media_type", "text"),
    ("cut.jpg", encode(noisy_photo(320, 240), "JPEG")[:2500], 400, "invalid_image", "truncated"),
    ("bomb.png", png_declaring(20000, 20000), 413, "image_too_large", "pixels"),
    ("big.png", png_declaring(8000, 8000), 413, "image_too_large", "megapixels"),
    ("anim.gif", encode(scene(16, 16, []), "GIF"), 415, "unsupported_media_type", "GIF"),
    ("scan.bmp", encode(scene(16, 16, []), "BMP"), 415, "unsupported_media_type", "BMP"),
    ("report.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", 415, "unsupported_media_type", "PDF"),
]


@pytest.mark.parametrize(("name", "content", "status", "code", "words"), BAD_UPLOADS)
def test_bad_photos_get_a_4xx_json_error_that_says_why(client, name, content, status, code, words):
    message = api_error(client.post("/v1/detect", files={"photo": (name, content)}), status, code)
    assert words in message


def test_wrong_field_and_missing_body_name_the_expected_field(client: httpx.Client):
    assert "'photo'" in api_error(
        client.post("/v1/detect", files={"image": ("a.jpg", FIRE_PHOTO)}), 422, "validation_error"
    )
    assert "'photo'" in api_error(client.post("/v1/detect"), 422, "validation_error")
    raw = client.post("/v1/detect", content=FIRE_PHOTO, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200  # the photo as the body itself (tests/test_photo_body.py)
    assert "'photos'" in api_error(
        client.post("/v1/detect/batch", files={"photo": ("a.jpg", FIRE_PHOTO)}), 422, "validation_error"
    )


def test_bad_options_are_422(client: httpx.Client):
    files = {"photo": ("a.jpg", FIRE_PHOTO)}
    assert "no_such_class" in api_error(
        client.post("/v1/detect?classes=no_such_class", files=files), 422, "unknown_class"
    )
    assert "min_confidence" in api_error(
        client.post("/v1/detect?min_confidence=2", files=files), 422, "validation_error"
    )


def test_60_mb_upload_is_refused_early(client: httpx.Client):
    big = b"\xff\xd8\xff" + b"\0" * (60 * MB)
    api_error(client.post("/v1/detect", files={"photo": ("huge.jpg", big)}), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'--x\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
        for _ in range(60):
            yield b"\0" * MB

    r = client.post("/v1/detect", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    api_error(r, 413, "payload_too_large")


def test_photo_over_the_per_file_limit_within_the_body_allowance(client: httpx.Client):
    just_over = b"\xff\xd8\xff" + b"\0" * (25 * MB)
    assert "limit" in api_error(
        client.post("/v1/detect", files={"photo": ("a.jpg", just_over)}), 413, "payload_too_large"
    )


def test_batch_isolates_bad_photos(client: httpx.Client):
    files = [
        ("photos", ("fire.jpg", FIRE_PHOTO)),
        ("photos", ("notes.txt", b"hello")),
        ("photos", ("smoke.png", encode(scene(256, 256, [(0, 0, 64, 64, GREEN)]), "PNG"))),
    ]
    r = client.post("/v1/detect/batch", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["succeeded"], body["failed"]) == (2, 1)
    fire, notes, smoke = body["items"]
    assert fire["result"]["hazards"][0]["id"] == "FIRE-001" and fire["error"] is None
    assert notes["error"]["code"] == "unsupported_media_type" and notes["result"] is None
    assert smoke["result"]["hazards"][0]["id"] == "FIRE-002" and smoke["filename"] == "smoke.png"
    assert smoke["result"]["timings_ms"]["decode"] > 0
    too_many = [("photos", (f"{i}.jpg", FIRE_PHOTO)) for i in range(5)]
    assert "at most 4" in api_error(client.post("/v1/detect/batch", files=too_many), 413, "too_many_files")


def test_info_health_and_metrics(client: httpx.Client):
    card = client.get("/v1/model").json()
    assert card["classes"] == ["fire", "smoke", "no_helmet"] and card["extra"]["metrics"] == {"mAP50": 0.5}
    assert card["class_thresholds"] == {"no_helmet": 0.5}
    hazards = client.get("/v1/hazards").json()
    assert hazards["version"] and any(h["id"] == "FIRE-001" for h in hazards["hazards"])
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model"]["id"] == "tiny-rgb"
    api_error(client.get("/no/such/route"), 404, "not_found")
    client.post("/v1/detect", files={"photo": ("site.jpg", FIRE_PHOTO)})
    metrics = client.get("/metrics").text
    assert 'hazardscan_http_requests_total{method="POST",route="/v1/detect",status="200"}' in metrics
    assert 'hazardscan_hazards_found_total{hazard_id="FIRE-001"}' in metrics
    assert 'hazardscan_images_total{outcome="rejected"}' in metrics
    assert "hazardscan_http_request_duration_seconds_bucket" in metrics
    assert "hazardscan_model_ready 1.0" in metrics


def test_still_serves_after_all_the_bad_requests(client: httpx.Client):
    r = client.post("/v1/detect", files={"photo": ("site.jpg", FIRE_PHOTO)})
    assert r.status_code == 200 and r.json()["hazards"][0]["id"] == "FIRE-001"


def test_rect_setting_serves_a_dynamic_size_model_and_refuses_a_fixed_one(tmp_path: Path, tiny_model_dir: Path):
    dynamic = build_model_dir(tmp_path / "dyn", dynamic_size=True, stride=16)
    wide = encode(scene(256, 128, [(0, 0, 64, 64, (255, 0, 0))]), "PNG")
    with LiveServer(Settings(model_path=dynamic, threads=1, rect=True)) as c:
        body = c.post("/v1/detect", files={"photo": ("wide.png", wide)}).json()
        assert [d["box"] for d in body["detections"]] == [[0, 0, 64, 64]]
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1, rect=True)) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "input is fixed at [64, 64]" in ready.json()["reason"]


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_missing_or_corrupt_model_keeps_the_app_up_but_not_ready(tmp_path: Path, kind: str):
    missing = tmp_path / "models" / "nope"
    if kind == "corrupt":
        missing.mkdir(parents=True)
        (missing / "model.onnx").write_bytes(b"not an onnx model")
    with LiveServer(Settings(model_path=missing, threads=1)) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        reason = ready.json()["reason"]
        assert ready.status_code == 503 and "nope" in reason  # the folder's name, never the machine's path
        assert str(tmp_path) not in ready.text and "ONNXRuntimeError" not in ready.text
        message = api_error(c.post("/v1/detect", files={"photo": ("a.jpg", FIRE_PHOTO)}), 503, "model_not_ready")
        assert "not ready" in message and "nope" in message and str(tmp_path) not in message
        api_error(c.get("/v1/model"), 503, "model_not_ready")
        assert "hazardscan_model_ready 0.0" in c.get("/metrics").text


def test_answers_say_how_long_the_server_had_the_request(client: httpx.Client):
    for r in (client.get("/healthz"), client.post("/v1/detect", files={"photo": ("a.jpg", FIRE_PHOTO)})):
        parts = dict(part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))
        assert set(parts) == {"upload", "app"} and all(float(v) >= 0 for v in parts.values())
    refused = client.post("/v1/detect", content=b"x", headers={"content-type": "text/plain"})
    assert refused.status_code == 415 and "server-timing" in refused.headers
