"""The model folders committed under ``models/``: each file serves, and the card inside each ONNX file says
what its ``card.json`` says (a folder copied without its card.json must behave the same)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from _builders import encode, scene

from inference_service.model_card import METADATA_KEY, card_from_metadata, read_card_json
from inference_service.runtime import Detector

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(p for p in MODELS.iterdir() if p.is_dir() and not p.is_symlink() and (p / "card.json").is_file())
FILES = ("model.onnx", "model.b1.onnx", "model.int8.onnx")
SERVING_FIELDS = (
    "model_id",
    "version",
    "classes",
    "input_size",
    "conf_threshold",
    "class_thresholds",
    "nms_iou",
    "rect",
)


def test_default_points_at_a_shipped_model():
    assert (MODELS / "default").resolve() in {p.resolve() for p in SHIPPED}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_embedded_card_matches_card_json(folder: Path, name: str):
    card = read_card_json(folder / "card.json")
    session = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    assert METADATA_KEY in metadata
    embedded = card_from_metadata(metadata, folder / name)
    for field in SERVING_FIELDS:
        assert getattr(embedded, field) == getattr(card, field), field


def test_default_model_finds_nothing_in_a_black_frame_and_serves_a_batch():
    detector = Detector.load(MODELS / "default", threads=1)
    black = [(0, 0, 640, 480, (0, 0, 0))]  # a camera with its lens capped
    photos = [encode(scene(640, 480, black), "JPEG"), encode(scene(640, 300, black), "PNG")]
    results = detector.detect_batch(photos)
    assert [len(r.detections) for r in results] == [0, 0]
    assert [(r.width, r.height) for r in results] == [(640, 480), (640, 300)]
