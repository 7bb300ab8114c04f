"""Metrics on hand-made ground truth and predictions whose values are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.matching import build_table, class_ap, coco_ap, counts_at, interpolated_pr, match_image, mean_ap
from evaluation.metrics import CocoEvaluator, confusion_matrix, hazard_figures, prf_at
from inference_service.detections import Detections
from inference_service.taxonomy import load_taxonomy

pytest.importorskip("pycocotools")

A = (10, 10, 50, 50)
B = (100, 100, 160, 140)
C = (200, 20, 240, 90)
SIZE = (320, 240)


def gt(*rows: tuple[tuple[float, float, float, float], int]) -> Detections:
    return Detections.from_rows([(*box, c, 1.0) for box, c in rows])


def pred(*rows: tuple[tuple[float, float, float, float], int, float]) -> Detections:
    return Detections.from_rows([(*box, c, s) for box, c, s in rows])


def shifted(box: tuple[float, float, float, float], dx: float) -> tuple[float, float, float, float]:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def both(gts: list[Detections], preds: list[Detections], n: int = 2) -> tuple[dict[int, float], dict[int, float]]:
    """AP50 per class from pycocotools and from our matching table."""
    coco = CocoEvaluator(gts, preds, [SIZE] * len(gts), n).scores()
    table = build_table(gts, preds, n)
    ours = {c: class_ap(table, c) for c in range(n)}
    return coco.ap50, {c: v for c, v in ours.items() if v is not None}


# (ground truth per photo, predictions per photo, expected AP50 of class 0)
CASES = [
    # perfect predictions: AP 1
    ([gt((A, 0)), gt((B, 0))], [pred((A, 0, 0.9)), pred((B, 0, 0.8))], 1.0),
    # one false positive ranked above the only true positive: precision 1/2 at every recall
    ([gt((A, 0))], [pred((C, 0, 0.9), (A, 0, 0.8))], 0.5),
    # a true positive above a false positive, two gt boxes: recall reaches 1/2 only -> 51 of 101 points
    ([gt((A, 0), (B, 0))], [pred((A, 0, 0.9), (C, 0, 0.8))], 51 / 101),
    # duplicate detection of one box: the second is a false positive, below the TP -> AP 1
    ([gt((A, 0))], [pred((A, 0, 0.9), (shifted(A, 2), 0, 0.8))], 1.0),
    # IoU below 0.5 is no match: AP 0
    ([gt((A, 0))], [pred((shifted(A, 30), 0, 0.9))], 0.0),
    # the right box with the wrong class matches nothing of class 0
    ([gt((A, 0))], [pred((A, 1, 0.9))], 0.0),
    # no predictions at all: AP 0 (not an error)
    ([gt((A, 0)), gt((B, 0))], [Detections.empty(), Detections.empty()], 0.0),
    # a photo without ground truth contributes its false positive: FP 0.9 > TP 0.5 -> 0.5
    ([gt((A, 0)), Detections.empty()], [pred((A, 0, 0.5)), pred((B, 0, 0.9))], 0.5),
]


@pytest.mark.parametrize(("gts", "preds", "expected"), CASES)
def test_known_ap(gts, preds, expected):
    coco, ours = both(gts, preds)
    assert coco[0] == pytest.approx(expected, abs=1e-9)
    assert ours[0] == pytest.approx(expected, abs=1e-9)


def test_classes_without_ground_truth_are_excluded():
    # class 1 has predictions but no ground truth: it is left out of AP and of the mean
    gts = [gt((A, 0))]
    preds = [pred((A, 0, 0.9), (B, 1, 0.8))]
    scores = CocoEvaluator(gts, preds, [SIZE], 2).scores()
    assert set(scores.ap50) == {0}
    assert scores.map50 == pytest.approx(1.0)
    assert mean_ap(build_table(gts, preds, 2)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("gts", "preds"),
    [
        ([Detections.empty()], [Detections.empty()]),  # nothing at all
        ([Detections.empty()], [pred((A, 0, 0.9))]),  # predictions only
        ([], []),  # no photos
    ],
)
def test_no_ground_truth_gives_no_map(gts, preds):
    scores = CocoEvaluator(gts, preds, [SIZE] * len(gts), 2).scores()
    assert scores.map50 is None and scores.map is None and scores.ap50 == {}
    table = build_table(gts, preds, 2)
    assert mean_ap(table) is None
    assert class_ap(table, 0) is None


def test_map50_95_of_a_perfect_box_is_one_and_of_a_loose_box_known():
    # IoU of the loose box with A: 40x40 vs 40x(40+8) -> 1600/1920 = 0.833: a match at 0.50..0.80 (7 of 10)
    loose = (A[0], A[1], A[2], A[3] + 8)
    scores = CocoEvaluator([gt((A, 0), (B, 1))], [pred((loose, 0, 0.9), (B, 1, 0.8))], [SIZE], 2).scores()
    assert scores.ap[1] == pytest.approx(1.0)
    assert scores.ap[0] == pytest.approx(0.7)
    assert scores.map == pytest.approx(0.85)


def test_our_matching_equals_pycocotools_on_a_random_set():
    rng = np.random.default_rng(7)
    gts, preds = [], []
    for _ in range(40):
        n = int(rng.integers(0, 5))
        xy = rng.uniform(0, 250, (n, 2))
        wh = rng.uniform(10, 60, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        cls = rng.integers(0, 3, n)
        gts.append(Detections(boxes, cls, np.ones(n, np.float32)))
        jitter = boxes + rng.normal(0, 6, boxes.shape)  # near misses and hits
        jitter = np.concatenate([np.minimum(jitter[:, :2], jitter[:, 2:]), np.maximum(jitter[:, :2], jitter[:, 2:])], 1)
        extra = rng.uniform(0, 250, (int(rng.integers(0, 4)), 2))
        fp_boxes = np.concatenate([extra, extra + 30], axis=1)
        all_boxes = np.concatenate([jitter, fp_boxes])
        all_cls = np.concatenate([np.where(rng.random(n) < 0.9, cls, (cls + 1) % 3), rng.integers(0, 3, len(extra))])
        preds.append(Detections(all_boxes, all_cls, rng.random(len(all_boxes), np.float32)))
    coco, ours = both(gts, preds, 3)
    assert set(coco) == set(ours)
    for c in coco:
        assert ours[c] == pytest.approx(coco[c], abs=1e-9)


def test_scores_of_a_subset_equal_a_fresh_evaluation_of_it():
    gts = [gt((A, 0)), gt((B, 0)), gt((C, 1)), gt((A, 1))]
    preds = [pred((A, 0, 0.9)), pred((C, 0, 0.95)), pred((C, 1, 0.7)), pred((B, 1, 0.8))]
    whole = CocoEvaluator(gts, preds, [SIZE] * 4, 2)
    subset = [1, 3]  # not a prefix: pycocotools' own subset accumulate gets this wrong
    fresh = CocoEvaluator([gts[i] for i in subset], [preds[i] for i in subset], [SIZE] * 2, 2).scores()
    assert whole.scores(subset) == fresh
    assert fresh.ap50 == {0: 0.0, 1: 0.0}
    assert whole.scores([0, 2]).map50 == pytest.approx(1.0)


def test_max_100_detections_per_class_and_photo_like_pycocotools():
    # 120 false positives above the one true positive: pycocotools keeps the best 100, so the TP is dropped
    fps = [((300 + i, 0, 310 + i, 10), 0, 0.99 - i * 1e-4) for i in range(120)]
    gts, preds = [gt((A, 0))], [pred(*fps, (A, 0, 0.5))]
    coco, ours = both(gts, preds, 1)
    assert coco[0] == ours[0] == 0.0
    kept, _, _ = match_image(gts[0], preds[0])
    assert kept.size == 100


def test_precision_recall_f1_at_thresholds():
    gts = [gt((A, 0), (B, 0), (C, 1))]
    preds = [pred((A, 0, 0.9), (B, 0, 0.3), (shifted(C, 100), 0, 0.6), (C, 1, 0.2))]
    table = build_table(gts, preds, 2)
    thresholds = np.array([0.5, 0.1], np.float32)
    c = counts_at(table, thresholds)
    assert c["tp"].tolist() == [1, 1] and c["fp"].tolist() == [1, 0] and c["fn"].tolist() == [1, 0]
    prf = prf_at(table, thresholds)
    assert prf["per_class"]["precision"].tolist() == [0.5, 1.0]
    assert prf["per_class"]["recall"].tolist() == [0.5, 1.0]
    assert prf["micro"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})


def test_precision_is_undefined_without_predictions():
    table = build_table([gt((A, 0))], [Detections.empty()], 1)
    prf = prf_at(table, np.array([0.5], np.float32))
    assert np.isnan(prf["per_class"]["precision"][0])
    assert prf["per_class"]["recall"][0] == 0.0


def test_confusion_matrix():
    gts = [gt((A, 0), (B, 1), (C, 1))]
    # A found right, B called class 0, C missed, one box on nothing
    preds = [pred((A, 0, 0.9), (B, 0, 0.8), ((260, 150, 300, 200), 1, 0.7))]
    m = confusion_matrix(gts, preds, 2)
    assert m.tolist() == [
        [1, 0, 0],  # true 0: predicted 0
        [1, 0, 1],  # true 1: once called 0, once missed
        [0, 1, 0],  # background: one false positive of class 1
    ]
    assert confusion_matrix([Detections.empty()], [Detections.empty()], 2).sum() == 0


def test_hazard_figures_at_photo_level():
    tax = load_taxonomy()
    classes = ["fire", "smoke", "no_helmet"]
    gts = [gt((A, 0)), gt((A, 0)), Detections.empty(), Detections.empty(), gt((B, 2))]
    preds = [
        pred((A, 0, 0.9)),  # fire found
        Detections.empty(),  # fire missed
        pred((C, 1, 0.8)),  # smoke on a clean photo: false alarm
        Detections.empty(),  # clean and quiet
        pred((B, 0, 0.6)),  # no_helmet photo flagged, but with the wrong hazard
    ]
    scored = [[0, 1, 2]] * 5
    h = hazard_figures(tax, classes, gts, preds, scored)
    assert h["any"]["photos_with_hazard"] == 3
    assert h["any"]["flagged_any_hazard"] == 2
    assert h["any"]["flagged_same_hazard"] == 1
    assert h["any"]["photos_without_hazard"] == 2
    assert h["any"]["false_alarms"] == 1
    fire = next(v for k, v in h["per_hazard"].items() if v["name_en"].lower().startswith("open fire"))
    assert (fire["photos_with"], fire["flagged"], fire["photos_without"], fire["false_alarms"]) == (2, 1, 3, 1)
    # a hazard is only counted on photos whose source labels its class
    only_fire = hazard_figures(tax, classes, gts, preds, [[0]] * 5)
    assert {v["name_en"] for v in only_fire["per_hazard"].values()} == {fire["name_en"]}


def test_coco_ap_edge_cases():
    assert coco_ap(np.zeros(0), np.zeros(0), 0) is None
    assert coco_ap(np.zeros(0), np.zeros(0), 3) == 0.0
    assert coco_ap(np.array([1.0, 2.0]), np.array([0.0, 0.0]), 2) == pytest.approx(1.0)


def test_interpolated_pr_curve():
    # TP 0.9, FP 0.8 with two gt boxes: precision 1 up to recall 1/2 (reached at score 0.9), then nothing
    table = build_table([gt((A, 0), (B, 0))], [pred((A, 0, 0.9), (C, 0, 0.8))], 2)
    curve = interpolated_pr(table, 0)
    assert curve is not None and len(curve["recall"]) == 101
    assert curve["precision"][:51] == [1.0] * 51 and curve["precision"][51:] == [0.0] * 50
    assert curve["score"][50] == pytest.approx(0.9)
    assert np.mean(curve["precision"]) == pytest.approx(class_ap(table, 0))
    assert interpolated_pr(table, 1) is None
