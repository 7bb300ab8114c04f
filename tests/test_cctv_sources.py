"""Camera readers on real files, folders, HTTP and a dead RTSP address; the slot and back-off policies."""

from __future__ import annotations

import datetime as dt
import functools
import os
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _builders import encode, scene
from _cctv import RED_CELL, free_port, write_video

from inference_service.cctv.backoff import Backoff
from inference_service.cctv.batcher import Batcher
from inference_service.cctv.config import Camera
from inference_service.cctv.sources import CameraReader, Frame, FrameSlot, _CaptureOptions

BASE = 1_800_000_000.0


def read_all(reader: CameraReader, consume_delay: float = 0.0, timeout: float = 30.0) -> list[Frame]:
    frames: list[Frame] = []
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = reader.slot.take()
        if frame is not None:
            frames.append(frame)
            time.sleep(consume_delay)
        elif reader.finished.is_set():
            break
        else:
            reader.arrived.wait(0.05)
            reader.arrived.clear()
    reader.join(5)
    return frames


def make_reader(url: str, **camera: object) -> CameraReader:
    return CameraReader(Camera(id="c", url=url, **camera), threading.Event(), threading.Event(), base_time=BASE)


def test_a_recording_is_read_whole_and_in_order_even_when_inference_is_slow(tmp_path: Path):
    video = write_video(tmp_path / "v.avi", seconds=2.0, fps=10, shows=[(0.5, 1.0, RED_CELL)])
    reader = make_reader(str(video))
    frames = read_all(reader, consume_delay=0.01)  # slower than decoding: the reader must wait, not drop
    assert [f.index for f in frames] == list(range(20))
    assert [round(f.ts - BASE, 3) for f in frames] == [round(i / 10, 3) for i in range(20)]
    assert reader.health.state == "ended" and reader.health.frames_dropped == 0
    assert frames[0].image.channels == "BGR" and (frames[0].image.width, frames[0].image.height) == (320, 240)
    red = [i for i, f in enumerate(frames) if f.image.array[80, 120, 2] > 200 and f.image.array[80, 120, 1] < 60]
    assert red == [5, 6, 7, 8, 9]


def test_sample_fps_takes_frames_by_media_time(tmp_path: Path):
    video = write_video(tmp_path / "v.avi", seconds=2.0, fps=10)
    frames = read_all(make_reader(str(video), sample_fps=2.5))
    assert [round(f.ts - BASE, 3) for f in frames] == [0.0, 0.4, 0.8, 1.2, 1.6]


def test_start_time_dates_a_recording(tmp_path: Path):
    video = write_video(tmp_path / "v.avi", seconds=0.3, fps=10)
    frames = read_all(make_reader(str(video), start_time="2026-11-30T08:00:00+08:00"))
    start = dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC).timestamp()
    assert [f.ts - start for f in frames] == pytest.approx([0.0, 0.1, 0.2], abs=1e-6)


def test_an_image_folder_is_read_in_name_order_and_bad_files_are_skipped(tmp_path: Path):
    folder = tmp_path / "snaps"
    folder.mkdir()
    for name, colour in (("b.png", (0, 255, 0)), ("a.jpg", (255, 0, 0)), ("c.webp", (0, 0, 255))):
        (folder / name).write_bytes(
            encode(scene(64, 48, [(0, 0, 32, 24, colour)]), name.split(".")[1].upper().replace("JPG", "JPEG"))
        )
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "notes.txt").write_text("not an image")
    reader = make_reader(str(folder), sample_fps=0.5)
    frames = read_all(reader)
    assert [tuple(int(v) for v in f.image.rgb()[0, 0]) for f in frames] == [
        pytest.approx((255, 0, 0), abs=8),
        pytest.approx((0, 255, 0), abs=8),
        pytest.approx((0, 0, 255), abs=8),
    ]
    assert [f.ts - BASE for f in frames] == [0.0, 2.0, 6.0]  # a.jpg, b.png, (broken skipped), c.webp
    assert reader.health.errors == 1 and "broken.jpg" in (reader.health.last_error or "")


def test_a_recording_served_over_http(tmp_path: Path):
    write_video(tmp_path / "v.avi", seconds=1.0, fps=10)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v.avi"
        reader = make_reader(url, live=False)
        assert len(read_all(reader)) == 10
        assert reader.health.state == "ended"
    finally:
        server.shutdown()
        server.server_close()


def test_a_dead_stream_is_retried_with_backoff_and_stops_promptly():
    stop = threading.Event()
    camera = Camera(id="dead", url=f"rtsp://127.0.0.1:{free_port()}/cam")
    reader = CameraReader(camera, stop, threading.Event(), backoff=Backoff(base_s=0.05, max_s=0.2))
    reader.start()
    time.sleep(1.0)
    assert reader.health.state == "reconnecting" and reader.is_alive()
    assert reader.health.reconnects >= 2 and reader.health.errors >= 2
    assert "cannot open rtsp://127.0.0.1" in (reader.health.last_error or "")
    t0 = time.monotonic()
    stop.set()
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - t0 < 1.0
    assert reader.health.state == "stopped" and reader.health.frames_read == 0


