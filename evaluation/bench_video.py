"""Video benchmark: hazardscan's CCTV scanner against Ultralytics ``predict(stream=True)`` on one 1080p video.

    .venv/bin/python -m evaluation.bench_video [--model models/hazardscan-v1] [--photos DIR] [--cores 2]

One run:

1. makes (and caches under ``work/bench_video/``) a 1920×1080 H.264 video (``ffmpeg``/libx264; MPEG-4
   Part 2 through OpenCV when ffmpeg is missing): a drifting grey texture, a red square ("fire") that
   appears K times for 1.5 s at known times in the left half, and with ``--photos`` real photos as a
   one-per-second slideshow in the right half;
2. for the tiny colour model of the tests (it reads the red square as ``fire``) and each ``--model``:

   * ours: :class:`~inference_service.cctv.scanner.StreamScanner` on the file, every frame: decoding in
     the reader thread, batched session calls, taxonomy, tracking, events with evidence JPEGs, SQLite;
   * Ultralytics: ``YOLO(model.onnx).predict(video, stream=True)`` in a subprocess, every frame, model
     loaded and warmed up before the clock starts;

   both pinned to ``--cores`` CPUs with the card's thresholds (``conf`` = the lowest, then per class);
3. compares their detections frame by frame (same class, IoU ≥ 0.5): "agreement" is matched / mean of
   the two counts, so 100 % means equal accuracy;
4. prints frames per second, the ratio (target ≥ 1.3×), and for the tiny model the events against the
   K known occurrences (an include zone on the left half keeps the slideshow out).

Not a test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inference_service.cctv.config import parse_cameras
from inference_service.cctv.scanner import ScanOptions, StoreSink, StreamScanner, threads_per_call
from inference_service.cctv.sources import Frame
from inference_service.cctv.store import EventStore
from inference_service.detections import box_iou
from inference_service.model_card import load_model, resolve_model_path
from inference_service.runtime import Detector, DetectResult, RectMode
from inference_service.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "work" / "bench_video"
FIRE_S = 1.5  # each occurrence lasts this long
EVENT_POLICY = {"persistence_s": 0.5, "close_after_s": 1.0, "cooldown_s": 0}

ULTRALYTICS_WORKER = """
import json, sys, time
from pathlib import Path
import numpy as np
from training.offline import prepare_offline
model_path, video, imgsz, conf, iou, config_dir, cores, threads, out, rect = sys.argv[1:11]
prepare_offline(Path(config_dir))
if threads != "default":  # Ultralytics passes no SessionOptions: inject the thread count
    import onnxruntime as ort
    _init = ort.InferenceSession.__init__
    def init(self, path, sess_options=None, *args, **kwargs):
        sess_options = sess_options or ort.SessionOptions()
        sess_options.intra_op_num_threads = int(threads)
        _init(self, path, sess_options, *args, **kwargs)
    ort.InferenceSession.__init__ = init
import torch
from ultralytics import YOLO
torch.set_num_threads(int(cores))
h, w = json.loads(imgsz)
model = YOLO(model_path, task="detect")
# rect=True only makes sense for a dynamic-size export (Ultralytics then pads to the stride, like ours)
kw = dict(imgsz=[h, w], conf=float(conf), iou=float(iou), rect=rect == "1", verbose=False, device="cpu")
model.predict(np.zeros((1080, 1920, 3), np.uint8), **kw)  # load and warm up outside the clock
t0 = time.perf_counter()
rows, speeds = [], []
for r in model.predict(video, stream=True, **kw):
    b = r.boxes
    rows.append(np.column_stack([b.xyxy.numpy(), b.cls.numpy(), b.conf.numpy()]).tolist())
    speeds.append(r.speed)
