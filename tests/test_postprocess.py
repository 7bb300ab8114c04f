from __future__ import annotations

import numpy as np
import pytest

from inference_service.detections import Detections, box_iou
from inference_service.postprocess import (
    ImageGeometry,
    apply_thresholds,
    decode_predictions,
    nms,
    postprocess,
    to_original,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # no boxes on one side: an empty (N, 0) matrix
        ([[0, 0, 10, 10]], [], np.zeros((1, 0))),
        # identical boxes
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        # half overlap: 50 / 150
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [[1 / 3]]),
        # containment: 25 / 100
        ([[0, 0, 10, 10]], [[0, 0, 5, 5]], [[0.25]]),
        # touching edges and zero-area boxes give 0, never NaN
        ([[0, 0, 10, 10], [3, 3, 3, 3]], [[10, 0, 20, 10], [3, 3, 3, 3]], [[0.0, 0.0], [0.0, 0.0]]),
    ],
)
def test_box_iou(a, b, expected):
    np.testing.assert_allclose(box_iou(np.array(a, np.float32), np.array(b, np.float32)), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("boxes", "scores", "iou", "max_det", "expected"),
    [
        # no boxes
        ([], [], 0.5, None, []),
        # a single box is kept
        ([[0, 0, 10, 10]], [0.3], 0.5, None, [0]),
        # identical boxes: the better score wins
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.4, 0.9], 0.5, None, [1]),
        # disjoint boxes: both kept, best first
        ([[0, 0, 10, 10], [20, 20, 30, 30]], [0.2, 0.8], 0.5, None, [1, 0]),
        # IoU exactly at the threshold is kept (suppression needs IoU > threshold)
        ([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.5, None, [0, 1]),
        # ... and suppressed just below it
        ([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.49, None, [0]),
        # chain A-B-C: B is suppressed by A, so it cannot suppress C
        ([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], [0.9, 0.8, 0.7], 0.3, None, [0, 2]),
        # touching boxes share no area
        ([[0, 0, 10, 10], [10, 0, 20, 10]], [0.5, 0.6], 0.0, None, [1, 0]),
        # five boxes, two clusters and a loner; max_det stops after two
        (
            [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [51, 50, 61, 60], [100, 0, 110, 5]],
            [0.6, 0.7, 0.9, 0.5, 0.1],
            0.5,
            2,
            [2, 1],
        ),
        # degenerate (zero-area) boxes never suppress anything
        ([[5, 5, 5, 5], [5, 5, 5, 5]], [0.9, 0.8], 0.5, None, [0, 1]),
    ],
)
def test_nms(boxes, scores, iou, max_det, expected):
    assert nms(np.array(boxes, np.float32), np.array(scores, np.float32), iou, max_det).tolist() == expected


@pytest.mark.parametrize(
    ("boxes", "scores", "iou", "match"),
    [
        ([[0, 0, 1, 1]], [0.5, 0.6], 0.5, "1 boxes but scores has 2"),  # lengths differ
        ([[0, 0, 1, 1]], [0.5], 1.5, r"\[0, 1\]"),  # threshold out of range
    ],
)
def test_nms_rejects_bad_input(boxes, scores, iou, match):
    with pytest.raises(ValueError, match=match):
        nms(boxes, scores, iou)


def _synthetic_output() -> np.ndarray:
    rng = np.random.default_rng(0)
    anchors = 40
    xy = rng.uniform(0, 64, (2, anchors))
    wh = rng.uniform(4, 24, (2, anchors))
    scores = rng.uniform(0, 1, (3, anchors)) ** 4
    return np.concatenate([xy, wh, scores]).astype(np.float32)[None]


GEOMETRY = ImageGeometry(gain=(0.5, 0.5), pad=(0, 8), scale=(2.0, 2.0), size=(256, 192))
THRESHOLDS = np.array([0.25, 0.25, 0.5], np.float32)

# (x1, y1, x2, y2, class_id, score) in original pixels; frozen from this decoder, whose semantics the
# Ultralytics parity test checks independently.
GOLDEN = [
    (0.000, 0.000, 47.418, 59.442, 0, 0.9798),
    (210.907, 151.992, 228.084, 192.000, 2, 0.9763),
    (80.928, 75.393, 102.263, 96.150, 1, 0.9555),
    (96.173, 77.019, 172.809, 114.927, 0, 0.9297),
    (50.912, 40.752, 107.932, 112.965, 2, 0.9293),
    (197.462, 168.338, 256.000, 192.000, 2, 0.9212),
    (0.000, 24.016, 43.663, 84.995, 0, 0.9091),
    (41.168, 25.187, 96.962, 75.611, 2, 0.8601),
    (118.853, 0.000, 191.744, 69.677, 1, 0.8580),
    (91.709, 138.799, 185.519, 192.000, 0, 0.8437),
    (33.129, 0.000, 120.324, 73.408, 0, 0.7344),
    (0.000, 41.461, 34.449, 101.670, 1, 0.7019),
    (141.469, 110.501, 232.034, 144.571, 2, 0.6969),
    (205.853, 168.273, 256.000, 192.000, 0, 0.6865),
    (126.571, 0.000, 151.765, 2.490, 0, 0.6033),
    (139.544, 34.509, 234.040, 73.583, 0, 0.6000),
    (207.023, 42.562, 234.924, 124.012, 2, 0.5930),
    (138.893, 20.206, 176.184, 68.727, 1, 0.5699),
    (90.429, 182.750, 108.698, 192.000, 2, 0.5266),
    (79.210, 81.023, 169.538, 172.527, 2, 0.5069),
    (0.000, 0.000, 91.256, 30.987, 0, 0.4355),
    (217.066, 192.000, 238.352, 192.000, 1, 0.4265),
    (176.061, 178.271, 193.341, 192.000, 1, 0.3888),
]


