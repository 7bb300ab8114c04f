"""中文 and English: advice in both languages, API error messages chosen by ``Accept-Language``."""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np

from inference_service.detections import Detections
from inference_service.taxonomy import Taxonomy, parse_taxonomy

CJK = re.compile(r"[\u4e00-\u9fff]")

DOC: dict[str, Any] = {
    "version": "t",
    "detector_classes": [{"name": "fire"}],
    "hazards": [
        {
            "id": "X-1",
            "name_zh": "火",
            "name_en": "Fire",
            "domain": "消防",
            "severity": "high",
            "legal_basis": "法",
            "advice_zh": "灭火。",
            "advice_en": "Put it out.",
            "rule": {"when": ["fire"]},
        }
    ],
}


def test_every_shipped_hazard_has_advice_in_both_languages(taxonomy: Taxonomy):
    assert len(taxonomy.hazards) >= 18
    for h in taxonomy.hazards:
        assert CJK.search(h.advice_zh), h.id
        assert h.advice_en and not CJK.search(h.advice_en), h.id
        assert h.advice_en[0].isupper() and h.advice_en.endswith("."), h.id


def test_advice_en_travels_with_findings_and_the_taxonomy_dict():
    tax = parse_taxonomy(DOC)
    assert tax.as_dict()["hazards"][0]["advice_en"] == "Put it out."
    dets = Detections(xyxy=np.array([[0, 0, 10, 10]]), class_id=np.array([0]), score=np.array([0.9]))
    (finding,) = tax.evaluate(dets, ["fire"])
    assert (finding.advice_zh, finding.advice_en) == ("灭火。", "Put it out.")


def test_a_users_taxonomy_without_advice_en_still_loads():
    doc = copy.deepcopy(DOC)
    del doc["hazards"][0]["advice_en"]
    assert parse_taxonomy(doc).hazards[0].advice_en == ""
