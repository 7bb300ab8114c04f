"""Real parts for the CCTV tests: generated videos, GStreamer's RTSP server, PostgreSQL, a webhook receiver.

* Videos: MJPEG AVIs written with OpenCV (its wheel has no H.264 encoder); the RTSP helper turns one
  into an H.264 MP4 with GStreamer's ``x264enc`` and serves that.
* RTSP: ``_rtsp_server.py`` runs under the system ``/usr/bin/python3`` (which has ``gi``) with
  ``gir1.2-gst-rtsp-server-1.0`` and the GStreamer plugins from Debian.
* PostgreSQL: Debian's ``postgresql`` binaries, ``initdb`` + ``pg_ctl`` on a temporary folder and port
  (as the ``postgres`` user when the tests run as root).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inference_service.cctv.store import StoredEvent

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SCRIPT = Path(__file__).with_name("_rtsp_server.py")
RED_BGR = (0, 0, 255)
GREEN_BGR = (0, 255, 0)
BLUE_BGR = (255, 0, 0)

Square = tuple[int, int, int, int, tuple[int, int, int]]  # x1, y1, x2, y2, BGR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_video(
    path: Path,
    *,
    seconds: float,
    fps: float = 10.0,
    size: tuple[int, int] = (320, 240),
    shows: Sequence[tuple[float, float, Square]] = (),
) -> Path:
    """Grey MJPEG AVI; each ``(start, end, square)`` is drawn for media times in ``[start, end)``."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for i in range(round(seconds * fps)):
        t = i / fps
        frame = np.full((height, width, 3), 114, np.uint8)
        for start, end, (x1, y1, x2, y2, bgr) in shows:
            if start <= t < end:
                frame[y1:y2, x1:x2] = bgr
        writer.write(frame)
    writer.release()
    return path


# A red square that exactly covers one cell of the tiny model's 4×4 grid on a 320×240 frame
# (letterboxed to 64×48 + 8 px padding top and bottom: cell (1, 1) is x 80..160, y 40..120).
RED_CELL: Square = (80, 40, 160, 120, RED_BGR)
GREEN_CELL: Square = (160, 40, 240, 120, GREEN_BGR)
BLUE_CELL: Square = (0, 120, 80, 200, BLUE_BGR)


# ---- stored events -----------------------------------------------------------------------------------


def event(i: int, **changes: Any) -> StoredEvent:
    """A stored event ``ev<i>`` on camera ``cam-<i % 2>``, starting at ``1000 + 10 i``."""
    base = StoredEvent(
        id=f"ev{i}",
        camera_id=f"cam-{i % 2}",
        hazard_id="FIRE-001" if i % 3 else "CONST-001",
        hazard_name_en="Open fire on site",
        hazard_name_zh="现场明火",
        severity="critical",
        zone=None,
        status="open",
        started_at=1000.0 + i * 10,
        opened_at=1001.0 + i * 10,
        last_seen=1002.0 + i * 10,
        ended_at=None,
        peak_confidence=0.9,
        frames=3,
        evidence_ts=1001.5 + i * 10,
        evidence_box=(1.5, 2.25, 30.0, 40.125),
        model_id="tiny-rgb",
        evidence_jpeg=b"\xff\xd8jpeg%d" % i,
    )
    return replace(base, **changes)


# ---- RTSP --------------------------------------------------------------------------------------------


def rtsp_available() -> str | None:
    """None when the RTSP server can run, else why not (with the Debian packages to install)."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst; Gst.init(None);"
        "assert all(Gst.ElementFactory.find(e) for e in ('x264enc', 'qtdemux', 'h264parse', 'rtph264pay'))"
    )
    proc = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode:
        return (
            "GStreamer RTSP server unavailable; apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi "
            "gstreamer1.0-plugins-{base,good,bad,ugly}: " + proc.stderr.strip()[-300:]
        )
    return None


class RtspServer:
    """GStreamer's RTSP server in a subprocess serving one H.264 MP4 at ``rtsp://127.0.0.1:port/cam``."""

    def __init__(self, source_avi: Path, h264_mp4: Path, port: int | None = None) -> None:
        self.source = source_avi
        self.mp4 = h264_mp4
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self, timeout: float = 60.0) -> RtspServer:
        log = self.mp4.with_name(f"rtsp-{self.port}.log")
        with log.open("ab") as err:  # a file, not a pipe nobody reads: GStreamer may log a lot
            self.proc = subprocess.Popen(
                [SYSTEM_PYTHON, str(RTSP_SCRIPT), str(self.source), str(self.mp4), str(self.port)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            self.kill()
            raise RuntimeError(f"RTSP server did not start ({line!r}): {log.read_text(errors='replace')[-2000:]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the port answers once GLib's loop runs
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("RTSP server port never opened")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


# ---- PostgreSQL --------------------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL on 127.0.0.1; yields its URL."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found; apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="hazardscan-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run as the postgres user
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "hazardscan", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://hazardscan@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


# ---- webhook receiver --------------------------------------------------------------------------------


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that answers 500 to the first ``fail_first`` POSTs, then 200."""

    def __init__(self, secret: str, fail_first: int = 0, port: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.requests = 0
        self.accepted: list[dict[str, Any]] = []  # payloads answered with 200
        self.bad_signatures = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                with receiver._lock:
                    receiver.requests += 1
                    fail = receiver.requests <= receiver.fail_first
                    if not hmac.compare_digest(expected, self.headers.get("X-Hazardscan-Signature", "")):
                        receiver.bad_signatures += 1
                    if not fail:
                        receiver.accepted.append(
                            {
                                "delivery": self.headers.get("X-Hazardscan-Delivery"),
                                "kind": self.headers.get("X-Hazardscan-Event"),
                                **json.loads(body),
                            }
                        )
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def deliveries(self) -> list[tuple[str, str]]:
        """``(event id, message type)`` of every accepted POST, in arrival order."""
        return [(p["event"]["id"], p["type"]) for p in self.accepted]
