"""The GPU kit: travel sizes, the packed dataset, the device command and the slimmed git tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from inference_service.detections import Detections
from training import gpu_kit
from training.dataset import link_stem, manifest_row, yolo_lines
from training.importer import Sample

REPO = Path(__file__).resolve().parents[1]
MiB = 2**20


def _sample(sha1: str, boxes: list[tuple[float, float, float, float, int]], w: int = 800, h: int = 400) -> Sample:
    rows = np.array(boxes, np.float32).reshape(-1, 5)
    labels = Detections(rows[:, :4], rows[:, 4].astype(np.int64), np.ones(len(rows), np.float32))
    return Sample(Path(f"/photos/{sha1}.jpg"), "src", w, h, labels, sha1 * 5)


# --- sizes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "margin", "fits"),
    [
        (20, 2, True),  # 18 bytes against 20 less 2: exactly at the edge
        (19, 2, False),  # one byte over
        (18, 0, True),
        (17, 0, False),
    ],
)
def test_travel_sums_every_part_and_refuses_above_the_limit(limit: int, margin: int, fits: bool):
    files = {"README.md": 6, "training/x.py": 4, "work/gpu/data/images/a.webp": 5, "work/gpu/start.pt": 3}
    report = gpu_kit.travel(files, ["work/gpu"], limit, margin)
    assert report.total == 18
    assert report.parts == {"tree": 10, "work/gpu/data": 5, "work/gpu/ (files)": 3}
    assert report.fits is fits
    assert ("REFUSED" in report.lines()[-1]) is not fits


def test_the_real_limit_is_64_mib():
    assert not gpu_kit.travel({"big": 64 * MiB + 1}).fits
    assert gpu_kit.travel({"big": 64 * MiB}).fits


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((800, 400), 416, (416, 208)),  # landscape: long side to the limit
        ((400, 1000), 416, (166, 416)),  # portrait
        ((300, 200), 416, (300, 200)),  # small: never enlarged
        ((416, 416), 416, (416, 416)),
        ((5000, 3), 416, (416, 1)),  # a sliver keeps one pixel
    ],
)
def test_fit_inside_keeps_the_aspect(size: tuple[int, int], max_side: int, expected: tuple[int, int]):
    assert gpu_kit.fit_inside(*size, max_side) == expected


# --- planning ----------------------------------------------------------------------------------------------


def test_plan_counts_manifest_repeats_and_keeps_validation_once():
    a, b, v = _sample("a", [(0, 0, 10, 10, 0)]), _sample("b", [(0, 0, 10, 10, 1)]), _sample("c", [])
    # a resampled manifest lists photo a twice: packed once, listed twice
    photos = gpu_kit.plan_pack([(a, "train"), (a, "train"), (b, "train"), (v, "val")], 2)
    assert [(p.sample.sha1[0], p.split, p.repeats) for p in photos] == [
        ("a", "train", 2),
        ("b", "train", 1),
        ("c", "val", 0),
    ]
    assert photos[0].stem == link_stem(a)
    assert gpu_kit.train_list(photos, ".webp").splitlines() == [
        f"./images/train/{link_stem(a)}.webp",
        f"./images/train/{link_stem(a)}.webp",
        f"./images/train/{link_stem(b)}.webp",
    ]


def test_plan_repeats_rare_classes_and_takes_subsets_in_hash_order():
    common = [_sample(c, [(0, 0, 10, 10, 0)]) for c in "defghijk"]
    rare = _sample("a", [(0, 0, 10, 10, 1)])  # class 1 in 1 of 9 photos: factor sqrt(0.5 / (1/9)) = 2.1
    photos = gpu_kit.plan_pack([(s, "train") for s in [*common, rare]], 2, rfs_threshold=0.5)
    repeats = {p.sample.sha1[0]: p.repeats for p in photos}
    assert repeats["a"] in (2, 3) and all(repeats[c] == 1 for c in "defghijk")
    subset = gpu_kit.plan_pack([(s, "train") for s in [*common, rare]], 2, train_photos=3)
    assert [p.sample.sha1[0] for p in subset] == ["a", "d", "e"]


def test_data_yaml_path_is_relative():
    data = gpu_kit.data_yaml("work/gpu/data", ["helmet", "fire"])
    assert data == {
        "path": "work/gpu/data",
        "train": "train.txt",
        "val": "images/val",
        "names": {0: "helmet", 1: "fire"},
    }
    with pytest.raises(ValueError, match="relative"):
        gpu_kit.data_yaml("/work/main/work/gpu/data", ["helmet"])


def test_locked_versions_and_pip_arguments():
    lock = '[[package]]\nname = "ultralytics"\nversion = "8.4.190"\n\n[[package]]\nname = "numpy"\nversion = "2.2.6"\n'
    versions = gpu_kit.locked_versions(lock, ["ultralytics"])
    assert versions == {"ultralytics": "8.4.190"}
    args = gpu_kit.pip_download_args(versions, Path("/kit/wheels"))
    assert args[:3] == ["download", "--no-deps", "--only-binary=:all:"]
    assert args[args.index("--python-version") + 1] == "3.12" and args[-1] == "ultralytics==8.4.190"
    with pytest.raises(KeyError, match="polars"):
        gpu_kit.locked_versions(lock, ["polars"])


def test_overrides_read_yaml_values():
    train = gpu_kit.apply_overrides({"time": 0.12, "batch": 64}, ["time=0.02", "cache=ram", "rect=true"])
    assert train == {"time": 0.02, "batch": 64, "cache": "ram", "rect": True}
    with pytest.raises(ValueError, match="key=value"):
        gpu_kit.apply_overrides({}, ["time"])


def test_polars_stand_in_reads_results_csv(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "polars", None)  # as if not installed: `import polars` raises
    assert gpu_kit.ensure_polars()
    import polars

    csv = b"                  epoch, train/box_loss, lr/pg0\n1, 1.25, 0.005\n2, 1.1, 0.004\n"
    # the call Ultralytics makes in read_results_csv
    assert polars.read_csv(csv, infer_schema_length=None).to_dict(as_series=False) == {
        "epoch": [1.0, 2.0],
        "train/box_loss": [1.25, 1.1],
        "lr/pg0": [0.005, 0.004],
    }
    assert not gpu_kit.ensure_polars()  # now importable: left alone


# --- the device command ----------------------------------------------------------------------------------


def test_device_command_fits_and_the_script_parses():
    assert len(gpu_kit.DEVICE_COMMAND) < 2000
    script = REPO / gpu_kit.DEVICE_COMMAND.split()[-1]
    text = script.read_text()
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert f"KIT=${{KIT:-{gpu_kit.KIT}}}" in text
    config = REPO / text.split("CONFIG=${CONFIG:-", 1)[1].split("}", 1)[0]
    cfg = yaml.safe_load(config.read_text())
    assert cfg["weights"] == f"{gpu_kit.KIT}/start.pt"
    assert cfg["train"]["time"] * 60 < 10  # the training budget is inside one 10-minute call


# --- pack --------------------------------------------------------------------------------------------------


def _tiny_dataset(root: Path) -> list[Sample]:
    """A built dataset's manifest and card with two training photos and one validation photo."""
    (root / "photos").mkdir(parents=True)
    samples = []
    for name, (w, h), boxes in [
        ("wide", (1000, 500), [(100, 50, 300, 450, 0), (500, 100, 900, 400, 1)]),
        ("tall", (300, 900), [(10, 10, 290, 300, 1)]),
        ("small", (320, 240), []),
    ]:
        path = root / "photos" / f"{name}.png"
        Image.new("RGB", (w, h), (120, 80, 40)).save(path)
        rows = np.array(boxes, np.float32).reshape(-1, 5)
        labels = Detections(rows[:, :4], rows[:, 4].astype(np.int64), np.ones(len(rows), np.float32))
        samples.append(Sample(path, "set-a" if name != "tall" else "set-b", w, h, labels, name * 8))
    sides = ["train", "train", "val"]
    rows = [manifest_row(s, side, i) for i, (s, side) in enumerate(zip(samples, sides, strict=True))]
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    card = {
        "version": "tiny",
        "classes": ["helmet", "fire"],
        "sources": [{"name": "set-a", "class_map": {"hat": "helmet"}}, {"name": "set-b", "class_map": {"f": "fire"}}],
    }
    (root / "dataset_card.json").write_text(json.dumps(card))
    return samples


