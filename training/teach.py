"""Teach a shipped model a class from a few labelled photos, in one command (``hazardscan teach``).

    hazardscan teach --model models/default --data datasets/sources/safety-harness.yaml \\
        --classes safety_harness --fresh --photos 100 --cpu-minutes 30 --out work/teach/harness-100

``--data`` is a source spec, a folder of specs, a ``hazardscan feedback export`` folder (its ``sources/``), or a
built dataset version (its training split; e.g. ``hazardscan relabel``'s copy).
The steps:

1. the model's own dataset version (its card's ``data.dataset_version``; for a taught model, the one its start
   model replayed): ``<datasets>/hazardscan-<version>`` when it exists, else rebuilt from the card's training
   config with the importer, its version checked;
2. the new photos: the sources of ``--data`` imported; a photo that is a validation photo of that dataset is
   left out (the model is scored on those); of the photos with a box of a taught class, sorted by content
   hash and shuffled with ``--seed``, the first ``--photos`` (so the 25 photos of one seed are among its 50);
   their labels are restricted to the taught classes;
3. replay: ``--replay`` training photos of the model's dataset, drawn with ``--seed``, so the other classes are
   not forgotten; the taught classes' boxes are taken off them (teaching those is the new photos' job); with
   ``--negatives`` their sets count as labelling the taught classes, so they also teach their absence;
4. the start: ``recover`` (ONNX to a trainable checkpoint, BatchNorms rebuilt); a taught class the model lacks
   is appended to the head; a taught class it has goes on from its own channels (more photos of a class it
   raises, e.g. from the inspectors' feedback), or with ``--fresh`` starts them again from zero (the
   leave-one-out experiment);
5. training: the federated class loss (a new photo teaches only the taught classes, a replay photo only the
   classes its source labels, less the taught ones), no mosaic, the backbone frozen (``--freeze``), and a
   budget of process CPU time: Ultralytics' ``time`` starts at ``cpu_minutes / threads`` and is re-set after
   every epoch to the wall time at which the CPU time measured so far reaches the budget (a shared machine
   gives a process less than its threads); the last epoch's weights are the result (nothing is chosen on a
   validation set). ``--keep-others`` trains only the taught classes' rows of the head's last class
   convolutions, with every BatchNorm's statistics and the weight decay held: every other class answers as
   the start model does, up to the half precision of Ultralytics' checkpoints (no forgetting, by
   construction), at the cost of a linear classifier on the features the model already has. ``--branch``
   gives classes the model lacks a branch of the head of their own (``training.branch``), trained in full,
   everything else frozen and grafted back bit for bit: a copy of the head's class convolutions at every level
   (``--branch classes``; the boxes still come from the shared box branch), or also a copy of the box branch,
   the new classes answering on anchors of their own (``--branch boxes``);
6. release: ONNX fp32 and int8 with a model card (``hazardscan release``), into ``--release`` or
   ``<out>/model``; ``<out>/teach.json`` records the photos, CPU seconds per step and epochs.

Score it with ``hazardscan eval --model <release> --data <the model's dataset> --baseline <the model>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import resource
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from training.importer import Sample, SourceSpec

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
BN_PHOTOS = 32  # training photos of the model's dataset for the BatchNorm statistics of recover
DEFAULT_REPLAY = 300  # training photos of the model's dataset replayed beside the new ones
VAL_PHOTOS = 16  # of each kind, for Ultralytics' own end-of-training check (training photos: not a score)


# --- pure parts -----------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def remap(sample: Sample, source_classes: Sequence[str], classes: Sequence[str], keep: set[str]) -> Sample:
    """``sample`` with its boxes re-indexed from ``source_classes`` to ``classes``; boxes of a class outside
    ``keep`` (or outside ``classes``) are taken off."""
    names = [source_classes[i] for i in sample.labels.class_id.tolist()]
    mask = np.array([n in keep and n in classes for n in names], bool)
    labels = sample.labels[mask]
    ids = np.array([classes.index(n) for n, m in zip(names, mask, strict=True) if m], np.int64)
    return dataclasses.replace(sample, labels=dataclasses.replace(labels, class_id=ids))


def label_groups(
    start: Sequence[Sequence[str]], classes: Sequence[str], taught: Sequence[str], keep_others: bool
) -> list[list[str]]:
    """The released model's label groups (see the model card): the start model's, with the taught classes in a
    group of their own when only their rows were trained (``keep_others``, so that they never take an anchor
    from the others); ``[]`` for one group of every class."""
    from training.card import regroup

    return regroup(start, classes, taught if keep_others else ())


def choose_photos(samples: Sequence[Sample], taught: set[int], n: int | None, seed: int) -> list[Sample]:
    """The first ``n`` (all when ``None``) of the photos with a box of a class in ``taught``, in an order
    that depends only on the photos' bytes and ``seed``: the ``n`` photos of a seed hold its smaller draws."""
    shown = sorted((s for s in samples if set(s.labels.class_id.tolist()) & taught), key=lambda s: s.sha1)
    unique = list({s.sha1: s for s in shown}.values())  # a byte-identical copy counts once
    if n is not None and n > len(unique):
        raise ValueError(f"--photos {n}: only {len(unique)} photos have a box of the taught classes")
    order = np.random.default_rng(seed).permutation(len(unique))
    return [unique[i] for i in order[: len(unique) if n is None else n]]


