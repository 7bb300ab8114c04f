"""Pure ASGI middleware: request-body size limit and stall timeout, Prometheus request metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference_service.api.errors import BodyTimeoutError, PayloadTooLargeError, error_response, refusal
from inference_service.api.state import Metrics


class BodyLimitMiddleware:
    """Reject bodies over the route's limit: at once from ``Content-Length``, else while streaming.

    Nothing over the limit is buffered or read: the 413 closes the connection. Whatever the app makes of
    the aborted read is discarded and the client gets the 413 JSON error instead.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        too_large = PayloadTooLargeError(f"request body is larger than the {limit:,}-byte limit for {scope['path']}")
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await refusal(too_large, scope)(scope, receive, send)  # closes: the body is never read
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise too_large
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await refusal(too_large, scope)(scope, receive, send)  # closes: the rest is never read


class BodyTimeoutMiddleware:
    """408 when a request body stalls: each chunk must arrive within ``timeout_s`` of the previous one.

    Only the body is timed: once its last chunk is in, ``receive`` waits for a disconnect as long as it likes.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        timed_out = False
        started = False
        stalled = BodyTimeoutError(f"the request body stalled for more than {self.timeout_s:g} s")

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            try:
                # asyncio's own timeout: a third of anyio's cancel scope's cost, paid for every chunk of every photo
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise stalled from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
        if timed_out and not started:
            response = error_response(stalled, Headers(scope=scope).get("accept-language"))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)


class MetricsMiddleware:
    """Count requests by route template, method and status; observe latency by route. Every answer tells in a
    ``Server-Timing`` header how long the server took: ``upload;dur=<ms>`` from the request's headers to the last
    byte of its body (the client's network), ``app;dur=<ms>`` from then to the answer's headers (waits in the
    queue included): a client can tell the server's time from the network's."""

    def __init__(self, app: ASGIApp, metrics: Metrics, known_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths  # labels for requests answered before routing (e.g. early 413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        t0 = time.perf_counter()
        body_done: float | None = None

        async def timing_receive() -> Message:
            nonlocal body_done
            message = await receive()
            if body_done is None and message["type"] == "http.request" and not message.get("more_body", False):
                body_done = time.perf_counter()
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                now = time.perf_counter()
                received = now if body_done is None else body_done  # refused unread: no upload
                took = f"upload;dur={(received - t0) * 1000:.1f}, app;dur={(now - received) * 1000:.1f}".encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"server-timing", took)]}
            await send(message)

        try:
            await self.app(scope, timing_receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = scope["path"] if scope["path"] in self.known_paths else "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)
