"""Every input format gives the same evaluation set, mapped onto the model's classes by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from evaluation.data import detect_format, load_eval_set, resolve_labelstudio_url, yolo_label_path

MODEL_CLASSES = ["fire", "smoke", "no_helmet"]
DATA_CLASSES = ["person", "fire", "smoke"]  # 'person' is not a model class; 'no_helmet' is never labelled
W, H = 160, 120
# photo -> boxes (x1, y1, x2, y2, data class name)
BOXES = {
    "a": [(10, 10, 50, 40, "fire"), (60, 20, 100, 110, "person")],
    "b": [(80, 30, 150, 90, "smoke")],
    "c": [],  # a background photo
}


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sets") / "yoloset"
    for stem, boxes in BOXES.items():
        img = root / "images" / "val" / f"{stem}.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (W, H), (114, 114, 114)).save(img)
        lab = root / "labels" / "val" / f"{stem}.txt"
        lab.parent.mkdir(parents=True, exist_ok=True)
        lab.write_text(
            "".join(
                f"{DATA_CLASSES.index(n)} {(x1 + x2) / 2 / W} {(y1 + y2) / 2 / H} {(x2 - x1) / W} {(y2 - y1) / H}\n"
                for x1, y1, x2, y2, n in boxes
            )
        )
    (root / "data.yaml").write_text(
        yaml.safe_dump({"path": "D:/elsewhere", "val": "images/val", "names": dict(enumerate(DATA_CLASSES))})
    )
    return root


def expected_gt() -> dict[str, list[tuple[float, ...]]]:
    return {
        stem: sorted((x1, y1, x2, y2, MODEL_CLASSES.index(n)) for x1, y1, x2, y2, n in boxes if n in MODEL_CLASSES)
        for stem, boxes in BOXES.items()
    }


def as_rows(eval_set) -> dict[str, list[tuple[float, ...]]]:
    out = {}
    for s in eval_set.samples:
        rows = [(*np.round(b, 3).tolist(), int(c)) for b, c in zip(s.gt.xyxy, s.gt.class_id, strict=True)]
        out[s.image.stem.split("__")[-1]] = sorted(tuple(r) for r in rows)
    return out


def coco_json(src: Path, path: Path) -> Path:
    images: list[dict[str, object]] = []
    anns: list[dict[str, object]] = []
    for i, (stem, boxes) in enumerate(BOXES.items(), 1):
        images.append({"id": i, "file_name": f"{stem}.png", "width": W, "height": H})
        for x1, y1, x2, y2, n in boxes:
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": DATA_CLASSES.index(n) + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})  # fmt: skip
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(DATA_CLASSES)]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def labelstudio_json(path: Path) -> Path:
    tasks = []
    for i, (stem, boxes) in enumerate(BOXES.items(), 1):
        results = [
            {"id": f"r{k}", "type": "rectanglelabels", "original_width": W, "original_height": H,
             "value": {"x": 100 * x1 / W, "y": 100 * y1 / H, "width": 100 * (x2 - x1) / W,
                       "height": 100 * (y2 - y1) / H, "rectanglelabels": [n]}}
            for k, (x1, y1, x2, y2, n) in enumerate(boxes)
        ]  # fmt: skip
        tasks.append(
            {"id": i, "data": {"image": f"/data/local-files/?d=images/val/{stem}.png"},
             "annotations": [{"id": i, "result": results, "was_cancelled": False}]}
        )  # fmt: skip
    tasks.append({"id": 99, "data": {"image": "/data/local-files/?d=images/val/a.png"}, "annotations": []})
    path.write_text(json.dumps(tasks))
    return path


def dataset_folder(src: Path, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for stem, boxes in BOXES.items():
        rows = [[x1, y1, x2, y2, DATA_CLASSES.index(n)] for x1, y1, x2, y2, n in boxes]
        for split in ("val", "train"):  # the train copy must be filtered out
            lines.append({"image": str(src / "images" / "val" / f"{stem}.png"), "source": "yoloset", "split": split,
                          "width": W, "height": H, "boxes": rows})  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    (root / "data.yaml").write_text(yaml.safe_dump({"names": dict(enumerate(DATA_CLASSES))}))
    card = {"classes": DATA_CLASSES, "sources": [{"name": "yoloset", "class_map": {"Fire": "fire", "hat": None}}]}
    (root / "dataset_card.json").write_text(json.dumps(card))
    return root


def source_spec(src: Path, path: Path) -> Path:
    spec = {
        "name": "yoloset", "format": "yolo", "root": src.name, "images": ["images/val/*.png"],
        "names_from": "data.yaml", "missing_label": "negative",
        "class_map": {"fire": "fire", "smoke": "smoke", "person": None},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(spec))
    return path


def test_every_format_reads_the_same_set(src: Path, tmp_path: Path):
    inputs = {
        "yolo": (src / "data.yaml", {}),
        "coco": (coco_json(src, tmp_path / "ann.json"), {"images_root": src / "images" / "val"}),
        "labelstudio": (labelstudio_json(tmp_path / "export.json"), {"images_root": src}),
        "dataset": (dataset_folder(src, tmp_path / "built"), {}),
        "source": (source_spec(src, tmp_path / "spec.yaml"), {"datasets_root": src.parent}),
    }
    for fmt, (path, kwargs) in inputs.items():
        assert detect_format(path) == fmt
        eval_set = load_eval_set(path, MODEL_CLASSES, "val", **kwargs)
        assert eval_set.classes == MODEL_CLASSES
        assert as_rows(eval_set) == expected_gt(), fmt
        assert len(eval_set.samples) == 3, fmt
        if fmt != "source":  # the source spec maps 'person' to nothing itself
            assert eval_set.dropped_gt == {"person": 1}, fmt
        assert all((s.width, s.height) == (W, H) for s in eval_set.samples)


def test_labelled_classes_and_federation(src: Path, tmp_path: Path):
    yolo = load_eval_set(src / "data.yaml", MODEL_CLASSES)
    assert yolo.labelled == [0, 1] and yolo.source_classes is None  # no_helmet is never labelled
    built = load_eval_set(dataset_folder(src, tmp_path / "built"), MODEL_CLASSES)
    assert built.source_classes == {"yoloset": [0]}  # its source labels fire only
    assert built.scored_classes(built.samples[0]) == [0]
    assert len(load_eval_set(tmp_path / "built", MODEL_CLASSES, "all").samples) == 6


def test_no_shared_class_is_an_error(src: Path):
    with pytest.raises(ValueError, match="share no name"):
        load_eval_set(src / "data.yaml", ["helmet", "ebike"])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/data/local-files/?d=images/val/a.png", "a.png"),
        ("/data/local-files/?d=images%2Fval%2Fb.png", "b.png"),
        ("/data/upload/3/1f2e3d4c-c.png", "c.png"),  # uploads get a hash prefix
        ("http://example.org/media/a.png", "a.png"),
    ],
)
def test_labelstudio_urls(src: Path, url: str, expected: str):
    assert resolve_labelstudio_url(url, src / "images" / "val" if "local" not in url else src).name == expected


def test_yolo_label_path():
    assert yolo_label_path(Path("/d/images/val/x.jpg")) == Path("/d/labels/val/x.txt")
    assert yolo_label_path(Path("/images/d/images/x.png")) == Path("/images/d/labels/x.txt")


def test_federated_scoring_leaves_out_and_counts_unscored_predictions(tmp_path: Path):
    from evaluation.data import EvalSample, EvalSet
    from evaluation.evaluate import score
    from inference_service.detections import Detections

    box = (10.0, 10.0, 50.0, 40.0)
    samples = [
        EvalSample(tmp_path / "a.png", "fire-set", Detections.from_rows([(*box, 0, 1.0)]), W, H),
        EvalSample(tmp_path / "b.png", "helmet-set", Detections.empty(), W, H),
    ]
    eval_set = EvalSet("x", MODEL_CLASSES, samples, [0, 2], {"fire-set": [0], "helmet-set": [2]})
    # a fire found on the fire photo; a confident 'fire' on the helmet photo, whose source never labels fire
    preds = [Detections.from_rows([(*box, 0, 0.9)]), Detections.from_rows([(*box, 0, 0.95), (60, 60, 90, 90, 0, 0.1)])]
    federated = score(eval_set, preds)
    assert federated.overall.ap50 == {0: pytest.approx(1.0)}
    boxes, photos = federated.unscored_at(np.array([0.5, 0.5, 0.5], np.float32))
    assert boxes.tolist() == [1, 0, 0] and photos.tolist() == [1, 0, 0]
    everything = score(eval_set, preds, federated=False)
    assert everything.overall.ap50[0] == pytest.approx(0.5)  # scored, the 0.95 'fire' ranks above the true one