def draw(samples: Sequence[Sample], n: int, seed: int) -> list[Sample]:
    """``n`` of ``samples`` (all when fewer), chosen with ``seed`` from their content-hash order."""
    ordered = sorted(samples, key=lambda s: s.sha1)
    if n >= len(ordered):
        return ordered
    picked = np.random.default_rng(seed + 1).choice(len(ordered), n, replace=False)
    return [ordered[i] for i in sorted(picked.tolist())]


def train_args(imgsz: int, cpu_minutes: float, threads: int, freeze: int, lr0: float) -> dict[str, Any]:
    """Ultralytics arguments of a teach run: no mosaic (the federated loss), a time budget of
    ``cpu_minutes / threads`` wall minutes to start with, the LR schedule following it, no warm-up (the
    start is a trained model: Ultralytics' warm-up bias LR of 0.1 would shake it), validation only at the end."""
    return {
        "imgsz": imgsz,
        "epochs": 100,  # replaced after the first epoch by what the time budget allows
        "time": cpu_minutes / threads / 60,
        "batch": 16,
        "nbs": 16,  # an optimiser step every batch: few photos, few batches
        "patience": 1000,
        "mosaic": 0.0,
        "close_mosaic": 0,
        "cache": "ram",
        "workers": 0,  # data loading in this process, so its CPU time is counted
        "optimizer": "SGD",
        "lr0": lr0,
        "lrf": 0.1,
        "warmup_epochs": 0,
        "freeze": freeze,
        "val": False,
        "plots": False,
    }


def keep_others_freeze(param_names: Sequence[str]) -> list[int | str]:
    """Ultralytics ``freeze`` entries that leave trainable only the last class convolution of each detection
    scale (``model.<head>.cv3.<scale>.<last>``): every layer before the head, and every other block of the head
    (frozen blocks also keep their BatchNorm statistics)."""
    parts = [n.split(".") for n in param_names if n.startswith("model.")]
    head = max(int(p[1]) for p in parts)
    last: dict[str, int] = {}
    for p in parts:
        if int(p[1]) == head and p[2] == "cv3":
            last[p[3]] = max(last.get(p[3], 0), int(p[4]))
    frozen: list[int | str] = list(range(head))
    for p in parts:
        if int(p[1]) != head or (p[2] == "cv3" and int(p[4]) == last[p[3]]):
            continue
        entry = ".".join(p[1:5]) if len(p) > 5 else ".".join(p[1:-1])
        if entry not in frozen:
            frozen.append(entry)
    return frozen


