"""`hazardscan release`'s card: served-pipeline figures from `--attach-eval`, and the architecture it names."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from _builders import CLASSES

from inference_service.taxonomy import load_taxonomy
from training.card import base_card
from training.release import architecture_of, attach_eval


def _report(rect: bool, map50: float) -> dict:
    per_class = [
        {"class": "fire", "gt": 5, "ap50": map50, "ap50_95": map50 / 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    ]
    overall = {"photos": 9, "map50": map50, "map50_95": map50 / 2, "map50_all_predictions": map50 - 0.01}
    overall |= {"map50_95_all_predictions": map50 / 2, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    report = {"model": {"rect": rect}, "data": {"name": "synthetic"}, "overall": overall, "per_class": per_class}
    report["crosscheck"] = {}
    if rect:
        report["ab"] = {"line": "VERDICT: no clear difference (-0.4 points)"}
    return report


def _card() -> dict:
    return base_card(
        model_id="m",
        version="1",
        architecture="yolov8n",
        classes=CLASSES,
        input_size=(64, 64),
        taxonomy=load_taxonomy(),
        dataset_card=None,
        run={},
    )


def _write_card(folder: Path) -> None:
    (folder / "card.json").write_text(json.dumps(_card()))


def test_square_and_rect_reports_land_in_their_own_places(tmp_path: Path):
    _write_card(tmp_path)
    for rect, value in ((False, 0.7), (True, 0.69)):
        (tmp_path / f"r{rect}.json").write_text(json.dumps(_report(rect, value)))
        out = attach_eval(tmp_path, tmp_path / f"r{rect}.json")
    assert out["metrics"]["val"]["mAP50"] == 0.7  # the rect report did not overwrite the card's own figures
    assert out["metrics"]["val_rect"]["mAP50"] == 0.69
    assert out["metrics"]["val_rect"]["per_class_ap50"] == {"fire": 0.69}
    readme = (tmp_path / "README.md").read_text()
    assert "mAP50 70.0" in readme and "minimum-rectangle inputs" in readme and "mAP50 69.0" in readme
    assert "no clear difference (-0.4 points)" in readme


def test_a_robustness_report_lands_beside_the_val_figures(tmp_path: Path):
    _write_card(tmp_path)
    (tmp_path / "val.json").write_text(json.dumps(_report(False, 0.7)))
    attach_eval(tmp_path, tmp_path / "val.json")

    def counts(kept: list[int], new: list[int]) -> dict[str, list[int]]:
        return {"shown": [4, 2, 0], "kept": kept, "not_shown": [5, 7, 9], "false_alarms": [0, 0, 0], "new_alarms": new}

    robustness = {
        "model": "m",
        "version": "1",
        "data": "heldout:val",
        "photos": 9,
        "unreadable": [],
        "classes": CLASSES,
        "degradations": {"as taken": counts([4, 2, 0], [0, 0, 0]), "white veil 90%": counts([1, 2, 0], [0, 6, 0])},
    }
    (tmp_path / "robust.json").write_text(json.dumps(robustness))
    out = attach_eval(tmp_path, tmp_path / "robust.json")
    assert out["metrics"]["val"]["mAP50"] == 0.7  # untouched
    assert out["metrics"]["robustness"]["degradations"]["white veil 90%"]["new_alarms"] == [0, 6, 0]
    readme = (tmp_path / "README.md").read_text()
    assert "## Under degraded photos" in readme and "9 photos of heldout:val" in readme
    assert "| fire | 4/4 · 0/5 | 1/4 · 0/5 · +0 |" in readme and "| smoke | 2/2 · 0/7 | 2/2 · 0/7 · +6 |" in readme


def test_the_readme_names_label_groups_only_when_there_are_several():
    from training.card import render_markdown

    card = _card()
    assert "Label groups" not in render_markdown(card)
    card["label_groups"] = [CLASSES[:2], CLASSES[2:]]
    assert "Label groups (an anchor answers with its best class of each): fire, smoke; no_helmet." in render_markdown(
        card
    )


def test_the_card_names_the_architecture_of_a_start_whose_name_does_not(tmp_path: Path):
    """A recovered start (``work/recovered/v5.pt``) or an ONNX one: the card must still say ``yolov8n``/``yolo11n``
    (``recover`` rebuilds a released model from it), not the file's name."""
    torch = pytest.importorskip("torch")
    recovered = tmp_path / "v5.pt"
    torch.save({"model": SimpleNamespace(yaml={"yaml_file": "yolo11n.yaml"}), "ema": None}, recovered)
    assert architecture_of(recovered) == "yolo11n"
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "card.json").write_text(json.dumps({"architecture": "yolov8n"}))
    assert architecture_of(shipped / "model.onnx") == "yolov8n"
    assert architecture_of(tmp_path / "yolo11n_coco_from_int8.pt") == "yolo11n"  # the name says it; not read
    assert architecture_of(Path("yolov8n.yaml")) == "yolov8n"  # trained from scratch
    torch.save({"model": SimpleNamespace(yaml={"yaml_file": "resnet50.yaml"})}, tmp_path / "other.pt")
    for unknown in (tmp_path / "other.pt", tmp_path / "missing.pt"):
        with pytest.raises(ValueError, match="cannot tell the architecture"):
            architecture_of(unknown)