def test_postprocess_golden_output():
    (dets,) = postprocess(_synthetic_output(), [GEOMETRY], THRESHOLDS, iou=0.5)
    golden = Detections.from_rows(GOLDEN)
    np.testing.assert_array_equal(dets.class_id, golden.class_id)
    np.testing.assert_allclose(dets.xyxy, golden.xyxy, atol=2e-3)
    np.testing.assert_allclose(dets.score, golden.score, atol=1e-4)


def test_per_class_thresholds_apply_after_nms():
    (dets,) = postprocess(_synthetic_output(), [GEOMETRY], THRESHOLDS, iou=0.5)
    assert dets.score[dets.class_id == 2].min() >= 0.5  # no_helmet's own threshold
    assert dets.score[dets.class_id != 2].min() >= 0.25  # the floor for the others
    (loose,) = postprocess(_synthetic_output(), [GEOMETRY], np.full(3, 0.25, np.float32), iou=0.5)
    assert len(loose) > len(dets)


def test_class_filter_and_max_det():
    out = _synthetic_output()
    (only_smoke,) = postprocess(out, [GEOMETRY], THRESHOLDS, iou=0.5, classes=[1])
    assert set(only_smoke.class_id.tolist()) == {1} and len(only_smoke) == 6
    (capped,) = postprocess(out, [GEOMETRY], THRESHOLDS, iou=0.5, max_det=3)
    assert len(capped) <= 3


def test_nms_is_class_aware():
    pred = np.zeros((4 + 2, 2), np.float32)
    pred[:4] = [[10, 10], [10, 10], [8, 8], [8, 8]]  # two identical boxes
    pred[4:] = [[0.9, 0.0], [0.0, 0.8]]  # ... of different classes
    dets = decode_predictions(pred, conf=0.25, iou=0.5)
    assert sorted(dets.class_id.tolist()) == [0, 1]


def test_to_original_undoes_letterbox_and_scale_then_clips():
    dets = Detections.from_rows([(10, 18, 30, 58, 0, 0.9), (-5, 0, 70, 70, 1, 0.8)])
    out = to_original(dets, ImageGeometry(gain=(0.5, 0.5), pad=(0, 8), scale=(4.0, 4.0), size=(512, 384)))
    np.testing.assert_allclose(out.xyxy, [[80, 80, 240, 384], [0, 0, 512, 384]])
    assert len(apply_thresholds(out, np.array([0.95, 0.5], np.float32))) == 1


def test_postprocess_checks_shapes():
    with pytest.raises(ValueError, match="B=2"):
        postprocess(np.zeros((1, 7, 4), np.float32), [GEOMETRY, GEOMETRY], THRESHOLDS, 0.5)
    with pytest.raises(ValueError, match="4 thresholds"):
        postprocess(np.zeros((1, 7, 4), np.float32), [GEOMETRY], np.zeros(4, np.float32), 0.5)


def test_one_label_group_of_every_class_is_todays_decoding():
    out = _synthetic_output()
    (plain,) = postprocess(out, [GEOMETRY], THRESHOLDS, iou=0.5)
    (grouped,) = postprocess(out, [GEOMETRY], THRESHOLDS, iou=0.5, groups=[[0, 1, 2]])
    np.testing.assert_array_equal(grouped.xyxy, plain.xyxy)
    np.testing.assert_array_equal(grouped.class_id, plain.class_id)
    np.testing.assert_array_equal(grouped.score, plain.score)


def test_a_class_in_its_own_label_group_takes_no_anchor_from_the_others():
    # anchor 0: class 2 (say, a taught `person`) scores above class 0 (`no_workwear`) on the same box
    pred = np.zeros((4 + 3, 2), np.float32)
    pred[:4] = [[10, 40], [10, 40], [8, 8], [8, 8]]
    pred[4:] = [[0.6, 0.0], [0.0, 0.7], [0.9, 0.0]]
    alone = decode_predictions(pred, conf=0.25, iou=0.5)
    assert sorted(alone.class_id.tolist()) == [1, 2]  # the anchor answers with its best class only
    grouped = decode_predictions(pred, conf=0.25, iou=0.5, groups=[np.array([0, 1]), np.array([2])])
    found = sorted(zip(grouped.class_id.tolist(), grouped.score.tolist(), strict=True))
    assert found == [(0, pytest.approx(0.6)), (1, pytest.approx(0.7)), (2, pytest.approx(0.9))]
    # the other classes answer exactly as a model without class 2 would
    without = decode_predictions(pred[:6], conf=0.25, iou=0.5)
    mine = grouped[grouped.class_id != 2]
    np.testing.assert_array_equal(mine.xyxy, without.xyxy)
    np.testing.assert_array_equal(mine.class_id, without.class_id)
    # the class filter still applies per detection
    only = decode_predictions(pred, conf=0.25, iou=0.5, classes=np.array([0]), groups=[np.array([0, 1]), np.array([2])])
    assert only.class_id.tolist() == [0]
