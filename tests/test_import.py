"""Import, split and dataset writing on small sets the test writes itself (no ../shared needed)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from inference_service.taxonomy import load_taxonomy
from training.dataset import build_dataset
from training.importer import SourceSpec, import_all, oriented_size
from training.split import NEAR_DUPLICATE_HASHES, dhash, duplicate_groups, phash

TAX = load_taxonomy()


def photo(path: Path, w: int, h: int, seed: int, exif_orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)).resize((w, h))
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    img.save(path, exif=exif.tobytes()) if path.suffix == ".jpg" else img.save(path)
    return path


@pytest.fixture
def sets(tmp_path: Path) -> Path:
    root = tmp_path / "sets"
    y = root / "yoloset"
    (y / "labels" / "train").mkdir(parents=True)
    (y / "data.yaml").write_text("path: C:/Users/someone/dataset\nnames: {0: Fire, 1: default, 2: smoke}\n")
    for i in range(6):
        photo(y / "images" / "train" / f"p{i}.jpg", 200, 100, seed=i)
    labels = {
        "p0": "0 0.5 0.5 0.2 0.2\n",  # clean box
        "p1": "2 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n0 0.5 0.5 0.2 0.2\n",  # polygon + box mixed
        "p2": "1 0.5 0.5 1.0 1.0\n0 0.95 0.5 0.2 0.2\n",  # pseudo whole-frame class + box past the edge
        "p3": "0 1.2 0.5 0.1 0.1\n5 0.5 0.5 0.1 0.1\n",  # box fully outside + unknown class id
        "p4": "",  # empty: negative
        # p5: no label file at all
    }
    for stem, text in labels.items():
        (y / "labels" / "train" / f"{stem}.txt").write_text(text)
    v = root / "vocset"
    (v / "ann").mkdir(parents=True)
    photo(v / "img" / "h0.jpg", 100, 80, seed=10, exif_orientation=6)  # stored 100x80, shown 80x100
    (v / "ann" / "h0.xml").write_text(
        "<annotation><object><name>No Safety Helmet</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>40</xmax><ymax>50</ymax></bndbox></object><object><name>Hat</name><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>"
    )
    # an exact duplicate of a yolo photo inside the voc set
    (v / "img" / "dup.jpg").write_bytes((y / "images" / "train" / "p0.jpg").read_bytes())
    (v / "ann" / "dup.xml").write_text("<annotation></annotation>")
    return root


def specs() -> list[SourceSpec]:
    return [
        SourceSpec.from_dict(
            {
                "name": "yoloset",
                "root": "yoloset",
                "format": "yolo",
                "licence": "CC BY 4.0",
                "images": ["images/*/*.jpg"],
                "names_from": "data.yaml",
                "missing_label": "negative",
                "class_map": {"Fire": "fire", "smoke": "smoke", "default": None},
                "drop_reasons": {"default": "whole-frame pseudo box"},
            }
        ),
        SourceSpec.from_dict(
            {
                "name": "vocset",
                "root": "vocset",
                "format": "voc",
                "images": ["img/*.jpg"],
                "labels": {"replace": ["/img/", "/ann/"], "suffix": ".xml"},
                "class_map": {"No Safety Helmet": "no_helmet"},
            }
        ),
    ]


def test_import_reports_every_quirk(sets: Path):
    result = import_all(specs(), sets, TAX)
    assert result.classes == ["no_helmet", "fire", "smoke"]  # taxonomy order, only what the sources teach
    by_image = {s.image.name: s for s in result.samples}
    assert set(by_image) == {"p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg", "p4.jpg", "p5.jpg", "h0.jpg", "dup.jpg"}
    codes = Counter((i.image.split("/")[-1], i.code, i.action) for i in result.issues)
    assert codes[("data.yaml", "foreign_path", "changed")] == 1
    assert codes[("p1.jpg", "polygon_to_box", "changed")] == 1
    assert codes[("p1.jpg", "mixed_lines", "noted")] == 1
    assert codes[("p2.jpg", "unmapped_class", "dropped")] == 1
    assert codes[("p2.jpg", "clipped", "changed")] == 1
    assert codes[("p3.jpg", "zero_area", "dropped")] == 1
    assert codes[("p3.jpg", "unknown_class", "dropped")] == 1
    assert codes[("p4.jpg", "empty_label", "noted")] == 1
    assert codes[("p5.jpg", "unlabelled_negative", "noted")] == 1
    assert codes[("h0.jpg", "unknown_class", "dropped")] == 1  # "Hat" has no mapping
    assert codes[("dup.jpg", "exact_duplicate", "noted")] == 1
    # boxes in pixels, clipped to the photo
    np.testing.assert_allclose(by_image["p0.jpg"].labels.xyxy, [[80, 40, 120, 60]])
    np.testing.assert_allclose(by_image["p2.jpg"].labels.xyxy, [[170, 40, 200, 60]])
    assert by_image["p1.jpg"].labels.class_id.tolist() == [2, 1]
    # EXIF orientation 6: the photo is 80 wide and 100 tall as a person sees it
    h0 = by_image["h0.jpg"]
    assert (h0.width, h0.height) == (80, 100)
    np.testing.assert_allclose(h0.labels.xyxy, [[0, 0, 40, 50]])


def test_unknown_target_class_is_an_error(sets: Path):
    bad = SourceSpec.from_dict(
        {
            "name": "x",
            "root": "yoloset",
            "images": ["images/*/*.jpg"],
            "names_from": "data.yaml",
            "class_map": {"Fire": "flames"},
        }
    )
    with pytest.raises(ValueError, match="flames"):
        import_all([bad], sets, TAX)


def test_dataset_is_deterministic_and_keeps_duplicates_together(sets: Path, tmp_path: Path):
    result = import_all(specs(), sets, TAX)
    a = build_dataset(result, tmp_path / "a", val_fraction=0.5)
    b = build_dataset(import_all(specs(), sets, TAX), tmp_path / "b", val_fraction=0.5)
    assert a.version == b.version
    data = yaml.safe_load(a.data_yaml.read_text())
    assert data["names"] == {0: "no_helmet", 1: "fire", 2: "smoke"}
    root = Path(data["path"])
    train = sorted(p.name for p in (root / "images" / "train").iterdir())
    val = sorted(p.name for p in (root / "images" / "val").iterdir())
    assert len(train) + len(val) == 8 and val
    # exact duplicates never straddle the split
    side = {n.rsplit("__", 1)[0]: "train" for n in train} | {n.rsplit("__", 1)[0]: "val" for n in val}
    assert side["yoloset__p0"] == side["vocset__dup"]
    # labels are normalised YOLO lines Ultralytics reads
    (label,) = (root / "labels" / side["yoloset__p0"]).glob("yoloset__p0__*.txt")
    assert label.read_text().split() == ["1", "0.500000", "0.500000", "0.200000", "0.200000"]
    # links point at the originals, nothing is copied
    (link,) = (root / "images" / side["yoloset__p0"]).glob("yoloset__p0__*.jpg")
    assert link.is_symlink()


def test_same_name_in_two_folders_keeps_both_photos(tmp_path: Path):
    root = tmp_path / "sets" / "rf"
    for i, split in enumerate(("train", "valid")):
        photo(root / split / "images" / "x.jpg", 64, 48, seed=i)
        (root / split / "labels").mkdir(parents=True)
        (root / split / "labels" / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    spec = SourceSpec.from_dict(
        {"name": "rf", "root": "rf", "images": ["*/images/*.jpg"], "names": ["Fire"], "class_map": {"Fire": "fire"}}
    )
    built = build_dataset(import_all([spec], tmp_path / "sets", TAX), tmp_path / "out", val_fraction=0.5)
    assert len(list((built.root / "images").glob("*/*.jpg"))) == 2
    assert len(list((built.root / "labels").glob("*/*.txt"))) == 2


def test_rebuild_leaves_one_link_per_photo(tmp_path: Path):
    """Byte-identical copies under one name both land; a rebuild over an older build (other link names, an
    Ultralytics label cache) leaves exactly the photos of the manifest, so none is trained twice."""
    root = tmp_path / "sets" / "rf"
    for split in ("train", "valid"):
        photo(root / split / "images" / "x.jpg", 64, 48, seed=0)  # same bytes twice
        (root / split / "labels").mkdir(parents=True)
        (root / split / "labels" / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    photo(root / "train" / "images" / "y.jpg", 64, 48, seed=1)
    (root / "train" / "labels" / "y.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    spec = SourceSpec.from_dict(
        {"name": "rf", "root": "rf", "images": ["*/images/*.jpg"], "names": ["Fire"], "class_map": {"Fire": "fire"}}
    )
    built = build_dataset(import_all([spec], tmp_path / "sets", TAX), tmp_path / "out", val_fraction=0.5)
    first = sorted(p.relative_to(built.root) for p in (built.root / "images").glob("*/*"))
    assert len(first) == 3  # x twice (one numbered link), y once
    for side in ("train", "val"):  # what an older build with another naming scheme left behind
        (built.root / "images" / side / "rf__x.jpg").symlink_to(root / "train" / "images" / "x.jpg")
        (built.root / "labels" / side / "rf__x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (built.root / "labels" / "train.cache").write_bytes(b"stale")
    again = build_dataset(import_all([spec], tmp_path / "sets", TAX), tmp_path / "out", val_fraction=0.5)
    assert again.root == built.root
    assert sorted(p.relative_to(again.root) for p in (again.root / "images").glob("*/*")) == first
    assert len(list((again.root / "labels").glob("*/*.txt"))) == 3
    assert not (again.root / "labels" / "train.cache").exists()
    manifest = (again.root / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 3


def test_near_duplicates_group(tmp_path: Path):
    a = photo(tmp_path / "a.jpg", 320, 240, seed=1)
    Image.open(a).resize((160, 120)).save(tmp_path / "a_small.jpg", quality=60)  # rescaled, recompressed
    c = photo(tmp_path / "c.jpg", 320, 240, seed=2)
    hashes = [dhash(p) for p in (a, tmp_path / "a_small.jpg", c)]
    groups = duplicate_groups(["1", "2", "3"], hashes)
    assert groups[0] == groups[1] != groups[2]


def test_phash_groups_noisy_shifted_copies_that_dhash_misses(tmp_path: Path):
    """An augmented copy (5 % speckle noise, brighter, shifted 4 px: a Roboflow copy or the next CCTV frame)
    is beyond dHash's 4 bits but within pHash's 10; an unrelated photo stays far from both."""
    rng = np.random.default_rng(1)
    a = np.array(
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize((320, 240), Image.Resampling.BICUBIC)
    )
    b = a.astype(np.int16)
    speckle = rng.random(a.shape[:2]) < 0.05
    b[speckle] = rng.choice([0, 255], size=(int(speckle.sum()), 1))
    b = np.roll(np.clip(b * 1.1 + 8, 0, 255).astype(np.uint8), 4, axis=1)
    Image.fromarray(a).save(tmp_path / "a.jpg")
    Image.fromarray(b).save(tmp_path / "b.jpg")
    c = photo(tmp_path / "c.jpg", 320, 240, seed=2)
    paths = (tmp_path / "a.jpg", tmp_path / "b.jpg", c)
    dhash_groups = duplicate_groups(["1", "2", "3"], [dhash(p) for p in paths], NEAR_DUPLICATE_HASHES["dhash"][1])
    phash_groups = duplicate_groups(["1", "2", "3"], [phash(p) for p in paths], NEAR_DUPLICATE_HASHES["phash"][1])
    assert dhash_groups[0] != dhash_groups[1]
    assert phash_groups[0] == phash_groups[1] != phash_groups[2]


def test_config_chooses_the_near_duplicate_hash(tmp_path: Path):
    from training.train import TrainConfig

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\nweights: yolov8n.yaml\nnear_duplicates: phash\n")
    assert TrainConfig.load(cfg).near_duplicates == "phash"
    cfg.write_text("name: x\nweights: yolov8n.yaml\n")
    assert TrainConfig.load(cfg).near_duplicates == "dhash"  # what every dataset version so far was built with
    cfg.write_text("name: x\nweights: yolov8n.yaml\nnear_duplicates: md5\n")
    with pytest.raises(ValueError, match="near_duplicates must be one of"):
        TrainConfig.load(cfg)


def test_oriented_size_reads_exif(tmp_path: Path):
    assert oriented_size(photo(tmp_path / "r.jpg", 64, 32, seed=0, exif_orientation=8)) == (32, 64)
    assert oriented_size(photo(tmp_path / "n.png", 64, 32, seed=0)) == (64, 32)
