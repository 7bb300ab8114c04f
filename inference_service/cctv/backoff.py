"""Exponential back-off with jitter: one copy for stream reconnects and webhook retries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    jitter: float = 0.2  # ± share of the delay

    def delay(self, attempt: int, rand: float = 0.5) -> float:
        """Wait before retry ``attempt`` (0-based); ``rand`` in [0, 1) picks the jitter (0.5: none)."""
        raw = min(self.max_s, self.base_s * self.factor ** min(max(0, attempt), 64))
        return max(0.0, raw * (1.0 + self.jitter * (2.0 * rand - 1.0)))
