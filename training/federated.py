"""Federated classification loss: a photo teaches only the classes its source labels.

Each public set labels its own classes only; a helmet in a harness photo carries no box, so the plain
YOLO loss teaches "helmet here is background". With this loss a photo's classification term is masked
to the classes its source labels (from the dataset card's class maps): unlabelled classes get neither
positive nor negative signal from it. Box and DFL terms are untouched (they only see labelled boxes).

Mosaic mixes four photos, possibly from four sources, into one training image while the batch keeps
only the first photo's file name; so a run with this loss trains without mosaic (``mosaic: 0``), and
:func:`attach` refuses otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.partial_labels import labelled_classes


def class_masks(data_yaml: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Per training-image file name, a boolean mask over the dataset classes its source labels.

    Images are matched to manifest entries through their links (``images/<split>/<name>`` points at the
    source photo), so it holds for any link naming scheme; a manifest path relative to the dataset folder
    (a packed copy, ``training.gpu_kit``) names the file itself.
    """
    root = Path(data_yaml).parent
    card = json.loads((root / "dataset_card.json").read_text())
    classes: list[str] = card["classes"]
    own = labelled_classes(card, classes)
    source_of: dict[str, str] = {}
    for line in (root / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        source_of[os.path.realpath(root / entry["image"])] = entry["source"]  # a relative path: from root
    masks: dict[str, np.ndarray] = {}
    for link in (root / "images").glob("*/*"):
        source = source_of.get(os.path.realpath(link))
        if source is None:
            continue
        masks[link.name] = np.array([c in own[source] for c in classes], bool)
    return masks, classes


def batch_weights(masks: Mapping[str, np.ndarray], files: Sequence[str], nc: int) -> np.ndarray:
    """``(batch, 1, nc)`` float weights for the classification BCE; unknown files keep every class."""
    out = np.ones((len(files), 1, nc), np.float32)
    for i, f in enumerate(files):
        mask = masks.get(Path(f).name)
        if mask is not None:
            out[i, 0] = mask
    return out


def make_loss(model: Any, masks: Mapping[str, np.ndarray]) -> Any:
    """A ``v8DetectionLoss`` whose classification term is masked per photo (see module doc)."""
    import torch
    from ultralytics.utils.loss import v8DetectionLoss

    class FederatedDetectionLoss(v8DetectionLoss):
        def get_assigned_targets_and_loss(self, preds: Any, batch: Any, **kwargs: Any) -> Any:
            weights = batch_weights(masks, batch["im_file"], self.nc)
            # Ultralytics multiplies the per-anchor, per-class BCE by class_weights (broadcast (1, 1, nc));
            # a (batch, 1, nc) tensor masks per photo instead.
            self.class_weights = torch.from_numpy(weights).to(self.device)
            return super().get_assigned_targets_and_loss(preds, batch, **kwargs)

    return FederatedDetectionLoss(model)


def attach(yolo: Any, data_yaml: Path, train_args: Mapping[str, Any]) -> None:
    """Install the federated loss on the model Ultralytics trains (an ``on_train_start`` callback)."""
    if float(train_args.get("mosaic", 1.0)) > 0:
        raise ValueError("federated_loss needs mosaic: 0 (a mosaic mixes photos of several sources)")
    masks, _classes = class_masks(data_yaml)
    if not masks:
        raise ValueError(f"no training image of {data_yaml} matched its manifest")

    def install(trainer: Any) -> None:
        from ultralytics.utils.torch_utils import unwrap_model

        model = unwrap_model(trainer.model)
        model.criterion = make_loss(model, masks)

    yolo.add_callback("on_train_start", install)
