"""Run in a fresh interpreter by test_training.py: train, release and serve a tiny model with every
network connection refused and recorded."""

import json
import socket
import sys
from pathlib import Path

attempts: list[str] = []
_connect = socket.socket.connect


def _refuse(self, address):  # type: ignore[no-untyped-def]
    if self.family in (socket.AF_INET, socket.AF_INET6):
        attempts.append(repr(address))
        raise OSError("network disabled by test")
    return _connect(self, address)


def _no_dns(*args, **kwargs):  # type: ignore[no-untyped-def]
    attempts.append(f"getaddrinfo{args[:2]}")
    raise socket.gaierror("network disabled by test")


socket.socket.connect = _refuse  # type: ignore[method-assign]
socket.getaddrinfo = _no_dns  # type: ignore[assignment]

work, data_yaml, photo = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

from training.release import release  # noqa: E402
from training.train import TrainConfig, train  # noqa: E402

cfg = TrainConfig(
    name="tiny",
    weights="yolov8n.yaml",
    train={"imgsz": 64, "epochs": 1, "batch": 4, "workers": 0, "cache": False, "plots": False, "close_mosaic": 0},
)
run_dir = train(cfg, data_yaml, work / "runs")
card = release(run_dir, work / "model", "0.0.1", parity_photos=4, calib_photos=4, skip_map=True)

from inference_service.runtime import Detector  # noqa: E402

det = Detector.load(work / "model")
result = det.detect(photo.read_bytes(), conf=0.0)
print(
    json.dumps(
        {
            "attempts": attempts,
            "run_dir": str(run_dir),
            "card": card,
            "n_dets": len(result.detections),
            "size": [result.width, result.height],
        }
    )
)
