"""A bounded queue in front of the model.

``capacity = model_concurrency + max_queue`` requests may be inside the model routes at once. Each goes through
two stages, each with its own slots: decoding (``decode_concurrency`` at once: decode, letterbox, the input
tensor) and the model (``model_concurrency`` at once: the ONNX Runtime session alone), so one request decodes
while another runs the model, and a slow decode (a large PNG) never holds a model slot. A request is admitted
only while its expected wait (the queue ahead of it times the recent time per request) is within
``max_queue_wait_s`` (1.5 s), so slow photos (large PNGs, batches) shorten the queue instead of lengthening waits;
once the body is read, a request that would wait behind others is also admitted by its photos' decode cost
(:meth:`ModelGate.admit_decode`), estimated from their headers.
A request beyond either is refused before its body is read, at once, with 503 and ``Retry-After``
(:class:`AdmissionMiddleware`), and its connection closed so that its body is never read either
(:func:`~inference_service.api.errors.refusal`): a crowd costs neither memory, nor waiting time, nor the event
loop's time. A waiting request whose client has gone is dropped before it decodes or runs
(:meth:`ModelGate.decoding`, :meth:`ModelGate.slot`). A request that finds both stages idle takes a slot of each
at once and goes through in one worker call (:meth:`ModelGate.whole`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from inference_service.api.errors import RETRY_AFTER_BUSY_S, ClientGoneError, ServerBusyError, refusal

if TYPE_CHECKING:
    from inference_service.api.state import Metrics


# Decode time per stored megapixel, by format, before the service has measured its own (ms; measured on a 2-core
# Xeon, benchmarks/reports/service_load.md). Only their ratios and the first requests depend on them: every decode
# updates its format's rate.
DECODE_MS_PER_MEGAPIXEL = {"JPEG": 4.0, "WEBP": 25.0, "PNG": 30.0, "HEIF": 120.0}
UNKNOWN_MS_PER_MEGAPIXEL = 30.0


class DecodeRates:
    """Decode seconds per stored pixel by format, a moving average of the decodes this process did."""

    def __init__(self) -> None:
        self.ms_per_mp = dict(DECODE_MS_PER_MEGAPIXEL)

    def estimate_s(self, header: tuple[str, int] | None) -> float:
        """Seconds a photo with this header (format, stored pixels) is expected to take to decode."""
        if header is None:
            return 0.0  # unreadable: refused as soon as its decode starts
        fmt, pixels = header
        return self.ms_per_mp.get(fmt, UNKNOWN_MS_PER_MEGAPIXEL) * pixels / 1e9

    def observe(self, fmt: str, pixels: int, seconds: float) -> None:
        if pixels <= 0 or seconds <= 0:
            return
        rate = seconds * 1e9 / pixels
        self.ms_per_mp[fmt] = _average(self.ms_per_mp.get(fmt, rate), rate)


class ModelGate:
    def __init__(
        self,
        concurrency: int,
        max_queue: int,
        metrics: Metrics,
        max_wait_s: float | None = None,
        decode_concurrency: int | None = None,
    ) -> None:
        self.concurrency = concurrency
        self.decode_concurrency = decode_concurrency or concurrency
        self.capacity = concurrency + max_queue
        self.metrics = metrics
        self.max_wait_s = max_wait_s
        self.service_s = 0.0  # recent time per request in its two stages (decode_s + infer_s)
        self.decode_s = 0.0  # moving averages of the time a request holds a decode slot, a model slot
        self.infer_s = 0.0
        self.admitted = 0  # inside the gated routes: running or waiting (event-loop only, no lock needed)
        self.running = 0  # holding a model slot
        self.decoding_now = 0  # holding a decode slot
        self.decode_work_s = 0.0  # expected decode seconds of the photos admitted by admit_decode and not yet decoded
        self.long_decodes = 0  # of those, the long ones (at most one; see admit_decode)
        self.rates = DecodeRates()
        self._slots: asyncio.Semaphore | None = None
        self._decode_slots: asyncio.Semaphore | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """Make the slots in the running (server's) event loop; called at start-up."""
        self.loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._decode_slots = asyncio.Semaphore(self.decode_concurrency)

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self.bind()
        assert self._slots is not None
        return self._slots

    @property
    def decode_slots(self) -> asyncio.Semaphore:
        if self._decode_slots is None:
            self.bind()
        assert self._decode_slots is not None
        return self._decode_slots

    @property
    def waiting(self) -> int:
        return self.admitted - self.running - self.decoding_now

    def expected_wait_s(self) -> float:
        """How long a request admitted now would wait for a slot, from the recent time per request."""
        ahead = max(0, self.admitted - self.concurrency + 1)
        return ahead * self.service_s / self.concurrency

    def admit(self) -> bool:
        if self.admitted >= self.capacity:
            self.metrics.refused.labels("queue_full").inc()
            return False
        if self.max_wait_s is not None and self.expected_wait_s() > self.max_wait_s:
            self.metrics.refused.labels("queue_slow").inc()
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        self.admitted -= 1

    def busy_message(self) -> str:
        """Why :meth:`admit` refused."""
        return f"the server is busy ({self.capacity} photos running or queued); retry in {RETRY_AFTER_BUSY_S} s"

    def admit_decode(self, estimate_s: float) -> bool:
        """Admission by decode cost, once a busy gate's request has its photos' headers: refused (False) when the
        decode work already admitted, shared by the decode slots, plus its own would end beyond ``max_wait_s``.
        A request is admitted by count before its body is read (:meth:`admit`), with the recent time per request;
        a large PNG or a HEIC takes tens of times a JPEG's decode time, so under load such photos are refused at
        once instead of making everyone behind them wait. Nothing admitted ahead: always admitted, however long
        (a lone large photo is still decoded).

        A long photo (its own decode over half the bound, such as a 12 MP HEIC) would almost never fit behind a
        steady load of short ones, and its client would be refused for as long as the load lasts. So one long
        request at a time is admitted beyond the bound, when the work ahead of it is within half the bound; a
        second is refused until the first is decoded. A request that alone takes over twice the bound (a batch of
        large PNGs) gets no such turn: behind it, everybody would be refused. Counted until :meth:`release_decode`."""
        long = self._is_long(estimate_s)
        if self.max_wait_s is not None and self.decode_work_s > 0:
            ahead = self.decode_work_s / self.decode_concurrency  # seconds of decoding before its turn
            fits = ahead + estimate_s <= self.max_wait_s
            long_turn = long and self.long_decodes == 0 and ahead <= self.max_wait_s / 2
            if not (fits or long_turn):
                self.metrics.refused.labels("decode_work").inc()
                return False
        self.decode_work_s += estimate_s
        self.long_decodes += long
        return True

    def _is_long(self, estimate_s: float) -> bool:
        """Long enough to starve behind short photos, short enough to take a turn (:meth:`admit_decode`)."""
        return self.max_wait_s is not None and self.max_wait_s / 2 < estimate_s <= 2 * self.max_wait_s

    def release_decode(self, estimate_s: float) -> None:
        left = self.decode_work_s - estimate_s
        self.decode_work_s = left if left > 1e-6 else 0.0  # no rounding residue keeps a lone photo out
        self.long_decodes -= self._is_long(estimate_s)

    @contextmanager
    def decode_work(self, estimate_s: float, busy: Callable[[], str]) -> Iterator[None]:
        """:meth:`admit_decode` for the block, released after it; refused with :class:`ServerBusyError` and the
        message ``busy()``."""
        if not self.admit_decode(estimate_s):
            raise ServerBusyError(busy())
        try:
            yield
        finally:
            self.release_decode(estimate_s)

    def idle(self) -> bool:
        """A decode slot and a model slot are free and no other admitted request waits (the asking one is
        admitted itself): it may take both at once."""
        return not self.decode_slots.locked() and not self.slots.locked() and self.waiting <= 1

    @asynccontextmanager
    async def whole(self, request: Request) -> AsyncIterator[Callable[[float, float], None]]:
        """A decode slot and a model slot together, for a request that found the gate idle: it decodes and runs
        the model in one worker call instead of two (each hand-over between the loop and a worker costs a
        wake-up). Yields ``record(decode_s, infer_s)`` for the time each stage took."""
        waits = self.decode_slots.locked() or self.slots.locked()
        async with self.decode_slots, self.slots:
            await self._check_client(request, waits)
            self.decoding_now += 1
            self.running += 1
            held: dict[str, float] = {}

            def record(decode_s: float, infer_s: float) -> None:
                held.update(decode=decode_s, infer=infer_s)

            try:
                yield record
            finally:
                self.decoding_now -= 1
                self.running -= 1
                if held:  # a photo refused while decoding tells nothing about the time a photo takes
                    self.decode_s = _average(self.decode_s, held["decode"])
                    self.infer_s = _average(self.infer_s, held["infer"])
                    self.service_s = self.decode_s + self.infer_s

    async def _check_client(self, request: Request, waited: bool) -> None:
        """Drop a request whose client left while it waited for a slot. One that found its slot free is not asked:
        its client was there a moment ago, when its body came in, and asking costs the event loop a round through
        every middleware's ``receive``."""
        if waited and await request.is_disconnected():
            self.metrics.refused.labels("client_gone").inc()
            raise ClientGoneError("the client disconnected before its photo was scanned")

    @asynccontextmanager
    async def decoding(self, request: Request, *, ask: bool = False) -> AsyncIterator[None]:
        """Wait for a decode slot; a request whose client has disconnected while it waited is dropped, not decoded.
        ``ask``: check the client even if the slot is free (a batch's later chunks: it may have left meanwhile)."""
        waits = ask or self.decode_slots.locked()
        async with self.decode_slots:
            await self._check_client(request, waits)
            self.decoding_now += 1
            t0 = time.monotonic()
            try:
                yield
            finally:
                self.decoding_now -= 1
                self.decode_s = _average(self.decode_s, time.monotonic() - t0)
                self.service_s = self.decode_s + self.infer_s

    @asynccontextmanager
    async def slot(self, request: Request, *, ask: bool = False) -> AsyncIterator[None]:
        """Wait for a model slot; a request whose client has disconnected while it waited is dropped, not run.
        ``ask``: as for :meth:`decoding`."""
        waits = ask or self.slots.locked()
        async with self.slots:
            await self._check_client(request, waits)
            self.running += 1
            t0 = time.monotonic()
            try:
                yield
            finally:
                self.running -= 1
                self.infer_s = _average(self.infer_s, time.monotonic() - t0)
                self.service_s = self.decode_s + self.infer_s


def _average(mean: float, value: float) -> float:
    return value if mean == 0.0 else 0.8 * mean + 0.2 * value


class BodyBudget:
    """Bytes of request bodies in flight (uploads are kept in memory, never spooled to disk). Event-loop only."""

    def __init__(self, capacity: int, metrics: Metrics) -> None:
        self.capacity = capacity
        self.metrics = metrics
        self.in_use = 0

    def charge(self, scope: Scope, limit: int) -> int | None:
        """The bytes charged for this request (its declared length, else its route's limit), or None when
        they do not fit."""
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return 0
        declared = Headers(scope=scope).get("content-length")
        size = min(int(declared), limit) if declared is not None and declared.isdigit() else limit
        if size and self.in_use + size > self.capacity:
            self.metrics.refused.labels("upload_memory").inc()
            return None
        self.in_use += size
        return size


class AdmissionMiddleware:
    """Refuse at once, before reading the body, a request whose body does not fit the upload memory, or one to
    a model route when the model gate is full. (The app's photo uploads are admitted in their route, after their
    login: ``routes.admitted_scan``.)"""

    def __init__(
        self,
        app: ASGIApp,
        gate: ModelGate,
        gated: Callable[[str], bool],
        bodies: BodyBudget,
        limit_for: Callable[[Scope], int],
    ) -> None:
        self.app = app
        self.gate = gate
        self.gated = gated
        self.bodies = bodies
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        charged = self.bodies.charge(scope, self.limit_for(scope))
        if charged is None:
            busy = ServerBusyError(f"the server is receiving other uploads; retry in {RETRY_AFTER_BUSY_S} s")
            await refusal(busy, scope)(scope, receive, send)
            return
        try:
            await self._gated(scope, receive, send)
        finally:
            self.bodies.in_use -= charged

    async def _gated(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.gated(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self.gate.admit():
            await refusal(ServerBusyError(self.gate.busy_message()), scope)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.leave()