class ClassRows:
    """Ultralytics callback: the gradients of the head's last class convolutions are kept to the rows of
    ``rows`` (the taught classes), so the optimiser (without weight decay) moves nothing else."""

    def __init__(self, rows: Sequence[int]) -> None:
        self.rows = list(rows)

    def masks(self, n_classes: int) -> Any:
        import torch

        mask = torch.zeros(n_classes)
        mask[self.rows] = 1.0
        return mask

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        detect = trainer.model.model[-1]
        for branch in detect.cv3:
            conv = branch[-1]
            mask = self.masks(conv.out_channels).to(conv.weight.device)
            conv.weight.register_hook(lambda g, m=mask: g * m.view(-1, 1, 1, 1))
            conv.bias.register_hook(lambda g, m=mask: g * m)

    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        return {"on_pretrain_routine_end": self.on_pretrain_routine_end}  # after Ultralytics' freezing


def budget_hours(cpu_budget_s: float, cpu_used_s: float, wall_used_s: float) -> float:
    """The wall time (hours from the start) at which the CPU time reaches ``cpu_budget_s``, if the process
    keeps getting the share of the CPU it had so far."""
    if cpu_used_s <= 0:
        return cpu_budget_s / 3600
    return wall_used_s * cpu_budget_s / cpu_used_s / 3600


class CpuBudget:
    """Ultralytics callbacks that hold a run to a CPU-time budget through its ``time`` argument."""

    def __init__(self, cpu_minutes: float) -> None:
        self.budget_s = cpu_minutes * 60
        self.cpu0 = self.wall0 = 0.0
        self.epochs: list[dict[str, float]] = []

    def on_train_start(self, _trainer: Any) -> None:
        self.cpu0, self.wall0 = cpu_seconds(), time.time()

    def on_train_batch_end(self, trainer: Any) -> None:
        # Ultralytics checks the time after every optimiser step: keep it current within the first epoch too
        cpu, wall = cpu_seconds() - self.cpu0, time.time() - self.wall0
        trainer.args.time = budget_hours(self.budget_s, cpu, wall)

    def on_train_epoch_end(self, trainer: Any) -> None:
        cpu, wall = cpu_seconds() - self.cpu0, time.time() - self.wall0
        trainer.args.time = budget_hours(self.budget_s, cpu, wall)
        self.epochs.append({"cpu_s": round(cpu, 1), "wall_s": round(wall, 1)})
        log.info("epoch %d: %.1f of %.1f CPU minutes", len(self.epochs), cpu / 60, self.budget_s / 60)

    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        return {
            "on_train_start": self.on_train_start,
            "on_train_batch_end": self.on_train_batch_end,
            "on_train_epoch_end": self.on_train_epoch_end,
        }


# --- data ---------------------------------------------------------------------------------------------


def load_specs(data: Path) -> list[SourceSpec]:
    """The source specs of ``--data``: a spec file, a folder of specs, or a feedback export (``sources/``)."""
    from training.importer import load_source_specs

    if data.is_file():
        return [SourceSpec.from_dict(yaml.safe_load(data.read_text(encoding="utf-8")))]
    folder = data / "sources" if (data / "sources").is_dir() else data
    specs = load_source_specs(folder)
    if not specs:
        raise FileNotFoundError(f"{data}: no source spec (*.yaml) found")
    return specs


def replay_card(card: dict[str, Any]) -> dict[str, Any]:
    """What names the dataset a model replays: its own card, or for a taught model the part of its teach record
    that names its start model's (a teach dataset holds a few hundred linked photos and no recipe to rebuild it)."""
    return ((card.get("training") or {}).get("teach") or {}).get("replay_dataset") or card


