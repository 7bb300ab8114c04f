"""A head branch of its own: new classes learned beside a frozen model (``hazardscan teach --branch``).

Two designs, both leaving every weight of the model as it was (the old classes answer as before by construction).

``classes`` (design A): for each detection level the head's class branch (``Detect.cv3[i]``: Conv, Conv, Conv2d)
becomes a :class:`ClassBranch`: ``old``, the branch as it was with its last convolution cut to the classes the
model had, and ``new``, a copy of it (its hidden convolutions initialised from the old ones, its last
convolution holding only the added classes' rows); their outputs are concatenated, old classes first. Training
moves ``new`` only (its BatchNorms included); every other weight and BatchNorm statistic is frozen, and
:func:`graft` puts the trained ``new`` branches into the start checkpoint itself, so the old classes' weights
are bit-identical to the start's. The boxes of the new classes come from the frozen box branch (``cv2``), shared
with the old classes.
The exported ONNX has the usual ``(batch, 4 + nc, anchors)`` output.

``boxes`` (design B): the head becomes a :class:`BranchDetect`, which also has a copy of the box branch
(``new_cv2``) beside the new class branch (``new_cv3``); the new classes predict on anchors of their own: the
ONNX output is ``(batch, 4 + nc, 2 * anchors)``, the first ``anchors`` the old boxes with the old classes' scores
(zeros for the new classes), the next ``anchors`` the new boxes with zeros for the old classes and the new
classes' scores. In training the head answers the new boxes with every class's scores, so a dataset that holds
only the new classes' boxes (``teach --replay 0``) trains the new branches alone.

Either ONNX serves unchanged (the decoder takes any anchor count); the released card names the branch
(``head_branch``), and ``recover`` refuses such a model (its ONNX has no plain Ultralytics checkpoint to rebuild).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from ultralytics.nn.modules.head import Detect

CARD_KEY = "head_branch"
DESIGNS = ("classes", "boxes")


class ClassBranch(nn.Module):
    """A detection level's class branch as two: the frozen ``old`` classes' channels, then the ``new`` ones."""

    def __init__(self, old: nn.Sequential, new: nn.Sequential) -> None:
        super().__init__()
        self.old = old
        self.new = new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.old(x), self.new(x)), 1)


def split_class_branch(branch: nn.Sequential, n_new: int) -> ClassBranch:
    """``branch`` (whose last convolution has the old classes' rows, then ``n_new`` added ones) as a
    :class:`ClassBranch` computing the same output."""
    last = branch[-1]
    if not isinstance(last, nn.Conv2d) or last.bias is None:
        raise ValueError("a class branch ending in a convolution with a bias is needed")
    if not 0 < n_new < last.out_channels:
        raise ValueError(f"{n_new} new classes of {last.out_channels}: a branch needs new classes and old ones")
    n_old = last.out_channels - n_new
    old, new = copy.deepcopy(branch), copy.deepcopy(branch)
    for part, rows in ((old, slice(0, n_old)), (new, slice(n_old, n_old + n_new))):
        conv = nn.Conv2d(last.in_channels, rows.stop - rows.start, 1)
        with torch.no_grad():
            conv.weight.copy_(last.weight[rows])
            conv.bias.copy_(last.bias[rows])  # type: ignore[union-attr]
        part[-1] = conv
    return ClassBranch(old, new)


class BranchDetect(Detect):
    """A ``Detect`` head whose last ``n_new`` classes have a box branch (``new_cv2``) and a class branch
    (``new_cv3``) of their own and answer on anchors of their own (see the module doc). Built by
    :func:`add_branch` from a trained head; ``cv3`` then holds the old classes only."""

    n_new: int

    def _level_outputs(self, x: list[torch.Tensor], box: Any, cls: Any, n: int) -> Any:
        bs = x[0].shape[0]
        boxes = torch.cat([box[i](x[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], -1)
        scores = torch.cat([cls[i](x[i]).view(bs, n, -1) for i in range(self.nl)], -1)
        return boxes, scores

    def forward(self, x: list[torch.Tensor]) -> Any:
        n_old = self.nc - self.n_new
        old_boxes, old_scores = self._level_outputs(x, self.cv2, self.cv3, n_old)
        new_boxes, new_scores = self._level_outputs(x, self.new_cv2, self.new_cv3, self.n_new)
        preds: dict[str, Any] = {"boxes": new_boxes, "scores": torch.cat((old_scores, new_scores), 1), "feats": x}
        if self.training:
            return preds
        old = self._inference({"boxes": old_boxes, "scores": old_scores, "feats": x})  # type: ignore[dict-item]
        new = self._inference({"boxes": new_boxes, "scores": new_scores, "feats": x})  # type: ignore[dict-item]
        bs, _, anchors = old.shape
        zeros_new = old.new_zeros(bs, self.n_new, anchors)
        zeros_old = old.new_zeros(bs, n_old, anchors)
        y = torch.cat((torch.cat((old, zeros_new), 1), torch.cat((new[:, :4], zeros_old, new[:, 4:]), 1)), 2)
        return y if self.export else (y, preds)


def detect_head(model: Any) -> Any:
    """The detection head (the last block) of an Ultralytics ``DetectionModel``."""
    return model.model[-1]


def is_branched(model: Any) -> bool:
    head = detect_head(model)
    return isinstance(head, BranchDetect) or any(isinstance(b, ClassBranch) for b in head.cv3)


def add_branch(model: Any, n_new: int, design: str = "classes") -> Any:
    """``model`` (in place) with the last ``n_new`` classes in a branch of their own at every level: a class
    branch (``design="classes"``), or a box and a class branch on anchors of their own (``"boxes"``)."""
    head = detect_head(model)
    if design not in DESIGNS:
        raise ValueError(f"branch design {design!r}: one of {', '.join(DESIGNS)}")
    if is_branched(model):
        raise ValueError("the model has a branch already")
    if getattr(head, "one2one_cv3", None) is not None:
        raise ValueError("an end-to-end head (one2one_cv3) is not supported by --branch")
    split = [split_class_branch(branch, n_new) for branch in head.cv3]
    if design == "classes":
        for i, branch in enumerate(split):
            head.cv3[i] = branch
        return model
    head.__class__ = BranchDetect  # the same module, its forward answering the new classes on anchors of their own
    head.n_new = n_new
    head.new_cv2 = copy.deepcopy(head.cv2)
    head.new_cv3 = nn.ModuleList(b.new for b in split)
    head.cv3 = nn.ModuleList(b.old for b in split)
    return model


def _in_branch(p: Sequence[str]) -> bool:
    """Whether a head parameter's name (split at the dots, from ``model``) belongs to a new branch."""
    return p[2] in ("new_cv2", "new_cv3") or (p[2] == "cv3" and len(p) > 4 and p[4] == "new")


def branch_freeze(param_names: Sequence[str]) -> list[int | str]:
    """Ultralytics ``freeze`` entries (branched model) leaving trainable only the new branches
    (``model.<head>.cv3.<level>.new``, or ``model.<head>.new_cv2`` and ``.new_cv3``): every layer before the head,
    the box branch, the DFL, the old class branches. Frozen blocks also keep their BatchNorm statistics
    (Ultralytics holds those in eval mode)."""
    parts = [n.split(".") for n in param_names if n.startswith("model.")]
    head = max(int(p[1]) for p in parts)
    if not any(int(p[1]) == head and _in_branch(p) for p in parts):
        raise ValueError("the model has no new branch (model.<head>.cv3.<level>.new or model.<head>.new_cv3) to train")
    frozen: list[int | str] = list(range(head))
    for p in parts:
        if int(p[1]) != head or _in_branch(p):
            continue
        entry = ".".join(p[1:5]) if p[2] == "cv3" and len(p) > 4 and p[4] == "old" else ".".join(p[1:3])
        if entry not in frozen:
            frozen.append(entry)
    return frozen


def branch_trainer(n_new: int, design: str = "classes") -> type:
    """An Ultralytics ``DetectionTrainer`` whose model gets the class branch before freezing and the optimiser
    (Ultralytics rebuilds the model from its yaml, which would drop a branch put into the start checkpoint)."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    class BranchTrainer(DetectionTrainer):
        def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> Any:
            return add_branch(super().get_model(cfg=cfg, weights=weights, verbose=verbose), n_new, design)

    return BranchTrainer


def branched_names(start: Path, n_new: int, design: str = "classes") -> list[str]:
    """The parameter and buffer names of the start checkpoint's model once branched."""
    model = torch.load(start, map_location="cpu", weights_only=False)["model"]
    return list(add_branch(copy.deepcopy(model), n_new, design).state_dict())


def graft(start: Path, trained: Path, out: Path, n_new: int, design: str = "classes") -> dict[str, Any]:
    """Write ``out``: the start checkpoint's model, branched, with the trained checkpoint's new branches (fp32);
    every other weight and statistic is the start's, bit for bit. Returns the checkpoint."""
    begun = torch.load(start, map_location="cpu", weights_only=False)
    done = torch.load(trained, map_location="cpu", weights_only=False)
    model = add_branch(copy.deepcopy(begun["model"]).float(), n_new, design)
    learned = (done.get("ema") or done["model"]).float().state_dict()
    mine = model.state_dict()
    frozen = [f"model.{f}." for f in branch_freeze(list(mine))]
    with torch.no_grad():
        for name, value in mine.items():
            if not any(f in name for f in frozen):
                value.copy_(learned[name])
    ckpt = {**done, "model": model.eval(), "ema": None, "optimizer": None, "updates": None}
    ckpt["hazardscan_branch"] = {"start": str(start), "trained": str(trained), "new_classes": n_new, "design": design}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, out)
    return ckpt
