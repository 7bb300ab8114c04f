import pytest

from inference_service.detections import Detections
from inference_service.taxonomy import TaxonomyError, load_taxonomy, parse_taxonomy

TAX = load_taxonomy()
NAMES = list(TAX.class_names)


def dets(*rows):
    return Detections.from_rows([(x1, y1, x2, y2, NAMES.index(c), s) for x1, y1, x2, y2, c, s in rows])


def ids(findings):
    return [f.hazard_id for f in findings]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # nothing detected -> nothing raised
        ([], []),
        # a single-class rule
        ([(0, 0, 10, 10, "no_helmet", 0.8)], ["CONST-001"]),
        # a helmet is no hazard
        ([(0, 0, 10, 10, "helmet", 0.9)], []),
        # e-bike overlapping a lift car -> in-lift hazard, not the corridor one
        ([(10, 10, 50, 50, "ebike", 0.9), (0, 0, 100, 100, "elevator_car", 0.9)], ["EBIKE-001"]),
        # e-bike away from the lift car -> corridor parking
        ([(200, 200, 250, 250, "ebike", 0.9), (0, 0, 100, 100, "elevator_car", 0.9)], ["EBIKE-002"]),
        # worker at height with a harness on -> fine; without -> critical
        ([(0, 0, 100, 200, "worker_at_height", 0.9), (20, 50, 80, 120, "safety_harness", 0.7)], []),
        ([(0, 0, 100, 200, "worker_at_height", 0.9)], ["CONST-002"]),
        # welding with no extinguisher anywhere in the photo: both hot-work hazards, critical-first order
        ([(0, 0, 10, 10, "welding", 0.6)], ["HOT-001", "HOT-002"]),
        # welding with an extinguisher elsewhere in the photo (photo scope) -> only the permit check
        ([(0, 0, 10, 10, "welding", 0.6), (500, 500, 520, 560, "fire_extinguisher", 0.9)], ["HOT-002"]),
        # sorted by severity then confidence
        ([(0, 0, 10, 10, "smoking", 0.99), (0, 0, 10, 10, "fire", 0.5)], ["FIRE-001", "FIRE-003"]),
    ],
)
def test_rules(rows, expected):
    assert ids(TAX.evaluate(dets(*rows), NAMES)) == expected


def test_finding_carries_box_and_domain_text():
    (f,) = TAX.evaluate(dets((1, 2, 3, 4, "fire", 0.7)), NAMES)
    assert f.box == (1.0, 2.0, 3.0, 4.0)
    assert f.domain == "消防" and "消防法" in f.legal_basis and f.advice_zh
    assert f.confidence == pytest.approx(0.7)


def test_every_notice_domain_and_hazard_is_present():
    domains = {h.domain for h in TAX.hazards}
    assert {"消防", "建筑施工", "动火作业", "城镇燃气", "电动自行车", "工贸"} <= domains
    anchors = {c for h in TAX.hazards for c in h.rule.when}
    for needed in [
        "exit_obstruction",
        "exit_lock",
        "open_edge",
        "welding",
        "gas_cylinder",
        "no_helmet",
        "worker_at_height",
        "ebike",
        "smoking",
        "fire",
        "smoke",
        "emergency_light_off",
    ]:
        assert needed in anchors, needed


def test_untrained_classes_are_marked():
    trained = {c.name for c in TAX.detector_classes if c.trained_by_default_model}
    assert "no_helmet" in trained and "exit_lock" not in trained


def test_detectable_hazards_follow_model_classes():
    found = {h.id for h in TAX.detectable_hazards(["fire", "ebike"])}
    assert "FIRE-001" in found and "EBIKE-002" in found
    assert "EBIKE-001" not in found  # needs elevator_car, which this model does not know


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "version"),
        ({"version": "1", "detector_classes": [{"name": "a"}, {"name": "a"}]}, "unique"),
        ({"version": "1", "detector_classes": [{"name": "a"}], "hazards": [{"id": "X"}]}, "missing"),
        (
            {
                "version": "1",
                "detector_classes": [{"name": "a"}],
                "hazards": [
                    {
                        "id": "X",
                        "name_zh": "x",
                        "name_en": "x",
                        "domain": "d",
                        "severity": "grave",
                        "legal_basis": "l",
                        "advice_zh": "a",
                        "rule": {"when": ["a"]},
                    }
                ],
            },
            "severity",
        ),
        (
            {
                "version": "1",
                "detector_classes": [{"name": "a"}],
                "hazards": [
                    {
                        "id": "X",
                        "name_zh": "x",
                        "name_en": "x",
                        "domain": "d",
                        "severity": "low",
                        "legal_basis": "l",
                        "advice_zh": "a",
                        "rule": {"when": ["b"]},
                    }
                ],
            },
            "unknown",
        ),
    ],
)
def test_malformed_taxonomy_is_rejected_with_a_reason(doc, message):
    with pytest.raises(TaxonomyError, match=message):
        parse_taxonomy(doc)
