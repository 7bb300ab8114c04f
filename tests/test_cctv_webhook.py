"""Webhook delivery against a real HTTP receiver on loopback: failures, recovery, signatures, order."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from _cctv import WebhookReceiver, event, free_port

from inference_service.cctv.backoff import Backoff
from inference_service.cctv.store import EventStore
from inference_service.cctv.webhook import WebhookConfig, WebhookWorker, sign, verify

FAST = Backoff(base_s=0.02, factor=2.0, max_s=0.2, jitter=0.2)
SECRET = "s3cret"


def fill(store: EventStore, n: int) -> list[tuple[str, str]]:
    expected = []
    for i in range(1, n + 1):
        store.record(event(i), "opened", notify=True)
        store.record(event(i, status="closed", ended_at=2000.0), "closed", notify=True)
        expected += [(f"ev{i}", "event.opened"), (f"ev{i}", "event.closed")]
    return expected


def test_a_failing_receiver_gets_every_message_exactly_once_in_order(tmp_path: Path):
    store = EventStore(tmp_path / "events.db")
    expected = fill(store, 3)
    with WebhookReceiver(SECRET, fail_first=4) as receiver:
        worker = WebhookWorker(store, WebhookConfig(receiver.url, SECRET, backoff=FAST), idle_s=0.05)
        worker.start()
        assert worker.drain(timeout_s=15)
    assert receiver.deliveries() == expected  # each (event id, type) once, in outbox order
    assert receiver.requests == len(expected) + 4 and receiver.bad_signatures == 0
    assert worker.failures == 4 and worker.delivered == len(expected)
    assert store.pending_messages() == 0
    assert {p["event"]["camera_id"] for p in receiver.accepted} == {"cam-0", "cam-1"}
    assert len({p["delivery"] for p in receiver.accepted}) == len(expected)


def test_nothing_is_lost_while_the_target_is_down(tmp_path: Path):
    store = EventStore(tmp_path / "events.db")
    expected = fill(store, 2)
    port = free_port()  # nothing listens here yet: connection refused
    worker = WebhookWorker(store, WebhookConfig(f"http://127.0.0.1:{port}/hook", SECRET, backoff=FAST), idle_s=0.05)
    worker.start()
    time.sleep(0.5)
    assert worker.delivered == 0 and worker.failures >= 3
    assert store.pending_messages() == len(expected)
    with WebhookReceiver(SECRET, port=port) as receiver:
        assert worker.drain(timeout_s=15)
    assert receiver.deliveries() == expected


def test_undelivered_messages_wait_in_the_database_for_the_next_run(tmp_path: Path):
    db = tmp_path / "events.db"
    store = EventStore(db)
    expected = fill(store, 1)
    down = WebhookWorker(store, WebhookConfig(f"http://127.0.0.1:{free_port()}/hook", SECRET, backoff=FAST))
    assert down.drain(timeout_s=0.3) is False  # gives up at shutdown, keeps the messages
    store.close()

    later = EventStore(db)  # a new run, same database
    with WebhookReceiver(SECRET) as receiver:
        assert WebhookWorker(later, WebhookConfig(receiver.url, SECRET, backoff=FAST)).drain(timeout_s=10)
    assert receiver.deliveries() == expected


@pytest.mark.parametrize("status", [301, 404])
def test_non_2xx_answers_are_not_deliveries(tmp_path: Path, status: int):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = EventStore(tmp_path / "events.db")
        fill(store, 1)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        worker = WebhookWorker(store, WebhookConfig(url, SECRET, backoff=replace(FAST, base_s=5.0)))
        assert worker.deliver_due() == 0
        assert store.pending_messages() == 2 and worker.failures == 1
    finally:
        server.shutdown()
        server.server_close()


def test_signature_is_hmac_sha256_of_the_body():
    body = b'{"type": "event.opened"}'
    assert sign("key", body) == "sha256=" + hmac.new(b"key", body, "sha256").hexdigest()
    assert verify("key", body, sign("key", body))
    assert not verify("key", body + b" ", sign("key", body))
    assert not verify("other", body, sign("key", body))
    assert not verify("key", body, None)
