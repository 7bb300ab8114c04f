"""The OpenAPI schema is valid and the service keeps to it: schemathesis against a real server.

Bounded: ``MAX_EXAMPLES`` generated requests per operation, the tiny model; fine on 2 cores. Covers the
/v1 routes and health (the inspector app's /app/api routes have their own tests). The operations are read
from the app's schema at collection; each test sends its cases to one live server over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from _live import LiveServer
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from inference_service.api.app import create_app
from inference_service.api.settings import Settings
from inference_service.cctv.api import get_cctv_settings
from inference_service.cctv.store import EventStore

MAX_EXAMPLES = 25
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
OPERATIONS = [
    (method.upper(), path)
    for path, item in SCHEMA.raw_schema["paths"].items()
    if path.startswith(("/v1/", "/healthz", "/readyz"))
    for method in item
]


@pytest.fixture(scope="module")
def base_url(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fuzz")
    EventStore(root / "events.db").close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HAZARDSCAN_EVENTS_DB", str(root / "events.db"))
        get_cctv_settings.cache_clear()
        settings_ = Settings(model_path=tiny_model_dir, threads=1, data_dir=root / "data", max_queue=64)
        with LiveServer(settings_) as client:
            yield f"http://127.0.0.1:{client.base_url.port}"
    get_cctv_settings.cache_clear()


def test_the_schema_is_valid_openapi():
    assert SCHEMA.raw_schema["openapi"].startswith("3.")
    assert len(OPERATIONS) >= 8, OPERATIONS


def _can_be_wrong(method: str, path: str) -> bool:
    """Whether the operation has input a request can get wrong (a body, or query parameters)."""
    spec = SCHEMA.raw_schema["paths"][path][method.lower()]
    return "requestBody" in spec or any(p.get("in") == "query" for p in spec.get("parameters", []))


CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS]
CASES += [(m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if _can_be_wrong(m, p)]


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_every_route_keeps_to_the_schema(base_url: str, method: str, path: str, mode: GenerationMode) -> None:
    """Positive cases get documented answers and never a 5xx; negative ones (wrong types, out-of-range values,
    missing fields) are refused with a documented 4xx."""
    operation = SCHEMA[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case: schemathesis.Case) -> None:
        # A photo's bytes are "any binary" to the schema, so a schema-valid upload may still be no image (400):
        # acceptance of every schema-valid request is not a promise this API can make; the other checks hold.
        case.call_and_validate(base_url=base_url, excluded_checks=[positive_data_acceptance])

    check()
