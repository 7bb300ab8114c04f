"""A process-wide budget of memory for decoded pixels, shared by every request thread.

Decoding a photo needs memory in proportion to the pixels it decodes (a 7000×7000 PNG: ~390 MB for a
moment), and nothing about the upload's size says so. Each decode first holds its estimated bytes here;
when the budget is spent, decodes wait (a bounded time) for others to finish, so the memory in use for
decoding never exceeds ``capacity`` whatever the mix of photos and the number of clients.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

MB = 1024 * 1024


class BudgetBusyError(RuntimeError):
    """The decode budget stayed spent for the whole wait; the client should retry shortly."""

    code = "server_busy"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class DecodeBudget:
    """Bytes of decoded pixels in flight, at most ``capacity`` at once. Thread-safe."""

    def __init__(self, capacity: int, wait_s: float = 10.0) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.wait_s = wait_s
        self._in_use = 0
        self._peak = 0
        self._cond = threading.Condition()

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def peak(self) -> int:
        """The most bytes ever held at once (for tests and metrics)."""
        return self._peak

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` (capped at the capacity) while the block runs; wait for room up to ``wait_s``."""
        need = max(0, min(nbytes, self.capacity))
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_use + need <= self.capacity, timeout=self.wait_s):
                raise BudgetBusyError(
                    f"the server is decoding other large photos; retry in a few seconds "
                    f"(decode memory {self.capacity // MB} MB in use)"
                )
            self._in_use += need
            self._peak = max(self._peak, self._in_use)
        try:
            yield
        finally:
            with self._cond:
                self._in_use -= need
                self._cond.notify_all()
