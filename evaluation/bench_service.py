"""Serving benchmark: bare ONNX Runtime vs the hazardscan service over HTTP vs Ultralytics predict.

    .venv/bin/python -m evaluation.bench_service --model models/default [--runs 15]

One run measures, on the same model and the same synthetic photos (a 12-megapixel 4000×3000 phone-like
JPEG and a 1920×1080 JPEG):

* bare ``InferenceSession.run`` on a prepared 1×3×H×W tensor (the options of the service's shared session; a photo
  on its own runs in the service's spinning session, whose time the ratios take as bare where it is faster);
* the service end to end: ``POST /v1/detect`` → JSON, against ``hazardscan serve`` in a subprocess, the photo
  sent both ways: as the multipart field ``photo`` and as the request body itself (``Content-Type: image/jpeg``);
* Ultralytics ``YOLO(model.onnx, task="detect").predict(path)`` in another subprocess (if installed);
* two decoding floors: ``cv2.imdecode(IMREAD_REDUCED_COLOR_8)``, the least work libjpeg-turbo can do for
  the file at any scale (every Huffman-coded coefficient is still parsed, only DC is transformed); and the
  same at the scale the model input needs (the smallest DCT scale whose image still covers the letterbox,
  long side at least the input size: 1/4 for a 1080p photo and a 416 model, where 1/8 gives 240 px, too few),
  the honest floor for a service that must not feed the model fewer pixels than it takes. No server can
  answer faster than bare + the second, so ``(bare + floor) / bare`` bounds the service's ratio from below.

* the transport floor: the same client posting the same body to a minimal HTTP server (asyncio, uvloop where
  installed, in a subprocess) that reads it and answers ``{}``: what moving the photo over loopback costs any
  server with this client (httpx), before it does anything with it.

The three are interleaved (one of each per iteration, never concurrently), so background load hits them
alike. It prints medians, the paired ratios service/bare and ultralytics/bare, the service's own stage
timings, its RSS after the model loaded, its time to ready, and whether torch/ultralytics sit in its
``sys.modules``.
``svc/(floor+bare)`` is the service's cost per photo against that lower bound, each pair from one iteration, bare
being the faster of the iteration's bare run and the session run of that same request (the service's own, from its
``timings_ms``: the two processes run the same session a few ms apart, either way round, and a floor must not be
above the service; a photo on its own runs in the service's spinning session): what HTTP, multipart, JSON, decoding
above the floor, letterboxing and the hazard rules add; it is given for both uploads (form, body) against both
floors (at the needed scale, at any scale), and for the body against (floor at the needed scale + bare + transport),
from httpx and from a lean client (:class:`LeanClient`).
Targets: service ≤ 1.05× (floor + bare) on 1080p and 12 MP (issue 16), faster than Ultralytics, ≤ 300 MB
RSS, ready ≤ 2 s. Not a test: numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from evaluation.speed import prepared_tensor
from inference_service.api.settings import Settings
from inference_service.imaging import dct_scale
from inference_service.model_card import load_model
from inference_service.runtime import Detector, session_options

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger(__name__)
SERVICE_SPINNING: bool = Settings.model_fields["ort_spinning"].default
LOOP_RUNS = 40  # requests per photo and upload kind for the event loop's CPU time
GAP_S = 0.05  # idle gap before each timed call, so one contender's leftover threads never slow the next

SERVER_BOOT = """
import json, signal, sys
def dump(*_):
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ultralytics", "torchvision"))
    open(sys.argv[1], "w").write(json.dumps(heavy))
signal.signal(signal.SIGUSR1, dump)
from inference_service.cli import main
sys.exit(main(["serve", "--host", "127.0.0.1", "--port", sys.argv[2], "--model", sys.argv[3]]))
"""

ULTRALYTICS_WORKER = """
import sys, time
from ultralytics import YOLO
model_path, imgsz, conf, iou = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rect = sys.argv[5] == "1"
model = YOLO(model_path, task="detect")
sys.stdout.write("@@ready\\n"); sys.stdout.flush()
for line in sys.stdin:
    t0 = time.perf_counter()
    model.predict(line.strip(), imgsz=imgsz, conf=conf, iou=iou, rect=rect, verbose=False)
    sys.stdout.write(f"@@ {(time.perf_counter() - t0) * 1000}\\n"); sys.stdout.flush()
