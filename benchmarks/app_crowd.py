"""A crowd of inspectors uploading at once: what they, the API and the app's other pages get.

    .venv/bin/python benchmarks/app_crowd.py [--clients 64] [--seconds 30] [--server-root OLD_CHECKOUT]

Runs the real service (tests/app_fixtures.start_app_server: uvicorn, SQLite, seeded users) on the given model.
``--clients`` inspectors, logged in first, each with an inspection of their own, upload 2048×1536 phone JPEGs
(what the app sends after its in-browser downscale) back to back. Refused, they wait as the app's queue does:
``Retry-After``, doubling while refused again, up to 15 s, jittered. Beside them, in a process of its own so that
the crowd's client work does not count in its figures: an API client posts a 1080p photo every 0.5 s, a
supervisor lists inspections every 0.5 s and a probe times ``/healthz`` every 0.1 s.
Prints status counts and latencies. ``--server-root`` serves another checkout (an earlier commit, from
``git worktree add``) with the same clients, to compare. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.bench_service import phone_photo  # noqa: E402
from evaluation.stress_service import encoded  # noqa: E402

Samples = dict[str, Any]
log = logging.getLogger(__name__)


def summary(seconds: list[float]) -> str:
    if not seconds:
        return "none"
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else [seconds[0]] * 99
    top = max(seconds)
    return f"n={len(seconds)}, p50 / p95 / p99 / max {cuts[49]:.2f} / {cuts[94]:.2f} / {cuts[98]:.2f} / {top:.2f} s"


async def crowd(base: str, clients: int, seconds: float, password: str, username: str, started: Any) -> Samples:
    """Log every inspector in and make their inspections first (password hashing is slow on purpose), then set
    ``started`` and upload for ``seconds``."""
    photos = [encoded(phone_photo(2048, 1536, i), "JPEG", quality=85) for i in range(4)]
    latencies: list[float] = []
    codes: dict[int, int] = {}

    async def ready(c: httpx.AsyncClient, i: int) -> str:
        r = await c.post("/app/api/login", json={"username": username, "password": password})
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        r = await c.post("/app/api/inspections", json={"scene": "construction", "unit": {"name": f"单位 {i}"}})
        return f"/app/api/inspections/{r.json()['id']}/photos"

    async def inspector(c: httpx.AsyncClient, url: str, until: float) -> None:
        k = refused = 0
        while time.monotonic() < until:
            t0 = time.monotonic()
            r = await c.post(
                url,
                files={"photo": ("p.jpg", photos[k % len(photos)], "image/jpeg")},
                data={"idempotency_key": str(uuid.uuid4())},
            )
            k += 1
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code < 300:
                latencies.append(time.monotonic() - t0)
            if r.status_code in (429, 503):  # as the app's queue does (queue.js): Retry-After, backing off
                refused += 1
                wait = max(1.0, float(r.headers.get("retry-after", "1")), 2.0 ** min(refused - 1, 4))
                await asyncio.sleep(min(15.0, wait) * random.uniform(0.8, 1.2))
            else:
                refused = 0

    sessions = [httpx.AsyncClient(base_url=base, timeout=120) for _ in range(clients)]
    try:
        urls = await asyncio.gather(*(ready(c, i) for i, c in enumerate(sessions)))
        started.set()
        until = time.monotonic() + seconds
        await asyncio.gather(*(inspector(c, url, until) for c, url in zip(sessions, urls, strict=True)))
    finally:
        await asyncio.gather(*(c.aclose() for c in sessions))
    return {"codes": codes, "latencies": latencies}


async def bystanders(base: str, until: float, password: str, supervisor: str) -> Samples:
    """From when the crowd is logged in until ``until``: an API client, a supervisor's page, a /healthz probe."""
    api_photo = encoded(phone_photo(1920, 1080, 3), "JPEG", quality=85)
    out: Samples = {"api_codes": {}, "api": [], "pages": [], "healthz": []}

    async def api() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as c:
            while time.monotonic() < until:
                t0 = time.monotonic()
                r = await c.post("/v1/detect", content=api_photo, headers={"Content-Type": "image/jpeg"})
                out["api_codes"][r.status_code] = out["api_codes"].get(r.status_code, 0) + 1
                if r.status_code == 200:
                    out["api"].append(time.monotonic() - t0)
                await asyncio.sleep(0.5)

    async def pages() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as c:
            await c.post("/app/api/login", json={"username": supervisor, "password": password})
            while time.monotonic() < until:
                t0 = time.monotonic()
                (await c.get("/app/api/inspections?limit=20")).raise_for_status()
                out["pages"].append(time.monotonic() - t0)
                await asyncio.sleep(0.5)

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            while time.monotonic() < until:
                t0 = time.monotonic()
                await c.get("/healthz")
                out["healthz"].append(time.monotonic() - t0)
                await asyncio.sleep(0.1)

    await asyncio.gather(api(), pages(), probe())
    return out


def _bystanders_process(base: str, seconds: float, password: str, supervisor: str, started: Any, results: Any) -> None:
    started.wait()
    results.put(asyncio.run(bystanders(base, time.monotonic() + seconds, password, supervisor)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--server-root", type=Path, default=ROOT, help="serve the code of this checkout")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    server_root = args.server_root.resolve()
    sys.path.insert(0, str(server_root / "tests"))  # its app_fixtures start its server (cwd: that checkout)
    from app_fixtures import PASSWORD, USERS, start_app_server

    env = {
        "HAZARDSCAN_THREADS": str(os.cpu_count() or 1),  # the service's default, where the fixture sets 1
        "HAZARDSCAN_PUBLIC_ROUTES": "/v1/detect",
        "PYTHONPATH": str(server_root),
    }
    with (
        tempfile.TemporaryDirectory(prefix="hazardscan-crowd-") as data,
        start_app_server(args.model.resolve(), Path(data), **env) as server,
    ):
        spawn = multiprocessing.get_context("spawn")
        results: Any = spawn.Queue()
        started: Any = spawn.Event()
        side = spawn.Process(
            target=_bystanders_process,
            args=(server.base_url, args.seconds, PASSWORD, USERS["supervisor"][0], started, results),
        )
        side.start()
        os.nice(10)  # the crowd's own client work yields to the server and to the bystanders
        uploads = asyncio.run(
            crowd(server.base_url, args.clients, args.seconds, PASSWORD, USERS["inspector"][0], started)
        )
        seen = results.get(timeout=args.seconds + 120)
        side.join(30)
    hz = seen["healthz"]
    log.info(f"{args.clients} inspectors, {args.seconds:.0f} s, serving {server_root}")
    log.info(f"  their uploads     {dict(sorted(uploads['codes'].items()))}  accepted {summary(uploads['latencies'])}")
    log.info(f"  API photo / 0.5 s {dict(sorted(seen['api_codes'].items()))}  answered {summary(seen['api'])}")
    log.info(f"  supervisor's list {summary(seen['pages'])}")
    log.info(f"  /healthz          {summary(hz)}; over 100 ms: {sum(h > 0.1 for h in hz)} of {len(hz)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
