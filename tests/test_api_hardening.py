"""Honest answers on doubtful photos and the low findings of the hardening review, over real HTTP."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _builders import encode, noisy_photo, scene
from _live import LiveServer
from PIL import Image

from inference_service.api.settings import Settings
from inference_service.cctv.api import get_cctv_settings
from inference_service.cctv.store import EventStore

RED = (255, 0, 0)


@pytest.fixture
def events_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    db = tmp_path / "events" / "cctv.db"
    monkeypatch.setenv("HAZARDSCAN_EVENTS_DB", str(db))
    get_cctv_settings.cache_clear()
    yield db
    get_cctv_settings.cache_clear()


@pytest.fixture
def serve(tiny_model_dir: Path, events_db: Path) -> Iterator[httpx.Client]:
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as client:
        yield client


@pytest.fixture(scope="module")
def with_events(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    db = tmp_path_factory.mktemp("events") / "cctv.db"
    EventStore(db).close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HAZARDSCAN_EVENTS_DB", str(db))
        get_cctv_settings.cache_clear()
        with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as client:
            yield client
    get_cctv_settings.cache_clear()


def _detect(client: httpx.Client, data: bytes, name: str = "p.jpg") -> httpx.Response:
    return client.post("/v1/detect", files={"photo": (name, data)})


@pytest.mark.parametrize("size", [(1, 1), (16, 16), (31, 640)])
def test_photos_under_the_minimum_size_are_refused(serve: httpx.Client, size: tuple[int, int]):
    r = _detect(serve, encode(Image.new("RGB", size, RED), "PNG"), "tiny.png")
    assert r.status_code == 422 and r.json()["error"]["code"] == "image_too_small"
    assert "at least 32 pixels" in r.json()["error"]["message"]


def test_hazards_on_a_featureless_photo_are_unconfirmed_and_never_alarms(serve: httpx.Client):
    red = _detect(serve, encode(Image.new("RGB", (64, 64), RED), "PNG"), "red.png").json()
    assert [w["code"] for w in red["warnings"]] == ["featureless"]
    assert red["hazards"], "the tiny model reads a red field as fire"
    assert all(h["unconfirmed"] and not h["alarm"] for h in red["hazards"])
    site = _detect(serve, encode(scene(256, 256, [(128, 64, 192, 128, RED)]), "PNG"), "site.png").json()
    assert site["warnings"] == [] and site["hazards"][0]["severity"] == "critical"
    assert all(not h["unconfirmed"] and h["alarm"] for h in site["hazards"])
    metrics = serve.get("/metrics").text
    unconfirmed = f'hazardscan_hazards_unconfirmed_total{{hazard_id="FIRE-001"}} {len(red["hazards"])}.0'
    assert unconfirmed in metrics and 'hazardscan_hazards_found_total{hazard_id="FIRE-001"} 1.0' in metrics


def test_corrupt_jpeg_data_is_scored_with_a_warning(serve: httpx.Client):
    data = encode(noisy_photo(640, 480), "JPEG", quality=90)
    mid = len(data) // 2
    r = _detect(serve, data[:mid] + b"\0" * 2000 + data[mid + 2000 :])
    assert r.status_code == 200, r.text
    assert [w["code"] for w in r.json()["warnings"]] == ["corrupt_data"]
    assert all(h["unconfirmed"] for h in r.json()["hazards"])
    cut = _detect(serve, data[:mid])
    assert cut.status_code == 400 and "truncated" in cut.json()["error"]["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "9223372036854775808"},
        {"offset": "-1"},
        {"limit": "100000"},
        {"since": "2026-13-01T00:00:00"},
        {"until": "0.0"},  # epoch seconds are not ISO 8601
        {"since": "not a time"},
    ],
)
def test_event_queries_out_of_range_are_422(with_events: httpx.Client, params: dict[str, str]):
    r = with_events.get("/v1/events", params=params)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text


def test_no_events_database_is_a_503_and_a_get_creates_no_file(serve: httpx.Client, events_db: Path):
    r = serve.get("/v1/events")
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
    assert "cctv.db" in r.json()["error"]["message"] and str(events_db.parent) not in r.text
    assert not events_db.parent.exists()
    ready = serve.get("/readyz").json()
    assert ready["status"] == "ready" and ready["components"]["events"]["ready"] is False
    assert ready["components"]["app"] == {"ready": True, "reason": None}  # the inspector app's database


def test_events_store_opened_at_start_up_serves_and_readiness_says_so(tiny_model_dir: Path, events_db: Path):
    events_db.parent.mkdir()
    EventStore(events_db).close()
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as client:
        assert client.get("/v1/events").json()["events"] == []
        assert client.get("/readyz").json()["components"]["events"] == {"ready": True, "reason": None}
        assert client.get("/v1/events", params={"offset": 10_000_000}).json()["count"] == 0


def test_a_broken_events_database_degrades_readiness_and_answers_503(tiny_model_dir: Path, events_db: Path):
    events_db.parent.mkdir()
    events_db.write_bytes(b"this is not a database" * 100)
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        r = client.get("/v1/events")
        assert r.status_code == 503 and "cannot be opened" in r.json()["error"]["message"]
        assert str(events_db) not in r.text and "sqlite" not in r.text.lower()
        assert _detect(client, encode(scene(64, 64, [(0, 0, 32, 32, RED)]), "PNG"), "a.png").status_code == 200
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(events_db).execute("SELECT 1 FROM sqlite_master").fetchall()


def test_a_broken_app_database_degrades_readiness_and_the_app_says_so_without_internals(
    tiny_model_dir: Path, events_db: Path, tmp_path: Path
):
    data = tmp_path / "app-data"
    data.mkdir()
    (data / "hazardscan.db").write_bytes(b"this is not a database" * 100)
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1, data_dir=data)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        app = ready.json()["components"]["app"]
        assert app["ready"] is False and "see the server log" in app["reason"]
        r = client.get("/app/api/me")
        assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
        for internal in (str(data), "sqlite", "DatabaseError", "not a database"):
            assert internal.lower() not in r.text.lower() and internal.lower() not in ready.text.lower()
        assert _detect(client, encode(scene(64, 64, [(0, 0, 32, 32, RED)]), "PNG"), "a.png").status_code == 200


def test_model_view_shows_no_machine_paths(serve: httpx.Client, tiny_model_dir: Path):
    card = serve.get("/v1/model")
    assert card.status_code == 200
    body = card.json()
    assert body["model_id"] == "tiny-rgb" and body["extra"]["metrics"] == {"mAP50": 0.5}
    assert "training" not in body["extra"] and "serving" in body
    assert str(tiny_model_dir) not in card.text and "/tmp" not in card.text


def test_swagger_ui_is_served_from_the_package(serve: httpx.Client):
    page = serve.get("/docs")
    assert page.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text.replace("https://fastapi", "")
    js = serve.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert serve.get("/docs/static/swagger-ui.css").status_code == 200
    assert serve.get("/redoc").status_code == 404
    assert serve.get("/openapi.json").json()["paths"]["/v1/detect"]
