"""Weight averaging ("model soup") of checkpoints of one architecture, recorded as a run.

Two kinds, both averaging the EMA weights Ultralytics saves:

    # a fine-tune and the checkpoint it started from, mixed by --weight
    hazardscan soup --base work/runs/A/weights/best.pt --with work/runs/B/weights/last.pt \
        --weight 0.5 --name hazardscan-v2 [--out work/runs]

    # a uniform soup of sibling fine-tunes: runs of one recipe from one start, differing in seed
    hazardscan soup --ingredients work/runs/S0/weights/best.pt work/runs/S1/weights/best.pt ... \
        --name hazardscan-v4

Both kinds keep the checkpoints in one loss basin (``--with`` descends from ``--base``; the ingredients
share their start weights), so the average is a model of its own, often better than any one of them.
The result is a run folder like training's: ``weights/best.pt`` plus ``run.json`` whose config continues
the ``--with`` run (or the first ingredient), so ``hazardscan release`` records every stage, each sibling
ingredient included. Choosing ``--weight`` by validation mAP tunes on the validation split; say so
wherever its figures are quoted. A uniform soup has no weight to tune.
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


def average_checkpoints(paths: list[Path], weights: list[float], out: Path) -> int:
    """Write ``sum(w_i * checkpoint_i)`` to ``out`` and return the number of averaged tensors.

    Integer buffers (e.g. BatchNorm's batch counter) and everything else in the file come from the
    last checkpoint. Raises ``ValueError`` when the checkpoints are not one architecture.
    """
    import torch

    if len(paths) != len(weights) or len(paths) < 2:
        raise ValueError("a soup needs at least two checkpoints, one weight each")
    files = [torch.load(p, map_location="cpu", weights_only=False) for p in paths]
    states = [(f.get("ema") or f["model"]).float().state_dict() for f in files]
    first = states[0]
    for path, sd in zip(paths[1:], states[1:], strict=True):
        if sd.keys() != first.keys() or any(sd[k].shape != first[k].shape for k in first):
            raise ValueError(f"{paths[0]} and {path} are not the same architecture")
    pairs = list(zip(weights, states, strict=True))
    mixed = {k: sum(w * sd[k] for w, sd in pairs) if first[k].is_floating_point() else states[-1][k] for k in first}
    last = files[-1]
    model = (last.get("ema") or last["model"]).float()
    model.load_state_dict(mixed)
    last["ema"], last["model"] = model.half(), None
    last["optimizer"] = None
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(last, out)
    return sum(1 for k in first if first[k].is_floating_point())


def _record(run_dir: Path, followed: Path, soup_facts: dict[str, Any], started: float) -> Path:
    run_followed = _run_of(followed)
    record = {
        **run_followed,
        "config": {**run_followed["config"], "name": run_dir.name, "weights": str(followed)},
        "soup": soup_facts,
        "epochs_run": 0,
        "wall_time_s": round(time.time() - started, 1),
        "metrics": {},
    }
    (run_dir / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=1, default=str))
    return run_dir


def _fresh_run_dir(name: str, out_root: Path) -> Path:
    prepare_offline(out_root / ".ultralytics")
    run_dir = out_root / name
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} exists; choose another --name")
    return run_dir


def soup(base: Path, other: Path, weight: float, name: str, out_root: Path) -> Path:
    """``(1 - weight) * base + weight * other``, where ``other`` was fine-tuned from ``base``."""
    if not 0.0 < weight < 1.0:
        raise ValueError(f"--weight must lie strictly between 0 and 1, got {weight}")
    _run_of(other), _run_of(base)  # both must be recorded runs
    run_dir = _fresh_run_dir(name, out_root)
    started = time.time()
    tensors = average_checkpoints([base, other], [1 - weight, weight], run_dir / "weights" / "best.pt")
    facts = {"base": str(base), "with": str(other), "weight": weight, "tensors_averaged": tensors}
    return _record(run_dir, other, facts, started)


def uniform_soup(ingredients: list[Path], name: str, out_root: Path) -> Path:
    """The plain mean of sibling fine-tunes, which must all have started from the same weights."""
    if len(ingredients) < 2:
        raise ValueError("a uniform soup needs at least two --ingredients")
    if len({p.resolve() for p in ingredients}) != len(ingredients):
        raise ValueError("an ingredient is listed twice")
    starts = {str(p): _run_of(p)["config"]["weights"] for p in ingredients}
    if len(set(starts.values())) != 1:
        raise ValueError(f"ingredients must share their start weights to be averaged uniformly, got {starts}")
    run_dir = _fresh_run_dir(name, out_root)
    started = time.time()
    share = 1.0 / len(ingredients)
    tensors = average_checkpoints(ingredients, [share] * len(ingredients), run_dir / "weights" / "best.pt")
    facts = {"ingredients": [str(p) for p in ingredients], "weights": [share] * len(ingredients)}
    facts["tensors_averaged"] = tensors
    return _record(run_dir, ingredients[0], facts, started)


def add_arguments(p: argparse.ArgumentParser) -> None:
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--base", type=Path, help="the earlier checkpoint (a run's weights/*.pt); needs --with")
    kind.add_argument(
        "--ingredients",
        type=Path,
        nargs="+",
        help="sibling checkpoints (one recipe, one start, other seeds), averaged 1/n each",
    )
    p.add_argument("--with", dest="other", type=Path, help="a checkpoint fine-tuned from --base")
    p.add_argument("--weight", type=float, default=0.5, help="share of --with in the average (default 0.5)")
    p.add_argument("--name", required=True, help="run folder name for the result")
    p.add_argument("--out", type=Path, default=Path("work/runs"), help="where run folders live")


def run(args: argparse.Namespace) -> int:
    try:
        if args.ingredients:
            run_dir = uniform_soup(args.ingredients, args.name, args.out)
        elif args.other is None:
            raise ValueError("--base needs --with (the checkpoint fine-tuned from it)")
        else:
            run_dir = soup(args.base, args.other, args.weight, args.name, args.out)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        sys.stderr.write(f"hazardscan soup: {exc}\n")
        return 2
    sys.stdout.write(f"{run_dir}\n")  # the CLI's output is the run folder
    return 0