"""


def phone_photo(width: int, height: int, seed: int) -> Image.Image:
    """Smooth structure, edges and sensor-like noise: compresses like a real photo (~3-5 MB at 12 MP)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 48, width // 48, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), np.int16)
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = (((xx // 37 + yy // 53) % 2) * 40 - 20).astype(np.int16)[..., None]
    noise = rng.normal(0, 9, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(base + stripes + noise, 0, 255).astype(np.uint8))


def make_photos(folder: Path) -> list[Path]:
    photos = []
    for name, (w, h) in {"phone_12mp.jpg": (4000, 3000), "frame_1080p.jpg": (1920, 1080)}.items():
        path = folder / name
        phone_photo(w, h, seed=w).save(path, quality=92)
        photos.append(path)
    return photos


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loop_cpu_ms(pid: int) -> float:
    """CPU time the main thread of process ``pid`` has run, in ms (Linux scheduler statistics; NaN elsewhere).

    ``hazardscan serve`` runs its event loop there: what that thread spends per request is the HTTP, routing,
    middleware and JSON work, measured in CPU time, which other load on the machine hardly moves."""
    try:
        return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")


def wait_ready(url: str, proc: subprocess.Popen[Any], what: str, timeout_s: float = 120.0, poll_s: float = 0.1) -> None:
    """Wait until ``url``'s ``/readyz`` answers 200; raise if ``proc`` ends or ``timeout_s`` passes first."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready")
        time.sleep(poll_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def decode_floor(data: bytes, scale: int = 8) -> float:
    """Milliseconds for libjpeg-turbo's decode of ``data`` at 1/``scale`` (1/8: its cheapest)."""
    t0 = time.perf_counter()
    cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED[scale])
    return (time.perf_counter() - t0) * 1000


def needed_scale(data: bytes, input_side: int) -> int:
    """The DCT scale denominator the model input needs (its image still covers the letterbox)."""
    with Image.open(io.BytesIO(data)) as img:
        return dct_scale(*img.size, input_side)


class Bare:
    """The floor: ``session.run`` on the tensor the service prepares for each photo, same session options."""

    def __init__(self, model: Path, photos: list[Path], threads: int | None, spinning: bool, rect: bool | None) -> None:
        loaded = load_model(model, session_options(threads, spinning=spinning))
        detector = Detector(loaded, rect=rect)
        self.feeds: dict[str, dict[str, np.ndarray]] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for photo in photos:
            tensor = prepared_tensor(detector, photo).astype(loaded.input_dtype)
            self.feeds[photo.name] = {loaded.input_name: tensor}
            self.shapes[photo.name] = tuple(tensor.shape[2:])
        self.session, self.output = loaded.session, loaded.output_name

    def run(self, name: str) -> float:
        feed = self.feeds[name]
        t0 = time.perf_counter()
        self.session.run([self.output], feed)
        return (time.perf_counter() - t0) * 1000


class LeanClient:
    """HTTP/1.1 written by hand over one kept-alive socket: a request without a client library's own Python work.

    httpx builds and parses each request in Python, which the client pays on these same cores; a phone's own HTTP
    stack does that work in native code. The time is taken from the first byte sent to the last byte received;
    the answer is parsed after."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path: str, data: bytes, content_type: str = "image/jpeg") -> tuple[float, bytes]:
        """Milliseconds for one ``POST`` of ``data`` as the body, and the answer's body; raises unless 200."""
        head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(data)}\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        self.sock.sendall(head)
        self.sock.sendall(data)
        got = bytearray()
        while (end := got.find(b"\r\n\r\n")) < 0:
            got += self._recv()
        header, body = bytes(got[:end]), got[end + 4 :]
        fields = dict(line.split(b":", 1) for line in header.split(b"\r\n")[1:])
        length = int(next(v for k, v in fields.items() if k.strip().lower() == b"content-length"))
        while len(body) < length:
            body += self._recv()
        elapsed = (time.perf_counter() - t0) * 1000
        status = header.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError(f"{path} answered {status.decode()}: {bytes(body[:200])!r}")
        return elapsed, bytes(body)

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


class Service:
    """``hazardscan serve`` in a subprocess; SIGUSR1 makes it write its heavy ``sys.modules`` entries."""

    def __init__(
        self,
        model: Path,
        tmp: Path,
        threads: int | None,
        spinning: bool | None,
        rect: bool | None,
        root: Path = REPO,
    ) -> None:
        import httpx

        port = free_port()
        self.modules_file = tmp / f"modules-{port}.json"
        env = {
            **os.environ,
            "PYTHONPATH": str(root),
            "HAZARDSCAN_LOG_LEVEL": "WARNING",
            "HAZARDSCAN_PUBLIC_ROUTES": "/v1/detect",  # no API key in the timed path
            "HAZARDSCAN_PRECISION": "fp32",  # the same ONNX file as the bare session and Ultralytics
            "HAZARDSCAN_DATA_DIR": str(tmp / f"data-{port}"),  # the app's database: not the checkout's data/
        }
        if spinning is not None:  # else the service's default
            env["HAZARDSCAN_ORT_SPINNING"] = "1" if spinning else "0"
        if threads:
            env["HAZARDSCAN_THREADS"] = str(threads)
        if rect is not None:
            env["HAZARDSCAN_RECT"] = "1" if rect else "0"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_BOOT, str(self.modules_file), str(port), str(model)], cwd=root, env=env
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        wait_ready(f"http://127.0.0.1:{port}", self.proc, "the service", timeout_s=60, poll_s=0.01)
        self.lean = LeanClient(port)
        self.ready_s = time.perf_counter() - t0
        self.rss_ready = rss_mb(self.proc.pid)

    def post(self, name: str, data: bytes, *, body: bool = False) -> tuple[float, dict[str, float]]:
        """One detection; ``body``: the photo as the request body itself, else as the multipart field."""
        t0 = time.perf_counter()
        if body:
            r = self.client.post("/v1/detect", content=data, headers={"content-type": "image/jpeg"})
        else:
            r = self.client.post("/v1/detect", files={"photo": (name, data, "image/jpeg")})
        r.raise_for_status()
        timings: dict[str, float] = r.json()["timings_ms"]
        return (time.perf_counter() - t0) * 1000, timings

    def post_lean(self, data: bytes) -> tuple[float, dict[str, float]]:
        """One detection with the photo as the body, from :class:`LeanClient`."""
        elapsed, answer = self.lean.post("/v1/detect", data)
        timings: dict[str, float] = json.loads(answer)["timings_ms"]
        return elapsed, timings

    def loop_cpu_per_request(self, name: str, data: bytes, *, body: bool, n: int) -> float:
        """The event loop's CPU ms per request over ``n`` posts of ``data`` (see :func:`loop_cpu_ms`)."""
        self.post(name, data, body=body)
        before = loop_cpu_ms(self.proc.pid)
        for _ in range(n):
            self.post(name, data, body=body)
        return (loop_cpu_ms(self.proc.pid) - before) / n

    def heavy_modules(self) -> list[str] | None:
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.perf_counter() + 5
        while not self.modules_file.exists() and time.perf_counter() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        return list(json.loads(self.modules_file.read_text())) if self.modules_file.exists() else None

    def close(self) -> None:
        self.lean.close()
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


