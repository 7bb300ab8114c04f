"""Alarms under photo degradations: the degradations, the tally, and the tool on the tiny colour model.

The tiny model (tests/_builders.py) raises fire on a pure red 32×32 block of a 128×128 photo. Under a 90 %
white veil red becomes (255, 230, 230), too pale to raise it; doubled exposure or a darker photo keep it red.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _builders import build_model_dir, encode, scene

from evaluation.robustness import DEGRADATIONS, main, tally

RED, GREEN = (255, 0, 0), (0, 255, 0)


@pytest.mark.parametrize(
    ("name", "pixel", "expected"),
    [
        ("as taken", (200, 100, 0), (200, 100, 0)),
        ("exposure x2.5", (200, 100, 0), (255, 250, 0)),  # clipped, not wrapped
        ("dark x0.3", (200, 100, 0), (60, 30, 0)),
        ("white veil 70%", (0, 100, 255), (178, 208, 255)),
        ("white veil 90%", (0, 0, 0), (230, 230, 230)),
    ],
)
def test_degradations(name: str, pixel: tuple[int, int, int], expected: tuple[int, int, int]):
    out = DEGRADATIONS[name](np.full((2, 2, 3), pixel, np.uint8))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert tuple(out[0, 0].tolist()) == expected


def test_tally_counts_only_classes_a_photo_is_scored_for():
    shown = [{0}, {0}, set(), set()]
    raised = [{0}, set(), {0, 1}, {1}]
    scored = [[0, 1], [0, 1], [0, 1], [0]]  # the last photo's source never labels class 1: its alarm is unscored
    as_taken = [{0}, set(), set(), set()]
    assert tally(shown, raised, scored, 2, as_taken) == {
        "shown": [2, 0],
        "kept": [1, 0],
        "not_shown": [2, 3],
        "false_alarms": [1, 1],
        "new_alarms": [1, 2],  # photo 3's class 0 and 1, photo 4's class 1 (unscored there, still new)
    }


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    photos = {"fire": [(0, 0, 32, 32, RED)], "smoke": [(32, 32, 64, 64, GREEN)], "empty": []}
    root = tmp_path / "hazardscan-synthetic"
    root.mkdir()
    manifest = []
    for stem, blocks in photos.items():
        path = tmp_path / f"{stem}.png"
        path.write_bytes(encode(scene(128, 128, blocks), "PNG"))
        boxes = [[*map(float, b[:4]), 0 if b[4] == RED else 1] for b in blocks]
        manifest.append({"image": str(path), "source": "s", "split": "val", "width": 128, "height": 128,
                         "boxes": boxes})  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    classes = ["fire", "smoke", "no_helmet"]
    card = {"classes": classes, "sources": [{"name": "s", "class_map": {c: c for c in classes}}]}
    (root / "dataset_card.json").write_text(json.dumps(card))
    return root


def test_robustness_tool(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    model = build_model_dir(tmp_path / "tiny")
    out = tmp_path / "robust.json"
    assert main(["--model", str(model), "--data", str(dataset), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["photos"] == 3 and report["unreadable"] == []
    fire, smoke = 0, 1
    for name, kept in [("as taken", 1), ("exposure x2.5", 1), ("dark x0.3", 1), ("white veil 90%", 0)]:
        t = report["degradations"][name]
        assert (t["shown"][fire], t["kept"][fire], t["not_shown"][fire]) == (1, kept, 2), name
        assert t["false_alarms"][fire] == 0 and t["kept"][smoke] == kept, name
        assert t["new_alarms"] == [0, 0, 0], name  # paler colours raise nothing the photo did not show
    table = capsys.readouterr().out
    assert "| fire | 1/1 · 0/2 |" in table and "white veil 90%" in table


def test_unreadable_photos_are_left_out_and_named(dataset: Path, tmp_path: Path):
    (tmp_path / "empty.png").write_bytes(b"not an image")
    out = tmp_path / "robust.json"
    assert main(["--model", str(build_model_dir(tmp_path / "tiny")), "--data", str(dataset), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["photos"] == 2 and report["unreadable"] == [str(tmp_path / "empty.png")]


def test_missing_dataset_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--model", str(build_model_dir(tmp_path / "tiny")), "--data", str(tmp_path / "nowhere")]) == 2
    assert "no such dataset" in capsys.readouterr().err
