"""The learning curve of ``hazardscan teach`` (issue 15, item 3): a class of the shipped model taught again from
zero (``--fresh``) from N of its photos, AP50 against N, CPU minutes per point, and what the other classes lose.

    nohup nice -n 19 .venv/bin/python benchmarks/teach_curve.py --n 100 > work/teach/logs/curve-100.log 2>&1 &
    nohup nice -n 19 .venv/bin/python benchmarks/teach_curve.py --n 0 --n 25 --n 200 --n 50 > ... &
    nohup nice -n 19 .venv/bin/python benchmarks/teach_curve.py --class fire_extinguisher --keep-others \\
        --cpu-minutes 5 --n 25 --n 50 --n 100 --n 200 > ... &
    .venv/bin/python benchmarks/teach_curve.py --report          # -> benchmarks/reports/teach-curve.md

Each point (state in files: a point whose ``teach.json`` / ``report.json`` exists is not run again):

- ``hazardscan teach --model models/hazardscan-v5 --data <source spec> --classes <class> --fresh --photos N
  --cpu-minutes C --seed S`` (the photos come from the v5 dataset's training split: teach leaves out the photos
  that are val photos of the model's dataset version f6a76cd8b67d; N = 0 is the fresh channel untrained);
- ``hazardscan eval`` (the served ONNX pipeline, fp32) on v5's val split, cut in two by source (federated
  scoring scores a photo only on the classes its source labels): the class's own set (AP50 of the taught
  class), and every other photo with ``--baseline models/hazardscan-v5`` (the A/B of the other classes with
  bootstrap intervals; the taught class has no box there, so the gate's mean is over the other classes).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from training.dataset import load_manifest, write_derived_dataset  # noqa: E402

log = logging.getLogger("teach_curve")
MODEL = REPO / "models" / "hazardscan-v5"
DATASET = REPO / "work" / "datasets" / "hazardscan-f6a76cd8b67d"  # v5's dataset version (rebuilt by teach)
WORK = REPO / "work" / "teach"
REPORT = REPO / "benchmarks" / "reports" / "teach-curve.md"
HAZARDSCAN = [sys.executable, "-m", "inference_service.cli"]
# the source that labels each class of the experiment in v5's dataset
SOURCES = {
    "safety_harness": "safety-harness",
    "fire_extinguisher": "fire-extinguisher-campus-tw",
}


def point_dir(cls: str, n: int, seed: int, cpu_minutes: float, keep_others: bool = False) -> Path:
    return WORK / f"{cls}-n{n}-s{seed}-cpu{cpu_minutes:g}{'-keep' if keep_others else ''}"


def eval_sets(cls: str) -> tuple[Path, Path]:
    """v5's val photos of the class's source, and all its other val photos, as two derived datasets."""
    own, others = WORK / "eval" / f"{cls}-own", WORK / "eval" / f"{cls}-others"
    if (own / "manifest.jsonl").exists() and (others / "manifest.jsonl").exists():
        return own, others
    source = SOURCES[cls]
    val = [(s, side) for s, side in load_manifest(DATASET) if side == "val"]
    for out, keep, what in ((own, True, "only"), (others, False, "without")):
        out.mkdir(parents=True, exist_ok=True)
        chosen = [(s, side) for s, side in val if (s.source == source) == keep]
        write_derived_dataset(DATASET, out, chosen, f"val photos {what} source {source} (teach curve)")
    return own, others


def run(cmd: list[str], log_path: Path) -> None:
    log.info("%s", " ".join(cmd))
    with log_path.open("a") as f:
        subprocess.run(cmd, cwd=REPO, check=True, stdout=f, stderr=subprocess.STDOUT)


def point(cls: str, n: int, seed: int, cpu_minutes: float, threads: int, keep_others: bool = False) -> None:
    folder = point_dir(cls, n, seed, cpu_minutes, keep_others)
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / "curve.log"
    if not (folder / "teach.json").exists():
        spec = REPO / "datasets" / "sources" / f"{SOURCES[cls]}.yaml"
        run(
            [*HAZARDSCAN, "teach", "--model", str(MODEL), "--data", str(spec), "--classes", cls, "--fresh",
             "--photos", str(n), "--cpu-minutes", str(cpu_minutes), "--threads", str(threads),
             "--seed", str(seed), "--out", str(folder),
             *(["--keep-others", "--replay", "0"] if keep_others else [])],
            logs,
        )  # fmt: skip
    own, others = eval_sets(cls)
    model = folder / "model"
    if not (folder / "eval-own" / "report.json").exists():
        run([*HAZARDSCAN, "eval", "--model", str(model), "--data", str(own), "--no-int8",
             "--out", str(folder / "eval-own"), "--contact", "0"], logs)  # fmt: skip
    if n == 0:
        return  # no training: the other classes' channels are v5's (recover's output equals the ONNX model's)
    if not (folder / "eval-others" / "report.json").exists():
        cmd = [*HAZARDSCAN, "eval", "--model", str(model), "--data", str(others), "--no-int8",
               "--baseline", str(MODEL), "--out", str(folder / "eval-others"), "--contact", "0"]  # fmt: skip
        try:
            run(cmd, logs)
        except subprocess.CalledProcessError as exc:  # exit 1: the gate says worse; the report is written
            if exc.returncode != 1:
                raise


def baseline(cls: str) -> None:
    """v5 itself on the class's own val photos (its AP50 before the class was taken out)."""
    own, _ = eval_sets(cls)
    out = WORK / "eval" / f"{cls}-v5-own"
    if not (out / "report.json").exists():
        run([*HAZARDSCAN, "eval", "--model", str(MODEL), "--data", str(own), "--no-int8", "--out", str(out),
             "--contact", "0"], WORK / "eval" / "baseline.log")  # fmt: skip