TRANSPORT_SERVER = """
import asyncio, sys
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            lines = head.lower().split(b"\\r\\n")
            length = next(int(h.split(b":")[1]) for h in lines if h.startswith(b"content-length:"))
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 2\\r\\n\\r\\n{}")
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), limit=1 << 23)
    await server.serve_forever()
try:
    import uvloop
except ImportError:
    asyncio.run(main())
else:
    uvloop.run(main())
"""


class Transport:
    """A minimal HTTP server that reads each body and answers ``{}`` (the transport floor), in a subprocess."""

    def __init__(self) -> None:
        import httpx

        port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", TRANSPORT_SERVER, str(port)])
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.perf_counter() + 30
        while True:
            try:
                self.client.post("/", content=b"{}")
                break
            except httpx.TransportError:
                if time.perf_counter() > deadline:
                    raise RuntimeError("transport floor server did not start") from None
                time.sleep(0.01)
        self.lean = LeanClient(port)

    def post(self, data: bytes) -> float:
        t0 = time.perf_counter()
        self.client.post("/v1/detect", content=data, headers={"content-type": "image/jpeg"}).raise_for_status()
        return (time.perf_counter() - t0) * 1000

    def post_lean(self, data: bytes) -> float:
        return self.lean.post("/v1/detect", data)[0]

    def close(self) -> None:
        self.lean.close()
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


