"""Live RTSP cameras from GStreamer's real RTSP server: one dies mid-run and comes back, the other goes on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _cctv import RED_CELL, RtspServer, rtsp_available, write_video

from inference_service.cctv.config import parse_cameras
from inference_service.cctv.scanner import StoreSink, StreamScanner
from inference_service.cctv.sources import CameraReader
from inference_service.cctv.store import EventStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = rtsp_available()
    if reason:
        pytest.skip(reason)
    # every new RTSP session plays the file from its start: a fire from 0.3 s to 1.2 s, then 30 s of calm
    return write_video(tmp_path_factory.mktemp("rtsp") / "live.avi", seconds=30, fps=10, shows=[(0.3, 1.2, RED_CELL)])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_a_dropped_stream_reconnects_and_the_other_camera_keeps_going(live_video: Path, detector, taxonomy, tmp_path):
    mp4 = live_video.with_suffix(".mp4")  # H.264, encoded by the first server
    flaky = RtspServer(live_video, mp4).start()
    steady = RtspServer(live_video, mp4).start()
    store = EventStore(tmp_path / "events.db")
    config = parse_cameras(
        {
            "defaults": {"events": {"persistence_s": 0.3, "close_after_s": 0.5, "cooldown_s": 0}},
            "cameras": [
                {"id": "flaky", "url": flaky.url, "hazards": ["FIRE-001"], "max_backoff_s": 1.0},
                {"id": "steady", "url": steady.url, "hazards": ["FIRE-001"]},
            ],
        }
    )
    scanner = StreamScanner(config, detector, taxonomy, StoreSink(store))
    runner = threading.Thread(target=scanner.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: len(scanner.readers) == 2, 5, "readers")
        cam: dict[str, CameraReader] = {r.camera.id: r for r in scanner.readers}

        def events(camera: str) -> list[str]:
            return [e.status for e in store.list_events(camera=camera)]

        wait_for(lambda: events("flaky") != [], 20, "the first fire on the flaky camera")
        flaky.kill()  # the stream dies mid-run
        wait_for(lambda: cam["flaky"].health.state == "reconnecting", 10, "the flaky camera to notice")
        wait_for(lambda: events("flaky") == ["closed"], 5, "the interrupted event to close")

        steady_before = cam["steady"].health.frames_read
        time.sleep(1.0)
        assert cam["steady"].health.frames_read - steady_before >= 5  # ~10 fps while the other is down
        assert cam["steady"].health.state == "streaming"

        flaky.start()  # same port: the camera comes back
        wait_for(lambda: events("flaky") == ["closed", "closed"], 20, "a fire seen after reconnecting")
    finally:
        scanner.stop.set()
        runner.join(15)
        flaky.kill()
        steady.kill()
    assert not runner.is_alive()
    health = scanner.report.cameras
    assert health["flaky"]["reconnects"] >= 1 and health["flaky"]["state"] == "stopped"
    assert health["steady"]["reconnects"] == 0 and events("steady") == ["closed"]
    assert all(store.evidence(e.id) for e in store.list_events())