def test_pack_downscales_keeps_labels_and_feeds_the_federated_loss(tmp_path: Path):
    torch = pytest.importorskip("torch")
    samples = _tiny_dataset(tmp_path / "ds")
    torch.save({"model": torch.nn.Linear(2, 2), "optimizer": {"state": 1}}, tmp_path / "start.pt")
    kit = tmp_path / "kit"
    record = gpu_kit.pack(tmp_path / "ds", kit, tmp_path / "start.pt", imgsz=416, val_photos=None, no_wheels=True)
    assert record["photos"] == {"train": 2, "val": 1} and record["train_list"] == 2

    for s, side in zip(samples, ["train", "train", "val"], strict=True):
        stem = link_stem(s)
        with Image.open(kit / "data" / "images" / side / f"{stem}.webp") as im:
            w, h = im.size
        assert max(w, h) <= 416
        assert abs(w / h - s.width / s.height) < 0.01  # aspect kept: normalised boxes still fit
        assert (kit / "data" / "labels" / side / f"{stem}.txt").read_text() == yolo_lines(s)  # labels unchanged

    data = yaml.safe_load((kit / "data" / "data.yaml").read_text())
    assert not Path(data["path"]).is_absolute()
    assert (REPO / data["path"]).resolve() == (kit / "data").resolve()  # from the repo root, where training runs
    assert torch.load(kit / "start.pt", weights_only=False)["model"].weight.dtype == torch.float16
    assert "optimizer" not in torch.load(kit / "start.pt", weights_only=False)

    from training.federated import class_masks

    masks, classes = class_masks(kit / "data" / "data.yaml")
    assert classes == ["helmet", "fire"]
    assert masks[f"{link_stem(samples[0])}.webp"].tolist() == [True, False]  # set-a labels helmet only
    assert masks[f"{link_stem(samples[1])}.webp"].tolist() == [False, True]

    problems = gpu_kit.kit_problems(kit)
    assert len(problems) == 1 and problems[0].startswith("wheels []")  # packed without them
    (kit / "data" / "images" / "train" / f"{link_stem(samples[0])}.webp").unlink()
    assert any("1 photos listed in train.txt are missing" in p for p in gpu_kit.kit_problems(kit))
    assert gpu_kit.kit_problems(tmp_path / "nothing")[0].startswith("no kit at")