class Ultralytics:
    """``YOLO(model.onnx).predict(path)`` in its own process, timed inside it."""

    def __init__(self, onnx_path: Path, imgsz: int, conf: float, iou: float, rect: bool, tmp: Path) -> None:
        config = tmp / "yolo"
        font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        (config / "Ultralytics").mkdir(parents=True, exist_ok=True)
        if font.exists():
            (config / "Ultralytics" / "Arial.ttf").write_bytes(font.read_bytes())
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(config)}
        args = [str(onnx_path), str(imgsz), str(conf), str(iou), "1" if rect else "0"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ULTRALYTICS_WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp,
        )
        if self._reply() != "ready":
            raise RuntimeError("ultralytics worker failed to start")

    def _reply(self) -> str:
        """The worker's next ``@@`` line (Ultralytics prints its own chatter on stdout too)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return line[2:].strip()
        raise RuntimeError("ultralytics worker exited")

    def predict(self, photo: Path) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{photo}\n")
        self.proc.stdin.flush()
        return float(self._reply())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(10)


STAGES_OF = {"svc": "stages", "raw": "raw_stages", "lean": "lean_stages", "earlier": "earlier_stages"}


def session(got: dict[str, list[Any]], kind: str) -> list[float]:
    """Per round, the faster of the bench's bare run and the session run of the ``kind`` request itself (from its
    ``timings_ms``; the bare run alone where that kind's stages were not kept)."""
    stages = got.get(STAGES_OF[kind]) or [{}] * len(got["bare"])
    return [min(b, row.get("infer", b)) for b, row in zip(got["bare"], stages, strict=True)]


