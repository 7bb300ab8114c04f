"""Timeouts, limits and backpressure over real HTTP on loopback: refusals instead of collapse.

No timed assertions: tests count status codes and wait for states with generous deadlines.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from _builders import encode, noisy_photo, scene
from _live import LiveServer
from PIL import Image

from evaluation.stress_service import _exchange, encoded_request
from inference_service.api.admission import ModelGate
from inference_service.api.settings import Settings

PHOTO = encode(scene(256, 256, [(128, 64, 192, 128, (255, 0, 0))]), "PNG")
BOUNDARY = "hazardscanboundary"


def _wait_until(condition: Callable[[], bool], what: str, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def _multipart(photo: bytes) -> bytes:
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="p.png"\r\n\r\n'.encode()
    return head + photo + f"\r\n--{BOUNDARY}--\r\n".encode()


def _request_head(port: int, length: int, path: str = "/v1/detect") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n"
    ).encode()


@contextmanager
def _raw(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        yield sock
    finally:
        sock.close()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
        if b"\r\n\r\n" in b"".join(chunks) and b'"}}' in chunks[-1]:
            break
    return b"".join(chunks)


def _read_answer(sock: socket.socket) -> bytes:
    """One whole answer with a ``Content-Length``: its head and body may come in separate reads."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole answer: {got!r}"
        got += chunk
    head, body = got.split(b"\r\n\r\n", 1)
    length = int(
        next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole answer: {head + body!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def _gate(live: LiveServer) -> ModelGate:
    gate: ModelGate = live.app.state.service.gate
    return gate


@pytest.fixture
def tight(tiny_model_dir: Path) -> Iterator[tuple[LiveServer, httpx.Client]]:
    live = LiveServer(Settings(model_path=tiny_model_dir, threads=1, model_concurrency=1, max_queue=1))
    with live as client:
        yield live, client


def test_a_full_queue_refuses_at_once_before_reading_the_body(tight: tuple[LiveServer, httpx.Client]):
    live, client = tight
    body = _multipart(PHOTO)
    with _raw(live.port) as a, _raw(live.port) as b:
        for sock in (a, b):  # two admitted requests whose bodies never finish: the gate is full
            sock.sendall(_request_head(live.port, len(body)) + body[:100])
        _wait_until(lambda: _gate(live).admitted == 2, "both slow requests admitted")
        refused = client.post("/v1/detect", files={"photo": ("p.png", PHOTO)})
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "server_busy"
        assert refused.headers["Connection"] == "close"  # its body is never read
        assert client.get("/healthz").status_code == 200  # never behind the model
        a.sendall(body[100:])  # one of them finishes its upload and is answered
        assert b"200 OK" in _read_all(a).split(b"\r\n", 1)[0]
    _wait_until(lambda: _gate(live).admitted == 0, "the abandoned request left the gate")
    assert client.post("/v1/detect", files={"photo": ("p.png", PHOTO)}).status_code == 200
    metrics = client.get("/metrics").text
    assert 'hazardscan_requests_refused_total{reason="queue_full"} 1.0' in metrics


def test_a_client_that_left_while_queued_is_not_run(tight: tuple[LiveServer, httpx.Client]):
    live, client = tight
    gate = _gate(live)
    assert gate.loop is not None
    asyncio.run_coroutine_threadsafe(gate.slots.acquire(), gate.loop).result(10)  # the one slot is busy
    body = _multipart(PHOTO)
    with _raw(live.port) as sock:
        sock.sendall(_request_head(live.port, len(body)) + body)
        _wait_until(lambda: gate.admitted == 1, "the request waits for the slot")
    time.sleep(0.2)  # let the server see the connection close
    gate.loop.call_soon_threadsafe(gate.slots.release)
    _wait_until(lambda: gate.admitted == 0, "the waiting request was settled")
    metrics = client.get("/metrics").text
    assert 'hazardscan_requests_refused_total{reason="client_gone"} 1.0' in metrics
    assert 'hazardscan_images_total{outcome="scanned"}' not in metrics


def test_photos_decode_while_the_model_slot_is_taken(tight: tuple[LiveServer, httpx.Client]):
    live, client = tight
    gate = _gate(live)
    assert gate.loop is not None
    asyncio.run_coroutine_threadsafe(gate.slots.acquire(), gate.loop).result(10)  # the one model slot is busy
    answers: list[int] = []
    poster = threading.Thread(
        target=lambda: answers.append(client.post("/v1/detect", files={"photo": ("p.png", PHOTO)}).status_code)
    )
    poster.start()
    # decoded (its decode slot used and given back) while the model slot is still taken: it waits with its tensor
    _wait_until(lambda: gate.decode_s > 0 and gate.admitted == 1 and gate.decoding_now == 0, "decoded first")
    assert gate.running == 0 and gate.infer_s == 0 and not answers
    gate.loop.call_soon_threadsafe(gate.slots.release)
    poster.join(30)
    assert answers == [200] and gate.infer_s > 0


def test_a_lone_request_goes_through_in_one_worker_call(
    tight: tuple[LiveServer, httpx.Client], monkeypatch: pytest.MonkeyPatch
):
    from inference_service.api import routes

    calls: list[str] = []
    for name in ("scan_photo", "stage_photo"):
        real = getattr(routes, name)
        monkeypatch.setattr(routes, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    _, client = tight
    assert client.post("/v1/detect", files={"photo": ("p.png", PHOTO)}).status_code == 200
    assert calls[0] == "scan_photo"  # idle gate: decode, model and finish in one call, not stage by stage


def test_decoding_worker_threads_run_below_the_event_loop(tiny_model_dir: Path):
    import os
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread nice values are Linux's")
    settings = Settings(model_path=tiny_model_dir, threads=1, worker_nice=6)
    live = LiveServer(settings)
    with live as client:
        assert client.post("/v1/detect", files={"photo": ("p.png", PHOTO)}).status_code == 200
        loop_tid = live.thread.native_id
        assert loop_tid is not None
        base = os.getpriority(os.PRIO_PROCESS, loop_tid)  # the event loop keeps its priority
        lowered = [
            int(t)
            for t in os.listdir("/proc/self/task")
            if os.getpriority(os.PRIO_PROCESS, int(t)) == min(19, base + 6)
        ]
        assert lowered and loop_tid not in lowered


def test_a_burst_is_answered_or_refused_never_collapses(tiny_model_dir: Path):
    settings = Settings(model_path=tiny_model_dir, threads=1, model_concurrency=1, max_queue=2)
    photo = encode(noisy_photo(1200, 900), "PNG")  # slow enough to decode that the burst overlaps
    statuses: list[int] = []
    health: list[int] = []
    with LiveServer(settings) as client:
        port = client.base_url.port or 0
        start = threading.Barrier(33)

        def one() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
                start.wait()
                r = c.post("/v1/detect", files={"photo": ("p.png", photo)})
                assert r.status_code != 503 or (r.headers["Retry-After"] and r.json()["error"]["code"])
                statuses.append(r.status_code)

        threads = [threading.Thread(target=one) for _ in range(32)]
        for t in threads:
            t.start()
        start.wait()
        while any(t.is_alive() for t in threads):
            health.append(client.get("/healthz").status_code)
        for t in threads:
            t.join()
        refused = client.get("/metrics").text
    counts = Counter(statuses)
    assert sum(counts.values()) == 32 and set(counts) <= {200, 503}, counts
    assert counts[200] >= 1 and set(health) == {200}
    assert f'hazardscan_requests_refused_total{{reason="queue_full"}} {counts[503]}.0' in refused or counts[503] == 0


def _read_to_eof(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_refused_upload_is_answered_and_closed_without_its_body_being_read(tiny_model_dir: Path):
    # Kept alive, the connection would stay open (for the 120 s timeouts) while the server waited to read and
    # throw away the 50 MB the request announced; refused, it is answered and closed at once.
    settings = Settings(model_path=tiny_model_dir, threads=1, header_timeout_s=120, keepalive_timeout_s=120)
    with LiveServer(settings) as client:
        port = client.base_url.port or 0
        with _raw(port) as sock:
            sock.sendall(_request_head(port, 50 * 1024 * 1024) + f"--{BOUNDARY}\r\n".encode())
            answer = _read_to_eof(sock)  # the socket's 20 s timeout raises if the server keeps it open
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 413") and b"connection: close" in head
        assert b"payload_too_large" in answer
        with _raw(port) as sock:  # a refusal without a body keeps the connection for the next request
            sock.sendall(b"GET /v1/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"connection: close" not in sock.recv(65536).lower()
        assert client.get("/healthz").status_code == 200


def test_headers_that_never_finish_are_cut_off(tiny_model_dir: Path):
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1, header_timeout_s=0.3)) as client:
        port = client.base_url.port or 0
        with _raw(port) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            assert sock.recv(1024) == b""  # closed by the server, no answer
        with _raw(port) as sock:  # a whole request on time is answered, then the idle connection is closed
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_answer(sock).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next request's headers stall
            assert sock.recv(1024) == b""
        assert client.get("/healthz").status_code == 200


def test_a_stalled_body_gets_408(tiny_model_dir: Path):
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1, body_timeout_s=0.3)) as client:
        port = client.base_url.port or 0
        body = _multipart(PHOTO)
        with _raw(port) as sock:
            sock.sendall(_request_head(port, len(body)) + body[:50])
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
        assert client.post("/v1/detect", files={"photo": ("p.png", PHOTO)}).status_code == 200


def test_connections_beyond_the_limit_are_closed_at_once(tiny_model_dir: Path):
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1, max_connections=3)) as client:
        port = client.base_url.port or 0
        with _raw(port), _raw(port), _raw(port), _raw(port) as extra:
            assert extra.recv(1024) == b""
        _wait_until(lambda: client.get("/healthz").status_code == 200, "a new connection is served again")