elapsed = time.perf_counter() - t0
stages = {k: round(float(np.mean([s[k] for s in speeds])), 2) for k in speeds[0]} if speeds else {}
Path(out).write_text(json.dumps({"elapsed_s": elapsed, "frames": len(rows), "detections": rows, "stages_ms": stages}))
"""


def occurrences(seconds: float) -> list[tuple[float, float]]:
    """Known fire intervals: one every 4 s from 1 s on, each ``FIRE_S`` long, all inside the video."""
    out, start = [], 1.0
    while start + FIRE_S <= seconds - 0.5:
        out.append((start, start + FIRE_S))
        start += 4.0
    return out


def fire_box(width: int, height: int, size: int, grid: int) -> tuple[int, int, int, int]:
    """The frame rectangle that exactly covers grid cell (1, 1) of the tiny model after letterboxing."""
    gain = min(size / width, size / height)
    pad_x, pad_y = (size - width * gain) / 2, (size - height * gain) / 2
    cell = size / grid
    return (
        round((cell - pad_x) / gain),
        round((cell - pad_y) / gain),
        round((2 * cell - pad_x) / gain),
        round((2 * cell - pad_y) / gain),
    )


def _slides(photos: Path | None, width: int, height: int, count: int) -> list[np.ndarray]:
    if photos is None:
        return []
    files = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:count]
    slides = []
    for f in files:
        img = cv2.imread(str(f))
        if img is None:
            continue
        r = min(width / img.shape[1], height / img.shape[0])
        img = cv2.resize(img, (round(img.shape[1] * r), round(img.shape[0] * r)), interpolation=cv2.INTER_AREA)
        slide = np.full((height, width, 3), 114, np.uint8)
        y, x = (height - img.shape[0]) // 2, (width - img.shape[1]) // 2
        slide[y : y + img.shape[0], x : x + img.shape[1]] = img
        slides.append(slide)
    return slides


def make_video(
    path: Path, *, width: int, height: int, fps: int, seconds: float, photos: Path | None, size: int, grid: int
) -> str:
    """Write the benchmark video; returns the codec used."""
    rng = np.random.default_rng(0)
    small = rng.integers(60, 190, (height // 24, width // 24), dtype=np.uint8)
    texture = cv2.resize(small, (width + 256, height), interpolation=cv2.INTER_CUBIC)
    texture = np.clip(texture.astype(np.int16) + rng.integers(-12, 13, texture.shape), 0, 255).astype(np.uint8)
    x1, y1, x2, y2 = fire_box(width, height, size, grid)
    fires = occurrences(seconds)
    slides = _slides(photos, width // 2, height, int(seconds) + 1)
    ffmpeg = shutil.which("ffmpeg")
    proc: subprocess.Popen[bytes] | None = None
    writer: cv2.VideoWriter | None = None
    if ffmpeg:
        codec = "h264 (libx264, veryfast, crf 23)"
        proc = subprocess.Popen(
            [
                ffmpeg,
                "-v",
                "error",
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "bgr24",
                "-s",
                f"{width}x{height}",
                "-r",
                str(fps),
                "-i",
                "-",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-g",
                str(2 * fps),
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            stdin=subprocess.PIPE,
        )
    else:
        codec = "mpeg4 part 2 (OpenCV mp4v)"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    for i in range(round(seconds * fps)):
        t = i / fps
        shift = (i * 3) % 256
        frame = cv2.cvtColor(np.ascontiguousarray(texture[:, shift : shift + width]), cv2.COLOR_GRAY2BGR)
        if slides:
            frame[:, width // 2 :] = slides[int(t) % len(slides)]
        if any(a <= t < b for a, b in fires):
            frame[y1:y2, x1:x2] = (0, 0, 255)
        if proc is not None and proc.stdin is not None:
            proc.stdin.write(frame.tobytes())
        elif writer is not None:
            writer.write(frame)
    if proc is not None and proc.stdin is not None:
        proc.stdin.close()
        if proc.wait() != 0:
            raise SystemExit("ffmpeg failed to encode the benchmark video")
    elif writer is not None:
        writer.release()
    return codec


def tiny_model(folder: Path) -> Path:
    """The tests' tiny colour model, with Ultralytics metadata so Ultralytics can load it too."""
    sys.path.insert(0, str(REPO / "tests"))
    from _builders import CLASSES, SIZE, build_tiny_yolo, tiny_card

    meta = {
        "names": str(dict(enumerate(CLASSES))),
        "stride": "32",
        "imgsz": str([SIZE, SIZE]),
        "task": "detect",
        "batch": "1",
    }
    build_tiny_yolo(folder / "model.onnx", metadata=meta)
    (folder / "card.json").write_text(json.dumps(tiny_card(class_thresholds={})), encoding="utf-8")
    return folder


