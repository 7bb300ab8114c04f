"""The loop from the inspector app into training: decisions made through the app's HTTP API, exported with
``hazardscan feedback export``, read back by the training import as a source, and a training config that
uses the export builds a dataset whose federated masks follow each photo's decisions."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import app_fixtures
import numpy as np
import pytest
import yaml
from app_fixtures import FIRE_BOX, SMOKE_BOX, AppServer, fire_and_smoke_photo, fire_photo
from labelstudio_fixture import LabelStudioServer, label_studio  # noqa: F401  (session fixture)

from inference_service.cli import main
from inference_service.detections import Detections
from inference_service.taxonomy import Taxonomy
from training import labelstudio as ls
from training.dataset import load_manifest
from training.federated import class_masks
from training.feedback import FindingRow, photo_labels
from training.importer import import_all, load_source_specs
from training.train import TrainConfig, build_from_config

app_server = app_fixtures.app_server  # the fixture
# label-studio-sdk 2.1.2 still calls pydantic's parse_obj when it refreshes the access token
pytestmark = pytest.mark.filterwarnings("ignore:The `parse_obj` method is deprecated:DeprecationWarning")

ADJUSTED = [150.0, 70.0, 330.0, 250.0]  # the inspector's fire box on the fire-and-smoke photo
EXIT_BOX = [10.0, 300.0, 120.0, 470.0]  # an added 堵塞安全出口 (exit_obstruction: no shipped model has it)


def _upload(c, inspection: str, data: bytes, key: str) -> dict:
    r = c.post(f"/app/api/inspections/{inspection}/photos", files={"photo": ("p.jpg", data, "image/jpeg")},
               data={"idempotency_key": key})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def _decide(c, finding: dict, decision: str, **extra) -> None:
    r = c.post(f"/app/api/findings/{finding['id']}/decision", json={"decision": decision, **extra})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def decided(app_server: AppServer) -> dict[str, str]:
    """Four photos, decided through the API; returns photo SHA-256 by role."""
    insp, sup = app_server.client("inspector"), app_server.client("supervisor")
    first = insp.post("/app/api/inspections", json={"unit": {"name": "甲单位"}, "scene": "construction"}).json()
    second = sup.post("/app/api/inspections", json={"unit": {"name": "乙单位"}, "scene": "industry"}).json()
    both = _upload(insp, first["id"], fire_and_smoke_photo(), "f1")
    fire, smoke = sorted(both["findings"], key=lambda f: f["hazard_id"])
    _decide(insp, fire, "confirm", box=ADJUSTED)
    _decide(insp, smoke, "reject")
    added = insp.post(f"/app/api/photos/{both['id']}/findings", json={"hazard_id": "FIRE-006", "box": EXIT_BOX})
    assert added.status_code == 201, added.text
    confirmed = _upload(insp, first["id"], fire_photo(seed=1), "f2")
    _decide(insp, confirmed["findings"][0], "confirm")
    _upload(insp, first["id"], fire_photo(seed=2), "f3")  # left undecided
    rejected = _upload(sup, second["id"], fire_photo(seed=3), "f4")
    _decide(sup, rejected["findings"][0], "reject")
    return {"both": both["sha256"], "confirmed": confirmed["sha256"], "rejected": rejected["sha256"]}


def _export(server: AppServer, out: Path, root: Path, *extra: str) -> dict:
    argv = ["feedback", "export", "--out", str(out), "--data-dir", str(server.data_dir),
            "--database", server.database_url, "--datasets-root", str(root), *extra]  # fmt: skip
    assert main(argv) == 0
    return json.loads((out / "feedback_card.json").read_text())


def test_export_writes_labels_negatives_and_a_card(app_server: AppServer, decided: dict, tmp_path: Path):
    card = _export(app_server, tmp_path / "fb", tmp_path)
    assert card["photos"] == 3 and card["classes"] == ["fire", "smoke", "exit_obstruction"]
    assert card["per_class"] == {
        "fire": {"labels": 2, "negatives": 1, "photos_labelled": 3, "new_class": False},
        "smoke": {"labels": 0, "negatives": 1, "photos_labelled": 1, "new_class": False},
        "exit_obstruction": {"labels": 1, "negatives": 0, "photos_labelled": 1, "new_class": True},
    }
    assert card["decisions"] == {"added": 1, "adjusted": 1, "confirmed": 1, "rejected": 2}
    assert card["sources"] == {"feedback-exit_obstruction-fire-smoke": 1, "feedback-fire": 2}
    assert card["units"] == {"甲单位": 2, "乙单位": 1} and card["skipped_photos"] == {"not decided": 1}
    assert len(card["inspectors"]) == 2 and all(p.startswith("inspector-") for p in card["inspectors"])
    assert not {"insp_a", "sup_a", "张检查"} & set(json.dumps(card, ensure_ascii=False).split('"'))
    assert list(card["model_versions"].values()) == [3]
    assert card["date_range"]["first"] == card["date_range"]["last"]
    # the photo bytes, by content hash, and YOLO lines in the order of the card's classes
    folder = tmp_path / "fb" / "photos" / "feedback-exit_obstruction-fire-smoke"
    assert (folder / "images" / f"{decided['both']}.jpg").read_bytes() == fire_and_smoke_photo()
    lines = sorted((folder / "labels" / f"{decided['both']}.txt").read_text().splitlines())
    assert lines == ["0 0.375000 0.333333 0.281250 0.375000", "2 0.101562 0.802083 0.171875 0.354167"]
    rejected = (tmp_path / "fb" / "photos" / "feedback-fire" / "labels" / f"{decided['rejected']}.txt").read_text()
    assert rejected == ""  # fire labelled on the photo, no box: background
    negatives = [json.loads(line) for line in (tmp_path / "fb" / "negatives.jsonl").read_text().splitlines()]
    assert {n["sha256"]: n["negatives"] for n in negatives} == {
        decided["both"]: [["smoke", *SMOKE_BOX]],
        decided["rejected"]: [["fire", *FIRE_BOX]],
    }
    spec = yaml.safe_load((tmp_path / "fb" / "sources" / "feedback-fire.yaml").read_text())
    assert spec["class_map"] == {"fire": "fire"} and spec["root"] == "fb/photos/feedback-fire"


def test_the_same_decisions_export_to_the_same_version(app_server: AppServer, decided: dict, tmp_path: Path):
    a = _export(app_server, tmp_path / "a", tmp_path)
    b = _export(app_server, tmp_path / "b", tmp_path)
    assert a == b | {"version": a["version"]} and a["version"] == b["version"]
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    only = _export(app_server, tmp_path / "c", tmp_path, "--unit", "乙单位")
    assert only["photos"] == 1 and only["classes"] == ["fire"] and only["version"] != a["version"]
    again = _export(app_server, tmp_path / "a", tmp_path, "--unit", "乙单位")  # re-export replaces the folder
    assert again["version"] == only["version"]
    assert not (tmp_path / "a" / "photos" / "feedback-exit_obstruction-fire-smoke").exists()
    # --status decided: photos with any decision (the undecided photo has none)
    loose = _export(app_server, tmp_path / "d", tmp_path, "--status", "decided")
    assert loose["photos"] == 3 and loose["skipped_photos"] == {"no decision": 1}
    assert (
        _export(app_server, tmp_path / "e", tmp_path, "--since", "2001-01-01", "--until", "2001-12-31")["photos"] == 0
    )


def test_training_import_and_config_read_the_export(app_server: AppServer, decided: dict, tmp_path: Path,
                                                    taxonomy: Taxonomy):  # fmt: skip
    root = tmp_path / "datasets"
    root.mkdir()
    _export(app_server, tmp_path / "fb", root)
    specs = load_source_specs(tmp_path / "fb" / "sources")
    imported = import_all(specs, root, taxonomy)
    assert imported.classes == ["fire", "smoke", "exit_obstruction"]
    assert [(i.code, i.action) for i in imported.issues] == [("empty_label", "noted")]  # the rejected fire photo
    by_sha = {s.image.stem: s for s in imported.samples}
    both = by_sha[decided["both"]]
    assert [imported.classes[c] for c in both.labels.class_id.tolist()] == ["exit_obstruction", "fire"]
    np.testing.assert_allclose(both.labels.xyxy, [EXIT_BOX, ADJUSTED], atol=0.01)
    assert len(by_sha[decided["rejected"]].labels) == 0

    config = tmp_path / "feedback-round.yaml"
    config.write_text(yaml.safe_dump({
        "name": "feedback-round", "weights": "yolov8n.yaml", "sources": [str(tmp_path / "fb" / "sources")],
        "datasets_root": str(root), "val_fraction": 0.0, "federated_loss": True,
        "train": {"imgsz": 64, "epochs": 1, "mosaic": 0.0},
    }))  # fmt: skip
    data_yaml = build_from_config(TrainConfig.load(config), tmp_path / "built")
    assert {s.image.stem for s, _ in load_manifest(data_yaml.parent)} == set(decided.values())
    masks, classes = class_masks(data_yaml)
    by_photo = {name.split("__")[1]: dict(zip(classes, mask.tolist(), strict=True)) for name, mask in masks.items()}
    assert by_photo[decided["both"]] == {"fire": True, "smoke": True, "exit_obstruction": True}
    assert by_photo[decided["rejected"]] == {"fire": True, "smoke": False, "exit_obstruction": False}


@pytest.mark.parametrize(
    "statuses,labelled,skipped",
    [
        ((("FIRE-001", "confirmed"), ("FIRE-001", "pending")), (), ("fire",)),  # one fire undecided: unlabelled
        ((("FIRE-001", "rejected"), ("FIRE-002", "confirmed")), ("fire", "smoke"), ()),
        ((("NO-SUCH", "confirmed"),), (), ("hazard NO-SUCH",)),  # no class to label
    ],
)
def test_photo_labels_leave_undecided_classes_unlabelled(taxonomy: Taxonomy, statuses, labelled, skipped):
    rows = [FindingRow(str(i), h, None, (0, 0, 10, 10), "model", st, 0.9, False, "u") for i, (h, st) in
            enumerate(statuses)]  # fmt: skip
    teach = photo_labels(rows, taxonomy)
    assert teach.labelled == labelled and tuple(k for k, _ in teach.skipped) == skipped


# --- review in Label Studio (the real server of labelstudio_fixture) ------------------------------------------

LS_PASSWORD = "hazard-Scan-2026!"


def test_review_round_trip_through_label_studio(
    app_server: AppServer,
    decided: dict,
    label_studio: LabelStudioServer,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    token = ls.get_token(label_studio.url, "reviewer@example.com", LS_PASSWORD)
    client = ls.connect(label_studio.url, token)
    server = ["--url", label_studio.url, "--token", token]
    before = _export(app_server, tmp_path / "fb", tmp_path, "--push-review", "feedback r1", *server)
    project = json.loads(capsys.readouterr().out)["review_project"]
    assert ls.project_labels(client, project) == ["fire", "smoke", "exit_obstruction"]
    predictions = sorted(client.predictions.list(project=project), key=lambda p: p.task or 0)
    tasks = {p.task: client.tasks.get(id=p.task) for p in predictions}
    names = [str(tasks[p.task].data["image"]).rsplit("/", 1)[-1].split("-", 1)[1] for p in predictions]
    # most doubtful first: the two photos with a rejected box (by hash), then the plainly confirmed one
    assert names == [f"{sha}.jpg" for sha in sorted([decided["both"], decided["rejected"]])] + [
        f"{decided['confirmed']}.jpg"
    ]
    first_two = sorted([decided["both"], decided["rejected"]])
    expected = [0.0 if sha == decided["both"] else None for sha in first_two] + [1.0]  # no box: no score
    assert [p.score for p in predictions] == expected
    by_sha = {n.removesuffix(".jpg"): p for n, p in zip(names, predictions, strict=True)}
    drawn = [r["value"]["rectanglelabels"][0] for r in by_sha[decided["both"]].result]
    assert sorted(drawn) == ["exit_obstruction", "fire"]  # the rejected smoke box is not drawn

    # the reviewer: on the fire-and-smoke photo the added exit box goes; on the confirmed photo a smoke box
    # is added; the photo whose fire was rejected is not reviewed
    both = by_sha[decided["both"]]
    keep = [r for r in both.result if r["value"]["rectanglelabels"][0] == "fire"]
    client.annotations.create(id=both.task, result=keep, parent_prediction=both.id)
    confirmed = by_sha[decided["confirmed"]]
    smoke = Detections.from_rows([(*SMOKE_BOX, 1, 1.0)])
    extra = ls.detections_to_results(smoke, ["fire", "smoke"], 640, 480, with_scores=False)
    client.annotations.create(id=confirmed.task, result=[*confirmed.result, *extra], parent_prediction=confirmed.id)

    after = _export(app_server, tmp_path / "fb", tmp_path, "--reviewed", str(project), *server)
    assert after["review"] == {"origin": f"Label Studio {label_studio.url} project {project}", "photos": 2,
                               "boxes_before": 3, "boxes_after": 3}  # fmt: skip
    assert after["version"] != before["version"]
    assert after["sources"] == {"feedback-exit_obstruction-fire-smoke": 2, "feedback-fire": 1}
    assert after["per_class"]["smoke"] == {"labels": 1, "negatives": 1, "photos_labelled": 2, "new_class": False}
    assert after["per_class"]["exit_obstruction"]["labels"] == 0
    entries = {e["sha256"]: e for e in map(json.loads, (tmp_path / "fb" / "feedback.jsonl").read_text().splitlines())}
    got = sorted((c, *(round(v) for v in box)) for c, *box in entries[decided["confirmed"]]["labels"])
    assert got == [("fire", *map(round, FIRE_BOX)), ("smoke", *map(round, SMOKE_BOX))]
    # the review is applied the same way from `labelstudio pull`'s source.yaml
    again = _export(
        app_server, tmp_path / "fb2", tmp_path, "--reviewed", str(tmp_path / "fb" / "review" / "source.yaml")
    )
    assert again["version"] == after["version"]
    bad = main(["feedback", "export", "--out", str(tmp_path / "x"), "--data-dir", str(app_server.data_dir),
                "--database", app_server.database_url, "--reviewed", str(tmp_path / "nothing.yaml")])  # fmt: skip
    assert bad == 2 and "neither a project id nor a source.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_federated_training_run_learns_from_the_export(
    app_server: AppServer, decided: dict, tmp_path: Path, taxonomy: Taxonomy
):
    pytest.importorskip("ultralytics")
    from training.train import train

    _export(app_server, tmp_path / "fb", tmp_path)
    config = tmp_path / "feedback-round.yaml"
    config.write_text(yaml.safe_dump({
        "name": "feedback-tiny", "weights": "yolov8n.yaml", "sources": [str(tmp_path / "fb" / "sources")],
        "datasets_root": str(tmp_path), "val_fraction": 0.34, "federated_loss": True, "threads": 1,
        "train": {"imgsz": 64, "epochs": 1, "batch": 2, "workers": 0, "cache": False, "plots": False,
                  "mosaic": 0.0, "close_mosaic": 0},
    }))  # fmt: skip
    cfg = TrainConfig.load(config)
    data_yaml = build_from_config(cfg, tmp_path / "built")
    # the three photos differ by a pixel: one duplicate group, all on the training side; validate on them too
    data = yaml.safe_load(data_yaml.read_text())
    data_yaml.write_text(yaml.safe_dump({**data, "val": data["train"]}))
    run_dir = train(cfg, data_yaml, tmp_path / "runs", device="cpu")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["epochs_run"] == 1 and run["config"]["federated_loss"] is True
    card = run["dataset"]["card"]
    assert card["classes"] == ["fire", "smoke", "exit_obstruction"]
    assert {s["name"] for s in card["sources"]} == {"feedback-exit_obstruction-fire-smoke", "feedback-fire"}
    assert (run_dir / "weights" / "last.pt").is_file()
