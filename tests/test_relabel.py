"""One definition for a class: each of its boxes becomes the teacher's box of what holds it (smoking: the smoker)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_service.cli import main
from inference_service.detections import Detections
from inference_service.taxonomy import load_taxonomy
from tests._builders import build_model_dir
from training.dataset import build_dataset, load_manifest
from training.importer import SourceSpec, import_all
from training.relabel import holder_of, relabel, relabel_boxes


def test_the_holder_is_the_one_covering_most_of_the_box_and_the_smaller_on_a_tie():
    boxes = np.array([[10, 10, 20, 20], [100, 100, 110, 110], [0, 0, 10, 10]], np.float32)
    holders = np.array(
        [
            [0, 0, 50, 50],  # covers box 0 whole, and box 2 whole
            [5, 5, 25, 25],  # covers box 0 whole too, and is smaller: box 0's holder
            [105, 100, 200, 200],  # covers half of box 1
            [0, 0, 6, 10],  # covers 0.6 of box 2: less than holder 0
        ],
        np.float32,
    )
    assert holder_of(boxes, holders, 0.5).tolist() == [1, 2, 0]
    assert holder_of(boxes, holders, 0.6).tolist() == [1, -1, 0]  # half is not enough at 0.6
    assert holder_of(boxes, np.zeros((0, 4)), 0.5).tolist() == [-1, -1, -1]
    assert holder_of(np.zeros((0, 4)), holders, 0.5).tolist() == []


def test_relabelled_boxes_become_one_box_per_holder_and_unheld_ones_stay_as_drawn():
    labels = Detections(
        np.array([[10, 10, 20, 20], [30, 30, 40, 40], [12, 12, 18, 18], [200, 200, 210, 210]], np.float32),
        np.array([3, 5, 3, 3]),
        np.ones(4, np.float32),
    )
    person = np.array([[0, 0, 60, 100]], np.float32)
    out, held, unheld = relabel_boxes(labels, 3, person, 0.5)
    assert (held, unheld) == (2, 1)
    assert out.class_id.tolist() == [5, 3, 3]  # the other class untouched, first
    assert out.xyxy.tolist() == [[30, 30, 40, 40], [0, 0, 60, 100], [200, 200, 210, 210]]
    same, held, unheld = relabel_boxes(labels, 7, person, 0.5)  # a class without boxes: nothing changes
    assert (held, unheld) == (0, 0) and same.xyxy.tolist() == labels.xyxy.tolist()


def _dataset_with_small_boxes(tmp_path: Path):
    """Photos whose red (fire) square is labelled by two boxes of its quarters, and a green (smoke) square labelled
    whole; the tiny model detects the whole squares (one cell each)."""
    root = tmp_path / "sets" / "quarter"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    for i in range(8):
        arr = np.random.default_rng(i).integers(60, 170, (64, 64, 3), dtype=np.uint8)  # distinct photos
        arr[0:16, 0:16] = (255, 0, 0)
        arr[40:56, 40:56] = (0, 255, 0)
        Image.fromarray(arr).save(root / "images" / f"{i}.png")
        (root / "labels" / f"{i}.txt").write_text(
            "0 0.0625 0.0625 0.125 0.125\n0 0.1875 0.1875 0.125 0.125\n1 0.75 0.75 0.25 0.25\n"
        )
    spec = SourceSpec.from_dict(
        {"name": "quarter", "root": "quarter", "images": ["images/*.png"], "names": ["f", "s"],
         "class_map": {"f": "fire", "s": "smoke"}}
    )  # fmt: skip
    return build_dataset(import_all([spec], tmp_path / "sets", load_taxonomy()), tmp_path / "ds", val_fraction=0.25)


def test_relabel_writes_a_derived_dataset_every_split_relabelled(tmp_path: Path):
    built = _dataset_with_small_boxes(tmp_path)
    teacher = build_model_dir(tmp_path / "teacher", classes=["fire", "smoke", "no_helmet"])
    report = relabel(built.root, teacher, "fire", tmp_path / "relabelled", holder="fire", min_conf=0.3)
    assert (report["photos"], report["held"], report["unheld"], report["boxes_after"]) == (8, 16, 0, 8)
    out = Path(report["data_yaml"]).parent
    before = {s.sha1: (s, side) for s, side in load_manifest(built.root)}
    after = load_manifest(out)
    assert {side for _, side in after} == {"train", "val"}
    for sample, side in after:
        old, old_side = before[sample.sha1]
        assert side == old_side
        fire = sample.labels.xyxy[sample.labels.class_id == 0]
        assert len(fire) == 1 and fire[0].tolist() == [0, 0, 16, 16]  # one box, the whole square
        smoke = sample.labels.class_id == 1
        assert sample.labels.xyxy[smoke].tolist() == old.labels.xyxy[old.labels.class_id == 1].tolist()
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["derived_from"] == built.version and card["version"] != built.version
    assert card["derivation"].startswith("fire relabelled as its fire: on 8 photos (every split)")
    # the teacher sees nothing as a holder: every box stays as drawn
    none = relabel(built.root, teacher, "fire", tmp_path / "none", holder="no_helmet")
    assert (none["held"], none["unheld"], none["boxes_after"]) == (0, 16, 16)


def test_cli_refuses_what_it_cannot_relabel(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    built = _dataset_with_small_boxes(tmp_path)
    teacher = build_model_dir(tmp_path / "teacher", classes=["fire", "smoke", "no_helmet"])
    base = ["relabel", "--data", str(built.root), "--teacher", str(teacher), "--write", str(tmp_path / "o")]
    assert main([*base, "--class", "smoking"]) == 2
    assert "has no class 'smoking'" in capsys.readouterr().err
    assert main([*base, "--class", "fire", "--holder", "person"]) == 2
    assert "has no class 'person'" in capsys.readouterr().err
    assert main([*base, "--class", "fire", "--min-cover", "0"]) == 2
    assert "--min-cover" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written by a refusal
    assert main([*base, "--class", "fire", "--holder", "fire"]) == 0
    assert json.loads(capsys.readouterr().out)["held"] == 16
