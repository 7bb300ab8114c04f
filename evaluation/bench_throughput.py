"""Photos per second under concurrent clients: the hazardscan service vs Ultralytics behind a FastAPI route.

    .venv/bin/python -m evaluation.bench_throughput --model models/default [--clients 1,4,16] [--seconds 20]

Both servers run the same ONNX file (fp32) in their own processes on this machine; the peer is what a
team would write first: a FastAPI ``def`` route that decodes the upload with OpenCV and calls
``YOLO(model.onnx).predict`` under a lock (an Ultralytics model is not safe to call from two threads).
For each client count the two are measured in turn, ``--seconds`` each, every client posting the same
1920×1080 JPEG in a loop. Prints photos/s, p50/p95 latency and refusals per server, and the ratio
service/peer. Targets (issue 16): the bounded queue costs no throughput (>= 1.25x the peer at 16 clients).
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

from evaluation.bench_service import REPO, Service, free_port, phone_photo
from inference_service.model_card import load_model

PEER_SERVER = """
import sys, threading
import cv2, numpy as np, uvicorn
from fastapi import FastAPI, File, UploadFile
from ultralytics import YOLO
model_path, imgsz, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[5])
conf, iou = float(sys.argv[3]), float(sys.argv[4])
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
        r = model.predict(img, imgsz=imgsz, conf=conf, iou=iou, verbose=False)[0]
    return {"boxes": r.boxes.xyxy.tolist(), "classes": r.boxes.cls.tolist(), "scores": r.boxes.conf.tolist()}

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


class Peer:
    def __init__(self, onnx_path: Path, imgsz: int, conf: float, iou: float, tmp: Path) -> None:
        port = free_port()
        config = tmp / "yolo"
        (config / "Ultralytics").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(config)}
        args = [str(onnx_path), str(imgsz), str(conf), str(iou), str(port)]
        self.proc = subprocess.Popen([sys.executable, "-c", PEER_SERVER, *args], env=env, cwd=tmp)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Ultralytics peer did not start")
            time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def load(url: str, photo: bytes, clients: int, seconds: float) -> tuple[float, list[float], Counter[int]]:
    """Photos answered 200 per second, their latencies, and every status seen."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    end = [0.0]

    def client() -> None:
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
    return len(latencies) / (time.monotonic() - t_start), latencies, statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "default")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    args.model = args.model.resolve()
    loaded = load_model(args.model)
    card = loaded.card
    buf = io.BytesIO()
    phone_photo(1920, 1080, seed=1920).save(buf, format="JPEG", quality=92)
    photo = buf.getvalue()
    lines = [
        f"model {card.model_id} {card.version} (fp32 {loaded.onnx_path.name} in both), 1920x1080 JPEG "
        f"{len(photo) / 1e6:.1f} MB, {args.seconds:.0f} s per point, {os.cpu_count()} cores",
        f"{'clients':>7} {'server':<12}{'photos/s':>9}{'p50 s':>8}{'p95 s':>8}  statuses",
    ]
    with tempfile.TemporaryDirectory(prefix="hazardscan-tput-") as tmp_name:
        tmp = Path(tmp_name)
        service = Service(args.model, tmp, None, True, None)
        peer = Peer(loaded.onnx_path, max(card.input_size), card.conf_threshold, card.nms_iou, tmp)
        service_url = str(service.client.base_url).rstrip("/")
        try:
            load(service_url, photo, 2, 3)  # warm both
            load(peer.url, photo, 2, 3)
            for n in (int(c) for c in args.clients.split(",")):
                rates = {}
                for name, url in (("hazardscan", service_url), ("ultralytics", peer.url)):
                    rate, lat, statuses = load(url, photo, n, args.seconds)
                    rates[name] = rate
                    p95 = statistics.quantiles(lat, n=20)[18] if len(lat) > 1 else float("nan")
                    med = statistics.median(lat) if lat else float("nan")
                    lines.append(f"{n:>7} {name:<12}{rate:>9.2f}{med:>8.2f}{p95:>8.2f}  {dict(statuses)}")
                ratio = rates["hazardscan"] / rates["ultralytics"] if rates["ultralytics"] else float("nan")
                lines.append(f"{n:>7} {'ratio':<12}{ratio:>8.2f}x")
        finally:
            service.close()
            peer.close()
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