# --- slim and restore ------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def _state(repo: Path) -> tuple[str, str, str]:
    exclude = repo / ".git" / "info" / "exclude"
    return _git(repo, "status", "--porcelain", "-uall"), _git(repo, "ls-files", "-s"), exclude.read_text()


def test_slim_and_restore_round_trip(tmp_path: Path):
    repo = tmp_path / "repo"
    (repo / "models" / "m1").mkdir(parents=True)
    (repo / "models" / "m1" / "model.onnx").write_bytes(b"\1" * (2 * MiB))
    (repo / "models" / "m1" / "card.json").write_text("{}")
    (repo / "code.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("/work/\n")
    _git(repo, "init", "-q")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("# mine\n*.swp")  # no final newline: kept as it was
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    (repo / "code.py").write_text("x = 2\n")  # someone's unstaged change
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "work" / "gpu").mkdir(parents=True)
    (repo / "work" / "gpu" / "start.pt").write_bytes(b"\0" * 1000)
    before = _state(repo)
    full = gpu_kit.check(repo, ["work/gpu"], margin=0)
    assert full.parts["tree"] == 2 * MiB + 2 + 6 + 7 + 10 and full.parts["work/gpu/ (files)"] == 1000

    assert gpu_kit.slim(repo) == ["models/m1/model.onnx"]
    assert "models/m1/model.onnx" not in gpu_kit.tree_files(repo)  # neither tracked nor untracked now
    assert gpu_kit.check(repo, ["work/gpu"], margin=0).total == full.total - 2 * MiB
    assert (repo / "models" / "m1" / "model.onnx").stat().st_size == 2 * MiB  # still on disk
    with pytest.raises(ValueError, match="already slimmed"):
        gpu_kit.slim(repo)

    assert gpu_kit.restore(repo) == ["models/m1/model.onnx"]
    assert _state(repo) == before
    assert gpu_kit.restore(repo) == []  # nothing to undo


def _repo_with_a_model(tmp_path: Path) -> Path:
    """A git repository whose one commit holds a 2 MiB models/model.onnx."""
    repo = tmp_path / "repo"
    (repo / "models").mkdir(parents=True)
    (repo / "models" / "model.onnx").write_bytes(b"\1" * (2 * MiB))
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "start")
    return repo


def test_slim_refuses_a_model_with_changes(tmp_path: Path):
    repo = _repo_with_a_model(tmp_path)
    (repo / "models" / "model.onnx").write_bytes(b"\2" * (2 * MiB))
    with pytest.raises(RuntimeError, match="changes of their own"):
        gpu_kit.slim(repo)
    assert _git(repo, "ls-files") == "models/model.onnx\n"


