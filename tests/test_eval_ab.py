"""Paired bootstrap A/B on synthetic models whose ranking is obvious."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.ab import ab_dict, bootstrap_ab, judge
from evaluation.matching import build_table, class_ap
from inference_service.detections import Detections

CLASSES = ["fire", "smoke"]
N = 60


def photos(seed: int = 0) -> list[Detections]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N):
        x, y = rng.uniform(0, 200, 2)
        out.append(Detections.from_rows([(x, y, x + 40, y + 40, 0, 1.0), (x + 100, y, x + 150, y + 30, 1, 1.0)]))
    return out


def good(gts: list[Detections], seed: int = 1) -> list[Detections]:
    """Finds everything; a few low-scored false positives."""
    rng = np.random.default_rng(seed)
    out = []
    for g in gts:
        hits = Detections(g.xyxy + 1, g.class_id, rng.uniform(0.6, 0.9, len(g)).astype(np.float32))
        stray = Detections.from_rows([(300, 300, 320, 320, int(rng.integers(0, 2)), float(rng.uniform(0.05, 0.3)))])
        out.append(Detections.concat([hits, stray]))
    return out


def bad(gts: list[Detections], seed: int = 2) -> list[Detections]:
    """Misplaces half of the fire boxes, with confidence; smoke as good as ``good``."""
    rng = np.random.default_rng(seed)
    out = []
    for g in gts:
        xyxy = g.xyxy.copy()
        if rng.random() < 0.5:
            xyxy[0] += 60  # no overlap: a false positive and a miss
        out.append(Detections(xyxy, g.class_id, rng.uniform(0.6, 0.9, len(g)).astype(np.float32)))
    return out


def test_clearly_better_and_clearly_worse():
    gts = photos()
    strong, weak = build_table(gts, good(gts), 2), build_table(gts, bad(gts), 2)
    assert class_ap(strong, 0) == pytest.approx(1.0)
    assert (class_ap(weak, 0) or 0.0) < 0.6

    better = bootstrap_ab(weak, strong, CLASSES, resamples=300, seed=0)
    assert better.verdict == "better"
    assert better.line.startswith("VERDICT: candidate better than current on mAP50 by")
    assert better.map50.ci[0] > 0
    assert better.per_class[1].diff == pytest.approx(0.0, abs=0.02)  # smoke: the same

    worse = bootstrap_ab(strong, weak, CLASSES, resamples=300, seed=0)
    assert worse.verdict == "worse"
    assert worse.line.startswith("VERDICT: candidate worse than current on mAP50 by")
    assert worse.map50.ci[1] < 0 and worse.map50.diff == pytest.approx(-better.map50.diff)
    assert worse.regressions == [0] and "per-class regressions: fire" in worse.line
    assert ab_dict(worse, CLASSES)["per_class"]["fire"]["ci"][1] < 0


def test_identical_models_show_no_difference():
    gts = photos()
    table = build_table(gts, good(gts), 2)
    result = bootstrap_ab(table, table, CLASSES, resamples=100)
    assert result.verdict == "no_clear_difference"
    assert result.map50.ci == (0.0, 0.0)
    assert result.line.startswith("VERDICT: no clear difference")


def test_a_margin_tolerates_a_small_loss():
    gts = photos()
    strong, weak = build_table(gts, good(gts), 2), build_table(gts, bad(gts), 2)
    result = bootstrap_ab(strong, weak, CLASSES, resamples=200, margin=0.5)  # 50 points tolerated
    assert result.verdict == "no_clear_difference"


@pytest.mark.parametrize(
    ("ci", "margin", "verdict"),
    [((-0.05, -0.01), 0.0, "worse"), ((-0.05, -0.01), 0.02, "no_clear_difference"), ((0.01, 0.03), 0.0, "better"),
     ((-0.01, 0.01), 0.0, "no_clear_difference")],
)  # fmt: skip
def test_judge(ci, margin, verdict):
    assert judge(ci, margin) == verdict


def test_tables_on_different_ground_truth_are_refused():
    gts = photos()
    other = [*photos(seed=5)[:-1], Detections.empty()]
    with pytest.raises(ValueError, match="same photos"):
        bootstrap_ab(build_table(gts, good(gts), 2), build_table(other, good(other), 2), CLASSES, resamples=10)


def test_the_gate_averages_only_classes_with_enough_boxes():
    gts = photos()
    few = [
        Detections.concat([g, Detections.from_rows([(0, 0, 9, 9, 2, 1.0)])]) if i < 3 else g for i, g in enumerate(gts)
    ]
    strong, weak = build_table(few, good(few), 3), build_table(few, bad(few), 3)
    result = bootstrap_ab(strong, weak, [*CLASSES, "rare"], resamples=100, min_gt=10)
    assert result.gate_classes == [0, 1]
    assert 2 in result.per_class  # still compared, with its own interval
    assert "(2 classes with >= 10 boxes)" in result.line
    assert result.map50.diff == pytest.approx(np.mean([result.per_class[0].diff, result.per_class[1].diff]))
