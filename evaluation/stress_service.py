"""Memory and backpressure under hostile load: the real server, 64 concurrent clients, evil inputs.

    .venv/bin/python -m evaluation.stress_service [--clients 64] [--seconds 60] [--model models/default]

Starts ``hazardscan serve`` in a subprocess with its default limits, samples its RSS every 50 ms, and has
``--clients`` connections post, for ``--seconds``, a weighted mix of the inputs of the hardening review
(issue 16): 7000×7000 16-bit RGBA PNGs (a few hundred KB that decode to ~400 MB), batches of 16 of them,
12 MP phone JPEGs, a 12 MP WebP, JPEGs with corrupt entropy data, truncated JPEGs, 20000×20000
decompression bombs, 1×1 pixels, text files, 20 MB of junk behind a JPEG signature. A probe process times
``/healthz`` all along. It prints the status codes per input, latencies of the accepted requests, the
``/healthz`` latencies, and RSS at ready, at peak and 10 s after the load. Target (issue 16): peak RSS
under 1 GB, back toward the base afterwards.
``--client-nice N`` lowers the client processes (Linux), which here share the server's cores and in service
never do; ``--server-root`` serves another checkout (an earlier commit) with the same clients, to compare.
``--mix soak --seconds 1800 --clients 8`` is the soak run: day-to-day photos for 30 minutes, RSS by quarter.
Not a test: the figures depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import multiprocessing
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import httpx
from PIL import Image

from evaluation.bench_service import REPO, free_port, phone_photo, rss_mb, wait_ready
from inference_service.api.workers import lower_priority

CLIENT_NICE = 0
CLIENTS_PER_PROCESS = 64


def png16_rgba(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG of a flat colour: tiny on the wire, ``width × height × 8`` bytes raw."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + b"\x80\x00\x40\x00\x20\x00\xff\xff" * width
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def encoded(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


Files = list[tuple[str, tuple[str, bytes]]]
# input, status, seconds at the client, at the server from the request's headers and from its last body byte
Answer = tuple[str, int, float, float, float]


def soak_inputs() -> dict[str, tuple[float, Files]]:
    """What phones and front ends send day to day, with a little junk: for the long (soak) run."""
    jpeg12 = encoded(phone_photo(4000, 3000, 1), "JPEG", quality=90)
    jpeg1080 = encoded(phone_photo(1920, 1080, 3), "JPEG", quality=85)
    return {
        "jpeg_12mp": (4, [("photo", ("p.jpg", jpeg12))]),
        "jpeg_1080p": (4, [("photo", ("f.jpg", jpeg1080))]),
        "heic_12mp": (1, [("photo", ("p.heic", encoded(phone_photo(4000, 3000, 4), "HEIF", quality=80)))]),
        "batch4_jpeg": (1, [("photos", (f"{i}.jpg", jpeg1080)) for i in range(4)]),
        "jpeg_truncated": (0.2, [("photo", ("t.jpg", jpeg12[: len(jpeg12) // 2]))]),
        "text": (0.2, [("photo", ("notes.txt", b"not a photo\n" * 10))]),
    }


def inputs() -> dict[str, tuple[float, Files]]:
    """name -> (weight, multipart files)."""
    big_png = png16_rgba(7000, 7000)
    jpeg12 = encoded(phone_photo(4000, 3000, 1), "JPEG", quality=90)
    mid = len(jpeg12) // 2
    return {
        "png16_7000": (3, [("photo", ("big.png", big_png))]),
        "batch16_png16_7000": (1, [("photos", (f"{i}.png", big_png)) for i in range(16)]),
        "jpeg_12mp": (4, [("photo", ("p.jpg", jpeg12))]),
        "webp_12mp": (1, [("photo", ("p.webp", encoded(phone_photo(4000, 3000, 2), "WEBP", quality=80)))]),
        "jpeg_corrupt": (1, [("photo", ("c.jpg", jpeg12[:mid] + b"\0" * 4000 + jpeg12[mid + 4000 :]))]),
        "jpeg_truncated": (1, [("photo", ("t.jpg", jpeg12[:mid]))]),
        "png_bomb_20000": (1, [("photo", ("bomb.png", png_bomb(20000, 20000)))]),
        "one_pixel": (1, [("photo", ("px.png", encoded(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG")))]),
        "text": (1, [("photo", ("notes.txt", b"not a photo\n" * 10))]),
        "junk_20mb": (1, [("photo", ("junk.jpg", b"\xff\xd8\xff" + random.Random(0).randbytes(20 * 1024 * 1024)))]),
    }


PROBE = """
import sys, time, httpx
end = time.monotonic() + float(sys.argv[2])
with httpx.Client(base_url=sys.argv[1], timeout=30) as c:
    while time.monotonic() < end:
        t0 = time.perf_counter()
        c.get("/healthz")
        sys.stdout.write(f"{time.perf_counter() - t0}\\n")
        sys.stdout.flush()
        time.sleep(0.1)
