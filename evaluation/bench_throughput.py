"""Photos per second under concurrent clients: the hazardscan service vs Ultralytics behind a FastAPI route.

    .venv/bin/python -m evaluation.bench_throughput --model models/default [--clients 1,4,16] [--seconds 20]

Both servers run the same ONNX file (fp32) in their own processes on this machine, the service with its
default settings; the peer is what a team would write first: a FastAPI ``def`` route that decodes the upload
with OpenCV and calls ``YOLO(model.onnx).predict`` under a lock (an Ultralytics model is not safe to call
from two threads), padding photos as the service does (square, or the minimum rectangle where the card says
so; ``--peer-defaults``: as Ultralytics likes, the minimum rectangle on a dynamic-size model, less work). For
each client count the two are measured in alternating windows (``--rounds``, in the order service, peer,
peer, service, ...), ``--seconds`` each in all, every client posting the same 1920×1080 JPEG in a loop, so
that load from elsewhere on a shared machine falls on both alike (``--client-nice`` lowers the client threads
below both servers). Prints photos/s, p50/p95/p99 latency and refusals per server, and the ratio
service/peer. Targets (issue 16): the bounded queue costs no throughput (>= 1.25x the peer at 16 clients),
no loss at 1 and 4 clients.
Not a test: the figures depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from evaluation.bench_service import REPO, Service, free_port, phone_photo, wait_ready
from inference_service.api.settings import Settings
from inference_service.api.workers import lower_priority
from inference_service.model_card import load_model
from inference_service.runtime import Detector

PEER_SERVER = """
import sys, threading
import cv2, numpy as np, uvicorn
from fastapi import FastAPI, File, UploadFile
from ultralytics import YOLO
model_path, imgsz, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
conf, iou = float(sys.argv[3]), float(sys.argv[4])
extra = {} if sys.argv[6] == "default" else {"rect": sys.argv[6] == "rect"}
model = YOLO(model_path, task="detect")
lock = threading.Lock()
app = FastAPI()

@app.get("/readyz")
def ready():
    return {"status": "ready"}

@app.post("/v1/detect")
def detect(photo: UploadFile = File(...)):
    img = cv2.imdecode(np.frombuffer(photo.file.read(), np.uint8), cv2.IMREAD_COLOR)
    with lock:
        r = model.predict(img, imgsz=imgsz, conf=conf, iou=iou, verbose=False, **extra)[0]
    return {"boxes": r.boxes.xyxy.tolist(), "classes": r.boxes.cls.tolist(), "scores": r.boxes.conf.tolist()}

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


