"""Webhook delivery from the outbox: POST JSON, signed, retried with back-off, never dropped.

Each message is POSTed as stored with headers

* ``X-Hazardscan-Signature: sha256=<hex HMAC-SHA256 of the body with the shared secret>``
* ``X-Hazardscan-Event: event.opened | event.confirmed | event.closed`` (confirmed: an open suspected or
  unconfirmed event became an alarm)
* ``X-Hazardscan-Delivery: <outbox id>`` (stable across retries: receivers de-duplicate on it)

Only a 2xx answer marks a message delivered; anything else (connection refused, timeout, 3xx, 4xx,
5xx) schedules a retry with exponential back-off. Messages go out strictly in outbox order: while the
oldest one fails, the rest wait behind it. The outbox lives in the database, so messages survive a
restart and are delivered by the next run. Delivery is at-least-once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_service.cctv.backoff import Backoff
from inference_service.cctv.store import EventStore, OutboxItem

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hazardscan-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Receiver-side check of ``X-Hazardscan-Signature``, in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is not a delivery: urllib then raises HTTPError for the 3xx


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str | None = None
    timeout_s: float = 5.0
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=1.0, max_s=300.0))


def post(config: WebhookConfig, message: OutboxItem) -> tuple[bool, str]:
    """One attempt: ``(delivered, detail)``."""
    body = message.payload.encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "hazardscan-webhook/1",
        "X-Hazardscan-Event": message.kind,
        "X-Hazardscan-Delivery": str(message.id),
    }
    if config.secret:
        headers[SIGNATURE_HEADER] = sign(config.secret, body)
    request = urllib.request.Request(config.url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=config.timeout_s) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    return 200 <= status < 300, f"HTTP {status}"


class WebhookWorker(threading.Thread):
    """Delivers due outbox messages until ``stop`` is set; :meth:`poke` after queueing new ones."""

    def __init__(
        self,
        store: EventStore,
        config: WebhookConfig,
        stop: threading.Event | None = None,
        *,
        clock: Callable[[], float] = time.time,
        idle_s: float = 1.0,
    ) -> None:
        super().__init__(name="webhook", daemon=True)
        self.store = store
        self.config = config
        self.stop_event = stop or threading.Event()
        self.clock = clock
        self.idle_s = idle_s
        self.delivered = 0
        self.failures = 0
        self._wake = threading.Event()

    def poke(self) -> None:
        self._wake.set()

    def deliver_due(self) -> int:
        """One pass over due messages in order; stops at the first failure. Returns how many went out."""
        sent = 0
        for message in self.store.due_messages(self.clock()):
            ok, detail = post(self.config, message)
            now = self.clock()
            if ok:
                self.store.mark_delivered(message.id, now)
                self.delivered += 1
                sent += 1
                continue
            self.failures += 1
            wait = self.config.backoff.delay(message.attempts, random.random())
            self.store.mark_failed(message.id, now + wait, detail)
            logger.warning(
                "webhook %s for event %s failed (%s, attempt %d); retry in %.1f s",
                message.kind,
                message.event_id,
                detail,
                message.attempts + 1,
                wait,
            )
            break
        return sent

    def _sleep_s(self) -> float:
        due = self.store.next_due_at()
        return self.idle_s if due is None else min(self.idle_s, max(0.0, due - self.clock()))

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.deliver_due()
                wait = self._sleep_s()
            except Exception:
                logger.exception("webhook worker error; retrying")
                wait = self.idle_s
            self._wake.wait(wait)
            self._wake.clear()

    def drain(self, timeout_s: float) -> bool:
        """At shutdown: stop the thread, then deliver until nothing is pending or ``timeout_s`` passes.
        True if the outbox is empty; what is left waits in the database for the next run."""
        deadline = time.monotonic() + timeout_s
        self.stop_event.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout_s)
        while self.store.pending_messages():
            if time.monotonic() >= deadline:
                return False
            self.deliver_due()
            time.sleep(min(self._sleep_s(), max(0.0, deadline - time.monotonic()), 0.5) or 0.01)
        return True
