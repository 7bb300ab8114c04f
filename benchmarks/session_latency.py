"""Bare onnxruntime session time of two models, interleaved in one run (no service, no pre/postprocessing).

    .venv/bin/python benchmarks/session_latency.py work/branch/person-200/model models/hazardscan-v5 \\
        [--threads 2] [--rounds 200] [--size 416]

Each round runs every model once on the same random input, in alternating order, so a slower moment of a shared
machine costs both alike. Prints per model the median and p90 in milliseconds, the ONNX file sizes, and the ratio
of the medians (first model over the second).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_file(model: Path, int8: bool) -> Path:
    return model / ("model.int8.onnx" if int8 else "model.onnx") if model.is_dir() else model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", type=Path, nargs=2, help="two model folders (or ONNX files)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--int8", action="store_true", help="the int8 files of the model folders")
    args = p.parse_args(argv)
    files = [onnx_file(m, args.int8) for m in args.models]
    sessions = [session(f, args.threads) for f in files]
    x = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    times: list[list[float]] = [[], []]
    for r in range(args.warmup + args.rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for i in order:
            name = sessions[i].get_inputs()[0].name
            t = time.perf_counter()
            sessions[i].run(None, {name: x})
            if r >= args.warmup:
                times[i].append((time.perf_counter() - t) * 1000)
    result = {
        str(f): {
            "median_ms": round(float(np.median(t)), 2),
            "p90_ms": round(float(np.percentile(t, 90)), 2),
            "bytes": f.stat().st_size,
            "output_shape": [o.shape for o in s.get_outputs()],
        }
        for f, t, s in zip(files, times, sessions, strict=True)
    }
    result["ratio_of_medians"] = round(float(np.median(times[0]) / np.median(times[1])), 3)
    result["setup"] = {"threads": args.threads, "rounds": args.rounds, "size": args.size, "int8": args.int8}
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
