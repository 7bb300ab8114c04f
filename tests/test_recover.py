"""hazardscan recover: a YOLOv8n with non-trivial BatchNorms is exported (Conv+BN fused, as a release does),
rebuilt from the ONNX file alone, and must give the ONNX model's output in eval mode, load into Ultralytics'
trainer with every tensor, and keep the old class scores when the head is widened."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from inference_service.runtime import Detector
from tests._builders import noisy_photo, tiny_card

pytest.importorskip("ultralytics")

CLASSES = ["fire", "smoke", "no_helmet"]
SIZE = 64


def _perturbed_yolov8n(seed: int = 0) -> Any:
    import torch
    from torch import nn
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel("yolov8n.yaml", nc=len(CLASSES), verbose=False)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                bn: Any = m  # a trained model's BNs are far from identity
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0, 0.3)
                bn.running_mean.normal_(0, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
        for branch in model.model[-1].cv3:
            branch[-1].bias.normal_(-2.0, 1.0)  # class scores far from the initial prior
    model.names = dict(enumerate(CLASSES))
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from training.export import _ultralytics_export, embed_card

    root = tmp_path_factory.mktemp("recover")
    pt = root / "trained.pt"
    torch.save({"model": _perturbed_yolov8n(), "train_args": {"task": "detect", "imgsz": SIZE}, "epoch": -1}, pt)
    onnx_path = _ultralytics_export(pt, root / "export", SIZE, True, 17)
    card = {
        "model_id": "tiny-v8",
        "version": "1",
        "architecture": "yolov8n",
        "classes": CLASSES,
        "input_size": [SIZE, SIZE],
    }
    model_dir = root / "model"
    model_dir.mkdir()
    onnx.save(embed_card(onnx.load(str(onnx_path)), card), str(model_dir / "model.onnx"))
    (model_dir / "card.json").write_text(json.dumps(card))
    photos = root / "photos"
    photos.mkdir()
    for i in range(6):
        noisy_photo(96, 72, seed=i).save(photos / f"p{i}.jpg")
    return model_dir


def _outputs(pt: Path, model_dir: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    import torch

    from inference_service.model_card import load_model
    from training.recover import calibration_tensors, find_photos

    loaded = load_model(model_dir)
    tensors = calibration_tensors(find_photos(model_dir.parent / "photos", 6), (SIZE, SIZE))
    model = torch.load(pt, weights_only=False)["model"].eval()
    x = np.concatenate(tensors)
    with torch.no_grad():
        ours = model(torch.from_numpy(x))[0].numpy()
    ref = loaded.session.run(None, {loaded.input_name: x})[0]
    return ours, ref, model


def test_recovered_checkpoint_matches_the_onnx_model(exported: Path, tmp_path: Path):
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from training.recover import find_photos, recover

    summary = recover(exported, tmp_path / "r.pt", find_photos(exported.parent / "photos", 6))
    assert summary["bn_layers"] == 57 and summary["max_abs_output_diff"] < 1e-3
    ours, ref, model = _outputs(tmp_path / "r.pt", exported)
    assert ours.shape == ref.shape == (6, 4 + len(CLASSES), 84)
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    # the BatchNorms are real again: running stats measured, not the identity placeholder
    bn = model.model[0].bn
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var), atol=0.05)
    # the trainer builds a fresh model from the yaml and loads the checkpoint: every tensor must transfer
    fresh = DetectionModel(model.yaml, nc=len(CLASSES), verbose=False)
    fresh.load(torch.load(tmp_path / "r.pt", weights_only=False), verbose=False)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_train_mode_batch_statistics_stay_close_to_the_running_ones(exported: Path, tmp_path: Path):
    """A training step normalises with batch statistics; on the calibration photos they are the running ones,
    so the train-mode forward of a batch gives the same features as eval mode."""
    import torch

    from training.recover import calibration_tensors, find_photos, recover

    photos = find_photos(exported.parent / "photos", 6)
    recover(exported, tmp_path / "r.pt", photos)
    model = torch.load(tmp_path / "r.pt", weights_only=False)["model"]
    x = torch.from_numpy(np.concatenate(calibration_tensors(photos, (SIZE, SIZE))))
    with torch.no_grad():
        backbone = model.model[:10]
        model.eval()
        y_eval = backbone(x)
        model.train()
        y_train = backbone(x)
    assert float((y_train - y_eval).abs().max()) < 1e-2 * float(y_eval.abs().max())


def test_added_classes_keep_old_scores_and_start_near_zero(exported: Path, tmp_path: Path):
    from training.recover import find_photos, recover

    summary = recover(exported, tmp_path / "w.pt", find_photos(exported.parent / "photos", 6), ["person"])
    assert summary["classes"] == [*CLASSES, "person"] and summary["max_abs_output_diff"] < 1e-3
    ours, ref, model = _outputs(tmp_path / "w.pt", exported)
    assert ours.shape == (6, 4 + len(CLASSES) + 1, 84) and model.names[3] == "person"
    np.testing.assert_allclose(ours[:, : 4 + len(CLASSES)], ref, atol=1e-3)
    assert float(ours[:, -1].max()) < 0.02  # the prior: log(5 / nc / (640 / stride)^2) -> about 1e-3 .. 1e-2


def test_cli_rejects_a_class_outside_the_taxonomy(exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from inference_service.cli import main

    code = main(["recover", "--model", str(exported), "--out", str(tmp_path / "x.pt"), "--add-classes", "unicorn"])
    assert code == 2 and "unicorn" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_a_checkpoint_exports_as_a_teacher_the_served_pipeline_runs(exported: Path, tmp_path: Path):
    from training.teacher import export_teacher

    card = export_teacher(exported.parent / "trained.pt", tmp_path / "teacher", imgsz=SIZE)
    assert card["classes"] == CLASSES and card["stride"] == 32
    det = Detector.load(tmp_path / "teacher")
    photo = (exported.parent / "photos" / "p0.jpg").read_bytes()
    assert det.card.classes == CLASSES and det.detect(photo, conf=0.0).width == 96


@pytest.mark.parametrize(
    ("add", "drop", "reset", "expected"),
    [
        ((), (), (), ["fire", "smoke", "no_helmet"]),  # no edit
        (("person",), (), (), ["fire", "smoke", "no_helmet", "person"]),  # appended
        ((), ("smoke",), (), ["fire", "no_helmet"]),  # removed, order kept
        ((), (), ("smoke",), ["fire", "smoke", "no_helmet"]),  # reset keeps its place
        (("smoke",), ("smoke",), (), ["fire", "no_helmet", "smoke"]),  # dropped then added: moves to the end
        (("fire",), (), (), ValueError),  # already a class
        ((), ("person",), (), ValueError),  # not a class of the model
        ((), ("smoke",), ("smoke",), ValueError),  # both dropped and reset
    ],
)
def test_head_classes(add: tuple[str, ...], drop: tuple[str, ...], reset: tuple[str, ...], expected: Any):
    from training.recover import head_classes

    if expected is ValueError:
        with pytest.raises(ValueError):
            head_classes(CLASSES, add, drop, reset)
    else:
        assert head_classes(CLASSES, add, drop, reset) == expected


def test_edit_head_moves_keeps_and_zeroes_channels():
    from training.recover import _prior_bias, edit_head

    w = np.arange(3 * 2, dtype=np.float32).reshape(3, 2, 1, 1)
    b = np.array([1.0, 2.0, 3.0], np.float32)
    other = np.ones((3, 2), np.float32)  # not a class convolution: passed through
    fused = {"model.22.cv3.1.2.weight": w, "model.22.cv3.1.2.bias": b, "model.22.cv2.1.2.weight": other}
    out = edit_head(fused, CLASSES, ["fire", "no_helmet", "person"], (), [8.0, 16.0, 32.0])
    np.testing.assert_array_equal(out["model.22.cv3.1.2.weight"][:2], w[[0, 2]])
    assert not out["model.22.cv3.1.2.weight"][2].any()
    np.testing.assert_allclose(out["model.22.cv3.1.2.bias"], [1.0, 3.0, _prior_bias(3, 16.0)])
    assert out["model.22.cv2.1.2.weight"] is other
    reset = edit_head(fused, CLASSES, CLASSES, ["smoke"], [8.0, 16.0, 32.0])
    assert not reset["model.22.cv3.1.2.weight"][1].any() and reset["model.22.cv3.1.2.bias"][2] == 3.0


def test_dropped_and_reset_classes_leave_the_other_scores(exported: Path, tmp_path: Path):
    from training.recover import _prior_bias, find_photos, recover

    photos = find_photos(exported.parent / "photos", 6)
    summary = recover(exported, tmp_path / "d.pt", photos, drop_classes=["smoke"])
    assert summary["classes"] == ["fire", "no_helmet"] and summary["max_abs_output_diff"] < 1e-3
    ours, ref, _ = _outputs(tmp_path / "d.pt", exported)
    assert ours.shape == (6, 4 + 2, 84)
    np.testing.assert_allclose(ours, ref[:, [0, 1, 2, 3, 4, 6]], atol=1e-3)

    recover(exported, tmp_path / "r.pt", photos, reset_classes=["smoke"])
    ours, ref, _ = _outputs(tmp_path / "r.pt", exported)
    np.testing.assert_allclose(ours[:, [0, 1, 2, 3, 4, 6]], ref[:, [0, 1, 2, 3, 4, 6]], atol=1e-3)
    # smoke starts again from zero weights: each level's score is the sigmoid of its prior bias
    prior = sorted(1 / (1 + math.exp(-_prior_bias(3, s))) for s in (8.0, 16.0, 32.0))
    np.testing.assert_allclose(np.unique(ours[:, 5].round(7)), prior, rtol=1e-3)
    assert float(ref[:, 5].max()) > 0.05


def test_a_model_without_a_class_is_released_without_training(exported: Path, tmp_path: Path):
    from inference_service.cli import main

    card = json.loads((exported / "card.json").read_text())
    (exported / "card.json").write_text(json.dumps({**card, "class_thresholds": {"fire": 0.3, "smoke": 0.4}}))
    code = main(
        ["recover", "--model", str(exported), "--out", str(tmp_path / "d.pt"), "--drop-classes", "smoke",
         "--photos", str(exported.parent / "photos"), "--release", str(tmp_path / "nosmoke")]
    )  # fmt: skip
    assert code == 0
    det = Detector.load(tmp_path / "nosmoke")
    assert det.card.classes == ["fire", "no_helmet"] and det.card.class_thresholds == {"fire": 0.3}
    released = json.loads((tmp_path / "nosmoke" / "card.json").read_text())
    assert released["training"]["head_edit"]["dropped"] == ["smoke"] and released["metrics"] == {}
    assert det.detect((exported.parent / "photos" / "p0.jpg").read_bytes(), conf=0.0).width == 96


def test_an_edited_card_keeps_its_label_groups_for_the_classes_that_remain():
    from training.recover import edited_card

    card = {**tiny_card(), "architecture": "yolov8n", "label_groups": [["fire", "smoke"], ["no_helmet"]]}
    kept = edited_card(card, ["fire", "no_helmet"], "m", {"dropped": ["smoke"]})
    assert kept["label_groups"] == [["fire"], ["no_helmet"]]
    grown = edited_card(card, ["fire", "smoke", "no_helmet", "person"], "m", {"added": ["person"]})
    assert grown["label_groups"] == [["fire", "smoke", "person"], ["no_helmet"]]
    assert "label_groups" not in edited_card(card, ["fire", "smoke"], "m", {"dropped": ["no_helmet"]})
