"""Latency of the evaluated model: the bare ONNX Runtime session on a prepared tensor, and the served
pipeline per photo (decode, letterbox, session, NMS, thresholds) as measured during the evaluation pass.

On a shared machine the figures include whatever else runs; the report records the load average.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.predict import Prediction
from inference_service.runtime import Detector

STAGES = ("decode", "preprocess", "infer", "postprocess", "total")


def stats(values_ms: Sequence[float]) -> dict[str, float | int]:
    v = np.asarray(values_ms, np.float64)
    if v.size == 0:
        return {"n": 0}
    return {
        "n": int(v.size),
        "mean": round(float(v.mean()), 2),
        "p50": round(float(np.percentile(v, 50)), 2),
        "p90": round(float(np.percentile(v, 90)), 2),
        "p99": round(float(np.percentile(v, 99)), 2),
    }


def served_latency(predictions: Sequence[Prediction]) -> dict[str, dict[str, float | int]]:
    """Per-stage and total per-photo latency of the served pipeline, from the evaluation pass."""
    timed = [p.timings_ms for p in predictions if p.error is None and p.timings_ms]
    return {stage: stats([t[stage] for t in timed if stage in t]) for stage in STAGES}


def prepared_tensor(detector: Detector, image: Path) -> np.ndarray:
    return detector.input_tensor(detector.decode(image.read_bytes()))[0]


def bare_session(detector: Detector, tensor: np.ndarray, runs: int = 30, warmup: int = 3) -> dict[str, float | int]:
    """``InferenceSession.run`` alone on a ready 1×3×H×W tensor, repeated."""
    model = detector.model
    if model.fixed_batch and model.fixed_batch > 1:
        tensor = np.repeat(tensor, model.fixed_batch, axis=0)
    feed = {model.input_name: tensor.astype(model.input_dtype)}
    for _ in range(warmup):
        model.session.run([model.output_name], feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.session.run([model.output_name], feed)
        times.append((time.perf_counter() - t0) * 1000.0)
    return stats(times)


def int8_beside(onnx_path: Path) -> Path | None:
    """``model.int8.onnx`` beside ``model.onnx`` (or ``<stem>.int8.onnx`` beside ``<stem>.onnx``)."""
    if onnx_path.name.endswith(".int8.onnx"):
        return None
    name = "model.int8.onnx" if onnx_path.name == "model.onnx" else f"{onnx_path.stem}.int8.onnx"
    candidate = onnx_path.with_name(name)
    return candidate if candidate.is_file() else None


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu_count": os.cpu_count(), "loadavg_1m": round(load[0], 2)}