class Peer:
    def __init__(self, onnx_path: Path, imgsz: int, conf: float, iou: float, tmp: Path, padding: str) -> None:
        port = free_port()
        config = tmp / "yolo"
        (config / "Ultralytics").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(config)}
        args = [str(onnx_path), str(imgsz), str(conf), str(iou), str(port), padding]
        self.proc = subprocess.Popen([sys.executable, "-c", PEER_SERVER, *args], env=env, cwd=tmp)
        self.url = f"http://127.0.0.1:{port}"
        wait_ready(self.url, self.proc, "the Ultralytics peer")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def load(
    url: str, photo: bytes, clients: int, seconds: float, client_nice: int = 0
) -> tuple[int, float, list[float], Counter[int]]:
    """Photos answered 200, the seconds it took, their latencies, and every status seen."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    end = [0.0]

    def client() -> None:
        lower_priority(client_nice)
        with httpx.Client(base_url=url, timeout=120) as c:
            start.wait()
            while time.monotonic() < end[0]:
                t0 = time.perf_counter()
                r = c.post("/v1/detect", files={"photo": ("frame.jpg", photo, "image/jpeg")})
                with lock:
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    end[0] = time.monotonic() + seconds
    t_start = time.monotonic()
    start.wait()
    for t in threads:
        t.join()
    return len(latencies), time.monotonic() - t_start, latencies, statuses


def interleaved(
    urls: dict[str, str], photo: bytes, clients: int, seconds: float, rounds: int, client_nice: int
) -> dict[str, tuple[float, list[float], Counter[int]]]:
    """Per server: photos/s over all its windows, latencies, statuses; windows alternate A B B A A B ..."""
    done = {name: 0 for name in urls}
    spent = {name: 0.0 for name in urls}
    latencies: dict[str, list[float]] = {name: [] for name in urls}
    statuses: dict[str, Counter[int]] = {name: Counter() for name in urls}
    names = list(urls)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            n, took, lat, st = load(urls[name], photo, clients, seconds / rounds, client_nice)
            done[name] += n
            spent[name] += took
            latencies[name] += lat
            statuses[name] += st
    return {name: (done[name] / spent[name], latencies[name], statuses[name]) for name in names}


def quantile(values: list[float], q: int) -> float:
    """The q-th percentile (nan for fewer than two values)."""
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=20, help="per server and client count, all rounds together")
    parser.add_argument("--rounds", type=int, default=4, help="alternating windows per server and client count")
    parser.add_argument(
        "--client-nice",
        type=int,
        default=0,
        help="niceness of the client threads (Linux), which here share both servers' cores (default: 0, theirs)",
    )
    parser.add_argument(
        "--peer-defaults",
        action="store_true",
        help="let Ultralytics pad as it likes (the minimum rectangle on a dynamic-size model: less work than the "
        "service's square inputs) instead of as the service does",
    )
    args = parser.parse_args()
    args.model = args.model.resolve()
    loaded = load_model(args.model)
    card = loaded.card
    rect = Detector(loaded, rect=Settings().rect).rect  # the service's padding: HAZARDSCAN_RECT, else the card
    buf = io.BytesIO()
    phone_photo(1920, 1080, seed=1920).save(buf, format="JPEG", quality=92)
    photo = buf.getvalue()
    lines = [
        f"model {card.model_id} {card.version} (fp32 {loaded.onnx_path.name} in both), 1920x1080 JPEG "
        f"{len(photo) / 1e6:.1f} MB, input {'minimum rectangle' if rect else 'square'} in the service, "
        f"Ultralytics padding {'its default' if args.peer_defaults else 'the same'}, "
        f"{args.seconds:.0f} s per point in {args.rounds} alternating windows, "
        f"{os.cpu_count()} cores, clients at nice +{args.client_nice}, load average before {os.getloadavg()[0]:.1f}",
        f"{'clients':>7} {'server':<12}{'photos/s':>9}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}  statuses",
    ]
    with tempfile.TemporaryDirectory(prefix="hazardscan-tput-") as tmp_name:
        tmp = Path(tmp_name)
        service = Service(args.model, tmp, None, None, None)  # the service's own defaults
        padding = "default" if args.peer_defaults else "rect" if rect else "square"
        peer = Peer(loaded.onnx_path, max(card.input_size), card.conf_threshold, card.nms_iou, tmp, padding)
        urls = {"hazardscan": str(service.client.base_url).rstrip("/"), "ultralytics": peer.url}
        try:
            for url in urls.values():  # warm both
                load(url, photo, 2, 3)
            for n in (int(c) for c in args.clients.split(",")):
                measured = interleaved(urls, photo, n, args.seconds, args.rounds, args.client_nice)
                for name, (rate, lat, statuses) in measured.items():
                    med = statistics.median(lat) if lat else float("nan")
                    lines.append(
                        f"{n:>7} {name:<12}{rate:>9.2f}{med:>8.2f}{quantile(lat, 95):>8.2f}{quantile(lat, 99):>8.2f}"
                        f"  {dict(statuses)}"
                    )
                peer_rate = measured["ultralytics"][0]
                ratio = measured["hazardscan"][0] / peer_rate if peer_rate else float("nan")
                lines.append(f"{n:>7} {'ratio':<12}{ratio:>8.2f}x")
        finally:
            service.close()
            peer.close()
    lines.append(f"load average after {os.getloadavg()[0]:.1f}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
