"""Context classes from a teacher: pseudo-labels of a class no source labels (``person``), renamed teacher classes,
validation photos labelled with the added class only, and the agreement measurement that picks the threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from evaluation.teacher_agreement import anchor_agreement, human_agreement
from inference_service.detections import Detections
from inference_service.runtime import Detector
from tests._builders import build_model_dir, fire_only_dataset
from training.partial_labels import audit, write_pseudo_dataset


def _labels(folder: Path) -> list[list[str]]:
    return [sorted(line.split()[0] for line in p.read_text().splitlines()) for p in sorted(folder.glob("*.txt"))]


def test_teacher_adds_a_class_no_source_labels_to_train_and_val(tmp_path: Path):
    built = fire_only_dataset(tmp_path)  # fire (red, labelled) and smoke classes; green squares in fire photos
    # a "teacher" whose green class is called motorcycle: renamed onto person, which the dataset lacks
    teacher = Detector.load(build_model_dir(tmp_path / "t", classes=["fire", "motorcycle", "no_helmet"]))
    report, pseudo = audit(teacher, built.root, 0.5, ["person"], {"motorcycle": "person"})
    assert report["classes"] == ["fire", "smoke", "person"]
    assert report["boxes"] == {"fireonly": {"person": 4}, "smokeonly": {"person": 1}}
    out = Path(
        yaml.safe_load(
            write_pseudo_dataset(built.root, pseudo, tmp_path / "p", "t 1", 0.5, report["classes"], True).read_text()
        )["path"]
    )
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "fire", 1: "smoke", 2: "person"}
    train, val = _labels(out / "labels" / "train"), _labels(out / "labels" / "val")
    assert train and val and all("2" in labels for labels in train + val)
    assert ["0", "2"] in val  # the fire photo in val keeps its fire box and gains the teacher's person
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["classes"] == ["fire", "smoke", "person"]
    assert card["boxes_per_class"]["val"]["person"] == len(val)
    assert all(s["class_map"]["t 1: person"] == "person" for s in card["sources"])  # scored everywhere
    # without --label-val, validation photos stay as the humans drew them
    plain = write_pseudo_dataset(built.root, pseudo, tmp_path / "q", "t 1", 0.5, report["classes"], False).parent
    assert all("2" not in labels for labels in _labels(plain / "labels" / "val"))
    assert json.loads((plain / "dataset_card.json").read_text())["boxes_per_class"]["val"]["person"] == 0


def _dets(boxes: list[list[float]], scores: list[float] | None = None) -> Detections:
    xyxy = np.array(boxes, np.float32).reshape(-1, 4)
    score = np.array(scores if scores is not None else [1.0] * len(xyxy), np.float32)
    return Detections(xyxy, np.zeros(len(xyxy), np.int64), score)


def test_anchor_agreement_counts_anchor_centres_inside_teacher_persons():
    anchors = _dets([[10, 10, 20, 20], [100, 100, 110, 110]])  # two labelled heads
    persons = _dets([[0, 0, 50, 80], [200, 200, 250, 280]], [0.9, 0.2])  # one worker, one confident-less box
    rows = {r["conf"]: r for r in anchor_agreement([(anchors, persons, True)], (0.1, 0.5))}
    assert rows[0.1]["recall"] == 0.5 and rows[0.1]["precision"] == 0.5  # the second box holds no head
    assert rows[0.5]["recall"] == 0.5 and rows[0.5]["precision"] == 1.0
    # photos whose source does not label every head add to recall only
    (row,) = anchor_agreement([(anchors, persons, False)], (0.1,))
    assert row["persons"] == 0 and row["recall"] == 0.5


def test_human_agreement_matches_one_to_one_at_iou():
    human = _dets([[0, 0, 10, 10], [20, 20, 30, 30]])
    teacher = _dets([[0, 0, 10, 10], [0, 0, 10, 9], [50, 50, 60, 60]], [0.9, 0.8, 0.3])
    rows = {r["conf"]: r for r in human_agreement([(human, teacher)], (0.25, 0.85))}
    assert rows[0.25]["teacher"] == 3 and rows[0.25]["precision"] == 1 / 3 and rows[0.25]["recall"] == 0.5
    assert rows[0.85]["precision"] == 1.0 and rows[0.85]["recall"] == 0.5


def test_ab_leaves_out_a_class_the_current_model_lacks():
    from evaluation.ab import bootstrap_ab
    from evaluation.matching import build_table

    rng = np.random.default_rng(0)
    gts, same, extra = [], [], []
    for _ in range(30):
        x, y = (float(v) for v in rng.uniform(0, 200, 2))
        gt = Detections.from_rows([(x, y, x + 40, y + 40, 0, 1.0), (x + 100, y, x + 150, y + 50, 1, 1.0)])
        gts.append(gt)
        same.append(Detections(gt.xyxy[:1] + 1, gt.class_id[:1], np.array([0.8], np.float32)))
        extra.append(Detections(gt.xyxy + 1, gt.class_id, np.array([0.8, 0.9], np.float32)))
    current, candidate = build_table(gts, same, 2), build_table(gts, extra, 2)
    every = bootstrap_ab(current, candidate, ["fire", "person"], 50)
    assert every.verdict == "better"  # class 1 counted as AP 0 for the current model: the inflated comparison
    fair = bootstrap_ab(current, candidate, ["fire", "person"], 50, shared=[0])
    assert fair.gate_classes == [0] and set(fair.per_class) == {0} and fair.verdict == "no_clear_difference"