def report(samples: dict[str, dict[str, list[Any]]], sizes: dict[str, float], scales: dict[str, int]) -> list[str]:
    """The printed table: medians per photo, paired ratios, the decoding floors and the service's stages."""
    med = statistics.median

    def paired(got: dict[str, list[Any]], svc: str, floor: str, transport: str | None = None) -> float:
        """Median over rounds of ``svc`` / (``floor`` + bare [+ ``transport``])."""
        moved = got[transport] if transport else [0.0] * len(got[svc])
        return med(v / (b + f + t) for v, b, f, t in zip(got[svc], session(got, svc), got[floor], moved, strict=True))

    lines = [
        f"{'photo':<17}{'MB':>5}{'bare':>8}{'form':>8}{'body':>8}{'ultralytics':>13}{'form/bare':>11}"
        f"{'ultra/bare':>12}{'floor/bare':>12}"
    ]
    for name, got in samples.items():
        svc_ratio = med(v / b for v, b in zip(got["svc"], got["bare"], strict=True))
        ul_col, ul_ratio = f"{'-':>13}", f"{'-':>12}"
        if got["ul"]:
            ul_col = f"{med(got['ul']):>13.1f}"
            ul_ratio = f"{med(v / b for v, b in zip(got['ul'], got['bare'], strict=True)):>11.2f}x"
        floor_ratio = med((b + f) / b for b, f in zip(got["bare"], got["floor_s"], strict=True))
        lines.append(
            f"{name:<17}{sizes[name]:>5.1f}{med(got['bare']):>8.1f}{med(got['svc']):>8.1f}{med(got['raw']):>8.1f}"
            f"{ul_col}{svc_ratio:>10.2f}x{ul_ratio}{floor_ratio:>11.2f}x"
        )
    lines += [
        "",
        "svc/(floor+bare), medians of per-round ratios (target <= 1.05x); bare here: the faster of the round's bare",
    ]
    lines += ["run and the same request's own session run (the two processes run the same session a little apart):"]
    lines.append(
        f"  {'photo':<17}{'floor at needed scale':>24}{'form':>8}{'body':>8}{'floor at 1/8':>16}{'form':>8}{'body':>8}"
    )
    for name, got in samples.items():
        needed = f"1/{scales[name]} {med(got['floor_s']):.1f} ms"
        eighth = f"{med(got['floor']):.1f} ms"
        lines.append(
            f"  {name:<17}{needed:>24}{paired(got, 'svc', 'floor_s'):>7.2f}x{paired(got, 'raw', 'floor_s'):>7.2f}x"
            f"{eighth:>16}{paired(got, 'svc', 'floor'):>7.2f}x{paired(got, 'raw', 'floor'):>7.2f}x"
        )
    lines += [
        "",
        "body upload against (floor at the needed scale + bare + transport), the transport floor being a minimal",
    ]
    lines += ["HTTP server's answer to the same body from the same client:"]
    for name, got in samples.items():
        ratio = paired(got, "raw", "floor_s", "transport")
        lines.append(
            f"  {name:<17} transport {med(got['transport']):.1f} ms   body / (floor + bare + transport) {ratio:.2f}x"
        )
    if all(got.get("lean") for got in samples.values()):
        lines += [
            "",
            "the body upload from a lean client (HTTP/1.1 written by hand over one socket, no client library), against",
        ]
        lines += ["(floor at the needed scale + bare) and (floor + bare + that client's transport floor):"]
        for name, got in samples.items():
            with_transport = paired(got, "lean", "floor_s", "lean_transport")
            alone = paired(got, "lean", "floor_s")
            lines.append(
                f"  {name:<17} {med(got['lean']):.1f} ms  body / (floor + bare) {alone:.2f}x   transport "
                f"{med(got['lean_transport']):.1f} ms   body / (floor + bare + transport) {with_transport:.2f}x"
            )
    if all(got["earlier"] for got in samples.values()):
        lines += [
            "",
            "the --compare-root checkout, form upload, in the same rounds (svc/(floor at the needed scale + bare)):",
        ]
        for name, got in samples.items():
            lines.append(
                f"  {name:<17} {med(got['earlier']):.1f} ms  {paired(got, 'earlier', 'floor_s'):.2f}x "
                f"(this checkout: form {paired(got, 'svc', 'floor_s'):.2f}x, body {paired(got, 'raw', 'floor_s'):.2f}x)"
            )
    if any(got.get("loop") for got in samples.values()):
        lines += [
            "",
            f"event-loop CPU per request (ms; the service's main thread, {LOOP_RUNS} requests each, after the rounds):",
        ]
        for name, got in samples.items():
            line = f"  {name:<17}" + "  ".join(f"{kind} {cpu:.2f}" for kind, cpu in got.get("loop", []))
            if got.get("earlier_loop"):
                line += "   --compare-root: " + "  ".join(f"{kind} {cpu:.2f}" for kind, cpu in got["earlier_loop"])
            lines.append(line)
    lines += [
        "",
        "service stages (median ms, from timings_ms); rest: the request's time outside them (HTTP, the upload, JSON):",
    ]
    for name, got in samples.items():
        for kind, total in (("form", "svc"), ("body", "raw"), ("lean", "lean")):
            stage_rows: list[dict[str, float]] = got.get(STAGES_OF[total]) or []
            if not stage_rows:
                continue
            rest = med(t - sum(row.values()) for t, row in zip(got[total], stage_rows, strict=True))
            lines.append(
                f"  {name:<16} {kind:<5}"
                + "  ".join(f"{k} {med(row[k] for row in stage_rows):.1f}" for k in stage_rows[-1])
                + f"  rest {rest:.1f}"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: all cores)")
    parser.add_argument(
        "--spinning",
        action=argparse.BooleanOptionalAction,
        default=SERVICE_SPINNING,
        help="ONNX Runtime spin-waiting for the service and the bare session alike (default: the service's, "
        f"{'on' if SERVICE_SPINNING else 'off'})",
    )
    parser.add_argument(
        "--rect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="minimum-rectangle inputs for the service and the bare session (default: as the card says); "
        "Ultralytics then gets the dynamic-size model and rect=True",
    )
    parser.add_argument("--no-ultralytics", action="store_true")
    parser.add_argument(
        "--compare-root",
        type=Path,
        help="also serve this checkout (an earlier commit's, from `git worktree add`) and post it the form upload in "
        "the same rounds: before and after in one run",
    )
    args = parser.parse_args()
    args.model = args.model.resolve()  # the Ultralytics worker runs in a temporary folder

    loaded = load_model(args.model)
    card, onnx_path = loaded.card, loaded.onnx_path
    with tempfile.TemporaryDirectory(prefix="hazardscan-bench-") as tmp_name:
        tmp = Path(tmp_name)
        photos = make_photos(tmp)
        payloads = {p.name: p.read_bytes() for p in photos}
        service = Service(args.model, tmp, args.threads, args.spinning, args.rect)
        bare = Bare(args.model, photos, args.threads, args.spinning, args.rect)
        transport = Transport()
        earlier = (
            Service(args.model, tmp, args.threads, args.spinning, args.rect, args.compare_root.resolve())
            if (args.compare_root)
            else None
        )
        rect = Detector(loaded, rect=args.rect).rect
        ultra = None
        if not args.no_ultralytics:
            try:
                # Square inputs: give Ultralytics the batch-1 export of the same weights (its static shapes
                # suit it best); rect inputs: the dynamic-size model itself, with rect=True.
                static = onnx_path.with_name("model.b1.onnx")
                ultra_path = static if static.exists() and not rect else onnx_path
                ultra = Ultralytics(ultra_path, max(card.input_size), card.conf_threshold, card.nms_iou, rect, tmp)
            except (OSError, RuntimeError) as exc:
                logger.warning("Ultralytics skipped: %s", exc)
        keys = (
            "bare",
            "svc",
            "raw",
            "lean",
            "ul",
            "stages",
            "raw_stages",
            "lean_stages",
            "earlier_stages",
            "floor",
            "floor_s",
            "transport",
            "lean_transport",
            "earlier",
            "loop",
            "earlier_loop",
        )
        samples: dict[str, dict[str, list[Any]]] = {p.name: {k: [] for k in keys} for p in photos}
        scales = {name: needed_scale(data, max(card.input_size)) for name, data in payloads.items()}
        try:
            for i in range(args.runs + 2):  # the first two rounds warm up
                for photo in photos:
                    got, data = samples[photo.name], payloads[photo.name]
                    time.sleep(GAP_S)
                    b = bare.run(photo.name)
                    time.sleep(GAP_S)
                    svc, stages = service.post(photo.name, data)
                    time.sleep(GAP_S)
                    raw, raw_stages = service.post(photo.name, data, body=True)
                    time.sleep(GAP_S)
                    lean, lean_stages = service.post_lean(data)
                    time.sleep(GAP_S)
                    ul = ultra.predict(photo) if ultra else None
                    time.sleep(GAP_S)
                    floor = decode_floor(data)
                    time.sleep(GAP_S)
                    floor_s = decode_floor(data, scales[photo.name])
                    time.sleep(GAP_S)
                    moved = transport.post(data)
                    time.sleep(GAP_S)
                    moved_lean = transport.post_lean(data)
                    if earlier is not None:
                        time.sleep(GAP_S)
                        got_earlier, earlier_stages = earlier.post(photo.name, data)
                    if i >= 2:
                        got["floor"].append(floor)
                        got["floor_s"].append(floor_s)
                        got["transport"].append(moved)
                        got["lean_transport"].append(moved_lean)
                        if earlier is not None:
                            got["earlier"].append(got_earlier)
                            got["earlier_stages"].append(earlier_stages)
                        got["bare"].append(b)
                        got["svc"].append(svc)
                        got["raw"].append(raw)
                        got["lean"].append(lean)
                        got["stages"].append(stages)
                        got["raw_stages"].append(raw_stages)
                        got["lean_stages"].append(lean_stages)
                        if ul is not None:
                            got["ul"].append(ul)
            for photo in photos:  # the event loop's own work, in CPU time
                for kind, body in (("form", False), ("body", True)):
                    for label, server in (("loop", service), ("earlier_loop", earlier)):
                        if server is not None:
                            cpu = server.loop_cpu_per_request(photo.name, payloads[photo.name], body=body, n=LOOP_RUNS)
                            samples[photo.name][label].append((kind, cpu))
            rss_after = rss_mb(service.proc.pid)
            heavy = service.heavy_modules()
        finally:
            service.close()
            transport.close()
            if earlier is not None:
                earlier.close()
            if ultra:
                ultra.close()
        sizes = {p.name: p.stat().st_size / 1e6 for p in photos}

    header = (
        f"model {card.model_id} {card.version}  input {list(card.input_size)}  {len(card.classes)} classes  "
        f"rect {'on' if rect else 'off'} (tensors: {', '.join(f'{k} {v[1]}×{v[0]}' for k, v in bare.shapes.items())})  "
        f"ORT threads {args.threads or os.cpu_count()} spinning {'on' if args.spinning else 'off'}  "
        f"{args.runs} interleaved runs; "
        "medians in ms, ratios are medians of pairs"
    )
    footer = (
        f"service process: ready in {service.ready_s:.2f} s; RSS {service.rss_ready:.0f} MB after load, "
        f"{rss_after:.0f} MB after the runs; torch/ultralytics in sys.modules: {heavy}"
    )
    sys.stdout.write("\n".join(["", header, "", *report(samples, sizes, scales), "", footer]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
