"""API keys: stored hashed, scopes, per-key rate limits, closed by default, CORS closed by default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _builders import encode, scene
from _live import LiveServer

from inference_service import cli
from inference_service.api.keys import ApiKey, ApiKeyError, KeyStore, Rate, RateLimiter, open_key_store
from inference_service.api.settings import Settings

PHOTO = encode(scene(128, 128, [(32, 32, 96, 96, (255, 0, 0))]), "PNG")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return str(tmp_path / "service.db")


@pytest.fixture
def store(db_url: str) -> KeyStore:
    return open_key_store(db_url)


def test_keys_are_stored_hashed_and_listed_without_secrets(store: KeyStore, db_url: str):
    key, text = store.create("cam-gateway", "detect,events:read", "60/min")
    assert text.startswith(f"hsk_{key.id}_") and len(text) > 40
    assert key.scopes == {"detect", "events:read"} and key.rate == Rate(60, 60.0)
    assert text.encode() not in Path(db_url).read_bytes()  # only the hash is kept
    (listed,) = store.list()
    assert (listed.name, listed.revoked_at) == ("cam-gateway", None) and str(listed.rate) == "60/min"
    assert store.revoke("cam-gateway") is not None and store.revoke(key.id) is None
    assert store.active_by_hash() == {}


@pytest.mark.parametrize(
    ("name", "scopes", "rate", "words"),
    [
        ("x", "detect,delete", None, "scopes must be some of"),
        ("x", "", None, "scopes must be some of"),
        ("x", "detect", "fast", "N/min"),
        ("x", "detect", "0/s", "N >= 1"),
        ("  ", "detect", None, "needs a name"),
    ],
)
def test_bad_key_requests_say_what_to_fix(store: KeyStore, name: str, scopes: str, rate: str | None, words: str):
    with pytest.raises(ApiKeyError, match=words):
        store.create(name, scopes, rate)


def test_a_second_key_of_the_same_name_is_refused(store: KeyStore):
    store.create("crm", "detect")
    with pytest.raises(ApiKeyError, match="exists"):
        store.create("crm", "admin")


def test_token_bucket_allows_the_rate_and_says_when_to_retry():
    key = ApiKey("k1", "k", frozenset({"detect"}), Rate(3, 60.0), 0.0)
    limiter = RateLimiter()
    assert [limiter.take(key, now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take(key, now=100.0) == pytest.approx(20.0)  # one token per 20 s
    assert limiter.take(key, now=110.0) == pytest.approx(10.0)
    assert limiter.take(key, now=120.0) == 0.0
    unlimited = ApiKey("k2", "u", frozenset({"detect"}), None, 0.0)
    assert all(limiter.take(unlimited, now=0.0) == 0.0 for _ in range(100))


@pytest.fixture
def closed(tiny_model_dir: Path, db_url: str) -> Iterator[tuple[LiveServer, httpx.Client]]:
    live = LiveServer(Settings(model_path=tiny_model_dir, threads=1, database_url=db_url), open_v1=False)
    with live as client:
        yield live, client


def _bearer(text: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {text}"}


def test_closed_by_default_only_health_ready_and_on_loopback_metrics_and_docs_answer(closed):
    _, client = closed
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    for method, path in [("GET", "/v1/model"), ("GET", "/v1/hazards"), ("GET", "/v1/events"), ("POST", "/v1/detect")]:
        r = client.request(method, path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "unauthorized" and "Authorization: Bearer" in r.json()["error"]["message"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/readyz").json()["components"]["api_keys"]["ready"] is True


REMOTE = {"X-Forwarded-For": "203.0.113.7"}  # a phone's request, as a reverse proxy on this machine passes it on
REFERENCE = ("/docs", "/docs/static/swagger-ui.css", "/openapi.json")


def test_off_this_machine_only_health_and_ready_answer_without_a_key(closed, store: KeyStore):
    """/metrics and the API reference answer the machine itself; any other client needs a key (admin for
    /metrics, any scope for the reference)."""
    _, client = closed
    for path in ("/healthz", "/readyz"):
        assert client.get(path, headers=REMOTE).status_code == 200, path
    for path in ("/metrics", *REFERENCE):
        r = client.get(path, headers=REMOTE)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", path
    assert "HAZARDSCAN_PUBLIC_ROUTES=/docs" in client.get("/docs", headers=REMOTE).json()["error"]["message"]
    _, detect = store.create("partner", "detect")
    for path in REFERENCE:
        assert client.get(path, headers={**REMOTE, **_bearer(detect)}).status_code == 200, path
    assert client.get("/metrics", headers={**REMOTE, **_bearer(detect)}).status_code == 403


def test_public_routes_open_the_api_reference_with_docs(tiny_model_dir: Path, db_url: str):
    settings = Settings(model_path=tiny_model_dir, threads=1, database_url=db_url, public_routes="/docs")
    with LiveServer(settings, open_v1=False) as client:
        for path in REFERENCE:
            assert client.get(path, headers=REMOTE).status_code == 200, path
        assert client.get("/metrics", headers=REMOTE).status_code == 401
        assert client.get("/v1/model", headers=REMOTE).status_code == 401


def test_keys_scopes_and_revocation_over_http(closed, store: KeyStore, db_url: str):
    live, client = closed
    _, detect = store.create("phone-app", "detect")
    _, events = store.create("dashboard", "events:read")
    _, admin = store.create("ops", "admin")
    files = {"photo": ("p.png", PHOTO)}
    assert client.post("/v1/detect", files=files, headers=_bearer(detect)).status_code == 200
    assert client.post("/v1/detect", files=files, headers={"X-API-Key": detect}).status_code == 200
    assert client.get("/v1/model", headers=_bearer(events)).status_code == 200  # info: any valid key
    denied = client.post("/v1/detect", files=files, headers=_bearer(events))
    assert denied.status_code == 403 and "'detect'" in denied.json()["error"]["message"]
    assert "dashboard" in denied.json()["error"]["message"]
    assert client.get("/v1/events", headers=_bearer(detect)).status_code == 403
    assert client.post("/v1/detect", files=files, headers=_bearer(admin)).status_code == 200
    wrong = client.post("/v1/detect", files=files, headers=_bearer(detect[:-2] + "xx"))
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.json()["error"]["message"]
    assert cli.main(["keys", "--database", db_url, "revoke", "phone-app"]) == 0
    live.app.state.service.keys.refresh_s = 0  # re-read at once (in service: within 5 s)
    assert client.post("/v1/detect", files=files, headers=_bearer(detect)).status_code == 401
    assert client.post("/v1/detect", files=files, headers=_bearer(admin)).status_code == 200


def test_a_spent_rate_limit_is_429_with_retry_after(closed, store: KeyStore):
    _, client = closed
    _, text = store.create("kiosk", "detect", "2/min")
    statuses = [client.get("/v1/hazards", headers=_bearer(text)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    r = client.post("/v1/detect", files={"photo": ("p.png", PHOTO)}, headers=_bearer(text))
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert r.headers["Connection"] == "close"  # refused before its body was read: the body is never read
    assert 1 <= int(r.headers["Retry-After"]) <= 30 and "2/min" in r.json()["error"]["message"]
    assert 'hazardscan_requests_refused_total{reason="rate_limited"} 2.0' in client.get("/metrics").text


def test_public_routes_open_only_what_they_list(tiny_model_dir: Path, db_url: str):
    settings = Settings(model_path=tiny_model_dir, threads=1, database_url=db_url, public_routes="/v1/detect")
    with LiveServer(settings, open_v1=False) as client:
        assert client.post("/v1/detect", files={"photo": ("p.png", PHOTO)}).status_code == 200
        assert client.get("/v1/events").status_code == 401
        assert client.post("/v1/detect/batch", files={"photos": ("p.png", PHOTO)}).status_code == 401


@pytest.mark.parametrize(("origins", "allowed"), [("", False), ("https://inspect.example.cn", True)])
def test_cors_is_closed_unless_configured(tiny_model_dir: Path, db_url: str, origins: str, allowed: bool):
    settings = Settings(model_path=tiny_model_dir, threads=1, database_url=db_url, cors_origins=origins)
    with LiveServer(settings, open_v1=False) as client:
        preflight = client.options(
            "/v1/detect",
            headers={
                "Origin": "https://inspect.example.cn",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert (preflight.headers.get("access-control-allow-origin") == "https://inspect.example.cn") is allowed
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_keys_cli_creates_lists_and_revokes(db_url: str, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["keys", "--database", db_url, "create", "--name", "cctv", "--scopes", "events:read"]) == 0
    secret = capsys.readouterr().out.splitlines()[0]
    assert secret.startswith("hsk_")
    assert cli.main(["keys", "--database", db_url, "list"]) == 0
    listing = capsys.readouterr().out
    assert "cctv" in listing and "events:read" in listing and secret not in listing
    assert cli.main(["keys", "--database", db_url, "create", "--name", "x", "--scopes", "root"]) == 2
    assert "scopes must be some of" in capsys.readouterr().err
    assert cli.main(["keys", "--database", db_url, "revoke", "nobody"]) == 1
