"""Suspicions and doubtful frames in CCTV events, end to end with the tiny colour model: the stored event, the
``/v1/events`` JSON and its filters, the ``hazardscan scan`` summary and log, and the evidence photo all say
so, and neither kind is an alarm. The evidence renderer's dashed box is checked on pixels."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from _builders import build_model_dir, encode, scene
from _cctv import BLUE_BGR, RED_BGR, write_video
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from inference_service.cctv import cli
from inference_service.cctv.api import get_event_store, router
from inference_service.cctv.config import parse_cameras
from inference_service.cctv.scanner import StoreSink, StreamScanner
from inference_service.cctv.store import EventStore
from inference_service.evidence import Annotation, render_evidence
from inference_service.imaging import DecodedImage
from inference_service.runtime import Detector
from inference_service.taxonomy import Taxonomy

T0 = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
POLICY = {"persistence_s": 0.5, "close_after_s": 1.0, "cooldown_s": 0}
# red, green, blue: fire raises FIRE-001; a person in a declared work-at-height scene a suspected CONST-002
CLASSES = ["fire", "exit_sign", "person"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("sus") / "m", classes=CLASSES, class_thresholds={})


@pytest.fixture(scope="module")
def cameras(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("media")
    person = (80, 40, 160, 120, BLUE_BGR)  # one cell of the tiny model's grid
    fire = (80, 40, 160, 120, RED_BGR)
    flare = (0, 0, 320, 240, RED_BGR)  # the whole view one colour: a featureless, doubtful frame
    videos = {
        "scaffold": write_video(root / "scaffold.avi", seconds=4.0, shows=[(1.0, 3.0, person)]),
        "yard": write_video(root / "yard.avi", seconds=4.0, shows=[(1.0, 3.0, fire)]),
        "flare": write_video(root / "flare.avi", seconds=4.0, shows=[(1.0, 3.0, flare)]),
    }
    cams = [{"id": k, "url": str(v), "start_time": T0.isoformat()} for k, v in videos.items()]
    cams[0]["scene"] = "work_at_height"
    return {"defaults": {"events": POLICY}, "cameras": cams}


# camera -> (hazard, suspected, unconfirmed, alarm)
EXPECTED = {
    "scaffold": ("CONST-002", True, False, False),
    "yard": ("FIRE-001", False, False, True),
    "flare": ("FIRE-001", False, True, False),
}


def test_suspected_and_unconfirmed_events_are_stored_listed_and_drawn_as_such(
    model: Path, cameras: dict, taxonomy: Taxonomy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from inference_service.cctv import scanner as scanner_module

    drawn: dict[str, list[Annotation]] = {}
    real = scanner_module.render_evidence

    def keep(image, annotations, **kwargs):
        drawn.setdefault(annotations[0].label_en.split(" ")[0], []).extend(annotations)
        return real(image, annotations, **kwargs)

    monkeypatch.setattr(scanner_module, "render_evidence", keep)
    store = EventStore(tmp_path / "events.db")
    scanner = StreamScanner(parse_cameras(cameras), Detector.load(model, threads=1), taxonomy, StoreSink(store))
    report = scanner.run().as_dict()

    events = store.list_events()
    got = {e.camera_id: (e.hazard_id, e.suspected, e.unconfirmed, e.alarm) for e in events}
    assert got == EXPECTED and len(events) == 3 and all(e.severity == "critical" for e in events)
    assert (report["events_suspected"], report["events_unconfirmed"]) == (1, 1)

    # the evidence says it the way the photo API's does: 疑似 / 待确认 before the name, a dashed box
    labels = {a.label_zh or "": a.dashed for notes in drawn.values() for a in notes}
    assert {(label.split("高处")[0].split("现场")[0], dashed) for label, dashed in labels.items()} == {
        ("疑似", True),
        ("待确认 ", True),
        ("", False),
    }

    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[get_event_store] = lambda: store
    with TestClient(app) as client:
        listed = {e["camera_id"]: e for e in client.get("/v1/events").json()["events"]}
        assert {k: (e["hazard_id"], e["suspected"], e["unconfirmed"], e["alarm"]) for k, e in listed.items()} == {
            k: v for k, v in EXPECTED.items()
        }
        suspected = client.get("/v1/events", params={"suspected": "true"}).json()["events"]
        assert [e["camera_id"] for e in suspected] == ["scaffold"]
        others = client.get("/v1/events", params={"suspected": "false"}).json()["events"]
        assert sorted(e["camera_id"] for e in others) == ["flare", "yard"]
        doubtful = client.get("/v1/events", params={"unconfirmed": "true"}).json()["events"]
        assert [e["camera_id"] for e in doubtful] == ["flare"]
        assert client.get("/v1/events", params={"suspected": "maybe"}).status_code == 422
        one = client.get(f"/v1/events/{listed['scaffold']['id']}").json()
        assert (one["suspected"], one["alarm"], one["severity"]) == (True, False, "critical")


def test_cli_scan_counts_and_logs_suspicions_as_not_alarms(
    model: Path,
    cameras: dict,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    cams = tmp_path / "cams.yaml"
    cams.write_text(yaml.safe_dump(cameras), encoding="utf-8")
    db = tmp_path / "events.db"
    with caplog.at_level(logging.INFO, logger="inference_service.cctv.scanner"):
        code = cli.main(["--cameras", str(cams), "--model", str(model), "--db", str(db), "--threads", "1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["events_stored"], summary["events_suspected"], summary["events_unconfirmed"]) == (3, 1, 1)
    closed = [r.getMessage() for r in caplog.records if " closed: camera " in r.getMessage()]
    by_camera = {m.split("camera ")[1].split(" ")[0]: m for m in closed}
    assert by_camera["scaffold"].endswith("suspected: not an alarm, a person confirms it")
    assert by_camera["flare"].endswith("unconfirmed: not an alarm, a person confirms it")
    assert by_camera["yard"].endswith(" alarm")


def _edge(jpeg: bytes) -> np.ndarray:
    """The left edge of the box drawn at x 40..41 from y 60 to 180: True where it is (nearly) the colour."""
    image = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
    column = image[60:180, 40]
    return np.abs(column - (30, 144, 255)).max(axis=1) < 60


@pytest.mark.parametrize(("dashed", "low", "high"), [(False, 0.95, 1.0), (True, 0.4, 0.75)])
def test_a_doubtful_hazard_is_drawn_with_a_dashed_box(dashed: bool, low: float, high: float):
    grey = DecodedImage(np.full((240, 320, 3), 114, np.uint8), 320, 240)
    note = Annotation((40, 40, 200, 200), "low", None, (30, 144, 255), dashed=dashed)
    covered = _edge(render_evidence(grey, [note], font_path=None, quality=95)).mean()
    assert low <= covered <= high


def test_the_photo_api_labels_hazards_on_a_doubtful_photo_unconfirmed(model: Path, taxonomy: Taxonomy):
    from inference_service.evidence import annotations_for
    from inference_service.scan import Scanner, ScanOptions

    scanner = Scanner(Detector.load(model, threads=1), taxonomy)
    red = scanner.scan(encode(Image.new("RGB", (64, 64), (255, 0, 0)), "PNG"), ScanOptions(evidence=True))
    assert red.unconfirmed and red.findings and red.evidence_jpeg is not None
    notes = annotations_for(red.detect, red.findings, CLASSES, scanner.class_zh, unconfirmed=red.unconfirmed)
    assert all(n.dashed and n.label_en.startswith("unconfirmed ") for n in notes[: len(red.findings)])
    site = scanner.scan(encode(scene(256, 256, [(128, 64, 192, 128, (255, 0, 0))]), "PNG"))
    notes = annotations_for(site.detect, site.findings, CLASSES, scanner.class_zh, unconfirmed=site.unconfirmed)
    assert not site.unconfirmed and not any(n.dashed for n in notes)


def test_ray_workers_reports_add_up_their_suspected_and_unconfirmed_events():
    from inference_service.cctv.ray_engine import merge_reports

    one = {"frames": 10, "events_opened": 2, "events_closed": 2, "events_suspected": 1, "events_unconfirmed": 0}
    two = {"frames": 5, "events_opened": 3, "events_closed": 3, "events_suspected": 2, "events_unconfirmed": 1}
    merged = merge_reports([{**one, "cameras": {"a": {}}}, {**two, "cameras": {"b": {}}}], elapsed_s=1.0)
    assert (merged["events_closed"], merged["events_suspected"], merged["events_unconfirmed"]) == (5, 3, 1)


def test_cli_detect_marks_the_hazards_of_a_doubtful_photo(model: Path, tmp_path: Path, capsys):
    from inference_service.cli import main

    red = tmp_path / "red.png"
    red.write_bytes(encode(Image.new("RGB", (64, 64), (255, 0, 0)), "PNG"))
    site = tmp_path / "site.png"
    site.write_bytes(encode(scene(256, 256, [(128, 64, 192, 128, (255, 0, 0))]), "PNG"))
    assert main(["detect", str(red), "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "UNCONF  FIRE-001" in out and "HAZARD " not in out and "WARNING featureless" in out
    assert main(["detect", str(site), "--model", str(model)]) == 0
    assert "HAZARD  FIRE-001" in capsys.readouterr().out


def test_a_suspicion_confirmed_while_open_raises_its_alarm_at_once(taxonomy: Taxonomy, tmp_path: Path):
    from inference_service.cctv.scanner import ListSink

    # blue: a person (a suspected CONST-002 in a work-at-height scene); then green in the same place: a detected
    # worker at height without a harness (a confirmed CONST-002)
    model = build_model_dir(tmp_path / "m", classes=["fire", "worker_at_height", "person"], class_thresholds={})
    cell = (80, 40, 160, 120)
    video = write_video(
        tmp_path / "v.avi", seconds=4.0, shows=[(1.0, 2.0, (*cell, BLUE_BGR)), (2.0, 3.0, (*cell, (0, 255, 0)))]
    )
    cams = {"defaults": {"events": POLICY}, "cameras": [{"id": "c", "url": str(video), "scene": "work_at_height"}]}
    sink = ListSink()
    StreamScanner(parse_cameras(cams), Detector.load(model, threads=1), taxonomy, sink).run()
    got = [(kind, e.hazard_id, e.suspected, e.alarm) for kind, e in sink.items]
    assert got == [
        ("opened", "CONST-002", True, False),
        ("confirmed", "CONST-002", False, True),
        ("closed", "CONST-002", False, True),
    ]
    assert sink.items[0][1].evidence_jpeg != sink.items[1][1].evidence_jpeg  # redrawn solid, without 疑似