def _frame(i: int) -> Frame:
    return Frame("c", i, float(i), None)  # type: ignore[arg-type]


def test_live_slot_drops_the_oldest_frame():
    arrived = threading.Event()
    slot = FrameSlot(1, drop_oldest=True, arrived=arrived)
    stop = threading.Event()
    for i in range(3):
        assert slot.put(_frame(i), stop)
    assert arrived.is_set() and slot.dropped == 2
    assert [slot.take().index, slot.take()] == [2, None]  # type: ignore[union-attr]


def test_file_slot_blocks_the_reader_until_there_is_room():
    slot = FrameSlot(2, drop_oldest=False, arrived=threading.Event())
    stop = threading.Event()
    slot.put(_frame(0), stop)
    slot.put(_frame(1), stop)
    done = threading.Event()
    threading.Thread(target=lambda: (slot.put(_frame(2), stop), done.set()), daemon=True).start()
    assert not done.wait(0.2)  # full: the put waits
    assert slot.take().index == 0  # type: ignore[union-attr]
    assert done.wait(2)
    assert [slot.take().index, slot.take().index] == [1, 2]  # type: ignore[union-attr]
    assert slot.dropped == 0


def test_a_blocked_put_gives_up_on_stop():
    slot = FrameSlot(1, drop_oldest=False, arrived=threading.Event())
    stop = threading.Event()
    slot.put(_frame(0), stop)
    stop.set()
    assert slot.put(_frame(1), stop) is False


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.5, 0.5),  # no jitter at rand 0.5
        (1, 0.5, 1.0),
        (3, 0.5, 4.0),
        (10, 0.5, 30.0),  # capped
        (1000, 0.5, 30.0),  # no overflow
        (2, 0.0, 1.6),  # -20 %
        (2, 1.0, 2.4),  # +20 % (rand is below 1 in practice)
    ],
)
def test_backoff(attempt: int, rand: float, expected: float):
    assert Backoff(base_s=0.5, factor=2, max_s=30, jitter=0.2).delay(attempt, rand) == pytest.approx(expected)


def test_capture_options_are_shared_by_equal_opens_and_serialised_otherwise(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", raising=False)
    options = _CaptureOptions()
    seen: list[str | None] = []
    entered = threading.Event()

    def other() -> None:
        with options.use({"rtsp_transport": "udp"}):
            seen.append(os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS"))
            entered.set()

    with options.use({"rtsp_transport": "tcp", "probesize": "500000"}):
        with options.use({"rtsp_transport": "tcp", "probesize": "500000"}):  # same value: no waiting
            assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;tcp|probesize;500000"
        worker = threading.Thread(target=other, daemon=True)
        worker.start()
        assert not entered.wait(0.2)  # another value waits for the open in flight
    assert entered.wait(2) and seen == ["rtsp_transport;udp"]
    with options.use({}):  # no options: the variable as it was before (unset)
        assert "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ


def _reader_with(camera_id: str, indices: list[int], finished: bool = True) -> CameraReader:
    reader = make_reader("/nonexistent.mp4")
    reader.camera = Camera(id=camera_id, url="/nonexistent.mp4")
    reader.slot.capacity = 16
    for i in indices:
        reader.slot.put(Frame(camera_id, i, float(i), None), threading.Event())  # type: ignore[arg-type]
    if finished:
        reader.finished.set()
    return reader


@pytest.mark.parametrize(
    ("slots", "max_batch", "batches"),
    [
        # round-robin across cameras, each camera in order, the start rotating between calls
        ({"a": [0, 1, 2, 3], "b": [0]}, 3, [["a0", "b0", "a1"], ["a2", "a3"]]),
        ({"a": [0, 1], "b": [0, 1], "c": [0]}, 8, [["a0", "b0", "c0", "a1", "b1"]]),
        ({"a": [0], "b": [0, 1, 2]}, 2, [["a0", "b0"], ["b1", "b2"]]),
        ({"a": []}, 4, []),
    ],
)
def test_batcher_round_robin(slots: dict[str, list[int]], max_batch: int, batches: list[list[str]]):
    readers = [_reader_with(cam, idx) for cam, idx in slots.items()]
    batcher = Batcher(readers, threading.Event(), threading.Event(), max_batch=max_batch)
    got = []
    while (batch := batcher.next_batch(timeout=0.01)) is not None:
        got.append([f"{f.camera_id}{f.index}" for f in batch])
    assert got == batches
    assert batcher.stats.frames == sum(len(b) for b in batches)


def test_batcher_waits_for_a_live_reader_and_stops_on_stop():
    stop = threading.Event()
    reader = _reader_with("live", [], finished=False)
    batcher = Batcher([reader], reader.arrived, stop)
    assert batcher.next_batch(timeout=0.05) == []  # nothing yet, source not finished
    stop.set()
    assert batcher.next_batch(timeout=0.05) is None