def test_exclude_block_round_trip():
    text = "# user lines\n/.whl/\n"
    slimmed = gpu_kit.exclude_with(text, ["models/a.onnx", "models/b.onnx"])
    assert "/models/a.onnx\n" in slimmed
    assert gpu_kit.exclude_without(slimmed) == (text, ["models/a.onnx", "models/b.onnx"])
    assert gpu_kit.exclude_without(text) == (text, [])
    assert gpu_kit.slim_paths({"models/a.onnx": MiB, "models/card.json": 10, "docs/big.png": 5 * MiB}) == [
        "models/a.onnx"
    ]


def test_unpacked_run_points_at_the_original_dataset_and_start():
    run = {
        "config": {"name": "v11", "weights": "work/gpu/start.pt"},
        "dataset": {"data_yaml": "work/gpu/data/data.yaml"},
    }
    out = gpu_kit.unpacked_run(run, "work/datasets/hazardscan-x/data.yaml", "work/recovered/v5.pt")
    assert out["dataset"]["data_yaml"] == "work/datasets/hazardscan-x/data.yaml"  # release calibrates on originals
    assert out["config"]["weights"] == "work/recovered/v5.pt"
    assert out["device"]["data_yaml"] == "work/gpu/data/data.yaml"
    assert run["config"]["weights"] == "work/gpu/start.pt"  # the input is left as it was


def test_restore_leaves_no_exclude_file_where_there_was_none(tmp_path: Path):
    repo = _repo_with_a_model(tmp_path)
    (repo / ".git" / "info" / "exclude").unlink()
    gpu_kit.slim(repo)
    assert _git(repo, "status", "--porcelain") == "D  models/model.onnx\n"  # a staged deletion while slimmed
    gpu_kit.restore(repo)
    assert not (repo / ".git" / "info" / "exclude").exists()
    assert _git(repo, "status", "--porcelain") == ""


def test_a_stopped_run_is_recorded_from_its_arguments_and_results():
    results = b"  epoch, train/box_loss\n1, 1.3\n2, 1.2\n3, 1.1\n"
    run = gpu_kit.stopped_run({"name": "v11", "seed": 0}, {"data": "work/gpu/data/data.yaml", "imgsz": 416}, results)
    assert run["epochs_run"] == 3
    assert run["dataset"]["data_yaml"] == "work/gpu/data/data.yaml" and run["train_args"]["imgsz"] == 416
    assert gpu_kit.stopped_run({}, {"data": "d.yaml"}, b"")["epochs_run"] == 0  # stopped in its first epoch


def test_unpack_makes_the_run_and_its_start_run(tmp_path: Path):
    kit, files, data = tmp_path / "kit", tmp_path / "returned", tmp_path / "ds"
    for folder in (kit, files, data):
        folder.mkdir()
    (tmp_path / "v5.pt").write_bytes(b"start")
    (tmp_path / "v5.json").write_text('{"from": "hazardscan-v5 5.0.0"}')
    (kit / "kit.json").write_text(json.dumps({"dataset": "abc", "weights": str(tmp_path / "v5.pt")}))
    (data / "dataset_card.json").write_text('{"version": "abc"}')
    (files / "last.pt").write_bytes(b"last")
    (files / "best.pt").write_bytes(b"best")
    (files / "results.csv").write_text("epoch, a\n1, 2\n")
    run = {"config": {"name": "v11", "weights": "work/gpu/start.pt"}, "dataset": {"data_yaml": "work/gpu/d.yaml"}}
    (files / "run.json").write_text(json.dumps(run))

    out = gpu_kit.unpack(files, tmp_path / "runs" / "v11", data, kit)
    assert (out / "weights" / "best.pt").read_bytes() == b"last"  # the candidate is the last epoch
    assert (out / "weights" / "device-best.pt").read_bytes() == b"best"
    assert json.loads((out / "run.json").read_text())["dataset"]["data_yaml"] == str(data / "data.yaml")
    start = tmp_path / "runs" / "v11-start"
    assert (start / "weights" / "best.pt").read_bytes() == b"start"
    assert json.loads((start / "run.json").read_text())["recovered"] == {"from": "hazardscan-v5 5.0.0"}

    (data / "dataset_card.json").write_text('{"version": "other"}')
    with pytest.raises(ValueError, match="not the dataset the kit was packed from"):
        gpu_kit.unpack(files, tmp_path / "runs" / "v12", data, kit)
