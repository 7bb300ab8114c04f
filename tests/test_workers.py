"""Worker threads lower their own priority so that the event loop gets the CPU first (Linux)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import pytest

from inference_service.api.workers import Workers, lower_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


def _in_thread(fn):  # type: ignore[no-untyped-def]
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def test_a_worker_thread_lowers_itself_once_and_alone():
    base = _nice(threading.get_native_id())

    def work() -> tuple[bool, int, bool, int]:
        tid = threading.get_native_id()
        first = lower_priority(5)
        after_first = _nice(tid)
        again = lower_priority(5)  # once per thread: not 10
        return first, after_first, again, _nice(tid)

    assert _in_thread(work) == (True, min(19, base + 5), True, min(19, base + 5))
    assert _nice(threading.get_native_id()) == base  # the calling thread is left as it was


def test_a_thread_that_runs_an_event_loop_is_never_lowered():
    base = _nice(threading.get_native_id())

    async def in_loop() -> tuple[bool, int]:
        return lower_priority(10), _nice(threading.get_native_id())

    assert _in_thread(lambda: asyncio.run(in_loop())) == (False, base)
    assert _in_thread(lambda: lower_priority(0)) is False  # 0: off


def test_workers_run_calls_in_lowered_threads_and_leave_the_loop_alone():
    async def main() -> tuple[int, int]:
        workers = Workers(7)
        loop_tid = threading.get_native_id()
        worker_nice = await workers.run(lambda: _nice(threading.get_native_id()))
        return worker_nice, _nice(loop_tid)

    base = _nice(threading.get_native_id())
    worker_nice, loop_nice = _in_thread(lambda: asyncio.run(main()))
    assert worker_nice == min(19, base + 7) and loop_nice == base
