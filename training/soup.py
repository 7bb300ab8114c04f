"""Weight averaging ("model soup") of two checkpoints of one architecture, recorded as a run.

    hazardscan soup --base work/runs/A/weights/best.pt --with work/runs/B/weights/last.pt \
        --weight 0.5 --name hazardscan-v2 [--out work/runs]

``--with`` must descend from ``--base`` (fine-tuned from it), so both sit in one loss basin and their
average is a model of its own, often better than either. The result is a run folder like training's:
``weights/best.pt`` plus ``run.json`` whose config continues the ``--with`` run, so ``hazardscan release``
records every stage. Choosing ``--weight`` by validation mAP tunes on the validation split; say so
wherever its figures are quoted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from training.offline import prepare_offline


def _run_of(weights: Path) -> dict[str, Any]:
    run_json = weights.resolve().parent.parent / "run.json"
    if not run_json.exists():
        raise FileNotFoundError(f"{weights} is not inside a training run folder (no {run_json})")
    run: dict[str, Any] = json.loads(run_json.read_text())
    return run


def average_checkpoints(base: Path, other: Path, weight: float, out: Path) -> int:
    """Write ``(1 - weight) * base + weight * other`` (EMA weights, as Ultralytics saves them) to ``out``.

    Returns the number of averaged tensors. Integer buffers (e.g. BatchNorm's batch counter) come from
    ``other``. Raises ``ValueError`` when the two are not the same architecture.
    """
    import torch

    a = torch.load(base, map_location="cpu", weights_only=False)
    b = torch.load(other, map_location="cpu", weights_only=False)
    model_a = (a.get("ema") or a["model"]).float()
    model_b = (b.get("ema") or b["model"]).float()
    sa, sb = model_a.state_dict(), model_b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError(f"{base} and {other} are not the same architecture")
    mixed = {k: sa[k] * (1 - weight) + sb[k] * weight if sa[k].is_floating_point() else sb[k] for k in sa}
    model_b.load_state_dict(mixed)
    b["ema"], b["model"] = model_b.half(), None
    b["optimizer"] = None
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(b, out)
    return sum(1 for k in sa if sa[k].is_floating_point())


def soup(base: Path, other: Path, weight: float, name: str, out_root: Path) -> Path:
    if not 0.0 < weight < 1.0:
        raise ValueError(f"--weight must lie strictly between 0 and 1, got {weight}")
    prepare_offline(out_root / ".ultralytics")
    run_other = _run_of(other)
    _run_of(base)  # both must be recorded runs
    run_dir = out_root / name
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} exists; choose another --name")
    started = time.time()
    tensors = average_checkpoints(base, other, weight, run_dir / "weights" / "best.pt")
    record = {
        **run_other,
        "config": {**run_other["config"], "name": name, "weights": str(other)},
        "soup": {"base": str(base), "with": str(other), "weight": weight, "tensors_averaged": tensors},
        "epochs_run": 0,
        "wall_time_s": round(time.time() - started, 1),
        "metrics": {},
    }
    (run_dir / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=1, default=str))
    return run_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", type=Path, required=True, help="the earlier checkpoint (a run's weights/*.pt)")
    p.add_argument("--with", dest="other", type=Path, required=True, help="a checkpoint fine-tuned from --base")
    p.add_argument("--weight", type=float, default=0.5, help="share of --with in the average (default 0.5)")
    p.add_argument("--name", required=True, help="run folder name for the result")
    p.add_argument("--out", type=Path, default=Path("work/runs"), help="where run folders live")


def run(args: argparse.Namespace) -> int:
    run_dir = soup(args.base, args.other, args.weight, args.name, args.out)
    sys.stdout.write(f"{run_dir}\n")  # the CLI's output is the run folder
    return 0
