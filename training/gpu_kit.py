"""A fine-tune on a lent GPU machine: a carry folder small enough to travel, a slimmed git tree, one command.

The device tool sends the working tree (tracked and untracked-not-ignored files) plus the ``carry`` paths, up
to a size limit (``TRAVEL_LIMIT``), and runs one command of limited length. The shipped models alone are larger
than that limit, so for the duration of one call they leave the git index (the files stay on disk) and come
back after:

    hazardscan gpu-kit pack --data work/datasets/hazardscan-a748fad37621 --weights work/recovered/v5.pt
    hazardscan gpu-kit slim       # models/**.onnx out of the index, ignored in .git/info/exclude
    hazardscan gpu-kit check      # travel size (the tree that travels + work/gpu), refused above the limit
    #   device: run(command="bash scripts/gpu_train.sh", carry=["work/gpu"], timeout_s=600)
    hazardscan gpu-kit restore    # the index and .git/info/exclude exactly as before

``pack`` writes ``work/gpu/``: the photos downscaled to the training size (WebP, labels unchanged), a
``train.txt`` that lists each training photo once per repeat (repeat-factor sampling, as ``hazardscan
resample``), a subset of the validation photos (a monitor: the candidate is scored here, on the originals),
the dataset card and a manifest whose image paths are relative (so the federated loss finds each photo's
source), ``data.yaml`` with a path relative to the repo root, the start weights (fp16, as Ultralytics stores
its own checkpoints) and the wheels the device lacks, with ``kit.json`` listing what went in.
``train`` is ``hazardscan train`` plus what the device needs: a stand-in for ``polars`` where it is missing
(Ultralytics imports it for one call whose failure it already tolerates) and ``--set key=value`` overrides
of the config's ``train`` section; ``unpack`` turns the files a call returned into a run folder for ``soup``,
``release`` and ``eval``. The steps and figures: docs/ml.md, "A GPU run".
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tomllib
import types
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from inference_service.imaging import fit_inside
from training.dataset import link_stem, load_manifest, manifest_row, yolo_lines
from training.importer import Sample
from training.resample import class_repeat_factors, resampled

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent

TRAVEL_LIMIT = 64 * 2**20  # the device tool's limit on what travels (tree + carried paths)
KIT = Path("work/gpu")  # the carry folder, relative to the repo root (git-ignored)
DEVICE_COMMAND = "bash scripts/gpu_train.sh"  # the whole command of the device call; run from the repo root
DEVICE_CARRY = (str(KIT),)
CONFIG = Path("training/configs/v11-gpu.yaml")  # the script's default
DEVICE_WHEELS = ("ultralytics", "ultralytics-thop", "ultralytics-platform")  # not on the H200 image
SLIM_PREFIX = "models/"
SLIM_MIN_BYTES = 2**20
SLIM_BEGIN = "# >>> hazardscan gpu-kit slim: undo with `hazardscan gpu-kit restore`"
SLIM_END = "# <<< hazardscan gpu-kit slim"
SLIM_JOINED = " (a newline added before it)"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")


# --- pure parts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackedPhoto:
    sample: Sample
    split: str
    stem: str  # file stem inside the kit (the dataset's link stem)
    repeats: int  # times it is listed in train.txt (0 for validation photos)


def plan_pack(
    samples: Sequence[tuple[Sample, str]],
    n_classes: int,
    rfs_threshold: float = 0.0,
    train_photos: int | None = None,
    val_photos: int | None = None,
) -> list[PackedPhoto]:
    """Each photo once per side, with how often training lists it.

    A photo's manifest rows are counted (a resampled dataset repeats rows) and multiplied by the repeats of
    repeat-factor sampling at ``rfs_threshold`` (0: none), computed on the photos kept. ``train_photos`` and
    ``val_photos`` keep that many photos of a side, the first in content-hash order (a spread over sources)."""
    rows: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], Sample] = {}
    for s, split in samples:
        rows[(s.sha1, split)] += 1
        first.setdefault((s.sha1, split), s)
    keep: list[tuple[str, str]] = []
    for side, limit in (("train", train_photos), ("val", val_photos)):
        keys = sorted(k for k in first if k[1] == side)
        keep += keys if limit is None else keys[:limit]
    kept = [(first[k], k[1]) for k in keep]
    factors = class_repeat_factors([s for s, split in kept if split == "train"], n_classes, rfs_threshold)
    repeats = Counter(s.sha1 for s, split in resampled(kept, factors) if split == "train")
    stems: Counter[str] = Counter()
    out = []
    for (sha1, split), (s, _) in zip(keep, kept, strict=True):
        stem = link_stem(s)
        stems[stem] += 1
        if stems[stem] > 1:
            stem = f"{stem}__{stems[stem] - 1}"
        out.append(PackedPhoto(s, split, stem, rows[(sha1, split)] * repeats[sha1] if split == "train" else 0))
    return out


def scaled_sample(sample: Sample, width: int, height: int, image: Path) -> Sample:
    """The sample as packed: ``image`` at ``width`` x ``height``, its boxes scaled with it."""
    labels = sample.labels.scaled(width / sample.width, height / sample.height)
    return Sample(image, sample.source, width, height, labels, sample.sha1)


def train_list(photos: Iterable[PackedPhoto], suffix: str) -> str:
    """``train.txt``: one ``./images/train/<stem><suffix>`` line per repeat (Ultralytics resolves ``./``
    against the list's folder and keeps repeated lines)."""
    return "".join(f"./images/train/{p.stem}{suffix}\n" * p.repeats for p in photos if p.split == "train")


def data_yaml(path_from_repo: str, classes: Sequence[str]) -> dict[str, Any]:
    """The kit's data.yaml: ``path`` relative to the repo root, where training runs (Ultralytics takes a
    relative path that exists from the working directory as it is)."""
    if Path(path_from_repo).is_absolute():
        raise ValueError(f"the kit's data path must be relative to the repo root, got {path_from_repo}")
    return {"path": path_from_repo, "train": "train.txt", "val": "images/val", "names": dict(enumerate(classes))}


def locked_versions(uv_lock: str, names: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` of the named packages in a uv.lock; a missing name is an error."""
    found = {p["name"]: p["version"] for p in tomllib.loads(uv_lock).get("package", [])}
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"not in uv.lock: {missing}")
    return {n: found[n] for n in names}


def pip_download_args(versions: Mapping[str, str], dest: Path) -> list[str]:
    """pip's arguments for wheels the device can install (CPython 3.12, manylinux x86-64, no dependencies)."""
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    fixed = ["download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp"]
    return [*fixed, *platforms, "-d", str(dest), *(f"{n}=={v}" for n, v in versions.items())]


@dataclass(frozen=True)
class Travel:
    """What one device call would send: bytes per part and in all, against the limit less a margin."""

    parts: dict[str, int]
    total: int
    limit: int
    margin: int

    @property
    def fits(self) -> bool:
        return self.total <= self.limit - self.margin

    def lines(self) -> list[str]:
        width = max(map(len, self.parts), default=0)
        rows = [f"{name:<{width}}  {size / 2**20:8.2f} MiB" for name, size in self.parts.items()]
        verdict = "fits" if self.fits else "REFUSED: over"
        return [
            *rows,
            f"{'total':<{width}}  {self.total / 2**20:8.2f} MiB  ({self.total} bytes)",
            f"{verdict} the limit {self.limit / 2**20:.0f} MiB less a margin of {self.margin / 2**20:.1f} MiB",
        ]


def part_of(path: str, carried: Sequence[str]) -> str:
    """The manifest line a file counts under: the carried path holding it and its next folder, else ``tree``."""
    for root in carried:
        root = root.rstrip("/")
        if path == root or path.startswith(root + "/"):
            rest = path[len(root) + 1 :].split("/")
            return f"{root}/{rest[0]}" if len(rest) > 1 else f"{root}/ (files)"
    return "tree"


def travel(files: Mapping[str, int], carried: Sequence[str] = (), limit: int = TRAVEL_LIMIT, margin: int = 0) -> Travel:
    """Sum the sizes of the files that travel (each path once) into parts."""
    parts: Counter[str] = Counter()
    for path, size in files.items():
        parts[part_of(path, carried)] += size
    ordered = dict(sorted(parts.items(), key=lambda kv: (kv[0] != "tree", kv[0])))
    return Travel(ordered, sum(files.values()), limit, margin)


def slim_paths(tracked: Mapping[str, int], prefix: str = SLIM_PREFIX, min_bytes: int = SLIM_MIN_BYTES) -> list[str]:
    """The tracked files under ``prefix`` of at least ``min_bytes``: the ones a device call leaves behind."""
    return sorted(p for p, size in tracked.items() if p.startswith(prefix) and size >= min_bytes)


def exclude_with(text: str, paths: Sequence[str]) -> str:
    """``.git/info/exclude`` with a marked block ignoring ``paths`` (anchored at the repo root)."""
    if SLIM_BEGIN in text:
        raise ValueError("the tree is already slimmed: run `hazardscan gpu-kit restore` first")
    joined = bool(text) and not text.endswith("\n")  # the block's own newline is taken away again on restore
    begin = SLIM_BEGIN + (SLIM_JOINED if joined else "")
    lines = (begin, *(f"/{p}" for p in paths), SLIM_END)
    return text + ("\n" if joined else "") + "".join(f"{line}\n" for line in lines)


def exclude_without(text: str) -> tuple[str, list[str]]:
    """``.git/info/exclude`` as it was before :func:`exclude_with`, and the paths its block held ([] if none)."""
    lines = text.splitlines(keepends=True)
    begin = next((i for i, line in enumerate(lines) if line.startswith(SLIM_BEGIN)), None)
    if begin is None:
        return text, []
    end = next(i for i in range(begin, len(lines)) if lines[i].rstrip("\n") == SLIM_END)
    paths = [line.strip().lstrip("/") for line in lines[begin + 1 : end]]
    head = "".join(lines[:begin])
    if lines[begin].rstrip("\n").endswith(SLIM_JOINED):
        head = head.removesuffix("\n")
    return head + "".join(lines[end + 1 :]), paths


def apply_overrides(train: Mapping[str, Any], settings: Sequence[str]) -> dict[str, Any]:
    """The config's ``train`` section with ``key=value`` settings (values read as YAML: ``0.02``, ``ram``)."""
    out = dict(train)
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes key=value, got {setting!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def csv_columns(data: bytes) -> dict[str, list[Any]]:
    """A CSV's columns by header (names stripped, numbers as floats): what Ultralytics reads results.csv as."""
    rows = list(csv.reader(io.StringIO(data.decode())))
    if not rows:
        return {}
    names = [n.strip() for n in rows[0]]

    def value(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text.strip()

    return {n: [value(r[i]) for r in rows[1:] if i < len(r)] for i, n in enumerate(names)}


def stopped_run(config: Mapping[str, Any], train_args: Mapping[str, Any], results_csv: bytes) -> dict[str, Any]:
    """A ``run.json`` for a run stopped before its end (the call's limit), which writes none: the config, the
    Ultralytics arguments (``args.yaml``) and the epochs ``results.csv`` counts."""
    epochs = len(csv_columns(results_csv).get("epoch", [])) if results_csv else 0
    return {
        "config": dict(config),
        "train_args": dict(train_args),
        "dataset": {"data_yaml": str(train_args["data"]), "version": None, "card": None},
        "seed": config.get("seed"),
        "epochs_run": epochs,
        "wall_time_s": None,
        "metrics": {},
        "stopped": "the run was stopped before its end (no run.json): epochs counted from results.csv",
    }


def unpacked_run(run: Mapping[str, Any], data_yaml: str, start_weights: str) -> dict[str, Any]:
    """The device's ``run.json`` as a run of this checkout: its dataset is the original one the kit was packed
    from (release calibrates int8 on its photos; eval scores them), its start the checkpoint the kit's fp16 copy
    was made from (release follows it), and the kit's own paths are kept under ``device``."""
    out = json.loads(json.dumps(run))
    device = {"data_yaml": out["dataset"]["data_yaml"], "start_weights": out["config"]["weights"]}
    out["dataset"]["data_yaml"] = data_yaml
    out["config"]["weights"] = start_weights
    out["device"] = {
        **device,
        "note": "trained on the GPU kit (training.gpu_kit): the photos downscaled and re-encoded; weights/best.pt "
        "is the last epoch (the rule fixed before the run), weights/device-best.pt the best on the device's "
        "validation monitor",
    }
    return out


# --- thin shell: files, git, subprocesses ---------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def file_sizes(repo: Path, paths: Iterable[str]) -> dict[str, int]:
    """Sizes on disk; a link counts as a link; a path gone from disk counts 0 bytes (it cannot travel)."""
    out = {}
    for p in paths:
        try:
            out[p] = os.lstat(repo / p).st_size
        except FileNotFoundError:
            out[p] = 0
    return out


def tree_files(repo: Path) -> dict[str, int]:
    """The files a call sends from the checkout: tracked and untracked-not-ignored (and ``shared/``)."""
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    paths = set(filter(None, listed))
    shared = repo / "shared"
    if shared.is_dir():
        paths |= {str(f.relative_to(repo)) for f in shared.rglob("*") if f.is_file() or f.is_symlink()}
    return file_sizes(repo, sorted(paths))


def carried_files(repo: Path, carry: Sequence[str]) -> dict[str, int]:
    paths = []
    for c in carry:
        root = repo / c
        found = [root] if root.is_file() else [f for f in root.rglob("*") if f.is_file() or f.is_symlink()]
        paths += [str(f.relative_to(repo)) for f in found]
    return file_sizes(repo, paths)


def kit_problems(kit: Path, repo: Path = REPO) -> list[str]:
    """What would make the device call fail or waste its time: a missing or partial kit, a data path that
    does not resolve from the repo root, listed photos that are not there, wheels missing."""
    if not (kit / "kit.json").exists():
        return [f"no kit at {kit}: run `hazardscan gpu-kit pack` (kit.json is written last)"]
    record = json.loads((kit / "kit.json").read_text())
    problems = [f"{kit / name} is missing" for name in ("start.pt", "data/data.yaml") if not (kit / name).exists()]
    if problems:
        return problems
    data = yaml.safe_load((kit / "data" / "data.yaml").read_text())
    root = repo / data["path"]
    if Path(data["path"]).is_absolute() or root.resolve() != (kit / "data").resolve():
        problems.append(f"data.yaml's path {data['path']!r} does not name {kit / 'data'} from the repo root")
    listed = (kit / "data" / "train.txt").read_text().splitlines()
    missing = sorted({line for line in listed if not (kit / "data" / line).exists()})
    if missing:
        problems.append(f"{len(missing)} photos listed in train.txt are missing, e.g. {missing[0]}")
    if len(listed) != record["train_list"]:
        problems.append(f"train.txt has {len(listed)} lines, kit.json says {record['train_list']}")
    wheels = sorted(w.name for w in (kit / "wheels").glob("*.whl")) if (kit / "wheels").is_dir() else []
    if wheels != record["wheels"] or len(wheels) != len(DEVICE_WHEELS):
        problems.append(f"wheels {wheels} (the device needs {', '.join(DEVICE_WHEELS)})")
    return problems


def check(repo: Path, carry: Sequence[str] = DEVICE_CARRY, margin: int = 2**20) -> Travel:
    return travel({**tree_files(repo), **carried_files(repo, carry)}, carry, TRAVEL_LIMIT, margin)


def _exclude_file(repo: Path) -> Path:
    path = Path(git(repo, "rev-parse", "--git-path", "info/exclude").strip())
    return path if path.is_absolute() else repo / path


def slim(repo: Path, prefix: str = SLIM_PREFIX, min_bytes: int = SLIM_MIN_BYTES) -> list[str]:
    """Take the big files under ``prefix`` out of the index and ignore them; they stay on disk, unchanged."""
    exclude = _exclude_file(repo)
    before = exclude.read_text() if exclude.exists() else ""
    if SLIM_BEGIN in before:
        raise ValueError("the tree is already slimmed: run `hazardscan gpu-kit restore` first")
    tracked = file_sizes(repo, filter(None, git(repo, "ls-files", "-z", "--cached").split("\0")))
    paths = slim_paths(tracked, prefix, min_bytes)
    if not paths:
        return []
    changed = git(repo, "status", "--porcelain", "--", *paths)
    if changed.strip():
        raise RuntimeError(f"refusing to slim files with changes of their own:\n{changed}")
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text(exclude_with(before, paths))
    try:
        git(repo, "rm", "--cached", "-q", "--", *paths)
    except subprocess.CalledProcessError:
        exclude.write_text(before)  # nothing left half done (e.g. another process held the index lock)
        raise
    return paths


def restore(repo: Path) -> list[str]:
    """Undo :func:`slim`: the paths back into the index from HEAD, the exclude block removed."""
    exclude = _exclude_file(repo)
    text = exclude.read_text() if exclude.exists() else ""
    rest, paths = exclude_without(text)
    if paths:
        git(repo, "reset", "-q", "--", *paths)
    if text != rest and rest:
        exclude.write_text(rest)
    elif text != rest:
        exclude.unlink()  # slim made the file: to git, no file and an empty one are the same
    return paths


def _save_webp(sample: Sample, dest: Path, size: tuple[int, int], quality: int) -> None:
    from PIL import Image, ImageOps

    with Image.open(sample.image) as opened:
        im = ImageOps.exif_transpose(opened).convert("RGB")  # the manifest's sizes and boxes are EXIF-oriented
    if im.size != (sample.width, sample.height):
        raise ValueError(f"{sample.image} is {im.size} upright, its manifest row says {sample.width}x{sample.height}")
    if im.size != size:
        im = im.resize(size, Image.Resampling.LANCZOS)
    im.save(dest, "WEBP", quality=quality, method=6)


def _start_weights(src: Path, dest: Path) -> None:
    """The checkpoint with its model in fp16, as Ultralytics saves its own (it loads them as fp32)."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    for key in ("model", "ema"):
        if ckpt.get(key) is not None:
            ckpt[key] = ckpt[key].half()
    for key in ("optimizer", "scaler"):
        ckpt.pop(key, None)
    torch.save(ckpt, dest)


def _wheels(dest: Path, source: Path | None) -> list[str]:
    if dest.exists():
        shutil.rmtree(dest)  # one version of each: two stop the whole install there
    dest.mkdir(parents=True)
    versions = locked_versions((REPO / "uv.lock").read_text(), DEVICE_WHEELS)
    if source is not None:
        for name, version in versions.items():
            prefix = f"{name.replace('-', '_')}-{version}-"
            found = sorted(source.glob(f"{prefix}*.whl"))
            if not found:
                raise FileNotFoundError(f"no {prefix}*.whl in {source}")
            shutil.copy2(found[0], dest / found[0].name)
    else:
        subprocess.run([sys.executable, "-m", "pip", *pip_download_args(versions, dest)], check=True)
    return sorted(p.name for p in dest.glob("*.whl"))


def pack(
    data: Path,
    out: Path,
    weights: Path,
    imgsz: int = 416,
    quality: int = 60,
    rfs_threshold: float = 0.15,
    train_photos: int | None = None,
    val_photos: int | None = 200,
    wheels_from: Path | None = None,
    no_wheels: bool = False,
) -> dict[str, Any]:
    """Write the kit (see the module doc) into ``out`` and return what ``kit.json`` records."""
    card = json.loads((data / "dataset_card.json").read_text())
    photos = plan_pack(load_manifest(data), len(card["classes"]), rfs_threshold, train_photos, val_photos)
    (out / "kit.json").unlink(missing_ok=True)  # written last: a kit without it is partial
    root = out / "data"
    if root.exists():
        shutil.rmtree(root)
    manifest = []
    for i, p in enumerate(photos):
        for kind in ("images", "labels"):
            (root / kind / p.split).mkdir(parents=True, exist_ok=True)
        size = fit_inside(p.sample.width, p.sample.height, imgsz)
        image = root / "images" / p.split / f"{p.stem}.webp"
        _save_webp(p.sample, image, size, quality)
        (root / "labels" / p.split / f"{p.stem}.txt").write_text(yolo_lines(p.sample))  # normalised: unchanged
        rel = scaled_sample(p.sample, *size, image.relative_to(root))
        manifest.append(manifest_row(rel, p.split, 0))
        if i % 500 == 0:
            log.info("packed %d of %d photos", i, len(photos))
    (root / "train.txt").write_text(train_list(photos, ".webp"))
    (root / "manifest.jsonl").write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in manifest))
    (root / "dataset_card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1))
    rel_root = os.path.relpath(root.resolve(), REPO)
    (root / "data.yaml").write_text(yaml.safe_dump(data_yaml(rel_root, card["classes"]), allow_unicode=True))
    _start_weights(weights, out / "start.pt")
    wheels = [] if no_wheels else _wheels(out / "wheels", wheels_from)
    record = {
        "dataset": card["version"],
        "from": str(data),
        "weights": str(weights),
        "imgsz": imgsz,
        "format": f"webp q{quality}",
        "rfs_threshold": rfs_threshold,
        "photos": {side: sum(1 for p in photos if p.split == side) for side in ("train", "val")},
        "train_list": sum(p.repeats for p in photos),
        "wheels": wheels,
        "bytes": sum(carried_files(out, ["."]).values()),
    }
    (out / "kit.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def unpack(files: Path, run_dir: Path, data: Path, kit: Path = REPO / KIT, config: Path = REPO / CONFIG) -> Path:
    """A run folder of what a device call returned (``$OUT``'s files), for ``soup``, ``release`` and ``eval``,
    and beside it ``<run>-start``: the start checkpoint as a run folder, the base of the WiSE-FT soup."""
    record = json.loads((kit / "kit.json").read_text())
    data_yaml = data / "data.yaml"
    if json.loads((data / "dataset_card.json").read_text())["version"] != record["dataset"]:
        raise ValueError(f"{data} is not the dataset the kit was packed from ({record['dataset']})")
    if (files / "run.json").exists():
        run = json.loads((files / "run.json").read_text())
    else:
        from training.train import TrainConfig

        train_args = yaml.safe_load((files / "args.yaml").read_text())
        csv_bytes = (files / "results.csv").read_bytes() if (files / "results.csv").exists() else b""
        run = stopped_run(asdict(TrainConfig.load(config)), train_args, csv_bytes)
        run["config"]["weights"] = train_args["model"]
    (run_dir / "weights").mkdir(parents=True, exist_ok=False)
    shutil.copy2(files / "last.pt", run_dir / "weights" / "last.pt")
    shutil.copy2(files / "last.pt", run_dir / "weights" / "best.pt")  # the candidate is the last epoch
    if (files / "best.pt").exists():
        shutil.copy2(files / "best.pt", run_dir / "weights" / "device-best.pt")
    for name in ("results.csv", "args.yaml", "train.log"):
        if (files / name).exists():
            shutil.copy2(files / name, run_dir / name)
    out = unpacked_run(run, str(data_yaml), record["weights"])
    (run_dir / "run.json").write_text(json.dumps(out, ensure_ascii=False, indent=1, default=str))
    _start_run(Path(record["weights"]), run_dir.parent / f"{run_dir.name}-start")
    return run_dir


def _start_run(weights: Path, run_dir: Path) -> None:
    """The start checkpoint as a run folder of its own (no training), so ``soup --base`` can take it."""
    (run_dir / "weights").mkdir(parents=True, exist_ok=False)
    shutil.copy2(weights, run_dir / "weights" / "best.pt")
    recovered = weights.with_suffix(".json")  # what `hazardscan recover` wrote beside it
    record = {
        "config": {"name": run_dir.name, "weights": str(weights)},
        "recovered": json.loads(recovered.read_text()) if recovered.exists() else None,
        "epochs_run": 0,
        "metrics": {},
        "note": f"{weights} as a run folder (no training), so that hazardscan soup can take it as --base",
    }
    (run_dir / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=1))


def ensure_polars() -> bool:
    """Put a stand-in ``polars`` module in place when none is installed; True if it did.

    Ultralytics 8.4 imports polars in ``read_results_csv`` (called by every checkpoint save) before the
    ``try`` that tolerates its failure, and in plotting (off in these configs). Its wheels are larger than a
    device call carries; the stand-in reads the CSV with the standard library."""
    try:
        import polars  # noqa: F401
    except ImportError:
        pass
    else:
        return False

    class Frame:
        def __init__(self, columns: dict[str, list[Any]]) -> None:
            self.columns = columns

        def to_dict(self, as_series: bool = True) -> dict[str, list[Any]]:
            return dict(self.columns)

    def read_csv(source: bytes | str | Path, **_: Any) -> Frame:
        return Frame(csv_columns(source if isinstance(source, bytes) else Path(source).read_bytes()))

    module = types.ModuleType("polars")
    module.__dict__.update(read_csv=read_csv, DataFrame=Frame, __hazardscan_stand_in__=True)
    sys.modules["polars"] = module
    return True


# --- CLI --------------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pk = sub.add_parser("pack", help="write the carry folder (photos, labels, start weights, wheels)")
    pk.add_argument("--data", type=Path, required=True, help="a built dataset folder (holds manifest.jsonl)")
    pk.add_argument("--weights", type=Path, required=True, help="the start checkpoint (.pt)")
    pk.add_argument("--out", type=Path, default=REPO / KIT, help="the kit folder (default work/gpu)")
    pk.add_argument("--imgsz", type=int, default=416, help="long side of the packed photos (the training size)")
    pk.add_argument("--quality", type=int, default=60, help="WebP quality")
    pk.add_argument("--rfs", type=float, default=0.15, help="repeat-factor sampling threshold (0: none)")
    pk.add_argument("--train-photos", type=int, help="keep only this many training photos (a test kit)")
    pk.add_argument("--val-photos", type=int, default=200, help="validation photos packed (a monitor)")
    pk.add_argument("--wheels-from", type=Path, help="copy the wheels from this folder instead of pip download")
    pk.add_argument("--no-wheels", action="store_true", help="pack no wheels (a kit for this machine)")
    ck = sub.add_parser(
        "check", help="the travel size of a device call and the kit; exit 1 above the limit or if broken"
    )
    ck.add_argument("--carry", nargs="*", default=list(DEVICE_CARRY), help="the carried paths")
    ck.add_argument("--margin-mib", type=float, default=1.0, help="refuse within this much of the limit")
    sub.add_parser("slim", help="take the big model files out of the git index for a device call")
    up = sub.add_parser("unpack", help="a run folder of the files a device call returned")
    up.add_argument("--from", dest="files", type=Path, required=True, help="the folder the returned files lie in")
    up.add_argument(
        "--run", type=Path, required=True, help="the run folder to write, e.g. work/runs/hazardscan-v11-gpu"
    )
    up.add_argument("--data", type=Path, required=True, help="the original dataset the kit was packed from")
    up.add_argument("--kit", type=Path, default=REPO / KIT, help="the kit (its kit.json)")
    up.add_argument("--config", type=Path, default=REPO / CONFIG, help="the config the run used (if no run.json)")
    sub.add_parser("restore", help="undo slim")
    tr = sub.add_parser("train", help="hazardscan train with the kit (a polars stand-in, --set overrides)")
    tr.add_argument("--config", type=Path, required=True)
    tr.add_argument("--data", type=Path, required=True, help="the kit's data.yaml")
    tr.add_argument("--weights", help="start weights in place of the config's")
    tr.add_argument("--out", type=Path, required=True, help="runs folder")
    tr.add_argument("--device", help="'cpu' or a CUDA index")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a train setting")


def run(args: argparse.Namespace) -> int:
    if args.action == "pack":
        record = pack(
            args.data,
            args.out,
            args.weights,
            args.imgsz,
            args.quality,
            args.rfs,
            args.train_photos,
            args.val_photos,
            args.wheels_from,
            args.no_wheels,
        )
        sys.stdout.write(json.dumps(record, indent=1) + "\n")
        return 0
    if args.action == "check":
        report = check(REPO, args.carry, int(args.margin_mib * 2**20))
        problems = kit_problems(REPO / args.carry[0]) if args.carry else []
        sys.stdout.write("\n".join([*report.lines(), *(f"KIT: {p}" for p in problems)]) + "\n")
        return 0 if report.fits and not problems else 1
    if args.action == "slim":
        paths = slim(REPO)
        sys.stdout.write(f"out of the index for the call ({len(paths)} files, still on disk):\n")
        sys.stdout.write("".join(f"  {p}\n" for p in paths))
        return 0
    if args.action == "unpack":
        sys.stdout.write(f"{unpack(args.files, args.run, args.data, args.kit, args.config)}\n")
        return 0
    if args.action == "restore":
        paths = restore(REPO)
        sys.stdout.write(f"back in the index: {len(paths)} files\n")
        return 0
    from training.train import TrainConfig, train

    if ensure_polars():
        log.info("polars is not installed: a stand-in reads results.csv")
    cfg = TrainConfig.load(args.config)
    cfg.train = apply_overrides(cfg.train, args.set)
    if args.weights:
        cfg.weights = args.weights
    run_dir = train(cfg, args.data, args.out, args.device)
    sys.stdout.write(f"{run_dir}\n")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m training.gpu_kit", description=__doc__)
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))
