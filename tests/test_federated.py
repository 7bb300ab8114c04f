"""Federated class loss: a photo's classification term covers only the classes its source labels."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_service.taxonomy import load_taxonomy
from tests._builders import scene
from training.dataset import build_dataset
from training.federated import attach, batch_weights, class_masks
from training.importer import SourceSpec, import_all


def _two_source_dataset(tmp_path: Path) -> Path:
    for name, colour, n in (("fireonly", (255, 0, 0), 4), ("smokeonly", (0, 255, 0), 4)):
        root = tmp_path / "sets" / name
        (root / "labels").mkdir(parents=True)
        (root / "images").mkdir()
        for i in range(n):
            arr = np.array(scene(64, 64, [(8 * i, 8, 8 * i + 16, 24, colour)]))
            arr[48:] = np.random.default_rng(i + 10 * len(name)).integers(0, 255, (16, 64, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / "images" / f"{i}.png")
            (root / "labels" / f"{i}.txt").write_text(f"0 {(8 * i + 8) / 64} 0.25 0.25 0.25\n")
    specs = [
        SourceSpec.from_dict({"name": n, "root": n, "images": ["images/*.png"], "names": ["x"], "class_map": {"x": c}})
        for n, c in (("fireonly", "fire"), ("smokeonly", "smoke"))
    ]
    built = build_dataset(import_all(specs, tmp_path / "sets", load_taxonomy()), tmp_path / "ds", val_fraction=0.25)
    return built.data_yaml


def test_masks_follow_each_photos_source(tmp_path: Path):
    masks, classes = class_masks(_two_source_dataset(tmp_path))
    assert classes == ["fire", "smoke"]
    assert len(masks) == 8  # train and val links alike
    rows = sorted(tuple(m.tolist()) for m in masks.values())
    assert rows == [(False, True)] * 4 + [(True, False)] * 4


def test_batch_weights_mask_known_files_and_keep_unknown_ones():
    masks = {"a.jpg": np.array([True, False, True])}
    w = batch_weights(masks, ["/x/images/train/a.jpg", "/x/images/train/zzz.jpg"], 3)
    assert w.shape == (2, 1, 3)
    assert w[0, 0].tolist() == [1.0, 0.0, 1.0]
    assert w[1, 0].tolist() == [1.0, 1.0, 1.0]


def test_attach_refuses_mosaic(tmp_path: Path):
    with pytest.raises(ValueError, match="mosaic"):
        attach(object(), tmp_path / "data.yaml", {"mosaic": 1.0})


def test_masked_loss_drops_unlabelled_classes_only():
    torch = pytest.importorskip("torch")
    pytest.importorskip("ultralytics")
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from training.federated import make_loss

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    model.args = get_cfg()
    img = torch.rand(1, 3, 64, 64)
    preds = model(img)
    # one fire box (class 0); the photo's source labels fire only, or both, or nothing
    batch = {
        "im_file": ["/d/images/train/p.jpg"],
        "batch_idx": torch.zeros(1),
        "cls": torch.zeros(1, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]]),
    }

    def cls_loss(mask: list[bool]) -> float:
        loss = make_loss(model, {"p.jpg": np.array(mask)})
        _, items = loss(preds, batch)
        return float(items["cls_loss"])

    both, fire_only, none = cls_loss([True, True]), cls_loss([True, False]), cls_loss([False, False])
    assert none == 0.0
    assert 0.0 < fire_only < both  # the smoke logits no longer count as negatives