def run_ours(
    model: Path,
    video: Path,
    cores: int,
    max_batch: int,
    workdir: Path,
    spinning: bool = True,
    inflight: int = 1,
    rect: RectMode = None,
) -> dict[str, Any]:
    detector = Detector.load(
        model, threads=threads_per_call(inflight, cores), spinning=spinning, max_batch=max_batch, rect=rect
    )
    width = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_HEIGHT))
    left_half = [[0, 0], [width / 2, 0], [width / 2, height], [0, height]]
    config = parse_cameras(
        {
            "defaults": {"events": EVENT_POLICY},
            "cameras": [
                {
                    "id": "bench",
                    "url": str(video),
                    "live": False,
                    "start_time": "2026-01-01T00:00:00Z",
                    "zones": [{"name": "left", "mode": "include", "polygon": left_half}],
                }
            ],
        }
    )
    db = workdir / f"events-{detector.card.model_id}.db"
    db.unlink(missing_ok=True)
    store = EventStore(db)
    per_frame: dict[int, list[list[float]]] = {}
    stages: list[dict[str, float]] = []

    def observe(frame: Frame, result: DetectResult) -> None:
        d = result.detections
        per_frame[frame.index] = np.column_stack([d.xyxy, d.class_id, d.score]).tolist()
        stages.append(result.timings_ms)

    options = ScanOptions(max_batch=max_batch, inflight=inflight)
    scanner = StreamScanner(config, detector, load_taxonomy(), StoreSink(store), options=options, observer=observe)
    report = scanner.run()
    t0 = config.cameras[0].start_time.timestamp() if config.cameras[0].start_time else 0.0
    events = store.list_events(limit=1000)
    store.close()
    return {
        "rect": detector.rect,
        "elapsed_s": report.elapsed_s,
        "frames": report.frames,
        "fps": report.fps,
        "batches": report.batches.sizes,
        "detections": [per_frame[i] for i in sorted(per_frame)],
        "stages_ms": {k: round(float(np.mean([t[k] for t in stages])), 2) for k in stages[0]} if stages else {},
        "events": sorted(
            (
                {
                    "hazard": e.hazard_id,
                    "start": round(e.started_at - t0, 2),
                    "end": round((e.ended_at or e.last_seen) - t0, 2),
                }
                for e in events
            ),
            key=lambda e: e["start"],
        ),
    }