def test_uploads_stay_in_memory_within_their_budget(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    import tempfile

    spooled: list[object] = []
    real = tempfile.TemporaryFile

    def recording(*args: object, **kwargs: object) -> object:  # where an upload spooled to disk would go
        spooled.append(args)
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(tempfile, "TemporaryFile", recording)
    # the budget: max(1 MB, largest batch body 2 MB + 1 MB of form overhead) = 3 MB; photos up to 512 KB
    settings = Settings(
        model_path=tiny_model_dir,
        threads=1,
        upload_memory_mb=1,
        max_upload_bytes=512 * 1024,
        max_batch_bytes=2 * 1024 * 1024,
    )
    live = LiveServer(settings)
    with live as client:
        port = client.base_url.port or 0
        big = encode(noisy_photo(900, 700), "PNG")  # over 1 MB: Starlette would spool it to disk by default
        assert 1024 * 1024 < len(big) < 2 * 1024 * 1024
        with _raw(port) as slow:  # a declared 3 MB upload in flight holds the whole budget
            slow.sendall(_request_head(port, 3 * 1024 * 1024, "/v1/detect/batch") + b"--")
            _wait_until(lambda: _gate(live).admitted == 1, "the slow upload is admitted")
            refused = client.post("/v1/detect", files={"photo": ("p.png", PHOTO)})
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert client.get("/healthz").status_code == 200
        _wait_until(lambda: _gate(live).admitted == 0, "the slow upload left")
        files = [("photos", ("big.png", big)), ("photos", ("p.png", PHOTO))]
        items = client.post("/v1/detect/batch", files=files).json()["items"]
        assert items[0]["error"]["code"] == "payload_too_large" and items[1]["error"] is None
        assert 'reason="upload_memory"' in client.get("/metrics").text
    assert spooled == []  # the part over the photo limit was refused from memory, never written to disk


def test_slow_requests_shorten_the_queue():
    from inference_service.api.state import Metrics

    gate = ModelGate(concurrency=2, max_queue=16, metrics=Metrics(), max_wait_s=1.5)
    gate.service_s = 0.1  # fast photos: the count bounds the queue
    assert sum(gate.admit() for _ in range(30)) == 18
    slow = ModelGate(concurrency=2, max_queue=16, metrics=Metrics(), max_wait_s=1.5)
    slow.service_s = 1.0  # one second a request: admitted while the wait ahead stays within 1.5 s
    assert sum(slow.admit() for _ in range(30)) == 5  # 2 run at once, 3 wait 0.5, 1.0 and 1.5 s
    assert slow.expected_wait_s() == pytest.approx(2.0)


def test_an_idle_gate_lets_a_request_take_both_stages_at_once():
    from inference_service.api.state import Metrics

    class Connected:  # a request whose client is still there
        async def is_disconnected(self) -> bool:
            return False

    async def main() -> None:
        gate = ModelGate(concurrency=1, max_queue=4, metrics=Metrics(), decode_concurrency=1)
        gate.bind()
        assert gate.idle()
        async with gate.whole(Connected()) as record:  # type: ignore[arg-type]
            assert not gate.idle() and gate.running == 1 and gate.decoding_now == 1
            record(0.03, 0.05)
        assert gate.idle() and (gate.decode_s, gate.infer_s) == (0.03, 0.05)
        assert gate.service_s == pytest.approx(0.08)
        async with gate.whole(Connected()):  # type: ignore[arg-type]
            pass  # refused while decoding: nothing recorded, the averages stay
        assert (gate.decode_s, gate.infer_s) == (0.03, 0.05)
        async with gate.decoding(Connected()):  # type: ignore[arg-type]
            assert not gate.idle()  # a decode slot is taken: the next request goes stage by stage
        gate.admitted = 1  # the asking request itself
        assert gate.idle()
        gate.admitted = 2  # and another, holding no slot: it waits (or still uploads) ahead
        assert not gate.idle()

    asyncio.run(main())


def test_the_client_is_asked_whether_it_is_still_there_only_after_a_wait():
    from inference_service.api.errors import ClientGoneError
    from inference_service.api.state import Metrics

    class Gone:  # a request whose client has left; counts how often it is asked
        asked = 0

        async def is_disconnected(self) -> bool:
            self.asked += 1
            return True

    async def main() -> None:
        gate = ModelGate(concurrency=1, max_queue=4, metrics=Metrics(), decode_concurrency=1)
        gate.bind()
        request = Gone()
        async with gate.whole(request):  # type: ignore[arg-type]
            pass  # found its slots free: its body came in a moment ago, nobody asks
        async with gate.decoding(request):  # type: ignore[arg-type]
            pass
        async with gate.slot(request):  # type: ignore[arg-type]
            pass
        assert request.asked == 0
        with pytest.raises(ClientGoneError):
            async with gate.decoding(request, ask=True):  # type: ignore[arg-type]
                pass  # a batch's later chunk asks though its slot is free
        assert request.asked == 1
        await gate.slots.acquire()  # the model is busy: the next request waits for it
        waiting = asyncio.ensure_future(gate.slot(request).__aenter__())  # type: ignore[arg-type]
        await asyncio.sleep(0)
        gate.slots.release()
        with pytest.raises(ClientGoneError):
            await waiting
        assert request.asked == 2 and gate.running == 0

    asyncio.run(main())


def test_the_service_runs_opencv_on_the_calling_thread(tiny_model_dir: Path):
    """OpenCV's pool workers spin after each call and would take a core from the ONNX Runtime session."""
    import cv2

    from inference_service.api.app import create_app

    cv2.setNumThreads(2)
    create_app(Settings(model_path=tiny_model_dir, threads=1))
    assert cv2.getNumThreads() == 1


def test_the_service_sets_how_long_a_worker_may_hold_the_gil(tiny_model_dir: Path):
    """The event loop waits at most the switch interval for each thread ahead of it for the GIL."""
    import sys

    from inference_service.api.app import create_app

    before = sys.getswitchinterval()
    try:
        create_app(Settings(model_path=tiny_model_dir, threads=1))
        assert sys.getswitchinterval() == pytest.approx(0.001)
        create_app(Settings(model_path=tiny_model_dir, threads=1, gil_switch_ms=2.5))
        assert sys.getswitchinterval() == pytest.approx(0.0025)
    finally:
        sys.setswitchinterval(before)
    with pytest.raises(ValueError, match="gil_switch_ms"):
        Settings(model_path=tiny_model_dir, gil_switch_ms=0)


def test_admission_by_decode_cost_refuses_long_decodes_behind_others():
    from inference_service.api.admission import DecodeRates
    from inference_service.api.state import Metrics

    gate = ModelGate(1, 4, Metrics(), max_wait_s=1.5, decode_concurrency=2)
    rates = DecodeRates()
    heic, jpeg = rates.estimate_s(("HEIF", 12_000_000)), rates.estimate_s(("JPEG", 12_000_000))
    assert heic > 1.0 > 0.1 > jpeg > 0
    assert gate.admit_decode(heic)  # nothing ahead: a lone long decode is still admitted
    assert not gate.admit_decode(heic)  # behind it, another would end too late: refused at once
    assert gate.admit_decode(jpeg)  # a short one still fits
    gate.release_decode(heic)
    gate.release_decode(jpeg)
    assert gate.decode_work_s == 0 and gate.admit_decode(heic)
    rates.observe("HEIF", 12_000_000, 0.6)  # measured faster here: the estimate follows
    assert rates.estimate_s(("HEIF", 12_000_000)) < heic
    assert rates.estimate_s(None) == 0.0


def test_one_long_photo_at_a_time_takes_its_turn_behind_a_steady_load():
    """A 12 MP HEIC never fits in the bound behind others; refused every time, its client would starve."""
    from inference_service.api.admission import DecodeRates
    from inference_service.api.state import Metrics

    gate = ModelGate(1, 4, Metrics(), max_wait_s=1.5, decode_concurrency=2)
    rates = DecodeRates()
    heic, jpeg = rates.estimate_s(("HEIF", 12_000_000)), rates.estimate_s(("JPEG", 12_000_000))
    for _ in range(4):  # a steady load of phone JPEGs: about 0.1 s of decoding ahead
        assert gate.admit_decode(jpeg)
    assert gate.decode_work_s / 2 + heic > 1.5  # by the bound alone it would be refused
    assert gate.admit_decode(heic)  # its turn
    assert not gate.admit_decode(heic)  # a second long one waits for the first
    assert gate.admit_decode(jpeg)  # short ones still fit behind it
    gate.release_decode(heic)
    assert gate.long_decodes == 0 and gate.admit_decode(heic)  # the next one's turn
    gate.release_decode(heic)
    while gate.decode_work_s / 2 <= 0.75:  # more than half the bound ahead: no turn
        assert gate.admit_decode(jpeg)
    assert not gate.admit_decode(heic)
    batch = 8 * rates.estimate_s(("PNG", 49_000_000))  # over twice the bound by itself: never a turn under load
    assert batch > 3.0 and not gate.admit_decode(batch)
    fresh = ModelGate(1, 4, Metrics(), max_wait_s=1.5, decode_concurrency=2)
    assert fresh.admit_decode(batch)  # nothing ahead: still decoded, as before


def test_a_busy_server_refuses_a_long_decode_at_once_and_says_why(tiny_model_dir: Path):
    settings = Settings(model_path=tiny_model_dir, threads=1, max_queue_wait_s=1.0)
    live = LiveServer(settings)
    with live as client:
        gate = _gate(live)
        assert gate.loop is not None
        for _ in range(gate.decode_concurrency):  # others hold every decode slot, with 3 s of decoding admitted
            asyncio.run_coroutine_threadsafe(gate.decode_slots.acquire(), gate.loop).result(10)
        gate.decode_work_s = 3.0
        big = encode(Image.new("RGB", (4000, 3000), (90, 120, 60)), "PNG")  # 12 MP: about 0.4 s to decode
        refused = client.post("/v1/detect", content=big, headers={"content-type": "image/png"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "server_busy"
        assert "PNG photo of 12 megapixels" in refused.json()["error"]["message"] and refused.headers["Retry-After"]
        assert 'reason="decode_work"} 1.0' in client.get("/metrics").text
        gate.decode_work_s = 0.0
        for _ in range(gate.decode_concurrency):
            gate.loop.call_soon_threadsafe(gate.decode_slots.release)
        assert client.post("/v1/detect", content=big, headers={"content-type": "image/png"}).status_code == 200


def test_a_client_that_expects_100_continue_sends_no_body_when_refused(tight: tuple[LiveServer, httpx.Client]):
    live, _ = tight
    head, body = encoded_request("/v1/detect", f"127.0.0.1:{live.port}", [("photo", ("p.png", PHOTO))], True)
    assert b"Expect: 100-continue" in head

    async def exchange() -> tuple[int, dict[str, str], bool]:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        try:
            return await _exchange(reader, writer, (head, body))
        finally:
            writer.close()

    status, headers, sent_all = asyncio.run(exchange())  # the gate is free: go-ahead, body, answer
    assert (status, sent_all) == (200, True)
    assert "upload;dur=" in headers["server-timing"] and "app;dur=" in headers["server-timing"]
    whole = _multipart(PHOTO)
    with _raw(live.port) as a, _raw(live.port) as b:
        for sock in (a, b):  # the gate is full
            sock.sendall(_request_head(live.port, len(whole)) + whole[:100])
        _wait_until(lambda: _gate(live).admitted == 2, "both slow requests admitted")
        status, headers, sent_all = asyncio.run(exchange())
        assert (status, sent_all) == (503, False)  # refused on its head: the body never went out
        assert headers["connection"] == "close" and headers["retry-after"] == "1"


def test_start_up_objects_are_left_out_of_full_collections_while_serving(tiny_model_dir: Path):
    """Under load, full garbage collections walked every object start-up made, holding the GIL while the event loop
    waited: the service freezes them once it is up, and gives them back when it stops."""
    import gc

    before = gc.get_freeze_count()
    with LiveServer(Settings(model_path=tiny_model_dir, threads=1)) as client:
        assert client.get("/readyz").status_code == 200
        assert gc.get_freeze_count() > max(before, 10_000)  # the libraries, the model's card, FastAPI's routes
    if before == 0:  # no other service of this process froze anything
        assert gc.get_freeze_count() == 0


def test_the_apps_photo_uploads_wait_in_the_same_gate(tiny_model_dir: Path, tmp_path: Path):
    """An inspector's upload runs the model too: it is admitted, queued and refused like an API photo, so a crowd of
    inspectors cannot run scans side by side without bound while the API and the app's other pages wait."""
    from app_fixtures import PASSWORD, USERS, fire_photo, seed_users

    database = str(tmp_path / "app.db")
    seed_users(database)
    settings = Settings(
        model_path=tiny_model_dir, threads=1, model_concurrency=1, max_queue=0, data_dir=tmp_path, database_url=database
    )
    live = LiveServer(settings)
    with live as client:
        login = client.post("/app/api/login", json={"username": USERS["inspector"][0], "password": PASSWORD})
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        inspection = client.post("/app/api/inspections", json={"scene": "construction", "unit": {"name": "u"}})
        url = f"/app/api/inspections/{inspection.json()['id']}"

        def upload(key: str) -> httpx.Response:
            return client.post(f"{url}/photos", files={"photo": ("p.jpg", fire_photo())}, data={"idempotency_key": key})

        gate = _gate(live)
        assert gate.loop is not None
        body = _multipart(PHOTO)
        with _raw(live.port) as sock:  # an API photo whose body never finishes holds the one place
            sock.sendall(_request_head(live.port, len(body)) + body[:100])
            _wait_until(lambda: gate.admitted == 1, "the slow API request admitted")
            refused = upload("k-1")
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert refused.json()["error"]["code"] == "server_busy"
            assert client.get(url).json()["photos"] == []  # nothing kept
        _wait_until(lambda: gate.admitted == 0, "the slow request gone")

        # An upload admitted in its route holds its place while it waits for the model, like an API photo.
        asyncio.run_coroutine_threadsafe(gate.slots.acquire(), gate.loop).result(10)  # the model slot is busy
        answers: list[httpx.Response] = []
        uploader = threading.Thread(target=lambda: answers.append(upload("k-1")))  # the app's queue tries again
        uploader.start()
        _wait_until(lambda: gate.admitted == 1, "the upload admitted, waiting for the model")
        busy = client.post("/v1/detect", files={"photo": ("p.png", PHOTO)})
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "server_busy"
        gate.loop.call_soon_threadsafe(gate.slots.release)
        uploader.join(30)
        assert answers[0].status_code == 201 and answers[0].json()["findings"][0]["hazard_id"] == "FIRE-001"
        assert gate.admitted == 0 and gate.infer_s > 0  # it ran in the gate's model slot and taught it its time
        assert 'reason="queue_full"} 2.0' in client.get("/metrics").text
