"""hazardscan teach --branch: added classes in a class branch of the head of their own (training/branch.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


def _tiny(nc: int, names: list[str]) -> Any:
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    net = DetectionModel("yolov8n.yaml", nc=nc, verbose=False)
    net.names = dict(enumerate(names))
    with torch.no_grad():  # a trained model's BatchNorms are far from identity; random class rows
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0, 0.3)
                m.running_mean.normal_(0, 0.5)
        for branch in net.model[-1].cv3:
            branch[-1].weight.normal_(0, 0.05)
    return net.eval()


def test_a_split_head_computes_what_it_computed():
    """Old classes first, then the new ones: the branched model's eval output is the unbranched one's."""
    pytest.importorskip("ultralytics")
    import copy

    import torch

    from training.branch import ClassBranch, add_branch, is_branched

    net = _tiny(3, ["fire", "smoke", "person"])
    x = torch.rand(1, 3, 64, 64)
    before = net(x)[0]
    branched = add_branch(copy.deepcopy(net), 1)
    after = branched(x)[0]
    assert is_branched(branched) and not is_branched(net)
    assert all(isinstance(b, ClassBranch) for b in branched.model[-1].cv3)
    assert [b.old[-1].out_channels for b in branched.model[-1].cv3] == [2, 2, 2]
    assert [b.new[-1].out_channels for b in branched.model[-1].cv3] == [1, 1, 1]
    assert after.shape == before.shape == (1, 4 + 3, 8 * 8 + 4 * 4 + 2 * 2)
    assert torch.allclose(after, before, atol=1e-5)
    with pytest.raises(ValueError, match="already"):
        add_branch(branched, 1)


def test_a_box_branch_answers_the_new_classes_on_anchors_of_their_own():
    """Design B: the old anchors carry the old classes (zeros for the new one), the new anchors the copied box
    branch's boxes, zeros for the old classes and the new class's scores: at the start, the unbranched values."""
    pytest.importorskip("ultralytics")
    import copy

    import torch

    from training.branch import BranchDetect, add_branch, is_branched

    net = _tiny(3, ["fire", "smoke", "person"])
    x = torch.rand(1, 3, 64, 64)
    before = net(x)[0]
    branched = add_branch(copy.deepcopy(net), 1, "boxes")
    after = branched(x)[0]
    anchors = before.shape[2]
    assert is_branched(branched) and isinstance(branched.model[-1], BranchDetect)
    assert after.shape == (1, 4 + 3, 2 * anchors)
    old, new = after[..., :anchors], after[..., anchors:]
    assert torch.allclose(old[:, :6], before[:, :6], atol=1e-5) and not old[:, 6].any()
    assert torch.allclose(new[:, :4], before[:, :4], atol=1e-5) and not new[:, 4:6].any()
    assert torch.allclose(new[:, 6], before[:, 6], atol=1e-5)
    train_out = branched.train()(x)  # training: the new boxes with every class's scores
    assert train_out["boxes"].shape == (1, 64, anchors) and train_out["scores"].shape == (1, 3, anchors)
    with pytest.raises(ValueError, match="one of"):
        add_branch(copy.deepcopy(net), 1, "anchors")


@pytest.mark.parametrize("n_new", [0, 3])
def test_a_branch_needs_new_and_old_classes(n_new: int):
    pytest.importorskip("ultralytics")
    from training.branch import add_branch

    with pytest.raises(ValueError, match="new classes and old ones"):
        add_branch(_tiny(3, ["a", "b", "c"]), n_new)


@pytest.mark.parametrize(
    ("design", "branches", "frozen_head"),
    [
        ("classes", {f"model.22.cv3.{i}.new" for i in range(3)}, {"22.cv2", "22.dfl", "22.cv3.0.old"}),
        ("boxes", {"model.22.new_cv2", "model.22.new_cv3"}, {"22.cv2", "22.dfl", "22.cv3"}),
    ],
)
def test_branch_freeze_leaves_only_the_new_branches_trainable(design: str, branches: set[str], frozen_head: set[str]):
    pytest.importorskip("ultralytics")
    from training.branch import add_branch, branch_freeze

    names = list(add_branch(_tiny(3, ["a", "b", "c"]), 1, design).state_dict())
    frozen = branch_freeze(names)
    prefixes = [f"model.{f}." for f in frozen]
    trainable = [n for n in names if not any(p in n for p in prefixes)]
    assert {b for n in trainable for b in branches if n.startswith(b + ".")} == branches
    assert all(any(n.startswith(b + ".") for b in branches) for n in trainable)  # nothing else
    assert list(range(22)) == frozen[:22] and frozen_head <= set(frozen)
    new_bn = [n for n in trainable if n.endswith("running_mean")]
    assert len(new_bn) == (6 if design == "classes" else 12)  # the branches' BatchNorms train (two per conv pair)
    with pytest.raises(ValueError, match="no new branch"):
        branch_freeze(list(_tiny(2, ["a", "b"]).state_dict()))


@pytest.mark.slow
@pytest.mark.parametrize("design", ["classes", "boxes"])
def test_a_branch_training_moves_the_branch_only_and_exports_as_one_model(tmp_path: Path, design: str):
    """Ultralytics trains the branch of smoke (added to a fire model); every old weight and BatchNorm statistic of
    the trained checkpoint is the start's (bit for bit once grafted), the branch learned, and the ONNX export
    has one output of 4 + 2 channels whose boxes and fire scores are the start model's (on the old anchors)."""
    pytest.importorskip("ultralytics")
    import onnxruntime as ort
    import torch

    from tests._builders import fire_only_dataset
    from training.branch import add_branch
    from training.export import _ultralytics_export
    from training.teach import CpuBudget, _train

    built = fire_only_dataset(tmp_path)
    net = _tiny(2, ["fire", "smoke"]).half().float()  # half-exact: Ultralytics saves its checkpoints in half
    start = tmp_path / "yolov8n_start.pt"
    torch.save({"model": net, "train_args": {"task": "detect", "imgsz": 64}, "epoch": -1}, start)
    card = {"input_size": [64, 64]}
    data = built.root / "data.yaml"
    run = _train(start, data, tmp_path / "o", card, 0.05, 1, 0, 10, 0.05, CpuBudget(0.05), None, 1, design)
    reference = add_branch(_tiny(2, ["fire", "smoke"]).half().float(), 1, design).state_dict()
    last = torch.load(run / "weights" / "last.pt", map_location="cpu", weights_only=False)
    trained = (last.get("ema") or last["model"]).float().state_dict()
    grafted = torch.load(run / "weights" / "best.pt", map_location="cpu", weights_only=False)["model"].state_dict()
    moved = []
    for name, before in reference.items():
        if ".new." in name or ".new_cv" in name:
            if before.dtype.is_floating_point:
                moved.append(float((trained[name] - before).abs().max()))
            assert torch.equal(grafted[name], trained[name]), name
        else:
            assert torch.equal(trained[name], before), name  # frozen in training (statistics too)
            assert torch.equal(grafted[name], before), name
    assert max(moved) > 1e-3  # the branch learned

    onnx_path = _ultralytics_export(run / "weights" / "best.pt", tmp_path / "export", 64, False, 17)
    plain = _ultralytics_export(start, tmp_path / "export-start", 64, False, 17)
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    out = ort.InferenceSession(str(onnx_path)).run(None, {"images": x})[0]
    ref = ort.InferenceSession(str(plain)).run(None, {"images": x})[0]
    assert ref.shape == (1, 4 + 2, 84) and out.shape == (1, 4 + 2, 84 if design == "classes" else 2 * 84)
    np.testing.assert_allclose(out[:, :5, :84], ref[:, :5], atol=1e-5)  # boxes and fire as the start model
    learned = out[:, 5, :84] if design == "classes" else out[:, 5, 84:]
    assert np.abs(learned - ref[:, 5]).max() > 1e-4  # smoke: the trained branch
    if design == "boxes":
        assert not out[:, 5, :84].any() and not out[:, 4, 84:].any()  # each class on its own anchors only


