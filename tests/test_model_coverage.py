"""Issue 15 item 6: ``/v1/model`` and the shipped model card say which hazards the model raises as detections,
which as suspicions, which only in a declared scene, and which it cannot raise yet, under the taxonomy served."""

from __future__ import annotations

import json
from pathlib import Path

from _builders import build_model_dir
from _live import LiveServer

from inference_service.api.settings import Settings
from inference_service.taxonomy import load_taxonomy

REPO = Path(__file__).resolve().parents[1]
TAX = load_taxonomy()


def test_model_view_says_what_it_raises_under_the_served_taxonomy_and_drops_the_cards_stale_lists(tmp_path: Path):
    # a card written under an older taxonomy: it said FIRE-006 and EBIKE-001 could not be raised
    classes = ["ebike", "exit_sign", "fire"]
    stale = {"hazards_raised": ["EBIKE-002"], "hazards_not_raised": ["FIRE-006", "EBIKE-001"], "taxonomy_version": "0"}
    model = build_model_dir(tmp_path / "m", classes=classes, class_thresholds={}, **stale)
    with LiveServer(Settings(model_path=model, threads=1)) as client:
        view = client.get("/v1/model").json()
    assert not {"hazards_raised", "hazards_not_raised", "hazard_coverage"} & set(view["extra"])
    hazards = view["hazards"]
    assert hazards["taxonomy_version"] == TAX.version
    assert {"FIRE-001", "EBIKE-001", "EBIKE-002"} <= set(hazards["detections"]) and hazards["suspicions"] == [
        "FIRE-006"
    ]
    assert hazards["need_scene"] == {"FIRE-006": ["corridor"], "EBIKE-001": ["elevator"]}
    assert hazards["cannot_raise"]["CONST-001"] == ["no_helmet"] and "FIRE-006" not in hazards["cannot_raise"]


def test_the_shipped_cards_coverage_is_the_served_taxonomys():
    card = json.loads((REPO / "models" / "default" / "card.json").read_text(encoding="utf-8"))
    readme = (REPO / "models" / "default" / "README.md").read_text(encoding="utf-8")
    # a card trained under this taxonomy (training/card.py) or one whose coverage was recomputed for it
    worked_out_with = card.get("hazard_coverage_taxonomy", card["taxonomy_version"])
    assert worked_out_with == TAX.version, "the taxonomy changed: recompute the card's hazard_coverage and README"
    coverage = TAX.coverage(card["classes"])
    assert card["hazard_coverage"] == coverage
    assert f"- Raised as suspicions for the inspector to confirm: {', '.join(coverage['suspicions'])}." in readme
    assert f"- Raised as detections: {', '.join(coverage['detections'])}." in readme
