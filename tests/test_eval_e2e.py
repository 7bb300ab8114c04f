"""End to end: ``hazardscan eval`` on the tiny colour-square model and synthetic photos with known answers.

The tiny model (tests/_builders.py) sees a 4×4 grid; on a 128×128 photo each cell is a 32×32 block and a
pure red / green / blue block gives fire / smoke / no_helmet at 0.999 with the block as its box. Grey
cells give every class 0.047 (below the card's thresholds: 0.25, no_helmet 0.5).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _builders import build_model_dir, encode, scene

from evaluation.cli import main
from evaluation.data import load_eval_set
from evaluation.predict import at_thresholds, predict
from inference_service.runtime import Detector

pytest.importorskip("pycocotools")
pytest.importorskip("matplotlib")

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
FIRE, SMOKE, NO_HELMET = 0, 1, 2


def block(col: int, row: int) -> tuple[int, int, int, int]:
    return col * 32, row * 32, col * 32 + 32, row * 32 + 32


# photo -> (coloured blocks drawn, labelled boxes)
PHOTOS = {
    "fire": ([(block(0, 0), RED)], [(block(0, 0), FIRE)]),
    "smoke": ([(block(1, 1), GREEN)], [(block(1, 1), SMOKE)]),
    "nohelmet": ([(block(2, 2), BLUE)], [(block(2, 2), NO_HELMET)]),
    "unlabelled-fire": ([(block(3, 0), RED)], []),  # a false positive
    "grey-fire": ([], [(block(1, 2), FIRE)]),  # a miss
    "empty": ([], []),
    "fire-and-smoke": ([(block(0, 3), RED), (block(3, 3), GREEN)], [(block(0, 3), FIRE), (block(3, 3), SMOKE)]),
    "blue-smoke": ([(block(2, 0), BLUE)], [(block(2, 0), SMOKE)]),  # predicted no_helmet: a confusion
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "hazardscan-synthetic"
    photos = root.parent / "photos"
    photos.mkdir()
    manifest = []
    for source in ("site-a", "site-b"):
        for stem, (blocks, labels) in PHOTOS.items():
            path = photos / f"{source}-{stem}.png"
            path.write_bytes(encode(scene(128, 128, [(*b, rgb) for b, rgb in blocks]), "PNG"))
            boxes = [[*map(float, b), c] for b, c in labels]
            manifest.append({"image": str(path), "source": source, "split": "val", "width": 128, "height": 128,
                             "boxes": boxes})  # fmt: skip
    root.mkdir()
    (root / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    classes = ["fire", "smoke", "no_helmet"]
    cmap = {c: c for c in classes}
    card = {"classes": classes, "sources": [{"name": s, "class_map": cmap} for s in ("site-a", "site-b")]}
    (root / "dataset_card.json").write_text(json.dumps(card))
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = build_model_dir(tmp_path_factory.mktemp("m") / "tiny")
    shutil.copyfile(folder / "model.onnx", folder / "model.int8.onnx")  # stands in for a quantised twin
    return folder


def test_floor_predictions_at_card_thresholds_are_what_the_service_returns(model: Path, dataset: Path):
    detector = Detector.load(model, threads=1)
    eval_set = load_eval_set(dataset, detector.card.classes)
    floor = predict(detector, eval_set.samples)
    thresholds = detector.card.thresholds()
    for sample, p in zip(eval_set.samples, floor, strict=True):
        served = detector.detect(sample.image.read_bytes()).detections
        assert at_thresholds(p.detections, thresholds).equals(served)
        assert set(p.timings_ms) >= {"decode", "preprocess", "infer", "postprocess", "total"}


def test_eval_writes_the_report_and_chooses_thresholds(model: Path, dataset: Path, tmp_path: Path):
    out = tmp_path / "report"
    card_before = json.loads((model / "card.json").read_text())
    code = main(["--model", str(model), "--data", str(dataset), "--out", str(out), "--thresholds", "max_f1",
                 "--write-card", "--contact", "4", "--min-boxes", "1"])  # fmt: skip
    assert code == 0
    doc = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()

    per_class = {c["class"]: c for c in doc["per_class"]}
    # at the card's thresholds: fire TP 2 FP 1 missed 1 per site; no_helmet also fires on the blue 'smoke'
    assert (per_class["fire"]["tp"], per_class["fire"]["fp"], per_class["fire"]["fn"]) == (4, 2, 2)
    assert (per_class["smoke"]["tp"], per_class["smoke"]["fp"], per_class["smoke"]["fn"]) == (4, 0, 2)
    assert (per_class["no_helmet"]["tp"], per_class["no_helmet"]["fp"], per_class["no_helmet"]["fn"]) == (2, 2, 0)
    # no_helmet at 0.999, in photo order: TP, FP, TP, FP -> precision 1 up to recall 1/2, then 2/3
    assert per_class["no_helmet"]["ap50"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-4)
    assert doc["overall"]["photos"] == 16 and doc["overall"]["gt_boxes"] == 14
    assert set(doc["per_source"]) == {"site-a", "site-b"}
    assert doc["per_source"]["site-a"]["map50"] == pytest.approx(doc["per_source"]["site-b"]["map50"])

    labels = doc["confusion_matrix"]["labels"]
    m = np.array(doc["confusion_matrix"]["matrix"])
    assert m[labels.index("smoke"), labels.index("no_helmet")] == 2  # the blue smoke, once per site
    assert m[labels.index("background"), labels.index("fire")] == 2

    fire_hazard = next(h for h in doc["hazards"]["per_hazard"].values() if h["name_en"].startswith("Open fire"))
    assert (fire_hazard["photos_with"], fire_hazard["flagged"]) == (6, 4)
    assert (fire_hazard["photos_without"], fire_hazard["false_alarms"]) == (10, 2)

    # operating points: written into the card with the goal, and the rest of the card kept
    card_after = json.loads((model / "card.json").read_text())
    assert card_after["operating_points"]["goal"] == "max_f1"
    assert card_after["metrics"] == card_before["metrics"]
    assert set(card_after["class_thresholds"]) == {"fire", "smoke", "no_helmet"}
    assert Detector.load(model, threads=1).card.class_thresholds == card_after["class_thresholds"]

    # speed: fp32 and the int8 twin side by side, each with its accuracy
    assert set(doc["speed"]["variants"]) == {"fp32", "int8"}
    assert doc["speed"]["variants"]["int8"]["map50"] == pytest.approx(doc["overall"]["map50"])
    assert doc["speed"]["variants"]["fp32"]["bare"]["n"] == 30

    # every figure the report links exists and is a PNG
    figures = [doc["figures"]["pr_overview"], doc["figures"]["confusion"], *doc["figures"]["pr"].values()]
    figures += [p for s in doc["figures"]["sheets"].values() for p in s.values()]
    assert "sheets/fire_fp.png" in figures and "sheets/fire_miss.png" in figures
    for rel in figures:
        assert (out / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert rel in md
    assert "## Hazards" in md and "## Speed" in md and "## Operating points" in md


def test_eval_gates_a_worse_candidate(model: Path, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # the same network with fire and smoke swapped in its card: red blocks are now called smoke
    swapped = build_model_dir(tmp_path / "swapped", classes=["smoke", "fire", "no_helmet"])
    out = tmp_path / "ab"
    code = main(["--model", str(swapped), "--data", str(dataset), "--baseline", str(model), "--out", str(out),
                 "--bootstrap", "200", "--no-int8"])  # fmt: skip
    assert code == 1
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("VERDICT"))
    assert line.startswith("VERDICT: candidate worse than current on mAP50 by")
    doc = json.loads((out / "report.json").read_text())
    assert doc["ab"]["verdict"] == "worse" and doc["ab"]["map50"]["ci"][1] < 0
    assert doc["ab"]["per_class"]["no_helmet"]["diff"] == pytest.approx(0.0)

    code = main(["--model", str(model), "--data", str(dataset), "--baseline", str(swapped), "--out", str(out),
                 "--bootstrap", "200", "--no-int8"])  # fmt: skip
    assert code == 0


def test_bad_input_exits_2(model: Path, dataset: Path, tmp_path: Path):
    assert main(["--model", str(tmp_path / "nope"), "--data", str(tmp_path)]) == 2
    assert main(["--model", str(model), "--data", str(tmp_path / "missing.json")]) == 2
    assert main(["--model", str(model), "--data", str(tmp_path), "--write-card"]) == 2
    assert main(["--model", str(model), "--data", str(dataset), "--baseline", str(tmp_path / "nope")]) == 2


def test_nms_iou_override_is_scored_and_reported_but_never_written(model: Path, dataset: Path, tmp_path: Path):
    card_before = (model / "card.json").read_text()
    out = tmp_path / "nms"
    args = ["--model", str(model), "--data", str(dataset), "--out", str(out), "--no-int8"]
    assert main([*args, "--nms-iou", "0.3"]) == 0
    assert json.loads((out / "report.json").read_text())["model"]["nms_iou"] == 0.3
    assert (model / "card.json").read_text() == card_before
    for bad in (["--nms-iou", "0"], ["--nms-iou", "0.4", "--thresholds", "max_f1", "--write-card"]):
        assert main([*args, *bad]) == 2