def test_recover_refuses_a_branched_model(tmp_path: Path):
    from tests._builders import build_model_dir
    from training.recover import recover

    branched = build_model_dir(tmp_path / "b", head_branch={"classes": ["person"], "design": "classes"})
    with pytest.raises(ValueError, match=r"head branch of its own for \['person'\]"):
        recover(branched, tmp_path / "r.pt", [])


@pytest.mark.parametrize(
    ("card", "taught", "options", "match"),
    [
        ({"head_branch": {"classes": ["person"]}}, ["smoking"], {}, "has a head branch already"),
        ({}, ["fire"], {"fresh": True}, "lacks"),  # a class the model has: not a branch's job
        ({}, ["person"], {"keep_others": True}, "recipe of its own"),
    ],
)
def test_teach_refuses_a_branch_it_cannot_build(tmp_path: Path, card: dict[str, Any], taught: list[str],
                                                options: dict[str, Any], match: str):  # fmt: skip
    from tests._builders import build_model_dir
    from training.teach import teach

    model = build_model_dir(tmp_path / "m", **card)
    with pytest.raises(ValueError, match=match):
        teach(model, tmp_path / "none.yaml", taught, tmp_path / "o", branch="classes", **options)


@pytest.mark.parametrize(("branched", "calibrated_on"), [(["person"], "own/data.yaml"), ([], None)])
def test_a_branched_release_calibrates_int8_on_the_start_models_photos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, branched: list[str], calibrated_on: str | None
):
    """The frozen layers of a branched model get the start model's int8 calibration photos; other teach runs
    calibrate on their own training photos."""
    import training.release
    from training.teach import _release

    seen: dict[str, Any] = {}

    def fake_release(run_dir: Path, out: Path, version: str, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"version": version, "classes": ["fire", "person"]}

    monkeypatch.setattr(training.release, "release", fake_release)
    monkeypatch.setattr(training.release, "write_card", lambda out, card: None)
    card = {"version": "5", "classes": ["fire"]}
    _release(tmp_path, tmp_path / "m", card, ["person"], True, branched, "boxes" if branched else None, Path("own"))
    expected = Path(calibrated_on) if calibrated_on else None
    assert seen["calibration_data"] == expected
