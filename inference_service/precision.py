"""fp32 or int8: serve the int8 file only where it is measured faster on the CPU at hand.

Whether the int8 model beats fp32 depends on the CPU (VNNI/AMX vs plain AVX2): one card measured 7.5 vs
12.5 ms on its build machine, while an AVX2-only EPYC runs both at ~60 ms. With ``precision="auto"`` a
model folder that holds ``model.int8.onnx`` is timed at start-up, a few runs of each file on a blank
input, interleaved, and int8 is served only when its median is at least ``MIN_GAIN`` faster.
``"fp32"`` / ``"int8"`` choose without measuring. The choice and the timings go to ``/v1/model``.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

from inference_service.model_card import MODEL_FILE, LoadedModel, ModelLoadError, load_model

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "int8"]
INT8_FILE = "model.int8.onnx"
MIN_GAIN = 0.10  # int8 must be this much faster (median) to be served: smaller gains are within noise
RUNS = 5


def pick(fp32_ms: float, int8_ms: float, min_gain: float = MIN_GAIN) -> tuple[Literal["fp32", "int8"], str]:
    """The precision to serve from two median timings, and why."""
    if int8_ms <= fp32_ms * (1 - min_gain):
        return "int8", f"int8 measured faster here ({int8_ms:.1f} vs {fp32_ms:.1f} ms a run)"
    return "fp32", f"int8 not measurably faster here ({int8_ms:.1f} vs {fp32_ms:.1f} ms a run)"


def _blank(model: LoadedModel) -> dict[str, np.ndarray]:
    h, w = model.card.input_size
    return {model.input_name: np.zeros((model.fixed_batch or 1, 3, h, w), model.input_dtype)}


def time_models(models: dict[str, LoadedModel], runs: int = RUNS) -> dict[str, float]:
    """Median milliseconds of ``runs`` runs of each model, interleaved (after one warm-up run each)."""
    feeds = {name: _blank(m) for name, m in models.items()}
    for name, m in models.items():
        m.session.run([m.output_name], feeds[name])
    samples: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(runs):
        for name, m in models.items():
            t0 = time.perf_counter()
            m.session.run([m.output_name], feeds[name])
            samples[name].append((time.perf_counter() - t0) * 1000)
    return {name: round(statistics.median(v), 2) for name, v in samples.items()}


def load_for_serving(
    path: Path | str, options: ort.SessionOptions, precision: Precision = "fp32"
) -> tuple[LoadedModel, dict[str, Any]]:
    """The model to serve from ``path`` and a public account of the choice (no machine paths)."""
    p = Path(path)
    int8 = p / INT8_FILE if p.is_dir() else None
    has_int8 = int8 is not None and int8.is_file()
    if precision == "int8":
        if not has_int8 or int8 is None:
            raise ModelLoadError(p, f"precision int8 asked for, but there is no {INT8_FILE} in the model folder")
        return load_model(int8, options), {"precision": "int8", "file": INT8_FILE, "reason": "set (precision=int8)"}
    fp32 = load_model(p, options)
    name = MODEL_FILE if p.is_dir() else p.name
    if precision == "fp32" or not has_int8 or int8 is None:
        why = "set (precision=fp32)" if precision == "fp32" else f"no {INT8_FILE} beside the model"
        return fp32, {"precision": "fp32", "file": name, "reason": why}
    quantised = load_model(int8, options)
    measured = time_models({"fp32": fp32, "int8": quantised})
    chosen, why = pick(measured["fp32"], measured["int8"])
    logger.info("precision auto: %s (%s)", chosen, why)
    info: dict[str, Any] = {"precision": chosen, "file": INT8_FILE if chosen == "int8" else name, "reason": why}
    info["measured_ms"] = measured
    return (quantised if chosen == "int8" else fp32), info
