"""The simulated inspector of benchmarks/feedback_loop.py: decisions taken from a photo's labels, the photos
it labels, and the report built from the recorded steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.feedback_loop import (
    State,
    hazards_by_class,
    held_back_photos,
    inspector_decisions,
    report_text,
    write_report,
)
from inference_service.taxonomy import Taxonomy

HAZARD_OF = {"fire": "FIRE-001", "smoke": "FIRE-002"}
FIRE = (100.0, 100.0, 200.0, 200.0)
SMOKE = (300.0, 0.0, 400.0, 100.0)


def _finding(fid: str, cls: str | None, box, conf: float = 0.5) -> dict:
    return {"id": fid, "detector_class": cls, "box": list(box), "confidence": conf}


@pytest.mark.parametrize(
    "findings,labels,expected",
    [
        # the start model lacks fire: nothing to decide, every fire label is added
        ([], [("fire", FIRE)], ([], [], [], [("FIRE-001", FIRE)])),
        # a smoke box on the labelled smoke: confirmed; on the fire instead: rejected, the fire added
        ([_finding("a", "smoke", SMOKE)], [("smoke", SMOKE)], (["a"], [], [], [])),
        ([_finding("a", "smoke", FIRE)], [("fire", FIRE)], ([], ["a"], [], [("FIRE-001", FIRE)])),
        # IoU 0.47 < 0.5: rejected, and the label the model missed is added
        ([_finding("a", "smoke", (300, 0, 400, 47))], [("smoke", SMOKE)], ([], ["a"], [], [("FIRE-002", SMOKE)])),
        # two boxes on one label: the more confident one confirms it, the other is rejected
        ([_finding("lo", "smoke", SMOKE, 0.3), _finding("hi", "smoke", SMOKE, 0.9)], [("smoke", SMOKE)],
         (["hi"], ["lo"], [], [])),
        # a class the photo's source never labels (no_helmet), or a finding without a class: left undecided
        ([_finding("a", "no_helmet", FIRE), _finding("b", None, FIRE)], [("fire", FIRE)],
         ([], [], ["a", "b"], [("FIRE-001", FIRE)])),
        # a label of a class without a plain hazard (helmet) is not added
        ([], [("helmet", FIRE)], ([], [], [], [])),
    ],
)  # fmt: skip
def test_inspector_decisions_follow_the_labels(findings, labels, expected):
    d = inspector_decisions(findings, labels, {"fire", "smoke", "helmet"}, HAZARD_OF)
    assert (d.confirm, d.reject, d.undecided, d.add) == expected


def test_the_inspector_files_the_plain_hazard_of_each_class(taxonomy: Taxonomy):
    got = hazards_by_class(taxonomy, ["fire", "smoke", "helmet", "no_helmet", "person"])
    assert got["fire"] == "FIRE-001" and got["smoke"] == "FIRE-002"
    assert "helmet" not in got  # a helmet is no hazard
    assert "person" not in got  # CONST-002 needs a scene and no harness


def test_held_back_photos_are_train_photos_of_the_source_with_the_class_and_nest():
    rows = [{"sha1": f"{i:02d}", "source": "cctv" if i % 4 else "other", "split": "val" if i % 5 == 0 else "train",
             "boxes": [[0, 0, 1, 1, 5 if i % 3 else 6]]} for i in range(40)]  # fmt: skip
    photos = held_back_photos(rows, "cctv", 5)
    want = {r["sha1"] for r in rows if r["source"] == "cctv" and r["split"] == "train" and int(r["sha1"]) % 3}
    assert {r["sha1"] for r in photos} == want and len(photos) == len(want)
    assert [r["sha1"] for r in photos] == [r["sha1"] for r in held_back_photos(list(reversed(rows)), "cctv", 5)]
    assert [r["sha1"] for r in photos] != sorted(want)  # shuffled, not in hash order


def test_report_tables_come_from_the_recorded_steps(tmp_path: Path):
    state = State(tmp_path / "state.json")
    ab = {"line": "VERDICT: no worse", "map50": {"current": 0.70, "candidate": 0.69, "diff": -0.01, "ci": [-0.02, 0.0]},
          "per_class": {"smoke": {"current": 0.75, "candidate": 0.74, "diff": -0.01, "ci": [-0.03, 0.01]}}}  # fmt: skip
    state.data = {
        "0 dataset": {"wall_s": 9.0},
        "n50 1 seed": {"wall_s": 10.0},
        "n100 1 seed": {"wall_s": 20.0},
        "n100 5 teach": {"wall_s": 1800.0, "teach": {"total_cpu_s": 1890.0, "epochs": 41}},
        "n100 6 gate": {"wall_s": 100.0, "new_class": {"ap50": 0.61234, "gt": 97}, "passed": True, "ab": ab},
        "n100 7 serve": {"wall_s": 5.0, "model_id": "m", "version": "1", "classes": ["smoke", "fire"],
                         "has_new_class": True},
    }  # fmt: skip
    text = report_text(state)
    assert "| 1 seed | 10.0 s | 20.0 s |" in text
    assert "| 5 teach | - | 30.0 min |" in text
    assert "| **loop, steps 1-7** | **10.0 s** | **32.1 min** |" in text
    assert "| 100 | 0.612 | - | 97 | 31.5 | 41 | passed |" in text
    assert "| 50 |" not in text.split("New class")[1].split("###")[0]  # N = 50 has no gate yet
    assert "| smoke | 0.750 | 0.740 (-1.0 [-3.0, +1.0]) |" in text
    assert "| **mAP50 (gate)** | 0.700 | 0.690 (-1.0 [-2.0, +0.0]) |" in text
    assert "- N = 100: m 1, classes smoke, fire; the new class listed: yes" in text


def test_the_report_keeps_the_text_around_the_figures(tmp_path: Path):
    report = tmp_path / "r.md"
    write_report(report, "old\n")
    report.write_text("# Title\n\nprose\n" + report.read_text().split("\n", 2)[2] + "more prose\n")
    write_report(report, "| new |\n")
    text = report.read_text()
    assert text.startswith("# Title\n\nprose\n") and text.endswith("more prose\n")
    assert "| new |" in text and "old" not in text