def run_ultralytics(
    model: Path, video: Path, cores: int, threads: str, workdir: Path, rect: bool = False
) -> dict[str, Any]:
    """Ultralytics in a subprocess; ``threads``: ``default`` (its own ONNX Runtime settings) or a count;
    ``rect``: its ``rect=True`` (minimum-rectangle letterbox for a dynamic-size model)."""
    onnx_path, _ = resolve_model_path(model)
    card = Detector.load(model, threads=1).card
    out = workdir / f"ultralytics-{threads}-{rect}.json"
    cmd = [
        sys.executable,
        "-c",
        ULTRALYTICS_WORKER,
        str(onnx_path),
        str(video),
        json.dumps(list(card.input_size)),
        str(float(card.thresholds().min())),
        str(card.nms_iou),
        str(WORK / "ultralytics-config"),
        str(cores),
        threads,
        str(out),
        "1" if rect else "0",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(cores)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode:
        raise SystemExit(f"Ultralytics run failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    thresholds = card.thresholds()
    result["detections"] = [[r for r in rows if r[5] >= thresholds[int(r[4])]] for rows in result["detections"]]
    result["fps"] = result["frames"] / result["elapsed_s"]
    result["rect"] = rect
    return result


def agreement(ours: list[list[list[float]]], theirs: list[list[list[float]]]) -> dict[str, Any]:
    matched, ious, score_diff, n_ours, n_theirs = 0, [], 0.0, 0, 0
    for a_rows, b_rows in zip(ours, theirs, strict=False):
        a, b = np.asarray(a_rows, np.float32).reshape(-1, 6), np.asarray(b_rows, np.float32).reshape(-1, 6)
        n_ours, n_theirs = n_ours + len(a), n_theirs + len(b)
        if not len(a) or not len(b):
            continue
        iou = box_iou(a[:, :4], b[:, :4]) * (a[:, None, 4] == b[None, :, 4])
        used: set[int] = set()
        for i in np.argsort(-a[:, 5]):
            j = int(np.argmax(np.where([k in used for k in range(len(b))], -1, iou[i])))
            if iou[i, j] >= 0.5 and j not in used:
                used.add(j)
                matched += 1
                ious.append(float(iou[i, j]))
                score_diff = max(score_diff, abs(float(a[i, 5] - b[j, 5])))
    total = (n_ours + n_theirs) / 2
    return {
        "frames_compared": min(len(ours), len(theirs)),
        "detections_ours": n_ours,
        "detections_ultralytics": n_theirs,
        "matched": matched,
        "agreement": matched / total if total else 1.0,
        "mean_iou": float(np.mean(ious)) if ious else None,
        "max_score_diff": round(score_diff, 4),
    }


def emit(line: str) -> None:
    """One line of the benchmark's output, at once (runs take minutes)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def summary_line(name: str, entry: dict[str, Any], best_ours: dict[str, Any], known: int) -> str:
    """The one-line result for a model: frames, fps of every run, ratios, agreement, events."""
    events = f"events {len(best_ours['events'])}"
    if "events_expected" in entry:
        events += f" (known {known}: {'match' if entry['events_match'] else 'MISMATCH'})"
    return (
        f"{name:<16} {best_ours['frames']} frames  ours {entry['ours_fps']}  "
        f"ultralytics {entry['ultralytics_fps']}  ratio {entry['ratio_vs_best_ultralytics']:.2f}× "
        f"(vs its default {entry['ratio_vs_default_ultralytics']:.2f}×)  "
        f"agreement {entry['agreement']:.1%} ({entry['matched']} matched)  {events}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, action="append", default=[], help="model folder or .onnx (repeatable)")
    parser.add_argument("--photos", type=Path, help="folder of photos for the slideshow half of the video")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--cores", type=int, default=2, help="CPUs to pin both contenders to")
    parser.add_argument("--no-tiny", action="store_true", help="skip the tiny colour model")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per contender; the best counts")
    parser.add_argument("--max-batch", type=int, nargs="+", default=[1, 4], help="our session batch sizes to try")
    parser.add_argument(
        "--inflight", type=int, nargs="+", default=[2], help="batches in the session at once to try (CLI default 2)"
    )
    parser.add_argument(
        "--spinning",
        nargs="+",
        choices=["on", "off"],
        default=["on"],
        help="our ONNX Runtime spin-wait settings to try (the scan CLI's default is on)",
    )
    parser.add_argument(
        "--rect",
        nargs="+",
        choices=["auto", "card", "on", "off"],
        default=["auto"],
        help="our input padding to try: minimum rectangle when the model allows (the scan CLI's default), as the card "
        "says, minimum rectangle, square; Ultralytics runs with the same padding so each ratio compares like with like",
    )
    parser.add_argument("--out", type=Path, default=WORK / "result.json")
    args = parser.parse_args(argv)

    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    WORK.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "tests"))
    from _builders import GRID, SIZE

    key = hashlib.sha1(json.dumps([args.width, args.height, args.fps, args.seconds, str(args.photos), 2]).encode())
    video = WORK / f"video-{key.hexdigest()[:10]}.mp4"
    codec = "cached"
    if not video.exists():
        t0 = time.perf_counter()
        tmp = video.with_suffix(".part.mp4")
        codec = make_video(
            tmp,
            width=args.width,
            height=args.height,
            fps=args.fps,
            seconds=args.seconds,
            photos=args.photos,
            size=SIZE,
            grid=GRID,
        )
        tmp.rename(video)
        emit(f"video {video.name}: {codec}, made in {time.perf_counter() - t0:.0f} s")
    known = occurrences(args.seconds)
    models = [] if args.no_tiny else [("tiny-rgb", tiny_model(Path(tempfile.mkdtemp()) / "tiny"))]
    models += [(m.name, m) for m in args.model]
    results: dict[str, Any] = {
        "video": {
            "path": str(video),
            "size": [args.width, args.height],
            "fps": args.fps,
            "seconds": args.seconds,
            "frames": round(args.fps * args.seconds),
            "known_fires": known,
        },
        "cores": args.cores,
        "models": {},
    }
    for name, model in models:
        workdir = Path(tempfile.mkdtemp(prefix="bench-video-"))
        rect_modes: dict[str, RectMode] = {"auto": "auto", "card": None, "on": True, "off": False}
        loaded = load_model(model)
        paddings = [r for r in args.rect if r != "on" or loaded.dynamic_hw] or ["card"]  # fixed size: square only
        variants = [
            (b, spin, n, r) for b in args.max_batch for spin in args.spinning for n in args.inflight for r in paddings
        ]
        ours: dict[str, list[dict[str, Any]]] = {
            f"batch{b}_spin_{s}_inflight{n}_rect_{r}": [] for b, s, n, r in variants
        }
        rects = {Detector(loaded, rect=rect_modes[r]).rect for r in paddings}
        theirs: dict[str, list[dict[str, Any]]] = {
            f"ort_threads_{t}{'_rect' if r else ''}": [] for t in ("default", str(args.cores)) for r in sorted(rects)
        }
        for _ in range(args.repeats):  # interleaved, best of N: background load hits everyone alike
            for b, spin, n, r in variants:
                time.sleep(1.0)
                run = run_ours(
                    model, video, args.cores, b, workdir, spinning=spin == "on", inflight=n, rect=rect_modes[r]
                )
                ours[f"batch{b}_spin_{spin}_inflight{n}_rect_{r}"].append(run)
            for contender in theirs:
                time.sleep(1.0)
                threads = contender.removeprefix("ort_threads_").removesuffix("_rect")
                theirs[contender].append(
                    run_ultralytics(model, video, args.cores, threads, workdir, rect=contender.endswith("_rect"))
                )
        best_ours = max((r for runs in ours.values() for r in runs), key=lambda r: r["fps"])
        # like with like: their best run with the same padding as our best run
        same = [r for runs in theirs.values() for r in runs if r["rect"] == best_ours["rect"]]
        best = max(same, key=lambda r: r["fps"])
        best_any = max((r for runs in theirs.values() for r in runs), key=lambda r: r["fps"])
        default = max(theirs[f"ort_threads_default{'_rect' if best_ours['rect'] else ''}"], key=lambda r: r["fps"])
        entry = {
            "ours_fps": {k: [round(r["fps"], 2) for r in v] for k, v in ours.items()},
            "ultralytics_fps": {k: [round(r["fps"], 2) for r in v] for k, v in theirs.items()},
            "best_ours_rect": best_ours["rect"],
            "ratio_vs_best_ultralytics": round(best_ours["fps"] / best["fps"], 3),
            "ratio_vs_default_ultralytics": round(best_ours["fps"] / default["fps"], 3),
            "ratio_vs_best_ultralytics_any_padding": round(best_ours["fps"] / best_any["fps"], 3),
            "frames": [best_ours["frames"], best["frames"]],
            "stages_ms": {"ours": best_ours["stages_ms"], "ultralytics": best["stages_ms"]},
            "batch_sizes": best_ours["batches"],
            **agreement(best_ours["detections"], best["detections"]),
            "events": best_ours["events"],
        }
        if name == "tiny-rgb":
            counts = {len(r["events"]) for runs in ours.values() for r in runs}  # every run, not just the best
            fires = [e for e in best_ours["events"] if e["hazard"] == "FIRE-001"]
            entry["events_expected"] = len(known)
            entry["events_match"] = counts == {len(known)} and len(fires) == len(known)
        results["models"][name] = entry
        emit(summary_line(name, entry, best_ours, len(known)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    emit(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
