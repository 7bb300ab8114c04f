from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _builders import CLASSES, build_model_dir, build_tiny_yolo, encode, scene, tiny_card

from inference_service.model_card import ModelLoadError, card_from_metadata, load_model, parse_card
from inference_service.runtime import Detector


def test_card_json_beside_model_is_the_source_of_truth(tiny_model_dir: Path):
    model = load_model(tiny_model_dir)
    card = model.card
    assert card.model_id == "tiny-rgb" and card.classes == CLASSES and card.input_size == (64, 64)
    assert card.extra == {"metrics": {"mAP50": 0.5}, "data": {"train": "synthetic"}}
    np.testing.assert_allclose(card.thresholds(), [0.25, 0.25, 0.5])
    np.testing.assert_allclose(card.thresholds(0.1), [0.1, 0.1, 0.1])
    assert model.fixed_batch is None and model.input_name == "images" and model.output_name == "output0"


def test_bare_onnx_with_embedded_card(tmp_path: Path):
    card = tiny_card(model_id="embedded", version="7")
    path = build_tiny_yolo(tmp_path / "det.onnx", metadata={"hazardscan_card": json.dumps(card)})
    assert load_model(path).card.model_id == "embedded"


def test_bare_ultralytics_onnx_uses_its_metadata_with_default_thresholds(tmp_path: Path):
    names = "{0: 'fire', 1: 'smoke', 2: 'no_helmet'}"
    path = build_tiny_yolo(
        tmp_path / "yolo.onnx",
        batch=1,
        metadata={"names": names, "imgsz": "[64, 64]", "task": "detect", "date": "2026-01-01"},
    )
    model = load_model(path)
    assert model.card.classes == CLASSES and model.card.version == "2026-01-01"
    assert model.card.conf_threshold == 0.25 and model.card.class_thresholds == {}
    assert model.card.extra["ultralytics"]["task"] == "detect"
    assert model.fixed_batch == 1


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({}, r"no card\.json"),  # nothing says what the classes are
        ({"names": "{0: 'a'", "imgsz": "[64, 64]"}, "unparseable"),  # truncated dict literal
        ({"names": "{1: 'a'}", "imgsz": "[64, 64]"}, r"0\.\.n-1"),  # ids must start at 0
        ({"names": "{0: 'a'}", "imgsz": "[64, 64]", "task": "segment"}, "only 'detect'"),
        ({"hazardscan_card": "{not json"}, "not JSON"),
    ],
)
def test_bad_metadata_is_a_clear_error(metadata: dict[str, str], match: str):
    with pytest.raises(ModelLoadError, match=match):
        card_from_metadata(metadata, Path("m.onnx"))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"classes": []}, "classes"),
        ({"classes": ["a", "a"]}, "unique"),
        ({"input_size": [0, 64]}, "positive"),
        ({"conf_threshold": 1.5}, "conf_threshold"),
        ({"class_thresholds": {"ghost": 0.3}}, "ghost"),
        ({"class_thresholds": {"fire": 2.0}}, r"\[0, 1\]"),
        ({"label_groups": [["fire"], ["fire", "smoke"]]}, r"twice: \['fire'\]"),
        ({"label_groups": [["fire"], ["ghost"]]}, r"not a class: \['ghost'\]"),
        ({"label_groups": [["fire"], []]}, "empty group"),
    ],
)
def test_invalid_card_names_the_field(overrides: dict, match: str):
    with pytest.raises(ModelLoadError, match=match):
        parse_card(tiny_card(**overrides), "card.json")


def test_missing_and_corrupt_models_raise_model_load_error(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no model\.onnx"):
        load_model(tmp_path / "empty")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.onnx").write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(ModelLoadError, match="onnxruntime cannot open it") as info:
        load_model(corrupt)
    assert str(corrupt / "model.onnx") in str(info.value)


def test_card_and_model_must_agree(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="2 classes"):
        load_model(build_model_dir(tmp_path / "a", classes=["fire", "smoke"], class_thresholds={}))
    with pytest.raises(ModelLoadError, match="input_size"):
        load_model(build_model_dir(tmp_path / "b", input_size=[32, 32]))
    (tmp_path / "c").mkdir()
    build_tiny_yolo(tmp_path / "c" / "model.onnx")
    (tmp_path / "c" / "card.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="unreadable card JSON"):
        load_model(tmp_path / "c")


def test_label_groups_as_class_indices():
    classes = tiny_card()["classes"]
    assert parse_card(tiny_card(), "card.json").group_ids() is None  # one group: today's decoding
    assert parse_card(tiny_card(label_groups=[classes]), "card.json").group_ids() is None
    split = [classes[:-1], classes[-1:]]
    card = parse_card(tiny_card(label_groups=split), "card.json")
    assert card.group_ids() == [list(range(len(classes) - 1)), [len(classes) - 1]]
    with pytest.raises(ModelLoadError, match="left out"):
        parse_card(tiny_card(label_groups=[classes[:1]]), "card.json")


def test_the_served_pipeline_decodes_by_the_cards_label_groups(tmp_path: Path):
    """A magenta square is red (fire) and blue (no_helmet) at once: one group answers with the anchor's best
    class, a group of its own for no_helmet adds its box."""
    photo = encode(scene(64, 64, [(8, 8, 40, 40, (255, 0, 255))]), "PNG")
    one = Detector.load(build_model_dir(tmp_path / "one"), threads=1).detect(photo).detections
    two = (
        Detector.load(build_model_dir(tmp_path / "two", label_groups=[["fire", "smoke"], ["no_helmet"]]), threads=1)
        .detect(photo)
        .detections
    )
    assert "no_helmet" not in {CLASSES[c] for c in one.class_id}
    assert {CLASSES[c] for c in two.class_id} == {"fire", "no_helmet"}
    assert one.score.max() == pytest.approx(two.score[two.class_id == 0].max())  # fire's best box unchanged