# --- report --------------------------------------------------------------------------------------------


def _ap(report: dict[str, Any], cls: str) -> float | None:
    return next((c["ap50"] for c in report["per_class"] if c["class"] == cls), None)


def collect(cls: str) -> list[dict[str, Any]]:
    rows = []
    for folder in sorted(WORK.glob(f"{cls}-n*-s*-cpu*")):
        files = [folder / "teach.json", folder / "eval-own" / "report.json", folder / "eval-others" / "report.json"]
        if not all(f.exists() for f in files[:2]):
            continue
        teach, own = (json.loads(f.read_text()) for f in files[:2])
        if teach["photos"] == 0:
            ab = _unchanged()
        elif files[2].exists():
            ab = json.loads(files[2].read_text())["ab"]
        else:
            continue
        rows.append(
            {
                "n": teach["photos"],
                "recipe": "keep-others" if teach.get("keep_others") else "fine-tune",
                "seed": teach["seed"],
                "budget": teach["cpu_minutes_budget"],
                "boxes": teach["boxes"],
                "epochs": teach["epochs"],
                "train_cpu_min": teach["train_cpu_s"] / 60,
                "total_cpu_min": teach["total_cpu_s"] / 60,
                "train_wall_min": teach["train_wall_s"] / 60,
                "ap50": _ap(own, cls),
                "others_diff": ab["map50"]["diff"],
                "others_ci": ab["map50"]["ci"],
                "others_current": ab["map50"]["current"],
                "others_candidate": ab["map50"]["candidate"],
                "gate_classes": ab["gate_classes"],
                "per_class": {c: d["diff"] for c, d in ab["per_class"].items()},
                "per_class_ci": {c: d["ci"] for c, d in ab["per_class"].items()},
                "regressions": ab["regressions"],
            }
        )
    return sorted(rows, key=lambda r: (r["recipe"], r["budget"], r["n"], r["seed"]))


def _unchanged() -> dict[str, Any]:
    """The A/B of a point without training: the other classes' channels are v5's."""
    return {"map50": {"diff": 0.0, "ci": [0.0, 0.0], "current": None, "candidate": None}, "gate_classes": [],
            "per_class": {}, "regressions": []}  # fmt: skip


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def render(cls: str, rows: list[dict[str, Any]], v5_ap: float | None) -> list[str]:
    lines = [
        f"## {cls}",
        "",
        f"v5 (the class never taken out) scores AP50 {v5_ap:.3f} on the same photos." if v5_ap is not None else "",
        "",
        "| recipe | N photos | seed | boxes | CPU budget (min) | epochs | training CPU (min) | teach CPU in all (min) "
        f"| wall (min) | {cls} AP50 | other classes vs v5, points [95 % CI] | worse beyond its interval |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["others_ci"]
        if r["n"] == 0:  # the fresh channel untrained: the other channels are v5's
            budget, others = "–", "unchanged (no training) | –"
        else:
            budget = f"{r['budget']:g}"
            others = f"{_pts(r['others_diff'])} [{_pts(lo)}, {_pts(hi)}] | {', '.join(r['regressions']) or '-'}"
        lines.append(
            f"| {r['recipe']} | {r['n']} | {r['seed']} | {r['boxes']} | {budget} | {r['epochs']} "
            f"| {r['train_cpu_min']:.1f} "
            f"| {r['total_cpu_min']:.1f} | {r['train_wall_min']:.0f} | {r['ap50']:.3f} | {others} |"
        )
    trained = [r for r in rows if r["n"] > 0]
    if trained:
        classes = list(trained[0]["gate_classes"])
        lines += [
            "",
            f"Per class, AP50 difference against v5 in points (the {len(classes)} classes with at least 10 val "
            "boxes besides the taught one):",
            "",
            "| recipe | N | seed | " + " | ".join(classes) + " |",
            "|---|---|---|" + "---|" * len(classes),
        ]
        for r in trained:
            diffs = " | ".join(_pts(r["per_class"][c]) if c in r["per_class"] else "–" for c in classes)
            lines.append(f"| {r['recipe']} | {r['n']} | {r['seed']} | {diffs} |")
    return lines


def report(classes: list[str]) -> str:
    out = ["# hazardscan teach: the learning curve", "", "Written by `benchmarks/teach_curve.py --report`.", ""]
    for cls in classes:
        rows = collect(cls)
        v5 = WORK / "eval" / f"{cls}-v5-own" / "report.json"
        v5_ap = _ap(json.loads(v5.read_text()), cls) if v5.exists() else None
        out += [*render(cls, rows, v5_ap), ""]
        (WORK / f"curve-{cls}.json").write_text(json.dumps(rows, indent=1))
    return "\n".join(out)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--class", dest="cls", default="safety_harness", choices=sorted(SOURCES))
    p.add_argument("--n", type=int, action="append", help="photos of the class (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-minutes", type=float, default=6.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--keep-others", action="store_true", help="teach only the class's head rows (teach --keep-others)")
    p.add_argument("--report", action="store_true", help="print the table of every finished point")
    args = p.parse_args()
    if args.report:
        sys.stdout.write(report([c for c in SOURCES if any(WORK.glob(f"{c}-n*"))]) + "\n")
        return 0
    baseline(args.cls)
    for n in args.n or [100, 25, 200, 50, 0]:
        point(args.cls, n, args.seed, args.cpu_minutes, args.threads, args.keep_others)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