"""


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.timeline: list[tuple[float, float]] = []  # (seconds since start, RSS MB), one a second
        self.stop = threading.Event()

    def run(self) -> None:
        t0 = last = time.monotonic()
        while not self.stop.is_set():
            rss = rss_mb(self.pid)
            self.peak = max(self.peak, rss)
            if time.monotonic() - last >= 1.0:
                last = time.monotonic()
                self.timeline.append((last - t0, rss))
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server-root",
        type=Path,
        default=REPO,
        help="serve the code of this checkout (e.g. an earlier commit's, from `git worktree add`) to compare",
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=CLIENT_NICE,
        help="niceness of the client processes (Linux), which here share the server's cores (default: 0, the server's)",
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        default=0,
        help=f"processes the clients run in (default: one per {CLIENTS_PER_PROCESS} clients)",
    )
    parser.add_argument(
        "--expect-continue",
        action="store_true",
        help="clients send Expect: 100-continue and their bodies only on the server's go-ahead (as curl does)",
    )
    parser.add_argument(
        "--mix", choices=("evil", "soak"), default="evil", help="evil: the review's inputs; soak: day-to-day photos"
    )
    args = parser.parse_args()

    catalogue = inputs() if args.mix == "evil" else soak_inputs()
    port = free_port()
    root = args.server_root.resolve()
    data_dir = tempfile.TemporaryDirectory(prefix="hazardscan-stress-")  # the app's database: not the checkout's
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "HAZARDSCAN_LOG_LEVEL": "WARNING",
        "HAZARDSCAN_DATA_DIR": data_dir.name,
    }
    env.setdefault("HAZARDSCAN_PUBLIC_ROUTES", "/v1/detect,/v1/detect/batch")  # open detection for the run
    proc = subprocess.Popen(
        [sys.executable, "-m", "inference_service.cli", "serve", "--port", str(port), "--model", str(args.model)],
        cwd=root,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, "the service")
        rss_ready = rss_mb(proc.pid)
        load_before = os.getloadavg()[0]
        sampler = RssSampler(proc.pid)
        sampler.start()
        end = time.monotonic() + args.seconds  # CLOCK_MONOTONIC: the same clock in every client process
        # The /healthz probe runs in a process of its own: in this one it would wait for the clients' GIL.
        probe = subprocess.Popen(
            [sys.executable, "-c", PROBE, base, str(args.seconds)], stdout=subprocess.PIPE, text=True
        )
        # The clients run in a few processes, an event loop each, so that their own work weighs little in their
        # latencies.
        procs = max(1, min(args.clients, args.client_procs or -(-args.clients // CLIENTS_PER_PROCESS)))
        seeds = [list(range(args.seed + i, args.seed + args.clients, procs)) for i in range(procs)]
        context = multiprocessing.get_context("fork")
        queue: multiprocessing.Queue[tuple[list[Answer], Counter[str]]] = context.Queue()
        workers = [
            context.Process(
                target=run_clients,
                args=(base, catalogue, group, end, args.client_nice, args.expect_continue, queue),
            )
            for group in seeds
        ]
        for worker in workers:
            worker.start()
        results: list[Answer] = []
        errors: Counter[str] = Counter()
        for _ in workers:
            got, failed = queue.get(timeout=args.seconds + 300)
            results.extend(got)
            errors.update(failed)
        for worker in workers:
            worker.join()
        health = [float(v) for v in probe.communicate(timeout=120)[0].split()]
        time.sleep(10)
        sampler.stop.set()
        sampler.join()
        rss_after = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(20)
        data_dir.cleanup()

    by_input: dict[str, Counter[int]] = defaultdict(Counter)
    for name, status, *_ in results:
        by_input[name][status] += 1
    codes = Counter(status for _, status, *_ in results)
    lines = [
        f"{args.clients} clients in {procs} processes (nice +{args.client_nice}"
        f"{', Expect: 100-continue' if args.expect_continue else ''}), {args.seconds:.0f} s, "
        f"{len(results)} answers, "
        f"transport errors {dict(errors)}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    ]
    for name in catalogue:
        times = sorted(s for n, status, s, *_ in results if n == name and status < 500)
        spread = f"  answered p50 {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s" if times else ""
        lines.append(f"  {name:<20} {dict(sorted(by_input[name].items()))}{spread}")
    lines.append(f"status codes: {dict(sorted(codes.items()))}")
    lines.append(
        "latencies, p50 / p95 / p99 in s, at the client (its own waits for a CPU included) | at the server from the "
        "request's headers (Server-Timing upload + app) | at the server from its last body byte (app):"
    )
    groups = {
        "refused (429/503)": [r[2:] for r in results if r[1] in (429, 503)],
        "answered (<500)": [r[2:] for r in results if r[1] < 500],
        "scanned (200)": [r[2:] for r in results if r[1] == 200],
    }
    for label, rows in groups.items():
        if len(rows) > 1:
            views = [sorted(row[i] for row in rows) for i in range(3)]
            lines.append(
                f"  {label:<18} {len(rows):>6}: "
                + " | ".join(" / ".join(f"{_q(v, q):.3f}" for q in (50, 95, 99)) for v in views)
            )
    if len(health) > 1:
        hq = statistics.quantiles(health, n=100, method="inclusive")
        lines.append(
            f"/healthz: {len(health)} probes, p50 {statistics.median(health) * 1000:.1f} ms, "
            f"p95 {hq[94] * 1000:.1f} ms, p99 {hq[98] * 1000:.1f} ms, max {max(health) * 1000:.1f} ms, "
            f"over 100 ms: {sum(h > 0.1 for h in health)}"
        )
    lines.append(f"RSS: ready {rss_ready:.0f} MB, peak {sampler.peak:.0f} MB, 10 s after {rss_after:.0f} MB")
    if sampler.timeline:  # a leak shows as a rising median from quarter to quarter
        span = sampler.timeline[-1][0] or 1.0
        quarters = [[r for t, r in sampler.timeline if q * span / 4 <= t < (q + 1) * span / 4 + 1e-9] for q in range(4)]
        lines.append(
            "RSS median by quarter of the run: "
            + ", ".join(f"{statistics.median(q):.0f}" for q in quarters if q)
            + " MB"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run_clients(
    base: str,
    catalogue: dict[str, tuple[float, Files]],
    seeds: list[int],
    end: float,
    client_nice: int,
    expect_continue: bool,
    queue: multiprocessing.Queue[tuple[list[Answer], Counter[str]]],
) -> None:
    """One client process: a connection per seed posts the weighted mix until ``end``; the answers go to ``queue``.

    The clients share the server's cores here, so they must cost it little: each request is encoded once, and
    one event loop per process writes the bytes over a kept-alive connection and reads the answer (a thread
    per client with an HTTP library spent whole seconds of its own CPU and GIL waits inside the latencies)."""
    lower_priority(client_nice)  # the process's only thread
    host, port = base.removeprefix("http://").split(":")
    requests = {
        name: encoded_request(name_path(name), host, files, expect_continue) for name, (_, files) in catalogue.items()
    }
    results: list[Answer] = []
    errors: Counter[str] = Counter()
    asyncio.run(_clients(host, int(port), catalogue, requests, seeds, end, results, errors))
    queue.put((results, errors))


def name_path(name: str) -> str:
    return "/v1/detect/batch" if name.startswith("batch") else "/v1/detect"


def encoded_request(path: str, host: str, files: Files, expect_continue: bool = False) -> tuple[bytes, bytes]:
    """The HTTP/1.1 request that posts ``files`` to ``path`` as a multipart form, encoded once: head and body."""
    request = httpx.Request("POST", f"http://{host}{path}", files=files)
    body = request.read()
    expect = "Expect: 100-continue\r\n" if expect_continue else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {request.headers['content-type']}\r\n"
        f"Content-Length: {len(body)}\r\n{expect}\r\n"
    )
    return head.encode(), body


async def _clients(
    host: str,
    port: int,
    catalogue: dict[str, tuple[float, Files]],
    requests: dict[str, tuple[bytes, bytes]],
    seeds: list[int],
    end: float,
    results: list[Answer],
    errors: Counter[str],
) -> None:
    names = list(catalogue)
    weights = [catalogue[n][0] for n in names]

    async def client(seed: int) -> None:
        rng = random.Random(seed)
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while time.monotonic() < end:
            name = rng.choices(names, weights)[0]
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                status, headers, sent_all = await asyncio.wait_for(_exchange(*conn, requests[name]), 120)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
                errors[type(exc).__name__] += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            took = time.perf_counter() - t0
            upload, app = _server_times(headers.get("server-timing", ""))
            results.append((name, status, took, upload + app, app))
            if not sent_all or headers.get("connection", "").lower() == "close":
                conn[1].close()  # answered before its body was all sent (a refusal): the connection is spent
                conn = None
            if status == 503:
                await asyncio.sleep(0.2)
        if conn is not None:
            conn[1].close()

    await asyncio.gather(*(client(seed) for seed in seeds))


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: tuple[bytes, bytes]
) -> tuple[int, dict[str, str], bool]:
    """Send ``request`` while reading the answer (a server may refuse before the body is in): status, headers, and
    whether the whole request went out. A head that says ``Expect: 100-continue`` waits for the server's go-ahead
    before its body, as curl does with large uploads, and sends none when the server answers at once."""
    head, body = request
    expect = b"100-continue" in head

    async def send(with_head: bool) -> None:
        if with_head:
            writer.write(head)
        view = memoryview(body)
        for at in range(0, len(view), 256 * 1024):
            writer.write(view[at : at + 256 * 1024])
            await writer.drain()

    if expect:
        writer.write(head)
        status, headers = await _read_head(reader)
        if status != 100:
            await _read_body(reader, headers)
            return status, headers, not body
    sending = asyncio.ensure_future(send(with_head=not expect))
    try:
        status, headers = await _read_head(reader)
        await _read_body(reader, headers)
        sent_all = sending.done() and not sending.cancelled() and sending.exception() is None
        return status, headers, sent_all
    finally:
        if not sending.done():
            sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await sending


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return int(lines[0].split(" ", 2)[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))


def _server_times(header: str) -> tuple[float, float]:
    """Seconds of the upload (headers to last body byte) and from the last body byte to the answer, from the
    service's ``Server-Timing`` header (an answer given before the body counts no upload)."""
    got = {}
    for part in header.split(","):
        name, _, ms = part.strip().partition(";dur=")
        if ms:
            got[name] = float(ms) / 1000
    return got.get("upload", 0.0), got.get("app", float("nan"))


def _q(ordered: list[float], percent: int) -> float:
    """The ``percent`` quantile of sorted values (nearest rank)."""
    return ordered[min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))]


if __name__ == "__main__":
    sys.exit(main())
