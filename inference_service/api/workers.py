"""Worker threads for the model routes, optionally at a lower priority than the event loop.

One event loop thread reads every upload, answers ``/healthz`` and refuses what does not fit; decoding and the
model run in worker threads (and ONNX Runtime's own threads). With ``worker_nice`` above 0 the threads that
decode and run the model raise their own nice value (per thread on Linux) the first time they work for a model
route, and the ONNX Runtime threads inherit it from the thread that makes the session, so the scheduler gives the
loop the CPU first when both want it. Lowering needs no privilege.

It is off by default. Where the kernel groups processes (autogroups per login session, cgroups per service) and
other groups are busy, a group's share of a core follows the weight of its threads there: niced workers then lose
the core to the other groups' work, not just to their own loop (measured on a 2-core machine shared with other
sessions' jobs: 0.73 s a photo at one client with nice +10, 0.13 s without). Use it on a machine the service has
to itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

logger = logging.getLogger(__name__)

T = TypeVar("T")
_state = threading.local()


def lower_priority(niceness: int) -> bool:
    """Raise the calling thread's nice value by ``niceness`` (at most to 19), once per thread.

    Linux only (there ``setpriority`` on a thread id changes that thread alone; elsewhere it would change the
    whole process, event loop included, so nothing is done); never in a thread that runs an event loop. Returns
    whether this thread now runs lowered."""
    if getattr(_state, "lowered", False):
        return True
    if niceness <= 0 or not sys.platform.startswith("linux") or _runs_a_loop():
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError as exc:  # a sandbox that forbids it: run at the loop's priority
        logger.debug("cannot lower thread priority: %s", exc)
        return False
    _state.lowered = True
    return True


def _runs_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Workers:
    """Runs blocking calls of the model routes in worker threads lowered by ``niceness``."""

    def __init__(self, niceness: int) -> None:
        self.niceness = niceness

    def _call(self, fn: Callable[..., T], *args: object) -> T:
        lower_priority(self.niceness)
        return fn(*args)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a worker thread; like ``run_in_threadpool``, a cancelled caller waits for it to end."""
        return await anyio.to_thread.run_sync(self._call, fn, *args)
