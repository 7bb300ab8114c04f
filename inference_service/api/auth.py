"""API-key authentication, scopes and per-key rate limits for ``/v1/*`` (and ``/metrics`` and the API reference
off loopback).

Closed by default: without a key only ``/healthz`` and ``/readyz`` answer everyone; ``/metrics`` and the API
reference (``/docs``, ``/openapi.json``) answer the machine itself (a client behind a reverse proxy on it is not
the machine: uvicorn takes the client from ``X-Forwarded-For``). ``HAZARDSCAN_PUBLIC_ROUTES`` lists routes an
operator opens to all (``/v1/detect``, ``/v1/*``, ``/docs``). The inspector app (``/app``) has its own session
login and is not touched here. A key comes as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from inference_service.api.errors import (
    ForbiddenError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    refusal,
)
from inference_service.api.keys import RateLimiter

if TYPE_CHECKING:
    from inference_service.api.state import ServiceState

LOOPBACK = frozenset({"127.0.0.1", "::1"})
_HOW = "send it as 'Authorization: Bearer <key>' (an operator creates keys with `hazardscan keys create`)"


def required_scope(path: str) -> str | None:
    """The scope a guarded path needs; None: any valid key."""
    if path == "/metrics":
        return "admin"
    if path.startswith("/v1/events"):
        return "events:read"
    if path.startswith("/v1/detect"):
        return "detect"
    return None


def is_reference(path: str) -> bool:
    """The API reference: Swagger UI's page and files, and the schema it reads."""
    return path in ("/docs", "/openapi.json") or path.startswith("/docs/")


def parse_routes(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def is_public(path: str, routes: tuple[str, ...]) -> bool:
    """``routes``: exact paths, or prefixes ending in ``*`` (``/v1/*``); ``/docs`` stands for the whole reference."""
    if is_reference(path) and "/docs" in routes:
        return True
    return any(path == r or (r.endswith("*") and path.startswith(r[:-1])) for r in routes)


def presented_key(headers: Headers) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, state: ServiceState, public: tuple[str, ...]) -> None:
        self.app = app
        self.state = state
        self.public = public
        self.limiter = RateLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        reference = is_reference(path)
        guarded = scope["type"] == "http" and (path.startswith("/v1/") or path == "/metrics" or reference)
        if not guarded or scope["method"] == "OPTIONS" or is_public(path, self.public):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if (path == "/metrics" or reference) and client and client[0] in LOOPBACK:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            name = await self._check(path, presented_key(headers))
        except (UnauthorizedError, ForbiddenError, RateLimitedError, ServiceUnavailableError) as exc:
            await refusal(exc, scope)(scope, receive, send)
            return
        scope.setdefault("state", {})["api_key"] = name
        await self.app(scope, receive, send)

    async def _check(self, path: str, text: str | None) -> str:
        if text is None:
            if is_reference(path):
                raise UnauthorizedError(
                    f"{path} (the API reference) answers this machine itself, or a request with an API key "
                    f"({_HOW}); HAZARDSCAN_PUBLIC_ROUTES=/docs opens it to all"
                )
            raise UnauthorizedError(f"{path} needs an API key; {_HOW}")
        cache = self.state.keys
        if cache is None:
            raise ServiceUnavailableError(f"API keys cannot be checked: {self.state.keys_reason}")
        key = cache.lookup(text) if cache.fresh else await anyio.to_thread.run_sync(cache.lookup, text)
        if key is None:
            self.state.metrics.refused.labels("bad_key").inc()
            raise UnauthorizedError("unknown or revoked API key")
        need = required_scope(path)
        if not key.allows(need):
            self.state.metrics.refused.labels("scope").inc()
            raise ForbiddenError(
                f"key {key.name!r} lacks the scope {need!r} that {path} needs (it has: {', '.join(sorted(key.scopes))})"
            )
        wait = self.limiter.take(key)
        if wait > 0:
            self.state.metrics.refused.labels("rate_limited").inc()
            retry = max(1, math.ceil(wait))
            raise RateLimitedError(f"key {key.name!r} may make {key.rate} requests; retry in {retry} s", retry)
        return key.name
