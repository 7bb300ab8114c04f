"""The held-out set shared by dataset versions: which photos it keeps, and the derived dataset on disk."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.data import load_dataset_folder
from inference_service.cli import main
from inference_service.detections import Detections
from inference_service.taxonomy import load_taxonomy
from tests._builders import scene
from training.dataset import BuiltDataset, build_dataset, load_manifest, write_derived_dataset
from training.heldout import held_out
from training.importer import Sample, SourceSpec, import_all


def _sample(name: str, source: str = "a") -> Sample:
    labels = Detections(np.array([[0, 0, 8, 8]], np.float32), np.array([0]), np.ones(1, np.float32))
    return Sample(Path(f"{name}.png"), source, 64, 64, labels, name.ljust(40, "0"))


# photo -> hash; "q" is 1 bit from "p", "r" 3 bits from "p"; "s" and "t" are 4 and more bits from every other
HASHES = {"p": 0b0000, "q": 0b0001, "r": 0b0111, "s": 0b1111 << 40, "t": 0b11111 << 50}


@pytest.mark.parametrize(
    ("versions", "bits", "kept", "not_val", "near"),
    [
        # val in both, no training neighbour: kept
        ([{"p": "val", "s": "train"}, {"p": "val", "s": "train"}], 2, ["p"], 0, 0),
        # the other version trains on it: dropped, whatever its hash
        ([{"p": "val", "s": "val"}, {"p": "val", "s": "train"}], 2, ["p"], 1, 0),
        # a training photo of the same source within the bits, in the second version only: dropped
        ([{"p": "val", "s": "train"}, {"p": "val", "q": "train"}], 2, [], 0, 1),
        # the same neighbour 3 bits away is far enough at 2 bits, near at 3
        ([{"p": "val"}, {"p": "val", "r": "train"}], 2, ["p"], 0, 0),
        ([{"p": "val"}, {"p": "val", "r": "train"}], 3, [], 0, 1),
        # one version alone: its val photos without a near training photo
        ([{"p": "val", "t": "val", "q": "train"}], 2, ["t"], 0, 1),
    ],
)
def test_held_out(versions: list[dict[str, str]], bits: int, kept: list[str], not_val: int, near: int):
    samples = [[(_sample(n), split) for n, split in v.items()] for v in versions]
    result = held_out(samples, lambda s: HASHES[s.image.stem], bits)
    assert [s.image.stem for s in result.samples] == kept
    assert (result.not_val_everywhere, result.near_training) == (not_val, near)


def test_a_near_photo_of_another_source_does_not_count():
    versions = [[(_sample("p", "a"), "val"), (_sample("q", "b"), "train")]]
    assert [s.image.stem for s in held_out(versions, lambda s: HASHES[s.image.stem], 2).samples] == ["p"]


def _two_versions(tmp_path: Path) -> tuple[BuiltDataset, Path]:
    """A built dataset of 16 photos (half of them validation photos) and a later version of it that trains on
    two of those validation photos."""
    root = tmp_path / "sets" / "s"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    for i in range(16):
        arr = np.array(scene(64, 64, [(0, 0, 16, 16, (255, 0, 0))]))
        arr[16:64] = np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)  # distinct photos
        Image.fromarray(arr).save(root / "images" / f"{i}.png")
        (root / "labels" / f"{i}.txt").write_text("0 0.125 0.125 0.25 0.25\n")
    spec = SourceSpec.from_dict(
        {"name": "s", "root": "s", "images": ["images/*.png"], "names": ["f"], "class_map": {"f": "fire"}}
    )
    v1 = build_dataset(import_all([spec], tmp_path / "sets", load_taxonomy()), tmp_path / "v1", val_fraction=0.5)
    samples = load_manifest(v1.root)
    moved = sorted(s.sha1 for s, split in samples if split == "val")[:2]
    v2 = tmp_path / "v2"
    write_derived_dataset(v1.root, v2, [(s, "train" if s.sha1 in moved else split) for s, split in samples], "moved")
    return v1, v2


def test_heldout_cli_writes_a_dataset_eval_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    v1, v2 = _two_versions(tmp_path)
    split1 = {s.sha1: split for s, split in load_manifest(v1.root)}
    split2 = {s.sha1: split for s, split in load_manifest(v2)}
    both = {sha for sha, split in split1.items() if split == "val" and split2[sha] == "val"}
    assert 0 < len(both) < sum(split == "val" for split in split1.values())  # the versions differ

    out = tmp_path / "heldout"
    assert main(["heldout", "--data", str(v1.root), "--data", str(v2), "--bits", "0", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "data.yaml")
    kept = load_manifest(out)
    assert {s.sha1 for s, _ in kept} == both and {split for _, split in kept} == {"val"}
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["derived_from"] == v1.version and "within 0 bits of dhash" in card["derivation"]
    assert card["sources"][0]["name"] == "s"  # licences and origins travel with it
    evalset = load_dataset_folder(out, v1.classes)
    assert len(evalset.samples) == len(both)

    # with every photo "near" every other (64 bits), nothing is held out: a clear error, nothing written
    capsys.readouterr()
    again = tmp_path / "none"
    assert main(["heldout", "--data", str(v1.root), "--bits", "64", "--out", str(again)]) == 2
    assert "no photo is held out" in capsys.readouterr().err and not again.exists()


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda v1, tmp: ["--data", str(v1.root), "--data", str(tmp / "nowhere")], "not a built dataset"),
        (lambda v1, tmp: ["--data", str(v1.root), "--bits", "65"], "--bits must lie within [0, 64]"),
        (lambda v1, tmp: ["--data", str(v1.root), "--data", str(tmp / "other")], "different class lists"),
    ],
)
def test_heldout_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], make_args, message: str):
    v1, _ = _two_versions(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.jsonl").write_text((v1.root / "manifest.jsonl").read_text())
    card = json.loads((v1.root / "dataset_card.json").read_text())
    (other / "dataset_card.json").write_text(json.dumps({**card, "classes": [*card["classes"], "extra"]}))
    assert main(["heldout", *make_args(v1, tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
