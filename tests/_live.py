"""A real uvicorn server on 127.0.0.1 in a thread, for tests that speak HTTP to the app."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from inference_service.api.app import create_app
from inference_service.api.server import uvicorn_config
from inference_service.api.settings import Settings


class LiveServer:
    """``hazardscan serve``'s uvicorn configuration on a free port; ``app`` is the app it serves.

    ``open_v1``: tests that are not about API keys serve ``/v1`` openly (``public_routes="/v1/*"``), as an
    operator may choose to; the key tests pass ``open_v1=False`` and get the closed default.
    """

    def __init__(self, settings: Settings, *, open_v1: bool = True, **options: Any) -> None:
        if open_v1 and not settings.public_routes:
            settings = settings.model_copy(update={"public_routes": "/v1/*"})
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = create_app(settings)
        config = uvicorn_config(self.app, settings, "127.0.0.1", self.port, log_level="warning", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


def api_error(response: httpx.Response, status: int, code: str) -> str:
    """The message of the JSON error ``code`` that ``response`` must be, with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return str(body["error"]["message"])
