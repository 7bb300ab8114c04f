"""Scene-aware rules: a rule may need a declared scene, be switched off in one, or raise a suspicion."""

from typing import Any

import pytest

from inference_service.detections import Detections
from inference_service.taxonomy import TaxonomyError, UnknownSceneError, load_taxonomy, parse_taxonomy

TAX = load_taxonomy()
NAMES = list(TAX.class_names)


def dets(*rows):
    return Detections.from_rows([(x1, y1, x2, y2, NAMES.index(c), s) for x1, y1, x2, y2, c, s in rows])


def raised(findings):
    return [(f.hazard_id, f.suspected) for f in findings]


PERSON = (0, 0, 100, 200, "person", 0.9)
HARNESS = (20, 50, 80, 120, "safety_harness", 0.8)
EBIKE = (300, 300, 400, 420, "ebike", 0.8)
EXIT = (300, 0, 360, 30, "exit_sign", 0.9)


@pytest.mark.parametrize(
    ("rows", "scene", "expected"),
    [
        # a person without a harness is nothing on its own ...
        ([PERSON], None, []),
        ([PERSON], "construction", []),
        # ... a suspected CONST-002 in a declared work-at-height scene, and fine with a harness on
        ([PERSON], "work_at_height", [("CONST-002", True)]),
        ([PERSON, HARNESS], "work_at_height", []),
        # an e-bike: corridor parking without a scene (today's behaviour), in-lift in a declared lift scene
        ([EBIKE], None, [("EBIKE-002", False)]),
        ([EBIKE], "elevator", [("EBIKE-001", False)]),
        # in an escape route that shows an exit sign it may also block the exit: a suspicion, critical first
        ([EBIKE, EXIT], "corridor", [("FIRE-006", True), ("EBIKE-002", False)]),
        ([EBIKE, EXIT], None, [("EBIKE-002", False)]),
        # a detected worker at height without a harness stays a confirmed finding, scene or not
        ([(0, 0, 100, 200, "worker_at_height", 0.9)], None, [("CONST-002", False)]),
        # one finding per object: the person box of the detected worker at height adds no suspicion
        ([(0, 0, 100, 200, "worker_at_height", 0.9), PERSON], "work_at_height", [("CONST-002", False)]),
        # ... but another person without a harness does
        (
            [(0, 0, 100, 200, "worker_at_height", 0.9), PERSON, (300, 0, 400, 200, "person", 0.6)],
            "work_at_height",
            [("CONST-002", False), ("CONST-002", True)],
        ),
    ],
)
def test_scene_rules(rows, scene, expected):
    assert raised(TAX.evaluate(dets(*rows), NAMES, scene)) == expected


def test_unknown_scene_names_the_known_ones():
    assert TAX.check_scene(None) is None and TAX.check_scene("elevator") == "elevator"
    with pytest.raises(UnknownSceneError, match="work_at_height"):
        TAX.check_scene("rooftop")


def test_coverage_follows_the_model_classes():
    hazard_classes = ["helmet", "no_helmet", "workwear", "no_workwear", "safety_harness", "fire", "smoke"]
    v5 = [*hazard_classes, "fire_extinguisher", "exit_sign", "exit_sign_unlit", "ebike", "smoking"]
    before, after = TAX.coverage(v5), TAX.coverage([*v5, "person"])
    assert "CONST-002" in before["cannot_raise"] and before["cannot_raise"]["CONST-002"] == ["worker_at_height"]
    assert "CONST-002" in after["suspicions"] and after["need_scene"]["CONST-002"] == ["work_at_height"]
    assert "CONST-002" not in after["detections"] and "CONST-002" not in after["cannot_raise"]
    assert after["need_scene"]["EBIKE-001"] == ["elevator"] and "EBIKE-002" not in after["need_scene"]
    every = set(after["detections"]) | set(after["suspicions"]) | set(after["cannot_raise"])
    assert every == {h.id for h in TAX.hazards}
    # hazards raisable without a scene are what the card has always listed as raised
    assert {h.id for h in TAX.detectable_hazards(v5)} == set(before["detections"]) - set(before["need_scene"])


def test_a_rule_naming_an_unlisted_scene_is_rejected() -> None:
    rules: list[dict[str, Any]] = [{"when": ["a"]}, {"when": ["a"], "scene": ["s2"]}]
    doc = {
        "version": "t",
        "detector_classes": [{"name": "a"}],
        "scenes": [{"id": "s1"}],
        "hazards": [
            {
                "id": "H-1",
                "name_zh": "h",
                "name_en": "h",
                "domain": "d",
                "severity": "low",
                "legal_basis": "x",
                "advice_zh": "y",
                "rule": rules,
            }
        ],
    }
    with pytest.raises(TaxonomyError, match=r"H-1: scenes \['s2'\]"):
        parse_taxonomy(doc)
    rules[1]["scene"] = ["s1"]
    assert len(parse_taxonomy(doc).hazards[0].rules) == 2


def test_a_camera_names_its_scene_and_an_unknown_one_is_a_config_error():
    from inference_service.cctv.config import CameraConfigError, parse_cameras

    hazards = {h.id for h in TAX.hazards}
    ok = parse_cameras({"cameras": [{"id": "lift-1", "url": "x", "scene": "elevator"}, {"id": "b", "url": "y"}]})
    ok.check_hazards(hazards, set(TAX.scene_ids))
    assert [c.scene for c in ok.cameras] == ["elevator", None]
    bad = parse_cameras({"cameras": [{"id": "roof", "url": "x", "scene": "rooftop"}]})
    with pytest.raises(CameraConfigError, match=r"camera roof: unknown scene 'rooftop'"):
        bad.check_hazards(hazards, set(TAX.scene_ids))
