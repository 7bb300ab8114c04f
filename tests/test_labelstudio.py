"""Label Studio sync: generated config, percent <-> pixel conversion, and a round trip through a real
server (started once per session by ``labelstudio_fixture``): push photos with the tiny model's
predictions, annotate through the API as the UI does, pull, write a source and import it."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from _builders import fire_only_dataset, scene
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from labelstudio_fixture import LabelStudioServer, label_studio  # noqa: F401  (session fixture)

from inference_service.detections import Detections
from inference_service.runtime import Detector
from inference_service.taxonomy import Taxonomy
from training import labelstudio as ls
from training import labelstudio_cli, partial_labels
from training.importer import SourceSpec, import_source, oriented_size

# label-studio-sdk 2.1.2 still calls pydantic's parse_obj when it refreshes the access token
pytestmark = pytest.mark.filterwarnings("ignore:The `parse_obj` method is deprecated:DeprecationWarning")

PASSWORD = "hazard-Scan-2026!"
CLASSES = ["fire", "smoke", "no_helmet", "helmet"]  # the tiny model's three classes plus one it lacks

# --- pure ---------------------------------------------------------------------------------------------


def test_config_lists_every_detector_class_with_its_chinese_hint(taxonomy: Taxonomy) -> None:
    root = ET.fromstring(ls.labeling_config(taxonomy))
    image = root.find("Image")
    assert image is not None and image.get("name") == "image" and image.get("value") == "$image"
    rect = root.find("RectangleLabels")
    assert rect is not None and rect.get("name") == "label" and rect.get("toName") == "image"
    labels = rect.findall("Label")
    assert [lab.get("value") for lab in labels] == list(taxonomy.class_names)
    assert [lab.get("hint") for lab in labels] == [c.zh for c in taxonomy.detector_classes]
    colours = [str(lab.get("background")) for lab in labels]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)
    assert len(set(colours)) == len(colours)


def test_config_for_chosen_classes_keeps_their_order_and_rejects_unknown(taxonomy: Taxonomy) -> None:
    assert ls.config_labels(ls.labeling_config(taxonomy, ["smoke", "fire"])) == ["smoke", "fire"]
    with pytest.raises(ValueError, match="not_a_class"):
        ls.labeling_config(taxonomy, ["fire", "not_a_class"])


@pytest.mark.parametrize("width,height", [(640, 480), (333, 777), (4000, 3000)])
def test_percent_pixel_round_trip_is_exact(width: int, height: int) -> None:
    dets = Detections.from_rows([(0, 0, width, height, 1, 0.9), (10.5, 20.25, 110, 70, 0, 0.4)])
    results = ls.detections_to_results(dets, ["fire", "smoke"], width, height)
    assert results[0]["value"] | {"rectanglelabels": None} == {
        "x": 0.0,
        "y": 0.0,
        "width": 100.0,
        "height": 100.0,
        "rotation": 0,
        "rectanglelabels": None,
    }
    assert results[0]["value"]["rectanglelabels"] == ["smoke"] and results[1]["score"] == pytest.approx(0.4)
    task = {"id": 7, "file_upload": "0a1b2c3d-现场.jpg", "data": {"image": "/data/upload/1/x.jpg"}}
    task["annotations"] = [{"id": 1, "result": results, "was_cancelled": False}]
    (pulled,) = ls.parse_export([task], ["fire", "smoke"])
    assert pulled.name == "现场.jpg" and pulled.size == (width, height) and not pulled.issues
    assert np.allclose(pulled.labels.xyxy, dets.xyxy, atol=1e-3)
    assert pulled.labels.class_id.tolist() == [1, 0]


def test_export_parsing_reports_unknown_labels_and_leaves_out_skipped_tasks() -> None:
    results = ls.detections_to_results(Detections.from_rows([(1, 2, 30, 40, 0, 1.0)]), ["exit_door"], 100, 50)
    tasks: list[dict[str, Any]] = [
        {"id": 1, "data": {"image": "/data/upload/1/a%20b.jpg"}, "annotations": [{"id": 1, "result": results}]},
        {"id": 2, "data": {"image": "/x/c.jpg"}, "annotations": [{"id": 2, "result": [], "was_cancelled": True}]},
        {"id": 3, "data": {"image": "/x/d.jpg"}, "annotations": [{"id": 3, "result": []}]},
    ]
    unknown, empty = ls.parse_export(tasks, ["fire"])
    assert unknown.name == "a b.jpg" and len(unknown.labels) == 0
    assert [(i.code, i.action) for i in unknown.issues] == [("unknown_label", "dropped")]
    assert empty.task_id == 3 and empty.size is None and len(empty.labels) == 0


# --- against the real server ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token(label_studio: LabelStudioServer) -> str:  # noqa: F811
    return ls.get_token(label_studio.url, "annotator@example.com", PASSWORD)


@pytest.fixture(scope="module")
def client(label_studio: LabelStudioServer, token: str) -> LabelStudio:  # noqa: F811
    return ls.connect(label_studio.url, token)


def test_token_is_a_personal_access_token_the_sdk_refreshes(label_studio: LabelStudioServer) -> None:  # noqa: F811
    url, email = label_studio.url, "inspector@example.com"
    pat = ls.get_token(url, email, PASSWORD)  # signs up through the web form
    # a PAT is a refresh token: the server takes it neither as a bearer access token nor as a legacy token
    for scheme in ("Bearer", "Token"):
        assert httpx.get(f"{url}/api/current-user/whoami", headers={"Authorization": f"{scheme} {pat}"}).is_error
    assert ls.connect(url, pat).users.whoami().email == email  # the SDK exchanged it for an access token
    with pytest.raises(ls.LabelStudioError, match="already has a Personal Access Token"):
        ls.get_token(url, email, PASSWORD, sign_up=False)
    fresh = ls.get_token(url, email, PASSWORD, sign_up=False, revoke_existing=True)  # logs in, revokes, creates
    assert fresh != pat and ls.connect(url, fresh).users.whoami().email == email
    with pytest.raises(ApiError, match="401"):
        ls.connect(url, pat).users.whoami()
    with pytest.raises(ls.LabelStudioError, match="failed"):
        ls.get_token(url, email, "wrong-password", sign_up=False)


def _photos(folder: Path) -> list[Path]:
    """Three photos of different sizes, one non-square, with red (fire) and blue (no_helmet) patches."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = [
        ("site-1.jpg", 640, 480, [(0, 0, 160, 120, (255, 0, 0)), (480, 360, 640, 480, (0, 0, 255))]),
        ("现场-2.png", 320, 320, [(80, 80, 160, 160, (255, 0, 0))]),
        ("tall-3.jpg", 300, 700, []),
    ]
    paths = []
    for name, w, h, squares in specs:
        path = folder / name
        scene(w, h, squares).save(path, quality=95)
        paths.append(path)
    return paths


