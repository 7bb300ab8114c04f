"""Partial labels: a source that labels only fire has an unlabelled green (smoke) square in its photos."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from inference_service.runtime import Detector
from inference_service.taxonomy import load_taxonomy
from tests._builders import fire_only_dataset, scene
from training.dataset import build_dataset, load_manifest
from training.importer import Sample, SourceSpec, import_all
from training.partial_labels import apply_review, audit, review_tasks, subset_dataset, write_pseudo_dataset


def test_audit_finds_and_pseudo_labels_unlabelled_classes(detector: Detector, tmp_path: Path):
    built = fire_only_dataset(tmp_path)
    # the tiny model knows fire, smoke, no_helmet; the dataset only fire and smoke
    assert built.classes == ["fire", "smoke"]
    det = Detector.load(_two_class_model(tmp_path))
    report, pseudo = audit(det, built.root, min_conf=0.5)
    assert report["boxes"] == {"fireonly": {"smoke": 4}}  # the smoke-only photo's own class is not foreign
    assert report["photos_with_foreign_class"] == {"fireonly": {"smoke": 4}}
    data_yaml = write_pseudo_dataset(built.root, pseudo, tmp_path / "pseudo", "tiny 0.1", 0.5)
    out = Path(yaml.safe_load(data_yaml.read_text())["path"])
    train_labels = sorted((out / "labels" / "train").glob("fireonly__*.txt"))
    val_labels = sorted((out / "labels" / "val").glob("fireonly__*.txt"))
    assert train_labels and val_labels
    assert all(len(p.read_text().splitlines()) == 2 for p in train_labels)  # fire + pseudo smoke
    assert all(len(p.read_text().splitlines()) == 1 for p in val_labels)  # val stays as humans drew it
    # the derived card: own version, parent named, pseudo boxes counted on train only, sources kept
    parent = json.loads((built.root / "dataset_card.json").read_text())
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["version"] != parent["version"] and card["derived_from"] == parent["version"]
    assert card["derivation"].startswith(f"{len(train_labels)} pseudo-labels on {len(train_labels)} training photos")
    assert card["boxes_per_class"]["train"]["smoke"] == parent["boxes_per_class"]["train"]["smoke"] + len(train_labels)
    assert card["boxes_per_class"]["val"] == parent["boxes_per_class"]["val"]
    assert card["sources"] == parent["sources"]
    # the manifest is complete, so the derived set can be audited again for a next round
    assert len(load_manifest(out)) == len(load_manifest(built.root))
    again = write_pseudo_dataset(built.root, pseudo, tmp_path / "again", "tiny 0.1", 0.5).parent
    assert (again / "dataset_card.json").read_text() == (out / "dataset_card.json").read_text()  # deterministic


def _two_class_model(tmp_path: Path) -> Path:
    """The tiny model: it knows no_helmet too, which the dataset lacks (ignored by the audit)."""
    from tests._builders import build_model_dir

    return build_model_dir(tmp_path / "model2", classes=["fire", "smoke", "no_helmet"])


def test_subset_keeps_split_and_classes(tmp_path: Path):
    root = tmp_path / "sets"
    specs = []
    for name, colour in (("a", (255, 0, 0)), ("b", (0, 255, 0))):
        (root / name / "labels").mkdir(parents=True)
        (root / name / "images").mkdir()
        for i in range(4):
            arr = np.array(scene(64, 64, [(0, 0, 16, 16, colour)]))
            arr[48:64] = np.random.default_rng(i + 10 * len(specs)).integers(60, 170, (16, 64, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / name / "images" / f"{i}.png")
            (root / name / "labels" / f"{i}.txt").write_text("0 0.125 0.125 0.25 0.25\n")
        specs.append(
            SourceSpec.from_dict(
                {
                    "name": name,
                    "root": name,
                    "images": ["images/*.png"],
                    "names": ["x"],
                    "class_map": {"x": "fire" if name == "a" else "smoke"},
                }
            )
        )
    built = build_dataset(import_all(specs, root, load_taxonomy()), tmp_path / "ds", val_fraction=0.25)
    data_yaml = subset_dataset(built.root, {"a"}, tmp_path / "only_a")
    out = Path(yaml.safe_load(data_yaml.read_text())["path"])
    assert yaml.safe_load(data_yaml.read_text())["names"] == {0: "fire", 1: "smoke"}
    names = sorted(p.name for p in (out / "images").glob("*/*.png"))
    assert len(names) == 4 and all(n.startswith("a__") for n in names)
    card = json.loads((out / "dataset_card.json").read_text())
    assert [src["name"] for src in card["sources"]] == ["a"] and card["derivation"] == "only the photos of a"
    assert sum(card["photos"].values()) == 4 and card["boxes_per_class"]["train"]["smoke"] == 0
    for split in ("train", "val"):
        assert {p.name for p in (out / "images" / split).iterdir()} == {
            p.name for p in (built.root / "images" / split).iterdir() if p.name.startswith("a__")
        }


def test_review_starts_from_own_labels_plus_scored_pseudo_labels_and_replaces_them(tmp_path: Path):
    built = fire_only_dataset(tmp_path)
    _, pseudo = audit(Detector.load(_two_class_model(tmp_path)), built.root, min_conf=0.5)
    tasks = review_tasks(built.root, pseudo)
    train = {s.image: s for s, split in load_manifest(built.root) if split == "train"}
    assert tasks and {image for image, _ in tasks} <= set(train)  # validation photos are never sent
    for _, start in tasks:
        assert start.class_id.tolist() == [0, 1]  # own fire label first, then the pseudo smoke
        assert start.score[0] == 1.0 and 0.5 <= start.score[1] < 1.0

    # the reviewer keeps the smoke box on the first photo and deletes it on the second
    (first, first_start), (second, second_start) = tasks[:2]
    reviewed = [
        Sample(first, "review", 64, 64, first_start, train[first].sha1),
        Sample(second, "review", 64, 64, second_start[[0]], train[second].sha1),
    ]
    out = Path(yaml.safe_load(apply_review(built.root, reviewed, tmp_path / "rev", "LS p1").read_text())["path"])
    labels = {s.image: s.labels for s, _ in load_manifest(out)}
    assert labels[first].class_id.tolist() == [0, 1] and labels[second].class_id.tolist() == [0]
    untouched = [s for s in train.values() if s.image not in (first, second)]
    assert all(labels[s.image].class_id.tolist() == s.labels.class_id.tolist() for s in untouched)
    card = json.loads((out / "dataset_card.json").read_text())
    parent = json.loads((built.root / "dataset_card.json").read_text())
    assert card["boxes_per_class"]["train"]["smoke"] == parent["boxes_per_class"]["train"]["smoke"] + 1
    assert card["derivation"].startswith("labels of 2 training photos replaced by their review (LS p1): 2 boxes before")

    stranger = Sample(first, "review", 64, 64, first_start, "0" * 40)
    with pytest.raises(ValueError, match="1 reviewed photos are not training photos"):
        apply_review(built.root, [stranger], tmp_path / "bad", "LS p1")


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import argparse

    from training import partial_labels

    built = fire_only_dataset(tmp_path)
    parser = argparse.ArgumentParser()
    partial_labels.add_arguments(parser)
    cases = [
        (["--data", str(built.root)], "give --model"),
        (["--data", str(built.root), "--reviewed", str(tmp_path / "r.yaml")], "needs --write"),
        (["--data", str(built.root), "--reviewed", str(tmp_path / "r.yaml"), "--write", str(tmp_path / "o")], "r.yaml"),
    ]
    for argv, message in cases:
        assert partial_labels.run(parser.parse_args(argv)) == 2
        assert message in capsys.readouterr().err
    down = ["--model", str(_two_class_model(tmp_path)), "--data", str(built.root), "--push-review", "r1"]
    assert partial_labels.run(parser.parse_args([*down, "--url", "http://127.0.0.1:9", "--token", "x"])) == 2
    assert "Label Studio at http://127.0.0.1:9" in capsys.readouterr().err
