"""Model soup: checkpoints of one lineage averaged into a recorded run that release can follow."""

import json
from pathlib import Path

import pytest

from training.release import _stages
from training.soup import soup, uniform_soup

torch = pytest.importorskip("torch")
pytest.importorskip("ultralytics")


def _checkpoint(run_dir: Path, seed: int, weights_from: str, epochs: int = 4) -> Path:
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    for p in model.parameters():
        p.data.normal_()
    path = run_dir / "weights" / "last.pt"
    path.parent.mkdir(parents=True)
    torch.save({"model": None, "ema": model.half(), "optimizer": {"state": 1}, "epoch": 3}, path)
    run = {
        "config": {"name": run_dir.name, "weights": weights_from},
        "train_args": {"imgsz": 64},
        "epochs_run": epochs,
        "wall_time_s": 60.0 * epochs,
    }
    (run_dir / "run.json").write_text(json.dumps(run))
    return path


def _params(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in torch.load(path, weights_only=False)["ema"].state_dict().items()}


def test_soup_is_the_weighted_average_and_records_its_parents(tmp_path: Path):
    base = _checkpoint(tmp_path / "runs" / "a", 0, "yolov8n.pt")
    other = _checkpoint(tmp_path / "runs" / "b", 1, str(base))
    run_dir = soup(base, other, 0.25, "mix", tmp_path / "runs")

    a, b, mixed = _params(base), _params(other), _params(run_dir / "weights" / "best.pt")
    key = "model.0.conv.weight"
    # fp16 storage: compare within its precision
    assert torch.allclose(mixed[key], 0.75 * a[key] + 0.25 * b[key], atol=2e-2, rtol=1e-2)
    assert not torch.allclose(mixed[key], b[key], atol=1e-1)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["config"] == {"name": "mix", "weights": str(other)}  # release follows --with's lineage
    assert record["soup"]["weight"] == 0.25 and record["epochs_run"] == 0
    assert record["train_args"] == {"imgsz": 64}


@pytest.mark.parametrize("weight", [0.0, 1.0, 1.5])
def test_soup_refuses_a_weight_outside_zero_one(tmp_path: Path, weight: float):
    with pytest.raises(ValueError, match="between 0 and 1"):
        soup(tmp_path / "a.pt", tmp_path / "b.pt", weight, "x", tmp_path)


def test_soup_refuses_a_checkpoint_outside_a_run(tmp_path: Path):
    loose = tmp_path / "loose.pt"
    loose.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="run folder"):
        soup(loose, loose, 0.5, "x", tmp_path / "runs")


def test_uniform_soup_is_the_mean_of_siblings_and_release_counts_every_run(tmp_path: Path):
    runs = tmp_path / "runs"
    parent = _checkpoint(runs / "parent", 0, "coco.pt", epochs=20)
    seeds = [_checkpoint(runs / f"seed{i}", 10 + i, str(parent), epochs=7) for i in range(3)]
    run_dir = uniform_soup(seeds, "soup", runs)

    mixed, parts = _params(run_dir / "weights" / "best.pt"), [_params(p) for p in seeds]
    key = "model.0.conv.weight"
    assert torch.allclose(mixed[key], sum(p[key] for p in parts) / 3, atol=2e-2, rtol=1e-2)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["soup"]["ingredients"] == [str(p) for p in seeds]
    assert record["soup"]["weights"] == pytest.approx([1 / 3] * 3)

    stages = _stages(record)
    assert [st["name"] for st in stages] == ["parent", "seed0", "seed1", "seed2", "soup"]
    assert sum(st["epochs"] for st in stages) == 20 + 3 * 7


def test_uniform_soup_refuses_ingredients_from_different_starts(tmp_path: Path):
    runs = tmp_path / "runs"
    a = _checkpoint(runs / "a", 0, "coco.pt")
    b = _checkpoint(runs / "b", 1, str(a))
    with pytest.raises(ValueError, match="share their start weights"):
        uniform_soup([a, b], "x", runs)
    with pytest.raises(ValueError, match="listed twice"):
        uniform_soup([a, a], "x", runs)
    assert not (runs / "x").exists()


def test_cli_reports_bad_input_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from inference_service.cli import main

    runs = tmp_path / "runs"
    a = _checkpoint(runs / "a", 0, "coco.pt")
    assert main(["soup", "--base", str(a), "--name", "x", "--out", str(runs)]) == 2
    assert "--base needs --with" in capsys.readouterr().err
    assert main(["soup", "--ingredients", str(a), str(tmp_path / "nope.pt"), "--name", "x", "--out", str(runs)]) == 2
    assert "not inside a training run folder" in capsys.readouterr().err
    assert main(["soup", "--ingredients", str(a), str(a), "--name", "a", "--out", str(runs)]) == 2
    assert "listed twice" in capsys.readouterr().err


def test_release_refuses_an_own_group_class_the_run_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from inference_service.cli import main

    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text("names: {0: fire, 1: smoke}\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"dataset": {"data_yaml": str(data_yaml)}, "train_args": {"imgsz": 64}}))
    assert main(["release", "--run", str(run), "--out", str(tmp_path / "m"), "--own-group", "person"]) == 2
    assert "--own-group names classes the run does not have: ['person']" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
