"""Adding sources to a dataset never moves an earlier version's photo across the split (keep_split_of)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from inference_service.detections import Detections
from training.dataset import split_keeping
from training.importer import Sample
from training.split import duplicate_groups, split_groups


def _sample(source: str, i: int, classes: list[int]) -> Sample:
    boxes = np.array([[0, 0, 10, 10]] * len(classes), np.float32).reshape(-1, 4)
    dets = Detections(boxes, np.array(classes, np.int64), np.ones(len(classes), np.float32))
    return Sample(Path(f"/x/{source}/{i}.jpg"), source, 64, 64, dets, hashlib.sha1(f"{source}{i}".encode()).hexdigest())


def test_old_sources_keep_their_sides_and_near_duplicates_follow_them():
    rng = np.random.default_rng(0)
    old = [_sample("a", i, [0] if i % 3 else [0, 1]) for i in range(40)]
    new = [_sample("b", i, [1, 1]) for i in range(30)]  # new source: class 1 becomes common, strata of 'a' change
    old_hashes = [int(h) for h in rng.integers(0, 2**62, len(old))]
    new_hashes = [int(h) for h in rng.integers(0, 2**62, len(new))]
    new_hashes[0] = old_hashes[5]  # a near-copy of an old photo
    alone = split_groups(old, duplicate_groups([s.sha1 for s in old], old_hashes, 4), 2, 0.2)
    samples, hashes = old + new, old_hashes + new_hashes
    sides, groups = split_keeping(samples, hashes, 4, 2, 0.2, {"a"})
    assert sides[: len(old)] == alone
    assert groups[len(old)] == groups[5] and sides[len(old)] == alone[5]
    assert 0 < sides[len(old) :].count("val") < len(new)  # the new photos are split among themselves