def model_dataset(card: dict[str, Any], datasets: Path) -> Path:
    """The folder of the model's own dataset version; rebuilt from the card's training config if absent."""
    from training.train import TrainConfig, build_from_config

    card = replay_card(card)
    version = (card.get("data") or {}).get("dataset_version")
    if not version:
        raise ValueError(f"the card of {card['model_id']} names no dataset version: nothing to replay")
    root = datasets / f"hazardscan-{version}"
    if (root / "manifest.jsonl").exists():
        return root
    config = (card.get("training") or {}).get("config")
    if not config:
        raise ValueError(f"{root} is missing and the card has no training config to rebuild it from")
    fields = set(TrainConfig.__dataclass_fields__)
    built = build_from_config(TrainConfig(**{k: v for k, v in config.items() if k in fields}), datasets).parent
    if built.name != root.name:
        raise ValueError(f"rebuilt dataset is {built.name}, the card says hazardscan-{version}: the photos changed")
    return built


def write_teach_dataset(
    out: Path,
    classes: Sequence[str],
    new: Sequence[Sample],
    replay: Sequence[Sample],
    sources: Sequence[dict[str, Any]],
    derivation: str,
) -> Path:
    """A dataset (links, labels, manifest, card) of the new and replay photos for training, and a few of each
    as Ultralytics' validation photos; the card's sources carry the class maps the federated loss reads."""
    from training.dataset import (
        _fresh_split_folders,
        _write_pair,
        content_hash,
        manifest_row,
        render_card_markdown,
        split_counts,
    )

    pairs = [(s, "train") for s in [*new, *replay]]
    pairs += [(s, "val") for s in [*new[:VAL_PHOTOS], *replay[:VAL_PHOTOS]]]
    _fresh_split_folders(out)
    seen: Counter[str] = Counter()
    manifest = []
    for i, (sample, side) in enumerate(pairs):
        _write_pair(out, sample, side, seen)
        manifest.append(manifest_row(sample, side, i))
    photos, sides = [s for s, _ in pairs], [side for _, side in pairs]
    version = content_hash(list(classes), photos, sides)
    (out / "data.yaml").write_text(
        yaml.safe_dump(
            {
                "path": str(out.resolve()),
                "train": "images/train",
                "val": "images/val",
                "names": dict(enumerate(classes)),
            },
            allow_unicode=True,
        )
    )
    (out / "manifest.jsonl").write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in manifest))
    card = {
        "version": version,
        "classes": list(classes),
        "derivation": derivation,
        **split_counts(photos, sides, list(classes)),
        "duplicate_groups": 0,
        "sources": list(sources),
        "boxes_per_source_and_class": {},
        "issues_per_source": {},
    }
    (out / "dataset_card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1))
    (out / "README.md").write_text(render_card_markdown(card))
    return out / "data.yaml"


def _source_entry(spec: dict[str, Any], name: str, class_map: dict[str, Any]) -> dict[str, Any]:
    return {**{k: spec.get(k, "") for k in ("origin", "licence", "format")}, "name": name, "class_map": class_map}


# --- the command ----------------------------------------------------------------------------------------


def teach(
    model: Path,
    data: Path,
    taught: Sequence[str],
    out: Path,
    *,
    fresh: bool = False,
    photos: int | None = None,
    replay: int | None = None,
    cpu_minutes: float = 30.0,
    threads: int = 1,
    seed: int = 0,
    freeze: int = 10,
    lr0: float = 0.005,
    keep_others: bool = False,
    branch: str | None = None,
    negatives: bool = False,
    datasets_root: Path = REPO / "../shared/datasets",
    datasets: Path = REPO / "work/datasets",
    release_to: Path | None = None,
) -> dict[str, Any]:
    """Run the steps of the module doc; returns the record written to ``<out>/teach.json``."""
    from training.offline import prepare_offline

    prepare_offline(out / ".ultralytics")
    from inference_service.taxonomy import load_taxonomy
    from training.dataset import load_manifest
    from training.importer import import_all
    from training.recover import find_photos, head_classes, raw_card, recover

    started, steps = cpu_seconds(), {}
    card = raw_card(model)
    unknown = sorted(set(taught) - set(load_taxonomy().class_names))
    if unknown:
        raise ValueError(f"--classes {unknown} are not detector classes of the taxonomy")
    had = [c for c in taught if c in card["classes"]]
    if branch and (had or keep_others):
        raise ValueError(
            "--branch adds classes the model lacks (not --fresh), and is a recipe of its own (not --keep-others)"
        )
    rows_only = (keep_others or bool(branch)) and not negatives  # only the taught classes' own weights train
    if replay is None:  # a replay photo carries only the other classes' boxes: it teaches the taught weights nothing
        replay = 0 if rows_only else DEFAULT_REPLAY
    elif replay and rows_only:
        log.warning(
            "--replay %d with %s: replay photos carry only the other classes' boxes, which teach the taught "
            "classes' weights nothing (give --replay 0, or --negatives)",
            replay,
            "--branch" if branch else "--keep-others",
        )
    if card.get("head_branch"):
        raise ValueError(
            f"{card['model_id']} has a head branch already (teach --branch): teach its start model instead"
        )
    reset = had if fresh else []  # without --fresh a class the model has goes on from its own channels
    classes = head_classes(card["classes"], [c for c in taught if c not in had], reset=reset)
    out.mkdir(parents=True, exist_ok=True)

    # 1-3: photos
    replayed_from = replay_card(card)
    own_root = model_dataset(replayed_from, datasets)
    own_card = json.loads((own_root / "dataset_card.json").read_text())
    own = load_manifest(own_root)
    held_out = {s.sha1 for s, side in own if side == "val"}
    if (data / "manifest.jsonl").exists():  # a built dataset version (e.g. `hazardscan relabel`'s): its training split
        data_card = json.loads((data / "dataset_card.json").read_text())
        new_samples, new_classes = [s for s, side in load_manifest(data) if side == "train"], data_card["classes"]
        by_name = {s["name"]: s for s in data_card["sources"]}
    else:
        specs = load_specs(data)
        imported = import_all(specs, datasets_root, load_taxonomy())
        new_samples, new_classes = imported.samples, imported.classes
        by_name = {s.name: dataclasses.asdict(s) for s in specs}
    candidates = [s for s in new_samples if s.sha1 not in held_out]
    left_out = len(new_samples) - len(candidates)
    keep = set(taught)
    new_ids = {classes.index(c) for c in taught}
    remapped = [remap(s, new_classes, classes, keep) for s in candidates]
    chosen = choose_photos(remapped, new_ids, photos, seed)
    chosen = [dataclasses.replace(s, source=f"teach-{s.source}") for s in chosen]
    others = set(classes) - keep
    # a replay photo teaches the classes its source labels, less the taught ones: a source with none left
    # (the taught class's own set) has nothing to replay
    useful = {s["name"] for s in own_card["sources"] if set(s["class_map"].values()) & others}
    pool = [remap(s, own_card["classes"], classes, others) for s, side in own if side == "train" and s.source in useful]
    taken = {s.sha1 for s in chosen}
    replayed = draw([s for s in pool if s.sha1 not in taken], replay, seed)
    if not chosen and not replayed:  # the release calibrates its int8 model on the training photos
        raise ValueError(
            f"--photos {photos} and --replay {replay} leave no photo to train on or to calibrate the int8 model on; "
            "give --replay N (the head edit alone needs a few photos for the int8 calibration)"
        )
    sources = [
        _source_entry(by_name[n], f"teach-{n}", {k: v for k, v in by_name[n]["class_map"].items() if v in keep})
        for n in sorted({s.source.removeprefix("teach-") for s in chosen})
    ]
    # --negatives: a replay photo also teaches that the taught classes are absent (its source is taken to show none)
    absent = {f"(none) {c}": c for c in taught} if negatives else {}
    sources += [
        _source_entry(s, s["name"], {**{k: v for k, v in s["class_map"].items() if v in others}, **absent})
        for s in own_card["sources"]
        if s["name"] in useful
    ]
    derivation = (
        f"teach {', '.join(taught)}: {len(chosen)} photos of {data} (seed {seed}; "
        f"{left_out} left out as val photos of hazardscan-{own_card['version']}), "
        f"{len(replayed)} replay photos of hazardscan-{own_card['version']}'s training split without the taught "
        f"classes' boxes{' (negatives of them)' if negatives else ''}; "
        f"val: {VAL_PHOTOS} + {VAL_PHOTOS} of those training photos"
    )
    data_yaml = write_teach_dataset(out / "dataset", classes, chosen, replayed, sources, derivation)
    steps["data_cpu_s"] = round(cpu_seconds() - started, 1)
    log.info("%s", derivation)

    # 4: the start
    arch = card.get("architecture", "yolov8n")
    start = out / f"{arch}_from_{card['model_id']}.pt"  # release reads the architecture off this name
    t = cpu_seconds()
    bn_photos = find_photos(own_root / "images" / "train", BN_PHOTOS)
    add = [c for c in taught if c not in had]
    recovered = recover(model, start, bn_photos, add_classes=add, reset_classes=reset)
    steps["recover_cpu_s"] = round(cpu_seconds() - t, 1)

    # 5: training
    t, wall = cpu_seconds(), time.time()
    budget = CpuBudget(cpu_minutes)
    run_dir = out / "run"
    epochs = 0
    if chosen and cpu_minutes > 0:
        rows = [classes.index(c) for c in taught] if keep_others else None
        run_dir = _train(
            start,
            data_yaml,
            out,
            card,
            cpu_minutes,
            threads,
            seed,
            freeze,
            lr0,
            budget,
            rows,
            len(add) if branch else 0,
            branch or "classes",
        )
        epochs = json.loads((run_dir / "run.json").read_text())["epochs_run"]
    else:
        if branch:
            raise ValueError("--branch needs photos and a CPU budget: an untrained branch is the start model")
        _untrained_run(start, data_yaml, run_dir, card)
    steps["train_cpu_s"] = round(cpu_seconds() - t, 1)
    steps["train_wall_s"] = round(time.time() - wall, 1)

    # 6: release
    t = cpu_seconds()
    release_to = release_to or out / "model"
    released = _release(
        run_dir, release_to, card, taught, keep_others or bool(branch), add if branch else [], branch, own_root
    )
    steps["release_cpu_s"] = round(cpu_seconds() - t, 1)
    record = {
        "model": f"{card['model_id']} {card['version']}",
        "taught": list(taught),
        "fresh": reset,
        "continued": [] if fresh else had,
        "added": add,
        "classes": classes,
        "data": str(data),
        "photos": len(chosen),
        "photos_left_out_as_val": left_out,
        "boxes": int(sum(len(s.labels) for s in chosen)),
        "replay": len(replayed),
        "seed": seed,
        "threads": threads,
        "freeze": "all but the taught classes' rows"
        if keep_others
        else f"all but the new branch ({branch})"
        if branch
        else freeze,
        "keep_others": keep_others,
        "branch": branch,
        "negatives": negatives,
        "lr0": lr0,
        "cpu_minutes_budget": cpu_minutes,
        "epochs": epochs,
        "epoch_log": budget.epochs,
        **steps,
        "total_cpu_s": round(cpu_seconds() - started, 1),
        "dataset": str(data_yaml.parent),
        "start": recovered["checkpoint"],
        "run": str(run_dir),
        "release": str(release_to),
        "release_version": released["version"],
        "photo_list": [str(s.image) for s in chosen],
        "replay_dataset": {
            "model_id": replayed_from["model_id"],
            "data": {"dataset_version": own_card["version"]},
            "training": {"config": (replayed_from.get("training") or {}).get("config")},
        },
    }
    (out / "teach.json").write_text(json.dumps(record, ensure_ascii=False, indent=1))
    card_json = json.loads((release_to / "card.json").read_text())
    card_json["training"]["teach"] = {k: v for k, v in record.items() if k != "photo_list"}
    from training.release import write_card

    write_card(release_to, card_json)
    return record


def _train(
    start: Path,
    data_yaml: Path,
    out: Path,
    card: dict[str, Any],
    cpu_minutes: float,
    threads: int,
    seed: int,
    freeze: int,
    lr0: float,
    budget: CpuBudget,
    rows: Sequence[int] | None = None,
    branch: int = 0,
    design: str = "classes",
) -> Path:
    """Ultralytics on the teach dataset; with ``rows``, only those class rows of the head learn; with ``branch``,
    only a class branch of the head for the last ``branch`` classes (``weights/best.pt`` is then the start
    checkpoint with the trained branch grafted in)."""
    import torch

    from training.train import TrainConfig, train

    args = train_args(max(card["input_size"]), cpu_minutes, threads, freeze, lr0)
    callbacks = budget.callbacks()
    trainer = None
    if branch:
        from training.branch import branch_freeze, branch_trainer, branched_names

        args.update(freeze=branch_freeze(branched_names(start, branch, design)))
        trainer = branch_trainer(branch, design)
    elif rows is not None:
        names = list(torch.load(start, map_location="cpu", weights_only=False)["model"].state_dict())
        args.update(freeze=keep_others_freeze(names), weight_decay=0.0)
        callbacks.update(ClassRows(rows).callbacks())  # events of their own: one callback an event
    cfg = TrainConfig(
        name="run",
        weights=str(start.resolve()),
        sources=[],
        seed=seed,
        threads=threads,
        federated_loss=True,
        train=args,
    )
    run_dir = train(cfg, data_yaml, out, device="cpu", callbacks=callbacks, trainer=trainer)
    weights = run_dir / "weights"
    # the result is the last epoch; Ultralytics' best.pt is chosen on its val photos (training photos here)
    if (weights / "best.pt").exists():
        (weights / "best.pt").rename(weights / "best_by_fitness.pt")
    if branch:
        from training.branch import graft

        graft(start, weights / "last.pt", weights / "best.pt", branch, design)
    else:
        shutil.copyfile(weights / "last.pt", weights / "best.pt")
    return run_dir


def _untrained_run(start: Path, data_yaml: Path, run_dir: Path, card: dict[str, Any]) -> None:
    """A run folder around the recovered checkpoint (no photos or no budget: the head edit alone)."""
    (run_dir / "weights").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(start, run_dir / "weights" / "best.pt")
    dataset_card = json.loads((data_yaml.parent / "dataset_card.json").read_text())
    record = {
        "config": {"name": "untrained", "weights": str(start)},
        "train_args": {"imgsz": max(card["input_size"])},
        "dataset": {"data_yaml": str(data_yaml), "version": dataset_card["version"], "card": dataset_card},
        "epochs_run": 0,
        "wall_time_s": 0.0,
        "metrics": {},
    }
    (run_dir / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=1))


