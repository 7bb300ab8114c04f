"""The IoU/centroid tracker, table-driven over hand-written box sequences."""

from __future__ import annotations

import numpy as np
import pytest

from inference_service.cctv.tracking import Tracker, greedy_pairs

A = (0.0, 0.0, 10.0, 10.0)
A_SHIFTED = (2.0, 0.0, 12.0, 10.0)  # IoU with A = 8/12
A_JUMPED = (9.0, 0.0, 19.0, 10.0)  # IoU 1/19 with A: below threshold, centre 9 px away (reach ~7.07)
A_NEAR = (6.0, 0.0, 16.0, 10.0)  # IoU 4/16 = 0.25 with A
FAR = (100.0, 100.0, 110.0, 110.0)


@pytest.mark.parametrize(
    ("frames", "expected_ids"),
    [
        # a steady box keeps its track
        ([[A], [A], [A]], [[1], [1], [1]]),
        # a slightly moved box continues by IoU
        ([[A], [A_SHIFTED]], [[1], [1]]),
        # a jump past both the IoU threshold and the centroid reach: a new track
        ([[A], [A_JUMPED]], [[1], [2]]),
        # low IoU still above the 0.2 threshold continues
        ([[A], [A_NEAR]], [[1], [1]]),
        # two boxes, two tracks, each kept by order-independent matching
        ([[A, FAR], [FAR, A]], [[1, 2], [2, 1]]),
        # a far-away box never takes over a track
        ([[A], [FAR]], [[1], [2]]),
        # no boxes: nothing returned, the track survives a short gap
        ([[A], [], [A]], [[1], [], [1]]),
    ],
)
def test_track_ids(frames: list[list[tuple[float, ...]]], expected_ids: list[list[int]]):
    tracker = Tracker(iou_threshold=0.2, max_age_s=5.0)
    got = []
    for i, boxes in enumerate(frames):
        tracks = tracker.update(boxes, [0.9] * len(boxes), ts=float(i))
        got.append([t.id for t in tracks])
    assert got == expected_ids


def test_centroid_fallback_follows_a_fast_box_that_no_longer_overlaps():
    tracker = Tracker(iou_threshold=0.2, centroid_factor=2.0)  # reach: 2 × half diagonal ≈ 14 px
    first = tracker.update([A], [0.9], ts=0.0)
    moved = tracker.update([(11.0, 0.0, 21.0, 10.0)], [0.8], ts=1.0)  # IoU 0, centres 11 px apart
    assert moved[0].id == first[0].id
    assert moved[0].hits == 2 and moved[0].confidence == pytest.approx(0.8)
    assert moved[0].first_seen == 0.0 and moved[0].last_seen == 1.0


def test_tracks_expire_once_unseen_for_more_than_max_age():
    tracker = Tracker(max_age_s=2.0)
    (t1,) = tracker.update([A], [0.9], ts=0.0)
    assert tracker.update([A], [0.9], ts=2.0)[0].id == t1.id  # unseen for exactly 2 s: still the same
    assert tracker.expire(4.0) == []
    assert [t.id for t in tracker.expire(4.5)] == [t1.id]
    assert tracker.update([A], [0.9], ts=4.6)[0].id != t1.id


def test_age_counts_from_the_first_sighting():
    tracker = Tracker()
    tracker.update([A], [0.5], ts=10.0)
    (t,) = tracker.update([A], [0.7], ts=12.5)
    assert t.age(13.0) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("matrix", "minimum", "pairs"),
    [
        ([[0.9, 0.8], [0.85, 0.1]], 0.2, [(0, 0)]),  # best (0,0) first; what is left, (1,1), is too low
        ([[0.9, 0.8], [0.85, 0.3]], 0.2, [(0, 0), (1, 1)]),
        ([[0.1]], 0.2, []),  # below the minimum
        (np.zeros((0, 3)), 0.2, []),  # no rows
    ],
)
def test_greedy_pairs(matrix, minimum: float, pairs: list[tuple[int, int]]):
    assert greedy_pairs(np.asarray(matrix, np.float32), minimum) == pairs
