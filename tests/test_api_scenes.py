"""Scenes over real HTTP: ``/v1/detect?scene=`` switches scene rules on, suspicions are marked and never alarms,
an unknown scene is a 422 naming the known ones, and ``/v1/model`` says what the model raises and how."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _builders import build_model_dir, encode, scene
from _live import LiveServer

from inference_service.api.settings import Settings

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
# the tiny model's red, green and blue classes, named after classes the scene rules use
CLASSES = ["person", "exit_sign", "ebike"]
PERSON = encode(scene(256, 256, [(64, 64, 128, 128, RED)]), "JPEG", quality=95)  # one grid cell
EBIKE_AT_EXIT = encode(scene(256, 256, [(0, 0, 64, 64, GREEN), (128, 128, 192, 192, BLUE)]), "JPEG", quality=95)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    model = build_model_dir(tmp_path_factory.mktemp("scenes") / "m", classes=CLASSES, class_thresholds={})
    with LiveServer(Settings(model_path=model, threads=1)) as c:
        yield c


def _hazards(client: httpx.Client, photo: bytes, params: dict[str, str]) -> list[tuple[str, bool, bool]]:
    r = client.post("/v1/detect", params=params, files={"photo": ("p.jpg", photo, "image/jpeg")})
    assert r.status_code == 200, r.text
    return [(h["id"], h["suspected"], h["alarm"]) for h in r.json()["hazards"]]


def test_no_scene_is_todays_behaviour_and_a_scene_switches_its_rules_on(client: httpx.Client):
    assert _hazards(client, PERSON, {}) == []
    assert _hazards(client, PERSON, {"scene": "work_at_height"}) == [("CONST-002", True, False)]
    assert _hazards(client, EBIKE_AT_EXIT, {}) == [("EBIKE-002", False, True)]
    assert _hazards(client, EBIKE_AT_EXIT, {"scene": "elevator"}) == [("EBIKE-001", False, True)]
    assert _hazards(client, EBIKE_AT_EXIT, {"scene": "corridor"}) == [
        ("FIRE-006", True, False),
        ("EBIKE-002", False, True),
    ]


def test_an_unknown_scene_is_a_422_naming_the_known_ones(client: httpx.Client):
    r = client.post("/v1/detect", params={"scene": "rooftop"}, files={"photo": ("p.jpg", PERSON, "image/jpeg")})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_scene" and "rooftop" in error["message"] and "work_at_height" in error["message"]


def test_model_lists_detections_suspicions_scenes_and_what_it_cannot_raise(client: httpx.Client):
    hazards = client.get("/v1/model").json()["hazards"]
    assert "EBIKE-002" in hazards["detections"]
    assert {"CONST-002", "FIRE-006"} <= set(hazards["suspicions"])
    assert hazards["need_scene"]["CONST-002"] == ["work_at_height"] and hazards["need_scene"]["EBIKE-001"] == [
        "elevator"
    ]
    assert hazards["cannot_raise"]["FIRE-001"] == ["fire"]
    scenes = {s["id"] for s in client.get("/v1/hazards").json()["scenes"]}
    assert {"work_at_height", "elevator", "corridor"} <= scenes


def test_cli_detect_takes_a_scene_and_marks_suspicions(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from inference_service.cli import main

    model = build_model_dir(tmp_path / "m", classes=CLASSES, class_thresholds={})
    photo = tmp_path / "person.jpg"
    photo.write_bytes(PERSON)
    assert main(["detect", str(photo), "--model", str(model)]) == 0
    assert "CONST-002" not in capsys.readouterr().out
    assert main(["detect", str(photo), "--model", str(model), "--scene", "work_at_height"]) == 0
    assert "SUSPECT CONST-002" in capsys.readouterr().out
    assert main(["detect", str(photo), "--model", str(model), "--scene", "rooftop"]) == 2
    assert "unknown scene 'rooftop'" in capsys.readouterr().err


def test_scene_rule_contact_sheets_count_raises_with_and_without_the_scene(tmp_path: Path):
    from evaluation.scene_rules import scan_photos, spread, write_sheets
    from inference_service.runtime import Detector
    from inference_service.scan import Scanner
    from inference_service.taxonomy import load_taxonomy

    assert spread(list(range(10)), 4) == [0, 2, 5, 7] and spread([1, 2], 4) == [1, 2]
    detector = Detector.load(build_model_dir(tmp_path / "m", classes=CLASSES, class_thresholds={}))
    scanner = Scanner(detector, load_taxonomy())
    photos = []
    for i, photo in enumerate([PERSON, EBIKE_AT_EXIT]):
        photos.append(tmp_path / f"{i}.jpg")
        photos[-1].write_bytes(photo)
    rows = scan_photos(scanner, photos, "CONST-002", "work_at_height")
    assert [len(f) for _, f, _ in rows] == [1, 0] and rows[0][1][0].suspected
    assert [len(f) for _, f, _ in scan_photos(scanner, photos, "CONST-002", None)] == [0, 0]
    (sheet,) = write_sheets(rows, CLASSES, {"person", "safety_harness"}, tmp_path)
    assert sheet.suffix == ".png" and sheet.stat().st_size > 1000


def test_evidence_labels_a_suspicion_as_such(tmp_path: Path):
    from inference_service.evidence import annotations_for
    from inference_service.runtime import Detector
    from inference_service.scan import Scanner, ScanOptions
    from inference_service.taxonomy import load_taxonomy

    model = build_model_dir(tmp_path / "m", classes=CLASSES, class_thresholds={})
    scanner = Scanner(Detector.load(model), load_taxonomy())
    scan = scanner.scan(PERSON, ScanOptions(scene="work_at_height", evidence=True))
    (note,) = annotations_for(scan.detect, scan.findings, CLASSES, scanner.class_zh)
    assert note.label_en.startswith("suspected Work at height") and (note.label_zh or "").startswith("疑似高处作业")
    assert scan.evidence_jpeg is not None
