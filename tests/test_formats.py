import json

import pytest

from training.formats.coco import parse_coco
from training.formats.labelstudio import parse_labelstudio_task, to_labelstudio_results
from training.formats.voc import parse_voc
from training.formats.yolo import parse_yolo_labels

NAMES = ["a", "b"]


@pytest.mark.parametrize(
    ("text", "boxes", "codes"),
    [
        # empty file: a negative
        ("", [], []),
        # one box, normalised centre/size -> pixels of a 200x100 photo
        ("0 0.5 0.5 0.5 0.5\n", [("a", (50, 25, 150, 75), "box")], []),
        # a polygon becomes its bounding box and says so
        ("1 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n", [("b", (20, 10, 60, 40), "polygon")], ["polygon_to_box"]),
        # box and polygon lines mixed in one file
        (
            "0 0.5 0.5 0.1 0.1\n1 0 0 1 0 1 1\n",
            [("a", (90, 45, 110, 55), "box"), ("b", (0, 0, 200, 100), "polygon")],
            ["polygon_to_box"],
        ),
        # class id outside the names list
        ("7 0.5 0.5 0.1 0.1\n", [], ["unknown_class"]),
        # garbage and odd coordinate counts
        ("zero 1 2 3 4\n0 0.1 0.2 0.3\n", [], ["malformed_line", "malformed_line"]),
    ],
)
def test_yolo(text, boxes, codes):
    parsed = parse_yolo_labels(text, 200, 100, NAMES)
    got = [(b.name, tuple(round(v, 3) for v in b.xyxy), b.kind) for b in parsed.boxes]
    assert got == [(n, tuple(float(v) for v in xyxy), k) for n, xyxy, k in boxes]
    assert [i.code for i in parsed.issues] == codes


def test_voc_is_one_based_and_keeps_names_with_spaces():
    xml = """<annotation><size><width>640</width><height>480</height></size>
      <object><name>No Safety Helmet</name><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>50</xmax><ymax>60</ymax>
      </bndbox></object><object><name>broken</name></object></annotation>"""
    parsed, size = parse_voc(xml)
    assert size == (640, 480)
    assert [(b.name, b.xyxy) for b in parsed.boxes] == [("No Safety Helmet", (10.0, 20.0, 50.0, 60.0))]
    assert [i.code for i in parsed.issues] == ["malformed_object"]


def test_coco():
    doc = {
        "images": [
            {"id": 1, "file_name": "x.jpg", "width": 100, "height": 50},
            {"id": 2, "file_name": "empty.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 3, "name": "fire"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20, 10]},
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [0, 0, 1, 1]},
        ],
    }
    out = parse_coco(json.dumps(doc))
    labels, size = out["x.jpg"]
    assert size == (100, 50)
    assert [(b.name, b.xyxy) for b in labels.boxes] == [("fire", (10.0, 5.0, 30.0, 15.0))]
    assert [i.code for i in labels.issues] == ["unknown_class"]
    assert out["empty.jpg"][0].boxes == []


def test_labelstudio_round_trip_is_exact():
    from training.formats.common import RawBox

    boxes = [RawBox("fire", (10.0, 20.0, 110.0, 70.0)), RawBox("smoke", (0.0, 0.0, 640.0, 480.0))]
    results = to_labelstudio_results(boxes, 640, 480)
    task = {
        "annotations": [
            {"id": 1, "result": results, "was_cancelled": False, "updated_at": "2026-01-01"},
            {"id": 2, "result": [], "was_cancelled": True, "updated_at": "2026-02-01"},
        ]
    }
    parsed, size = parse_labelstudio_task(task)
    assert size == (640, 480)
    for got, want in zip(parsed.boxes, boxes, strict=True):
        assert got.name == want.name
        assert got.xyxy == pytest.approx(want.xyxy, abs=1e-6)
