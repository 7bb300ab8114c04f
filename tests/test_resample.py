"""Repeat-factor sampling: factors per class, deterministic copies, and the derived dataset on disk."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from inference_service.detections import Detections
from inference_service.taxonomy import load_taxonomy
from tests._builders import scene
from training.dataset import build_dataset, load_manifest
from training.importer import Sample, SourceSpec, import_all
from training.resample import class_repeat_factors, copies, resampled, write_resampled_dataset


def _sample(i: int, classes: list[int]) -> Sample:
    boxes = np.array([[0, 0, 8, 8]] * len(classes), np.float32).reshape(-1, 4)
    labels = Detections(boxes, np.array(classes, np.int64), np.ones(len(classes), np.float32))
    return Sample(Path(f"{i}.png"), "s", 64, 64, labels, f"{i:040x}")


@pytest.mark.parametrize(
    ("photos", "threshold", "expected"),
    [
        # class 0 in all 100 photos, class 1 in 1 of 100: sqrt(0.1 / 0.01) = 3.16; class 2 absent: 1
        ([[0]] * 99 + [[0, 1]], 0.1, [1.0, 0.1**0.5 / 0.1, 1.0]),
        # a class above the threshold is never repeated, however it compares with the others
        ([[0]] * 50 + [[1]] * 50, 0.1, [1.0, 1.0, 1.0]),
        # threshold 0: nothing is repeated
        ([[0]] * 99 + [[1]], 0.0, [1.0, 1.0, 1.0]),
        # a class counts once per photo, however many boxes it has there
        ([[0]] * 96 + [[1, 1, 1, 1]] * 4, 0.16, [1.0, 2.0, 1.0]),
    ],
)
def test_class_repeat_factors(photos: list[list[int]], threshold: float, expected: list[float]):
    samples = [_sample(i, c) for i, c in enumerate(photos)]
    np.testing.assert_allclose(class_repeat_factors(samples, 3, threshold), expected, rtol=1e-6)


def test_copies_round_stochastically_but_reproducibly():
    keys = [f"{i:040x}" for i in range(4000)]
    n = [copies(2.25, k) for k in keys]
    assert set(n) == {2, 3} and abs(np.mean(n) - 2.25) < 0.03  # expected value is the factor
    assert n == [copies(2.25, k) for k in keys]  # same photo, same count
    assert {copies(3.0, k) for k in keys[:50]} == {3} and {copies(1.0, k) for k in keys[:50]} == {1}


def test_resampled_repeats_rare_training_photos_only():
    samples = [(_sample(i, [0]), "train") for i in range(99)] + [(_sample(99, [1]), "train")]
    samples += [(_sample(100, [1]), "val"), (_sample(101, []), "train")]
    factors = class_repeat_factors([s for s, split in samples if split == "train"], 3, 0.1)
    out = resampled(samples, factors)
    count = Counter(s.sha1 for s, _ in out)
    assert count[f"{99:040x}"] in (3, 4)  # factor 3.16 (f = 1/101 of training photos: 3.18)
    assert count[f"{100:040x}"] == 1  # validation photo of the rare class: once
    assert count[f"{101:040x}"] == 1 and count[f"{0:040x}"] == 1  # negatives and common photos: once


def test_write_resampled_dataset(tmp_path: Path):
    root = tmp_path / "sets" / "s"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    for i in range(20):  # 18 fire photos, 2 smoke photos; distinct photos (noise band)
        colour = (0, 255, 0) if i < 2 else (255, 0, 0)
        arr = np.array(scene(64, 64, [(0, 0, 16, 16, colour)]))
        arr[48:64] = np.random.default_rng(i).integers(60, 170, (16, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "images" / f"{i}.png")
        (root / "labels" / f"{i}.txt").write_text(f"{0 if i < 2 else 1} 0.125 0.125 0.25 0.25\n")
    spec = SourceSpec.from_dict(
        {
            "name": "s",
            "root": "s",
            "images": ["images/*.png"],
            "names": ["sm", "f"],
            "class_map": {"sm": "smoke", "f": "fire"},
        }
    )
    built = build_dataset(import_all([spec], tmp_path / "sets", load_taxonomy()), tmp_path / "ds", val_fraction=0.2)
    data_yaml = write_resampled_dataset(built.root, tmp_path / "rfs", threshold=0.4)
    out = Path(yaml.safe_load(data_yaml.read_text())["path"])
    smoke = built.classes.index("smoke")
    train = [s for s, split in load_manifest(built.root) if split == "train"]
    factor = class_repeat_factors(train, len(built.classes), 0.4)[smoke]
    assert factor > 1.5  # smoke is in 1 or 2 of 16 training photos: sqrt(0.4 / (2 / 16)) = 1.8 at least
    smoke_train = [s for s in train if smoke in s.labels.class_id]
    expected = sum(copies(factor, s.sha1) for s in smoke_train)
    links = sorted(
        p.name for p in (out / "images" / "train").iterdir() if any(s.sha1[:8] in p.name for s in smoke_train)
    )
    assert len(links) == expected and len(set(links)) == expected  # one distinct link per copy
    assert len(list((out / "labels" / "train").iterdir())) == len(list((out / "images" / "train").iterdir()))
    assert {p.name for p in (out / "images" / "val").iterdir()} == {
        p.name for p in (built.root / "images" / "val").iterdir()
    }
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["derived_from"] == built.version and "repeat-factor sampling with threshold 0.4" in card["derivation"]
    assert card["photos"]["train"] == len(train) + expected - len(smoke_train)
