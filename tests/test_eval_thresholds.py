"""Operating points chosen on tiny PR tables, and written into a card the service then uses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _builders import build_model_dir

from evaluation.matching import build_table
from evaluation.thresholds import Goal, OperatingPoint, choose, choose_thresholds, tidy_threshold, write_card
from inference_service.detections import Detections
from inference_service.model_card import ModelLoadError
from inference_service.runtime import Detector


def table_of(flags: list[bool], scores: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.array(flags, bool)
    return np.array(scores, np.float32), np.cumsum(f).astype(float), np.cumsum(~f).astype(float)


# scores 0.9 TP, 0.8 FP, 0.7 TP, 0.6 TP, 0.5 FP with 4 gt boxes. Cut by cut:
#   >=0.9: P 1.00 R .25 F1 .400 | >=0.8: P .50 R .25 F1 .333 | >=0.7: P .67 R .50 F1 .571
#   >=0.6: P .75 R .75 F1 .750 | >=0.5: P .60 R .75 F1 .667
FLAGS, SCORES, N_GT = [True, False, True, True, False], [0.9, 0.8, 0.7, 0.6, 0.5], 4


@pytest.mark.parametrize(
    ("goal", "threshold", "precision", "recall"),
    [
        ("max_f1", 0.6, 0.75, 0.75),
        ("precision:0.75", 0.6, 0.75, 0.75),  # the floor is met exactly at 0.6; the most recall that keeps it
        ("precision:0.7", 0.6, 0.75, 0.75),
        ("precision:0.9", 0.9, 1.0, 0.25),
        ("precision:0.6", 0.5, 0.6, 0.75),  # all five: P .6 still meets the floor
        ("precision:1", 0.9, 1.0, 0.25),
        ("max_f1:0.7", 0.6, 0.75, 0.75),  # the best F1 already meets the floor
        ("max_f1:0.8", 0.9, 1.0, 0.25),  # best F1 among cuts with P >= .8: only >= 0.9 qualifies
    ],
)
def test_choose_on_a_tiny_pr_table(goal, threshold, precision, recall):
    t, p, r, _f, met = choose(*table_of(FLAGS, SCORES), N_GT, Goal.parse(goal))
    assert met
    assert t == pytest.approx(threshold)
    assert (p, r) == pytest.approx((precision, recall))


def test_chosen_threshold_keeps_exactly_the_chosen_predictions():
    scores = [0.73125, 0.7312, 0.2]
    t, *_ = choose(*table_of([True, True, False], scores), 2, Goal("max_f1"))
    assert t is not None
    kept = np.array(scores, np.float32) >= np.float32(t)
    assert kept.tolist() == [True, True, False]
    assert t == 0.7  # the shortest decimal between 0.2 and 0.7312


def test_ties_cannot_be_split():
    # TP and FP share a score: a threshold keeps both or neither
    t, p, r, _f, _ = choose(*table_of([True, False], [0.8, 0.8]), 1, Goal.parse("precision:0.9"))
    assert t is None and p is None
    t, p, r, _f, _ = choose(*table_of([True, False], [0.8, 0.8]), 1, Goal("max_f1"))
    assert t == pytest.approx(0.8) and p == 0.5 and r == 1.0


@pytest.mark.parametrize(
    ("flags", "scores", "n_gt", "goal"),
    [
        ([False, False], [0.9, 0.4], 2, "precision:0.5"),  # only false positives: floor unreachable
        ([False, True], [0.9, 0.4], 2, "max_f1:0.6"),  # precision never reaches .6
        ([], [], 2, "max_f1"),  # no predictions
        ([True], [0.9], 0, "max_f1"),  # no ground truth
    ],
)
def test_goal_not_met_keeps_the_card_threshold(flags, scores, n_gt, goal):
    t, _p, _r, _f, met = choose(*table_of(flags, scores), n_gt, Goal.parse(goal))
    assert t is None and not met


@pytest.mark.parametrize(
    "text", ["", "f1", "precision", "precision:0", "precision:1.5", "precision:x", "max_f1:0", "max_f1:y"]
)
def test_bad_goal(text):
    with pytest.raises(ValueError, match="threshold goal"):
        Goal.parse(text)


def test_tidy_threshold():
    assert tidy_threshold(0.6, 0.5) == 0.6
    assert tidy_threshold(0.31274, 0.3127) == pytest.approx(0.31274, abs=1e-6)
    assert np.float32(tidy_threshold(0.5, 0.49999997)) == np.float32(0.5)


def test_choose_thresholds_per_class():
    box = (0, 0, 10, 10)
    gts = [Detections.from_rows([(*box, 0, 1.0)]), Detections.from_rows([(*box, 0, 1.0)])]
    preds = [
        Detections.from_rows([(*box, 0, 0.8)]),
        Detections.from_rows([(20, 20, 30, 30, 0, 0.9), (*box, 0, 0.3), (40, 40, 50, 50, 1, 0.7)]),
    ]
    table = build_table(gts, preds, 3)
    points = choose_thresholds(table, ["fire", "smoke", "no_helmet"], Goal("max_f1"), min_gt=1)
    fire, smoke, no_helmet = points
    assert fire.threshold == pytest.approx(0.3) and fire.recall == 1.0 and fire.precision == pytest.approx(2 / 3)
    assert smoke.threshold is None and "no ground truth" in smoke.note
    assert no_helmet.threshold is None and no_helmet.gt == 0
    # two boxes are too few to choose from by default: the card keeps its threshold, and says why
    fire_default = choose_thresholds(table, ["fire", "smoke", "no_helmet"], Goal("max_f1"))[0]
    assert fire_default.threshold is None and fire_default.note == "only 2 boxes (< 10): threshold kept"


def test_write_card_is_used_by_the_service(tmp_path: Path):
    model = build_model_dir(tmp_path / "m")
    before = Detector.load(model, threads=1).card
    points = [
        OperatingPoint("fire", 0.42, 0.9, 0.8, 0.85, 10, True),
        OperatingPoint("smoke", None, None, None, None, 0, False, "no ground truth: threshold kept"),
    ]
    chosen_on = {"data": "synthetic:val", "split": "val", "photos": 3}
    write_card(model / "card.json", before, points, Goal("max_f1"), chosen_on)
    doc = json.loads((model / "card.json").read_text())
    assert doc["class_thresholds"] == {"no_helmet": 0.5, "fire": 0.42}  # smoke keeps the default
    assert doc["operating_points"]["goal"] == "max_f1"
    assert doc["operating_points"]["chosen_on"]["data"] == "synthetic:val"
    assert doc["metrics"] == {"mAP50": 0.5}  # the rest of the card is kept
    after = Detector.load(model, threads=1).card
    assert after.thresholds().tolist() == pytest.approx([0.42, 0.25, 0.5])


def test_write_card_refuses_a_card_the_service_would_reject(tmp_path: Path):
    model = build_model_dir(tmp_path / "m")
    card = Detector.load(model, threads=1).card
    with pytest.raises(ModelLoadError, match="class_thresholds"):
        write_card(model / "card.json", card, [OperatingPoint("fire", 1.5, 1, 1, 1, 1, True)], Goal("max_f1"), {})
    assert "operating_points" not in json.loads((model / "card.json").read_text())