def _prediction(client: LabelStudio, task_id: int) -> tuple[int, list[dict[str, Any]]]:
    (prediction,) = client.predictions.list(task=task_id)
    assert prediction.id is not None
    return prediction.id, [dict(r, value=dict(r["value"])) for r in prediction.result]


def _to_pixels(results: list[dict[str, Any]], width: int, height: int) -> Detections:
    return Detections.from_rows(
        (
            r["value"]["x"] / 100 * width,
            r["value"]["y"] / 100 * height,
            (r["value"]["x"] + r["value"]["width"]) / 100 * width,
            (r["value"]["y"] + r["value"]["height"]) / 100 * height,
            CLASSES.index(r["value"]["rectanglelabels"][0]),
            1.0,
        )
        for r in results
    )


def _annotate(client: LabelStudio, task_id: int, width: int, height: int) -> Detections:
    """What an annotator does in the UI: accept the prediction, drag its first box a few percent, draw
    one more box, submit. Returns the submitted boxes in pixels (class ids into CLASSES)."""
    prediction_id, results = _prediction(client, task_id)
    if results:
        v = results[0]["value"]
        v["x"] += 3.25 if v["x"] + v["width"] + 3.25 <= 100 else -3.25
        v["y"] += 1.5 if v["y"] + v["height"] + 1.5 <= 100 else -1.5
    drawn = Detections.from_rows([(0.1 * width, 0.2 * height, 0.45 * width, 0.9 * height, CLASSES.index("helmet"), 1)])
    results += ls.detections_to_results(drawn, CLASSES, width, height, with_scores=False)
    for r in results:
        r.pop("score", None)
    client.annotations.create(id=task_id, result=results, lead_time=4.2, parent_prediction=prediction_id)
    return _to_pixels(results, width, height)


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_round_trip_returns_every_box_within_a_pixel(
    client: LabelStudio, detector: Detector, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    photos = _photos(tmp_path / "photos")
    project = ls.create_project(client, "round trip", taxonomy, CLASSES)
    predictions = [detector.detect(p.read_bytes()).detections for p in photos]
    assert [len(d) > 0 for d in predictions] == [True, True, False]
    task_ids = ls.push_tasks(client, project, photos, predictions, detector.card.classes, "tiny-rgb:test-1")

    submitted = {}
    for path, task_id, predicted in zip(photos, task_ids, predictions, strict=True):
        width, height = oriented_size(path)
        _, pre = _prediction(client, task_id)  # the pre-annotation, in percent of this photo
        names = [detector.card.classes[c] for c in predicted.class_id.tolist()]
        assert [r["value"]["rectanglelabels"][0] for r in pre] == names
        assert np.abs(_to_pixels(pre, width, height).xyxy - predicted.xyxy).max(initial=0) <= 1.0
        submitted[task_id] = (path, _annotate(client, task_id, width, height))

    pulled = ls.pull_annotations(client, project, CLASSES)
    assert sorted(p.task_id for p in pulled) == sorted(task_ids)
    for p in pulled:
        path, want = submitted[p.task_id]
        assert p.name == path.name and p.size == oriented_size(path) and not p.issues
        assert p.labels.class_id.tolist() == want.class_id.tolist()
        assert np.abs(p.labels.xyxy - want.xyxy).max() <= 1.0

    # ...and into the canonical dataset through the importer, like any other source
    spec = ls.write_source(client, pulled, CLASSES, tmp_path / "round1", "round1", "test", datasets_root=tmp_path)
    assert spec["root"] == "round1" and (tmp_path / "round1" / "source.yaml").is_file()
    imported = import_source(SourceSpec.from_dict(spec), tmp_path, CLASSES)
    assert not [i for i in imported.issues if i.action != "noted"]
    by_sha = {s.sha1: s for s in imported.samples}
    for path, want in submitted.values():
        sample = by_sha[_sha1(path)]  # the server returns the very bytes that were uploaded
        assert sample.labels.class_id.tolist() == want.class_id.tolist()
        assert np.abs(sample.labels.xyxy - want.xyxy).max() <= 1.0


def test_cli_pushes_with_the_model_and_pulls_a_source(
    label_studio: LabelStudioServer,  # noqa: F811
    client: LabelStudio,
    token: str,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _photos(tmp_path / "photos")
    parser = argparse.ArgumentParser()
    labelstudio_cli.add_arguments(parser)
    server = ["--url", label_studio.url, "--token", token]

    push = ["push", str(tmp_path / "photos"), "--title", "cli", "--model", str(tiny_model_dir), *server]
    assert labelstudio_cli.run(parser.parse_args(push)) == 0
    found = re.search(r"project (\d+): 3 tasks", capsys.readouterr().out)
    assert found is not None
    project = int(found.group(1))
    assert ls.project_labels(client, project) == ["fire", "smoke", "no_helmet"]  # the model's classes
    accepted = 0
    for prediction in client.predictions.list(project=project):
        assert prediction.task is not None and prediction.id is not None
        client.annotations.create(id=prediction.task, result=prediction.result, parent_prediction=prediction.id)
        accepted += len(prediction.result)

    pull = ["pull", str(project), "--out", str(tmp_path / "out"), *server]
    assert labelstudio_cli.run(parser.parse_args(pull)) == 0
    assert f"3 photos, {accepted} boxes, 0 issues" in capsys.readouterr().out
    spec = SourceSpec.from_dict(yaml.safe_load((tmp_path / "out" / "source.yaml").read_text(encoding="utf-8")))
    assert spec.name == f"labelstudio-p{project}" and len(import_source(spec, tmp_path, CLASSES).samples) == 3


def test_pseudo_labels_are_reviewed_in_label_studio_and_come_back_as_a_dataset(
    label_studio: LabelStudioServer,  # noqa: F811
    client: LabelStudio,
    token: str,
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = fire_only_dataset(tmp_path)  # fire labelled; an unlabelled smoke square in every fireonly photo
    parser = argparse.ArgumentParser()
    partial_labels.add_arguments(parser)
    server = ["--url", label_studio.url, "--token", token]
    push = ["--model", str(tiny_model_dir), "--data", str(built.root), "--push-review", "review r1", *server]
    assert partial_labels.run(parser.parse_args(push)) == 0
    found = re.search(r"project (\d+): (\d+) photos to review", capsys.readouterr().out)
    assert found is not None
    project, photos = int(found.group(1)), int(found.group(2))
    assert photos == 3 and ls.project_labels(client, project) == ["fire", "smoke"]  # the fireonly training photos

    # the reviewer: the first photo's smoke box is a false alarm (deleted), the rest are accepted as they are
    kept = 0
    for i, prediction in enumerate(sorted(client.predictions.list(project=project), key=lambda p: p.task or 0)):
        assert prediction.task is not None and prediction.id is not None
        labels = [r["value"]["rectanglelabels"][0] for r in prediction.result]
        assert labels == ["fire", "smoke"]  # own label, then the pseudo-label
        result = prediction.result[:1] if i == 0 else prediction.result
        client.annotations.create(id=prediction.task, result=result, parent_prediction=prediction.id)
        kept += len(result)

    pull = ["pull", str(project), "--out", str(tmp_path / "r1"), *server]
    ls_parser = argparse.ArgumentParser()
    labelstudio_cli.add_arguments(ls_parser)
    assert labelstudio_cli.run(ls_parser.parse_args(pull)) == 0
    reviewed = tmp_path / "r1" / "source.yaml"
    apply = ["--data", str(built.root), "--reviewed", str(reviewed), "--write", str(tmp_path / "d")]
    assert partial_labels.run(parser.parse_args(apply)) == 0
    card = json.loads((tmp_path / "d" / "dataset_card.json").read_text())
    assert card["derivation"].startswith("labels of 3 training photos replaced by their review (Label Studio ")
    assert f"3 boxes before, {kept} after" in card["derivation"] and kept == 5
    parent = json.loads((built.root / "dataset_card.json").read_text())
    assert card["boxes_per_class"]["train"]["smoke"] == parent["boxes_per_class"]["train"]["smoke"] + 2
    assert card["boxes_per_class"]["val"] == parent["boxes_per_class"]["val"]
