"""Uvicorn as the service runs it: header timeout, connection cap, keep-alive timeout.

Uvicorn has a keep-alive timeout but no header timeout: a client that sends half a request line and then
nothing holds its connection (and file descriptor) forever, and 20,000 such clients starve the process.
:class:`GuardedHttpTools` closes a connection whose request headers have not arrived within
``header_timeout_s`` of it opening (or of its previous response), and closes at once any connection
beyond ``max_connections``. Body stalls are handled by ``BodyTimeoutMiddleware`` (408).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import sys
from typing import Any

import cv2
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from inference_service.api.settings import Settings

logger = logging.getLogger(__name__)


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 8 * 1024 * 1024
TRIM_THRESHOLD = 32 * 1024 * 1024


def tune_malloc() -> bool:
    """Have glibc give big decode buffers back to the system when freed, and reuse upload-sized ones.

    By default glibc raises its mmap threshold after each large free and gives every thread its own arena, so
    the blocks of a large decode end up in per-thread heaps that are never returned, and RSS stays high after
    the load has ended. A fixed threshold (buffers above it, Pillow's decode blocks among them, are mapped and
    unmapped) and two arenas keep RSS near what is in use. Below it, a phone photo's upload joined into one
    buffer comes from the heap, which keeps room free at its top for the next one, instead of being mapped
    afresh and faulted in page by page for every request (figures: benchmarks/reports/service_load.md). No-op
    off glibc. Returns whether applied.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
            and libc.mallopt(_M_ARENA_MAX, 2)
        )
    except (OSError, AttributeError):
        return False


def single_thread_opencv() -> None:
    """Have OpenCV run each call on the calling thread (``cv2.setNumThreads(1)``), process-wide.

    OpenCV's own thread pool (pthreads) keeps its workers spin-waiting for a while after each parallel call. The
    service calls OpenCV on small images (the letterbox resize, a 64 px thumbnail) right before and after the
    ONNX Runtime session, whose threads already use every core: a worker still spinning from the letterbox resize
    takes a core from the session (see docs/performance.md). Requests already run side by side on the cores, so
    these small images gain nothing from OpenCV's threads. Its results are the same with any number of threads."""
    cv2.setNumThreads(1)


def prompt_gil_handoff(interval_ms: float) -> None:
    """How long a thread that holds the GIL may keep it while another waits (``sys.setswitchinterval``).

    The event loop reads uploads and answers ``/healthz`` between the worker threads' Python work (decoding
    bookkeeping, hazards, JSON). Each time the loop wants the GIL back it waits up to one interval for every
    thread ahead of it; Python's default is 5 ms. A shorter interval shortens the loop's waits under load
    without changing throughput (figures: benchmarks/reports/service_load.md)."""
    sys.setswitchinterval(interval_ms / 1000)


def freeze_startup_heap() -> int:
    """Take every object alive after start-up out of Python's full garbage collections (``gc.freeze``, after one
    collection); returns how many. The model's card, the taxonomy, FastAPI's routes and every imported module make
    tens of thousands of objects that live as long as the process. Under load, request garbage triggers full
    collections again and again; each walked all of those, freed none of them and held the GIL meanwhile, so the
    event loop, ``/healthz`` among its answers, waited for it (benchmarks/reports/service_load.md). Undone by
    :func:`thaw_heap` at shutdown (an app started again in the same process, as the tests do, starts afresh)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw_heap() -> None:
    """Give the objects :func:`freeze_startup_heap` froze back to the garbage collector."""
    gc.unfreeze()


class GuardedHttpTools(HttpToolsProtocol):
    """httptools protocol with a header timeout and a connection cap (values set by :func:`uvicorn_config`)."""

    header_timeout_s: float = 10.0
    max_connections: int = 512

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            logger.warning("connection refused: %d open connections", len(self.connections))
            transport.close()
            return
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        waiting_after = self.cycle  # the request being answered when armed (None on a new connection)
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout, waiting_after)

    def _header_timeout(self, waiting_after: Any) -> None:
        if self.cycle is waiting_after and not self.transport.is_closing():  # no new request's headers since
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._header_timer.cancel()
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)


def uvicorn_config(
    app: Any, settings: Settings, host: str = "127.0.0.1", port: int = 8000, **options: Any
) -> uvicorn.Config:
    """The uvicorn configuration ``hazardscan serve`` uses (tests start the same)."""
    protocol = type(
        "GuardedHttp",
        (GuardedHttpTools,),
        {"header_timeout_s": settings.header_timeout_s, "max_connections": settings.max_connections},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        timeout_keep_alive=max(1, round(settings.keepalive_timeout_s)),
        log_level=options.pop("log_level", settings.log_level.lower()),
        **options,
    )