def _release(
    run_dir: Path,
    out: Path,
    card: dict[str, Any],
    taught: Sequence[str],
    keep_others: bool,
    branched: Sequence[str] = (),
    design: str | None = None,
    own_root: Path | None = None,
) -> Any:
    """``hazardscan release`` of the run; the shipped model's thresholds carried over for the classes not
    taught (their scores moved little; ``eval --thresholds ... --write-card`` chooses new ones). With
    ``keep_others`` the taught classes get a label group of their own, so that they never take an anchor from
    the other classes, which then answer exactly as before."""
    from training.release import release, write_card

    tag = "-".join(taught)
    # a branched model's int8 file is calibrated on the start model's own training photos: its frozen layers see
    # what the start model's calibration saw
    calibration = own_root / "data.yaml" if branched and own_root is not None else None
    released = release(
        run_dir,
        out,
        f"{card['version']}+teach-{tag}",
        skip_map=True,
        nms_iou=card.get("nms_iou", 0.5),
        calibration_data=calibration,
    )
    released["class_thresholds"] = {
        c: t for c, t in card.get("class_thresholds", {}).items() if c in released["classes"] and c not in taught
    }
    groups = label_groups(card.get("label_groups") or [], released["classes"], taught, keep_others)
    if groups:
        released["label_groups"] = groups
    if branched:
        from training.branch import CARD_KEY

        released[CARD_KEY] = {"classes": list(branched), "design": design, "recipe": "hazardscan teach --branch"}
    write_card(out, released)
    return released


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="the shipped model folder to start from")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="a source spec yaml, a folder of specs, a feedback export folder, or a built dataset (its training split)",
    )
    p.add_argument("--classes", required=True, help="comma-separated taxonomy classes to teach")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="re-initialise a taught class the model already has (without it, the class goes on from its channels)",
    )
    p.add_argument("--photos", type=int, help="how many photos with a box of a taught class (default: all)")
    p.add_argument(
        "--replay",
        type=int,
        help=f"training photos of the model's own dataset replayed (default: {DEFAULT_REPLAY}; 0 with --keep-others "
        "or --branch unless --negatives, where they would teach nothing)",
    )
    p.add_argument("--cpu-minutes", type=float, default=30.0, help="process CPU time for training (0: no training)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 or 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--freeze", type=int, default=10, help="first N layers kept frozen (10: the backbone)")
    p.add_argument("--lr0", type=float, default=0.005)
    p.add_argument(
        "--keep-others",
        action="store_true",
        help="train only the taught classes' rows of the head: every other class answers as before",
    )
    p.add_argument(
        "--branch",
        nargs="?",
        const="classes",
        choices=("classes", "boxes"),
        help="classes the model lacks learn in a head branch of their own, every old weight frozen: a class branch "
        "(classes, the default) or a box and a class branch on anchors of their own (boxes)",
    )
    p.add_argument(
        "--negatives",
        action="store_true",
        help="replay photos also teach that the taught classes are absent (for sets known to show none of them)",
    )
    p.add_argument("--datasets-root", type=Path, default=REPO / "../shared/datasets", help="where photo sets live")
    p.add_argument("--datasets", type=Path, default=REPO / "work/datasets", help="where dataset versions are built")
    p.add_argument("--out", type=Path, help="work folder (default: work/teach/<classes>-<photos>-s<seed>)")
    p.add_argument("--release", type=Path, help="model folder to write (default: <out>/model)")


def run(args: argparse.Namespace) -> int:
    taught = [c.strip() for c in args.classes.split(",") if c.strip()]
    out = args.out or REPO / "work" / "teach" / f"{'-'.join(taught)}-{args.photos or 'all'}-s{args.seed}"
    if args.photos is not None and args.photos < 0:
        sys.stderr.write("error: --photos must be 0 or more\n")
        return 2
    try:
        record = teach(
            args.model,
            args.data,
            taught,
            out,
            fresh=args.fresh,
            photos=args.photos,
            replay=args.replay,
            cpu_minutes=args.cpu_minutes,
            threads=args.threads,
            seed=args.seed,
            freeze=args.freeze,
            lr0=args.lr0,
            keep_others=args.keep_others,
            branch=args.branch,
            negatives=args.negatives,
            datasets_root=args.datasets_root,
            datasets=args.datasets,
            release_to=args.release,
        )
    except (ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps({k: v for k, v in record.items() if k != "photo_list"}, ensure_ascii=False, indent=1))
    sys.stdout.write("\n")
    return 0
