"""Train a hazard detector with Ultralytics, offline, from a versioned config.

    hazardscan train --config training/configs/v1.yaml [--out work/runs] [--data DATA_YAML]

The run folder records the config, dataset version, seed, hardware, wall time and final metrics in
``run.json`` beside Ultralytics' own files; ``weights/best.pt`` stays there (never committed).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.offline import prepare_offline

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent


@dataclass
class TrainConfig:
    name: str
    weights: str
    sources: str | list[str] = "datasets/sources"  # a folder of source specs, or several (their union)
    datasets_root: str = "../shared/datasets"
    val_fraction: float = 0.2
    seed: int = 0
    threads: int | None = None  # torch CPU threads; default all cores (Ultralytics alone uses cores - 1)
    federated_loss: bool = False  # mask the class loss to the classes each photo's source labels
    # perceptual hash that groups near duplicates for the split: "dhash" (within 4 bits; every dataset so far)
    # or "phash" (within 10 bits; also groups noise-augmented copies and frames of one clip)
    near_duplicates: str = "dhash"
    # source-spec folder(s) whose photos keep the split side a dataset of them alone gives them (new sources
    # added beside them never move an earlier version's photo between train and val)
    keep_split_of: list[str] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        from training.split import NEAR_DUPLICATE_HASHES

        if data.get("near_duplicates", "dhash") not in NEAR_DUPLICATE_HASHES:
            raise ValueError(f"{path}: near_duplicates must be one of {sorted(NEAR_DUPLICATE_HASHES)}")
        return cls(**data)

    def resolve(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else (REPO / p)


def start_weights(cfg: TrainConfig) -> str:
    """A local checkpoint path, or an Ultralytics architecture yaml (``yolov8n.yaml``: from scratch)."""
    if cfg.weights.endswith(".yaml") and "/" not in cfg.weights:
        return cfg.weights  # packaged with ultralytics; nothing to download
    weights = cfg.resolve(cfg.weights)
    if not weights.exists():
        raise FileNotFoundError(f"starting weights {weights} not found: give a local .pt path (nothing is downloaded)")
    return str(weights)


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def build_from_config(cfg: TrainConfig, out_root: Path) -> Path:
    """Import the configured sources and write the canonical dataset; returns its data.yaml."""
    from inference_service.taxonomy import load_taxonomy
    from training.dataset import build_dataset
    from training.importer import import_all, load_source_specs

    folders = [cfg.sources] if isinstance(cfg.sources, str) else cfg.sources
    specs = [spec for folder in folders for spec in load_source_specs(cfg.resolve(folder))]
    result = import_all(specs, cfg.resolve(cfg.datasets_root), load_taxonomy())
    keep = {spec.name for folder in cfg.keep_split_of for spec in load_source_specs(cfg.resolve(folder))}
    return build_dataset(result, out_root, cfg.val_fraction, cfg.near_duplicates, keep).data_yaml


def _final_metrics(trainer: Any) -> dict[str, float]:
    metrics = getattr(trainer, "metrics", None) or {}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(float(v))}


def train(
    cfg: TrainConfig,
    data_yaml: Path,
    run_root: Path,
    device: str | None = None,
    callbacks: Mapping[str, Callable[[Any], None]] | None = None,
    trainer: type | None = None,
) -> Path:
    """Train and return the run folder (holding ``weights/best.pt`` and ``run.json``); ``callbacks``: extra
    Ultralytics callbacks by event (``on_train_epoch_end``: ...); ``trainer``: an Ultralytics trainer class in
    place of the detection trainer (``training.branch.branch_trainer``)."""
    run_root = run_root.resolve()
    prepare_offline(run_root / ".ultralytics")
    import torch
    from ultralytics import YOLO

    if device is None:
        device = "0" if torch.cuda.is_available() else "cpu"
    model = YOLO(start_weights(cfg))
    threads = cfg.threads or os.cpu_count() or 1
    # Ultralytics pins torch to cores - 1 threads when it selects the CPU (1 of 2 here); take them all back.
    model.add_callback("on_pretrain_routine_end", lambda _trainer: torch.set_num_threads(threads))
    for event, callback in (callbacks or {}).items():
        model.add_callback(event, callback)
    args = {
        "data": str(data_yaml),
        "project": str(run_root),
        "name": cfg.name,
        "exist_ok": False,
        "seed": cfg.seed,
        "deterministic": True,
        "device": device,
        "amp": False,
        "verbose": True,
        **cfg.train,
    }
    if cfg.federated_loss:
        from training.federated import attach

        attach(model, data_yaml, args)
    started = time.time()
    results = model.train(trainer=trainer, **args)
    elapsed = time.time() - started
    finished = model.trainer
    assert finished is not None
    run_dir = Path(finished.save_dir)
    metrics = _final_metrics(finished)
    card_path = data_yaml.parent / "dataset_card.json"
    dataset_card = json.loads(card_path.read_text()) if card_path.exists() else None
    record = {
        "config": asdict(cfg),
        "train_args": args,
        "dataset": {
            "data_yaml": str(data_yaml),
            "version": (dataset_card or {}).get("version") or data_yaml.parent.name.removeprefix("hazardscan-"),
            "card": dataset_card,
        },
        "seed": cfg.seed,
        # the count training ran with (Ultralytics' final validation resets torch to cores - 1 threads)
        "hardware": {**hardware(), "torch_threads": threads},
        "epochs_run": int(getattr(finished, "epoch", -1)) + 1,
        "wall_time_s": round(elapsed, 1),
        "metrics": metrics,
        "results_repr": str(type(results).__name__),
    }
    (run_dir / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=1, default=str))
    log.info("trained %s in %.0fs: %s", cfg.name, elapsed, metrics)
    return run_dir


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="training config yaml (see training/configs)")
    p.add_argument("--out", type=Path, default=REPO / "work", help="where datasets and runs are written")
    p.add_argument("--data", type=Path, help="an existing data.yaml; skip the import")
    p.add_argument("--device", help="'cpu' or a CUDA index; default: GPU when available")


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig.load(args.config)
    data_yaml = args.data or build_from_config(cfg, args.out / "datasets")
    run_dir = train(cfg, data_yaml, args.out / "runs", args.device)
    sys.stdout.write(f"{run_dir}\n")  # the CLI's output is the run folder
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
