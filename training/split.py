"""Deterministic, duplicate-aware, stratified train/val split.

Exact duplicates (same bytes) and near duplicates (a perceptual hash within a few bits: dHash by default,
pHash to also catch noise-augmented copies and frames of one clip) form one group, and a group never
straddles the split. Groups are stratified by source set and by the rarest class they contain, and within a
stratum ordered by a hash of their content, so the split depends only on the data, not on file order or a
random seed.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from training.importer import Sample

NEAR_DUPLICATE_BITS = 4


def _grey(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as im:
        im.draft("L", (128, 128))
        return np.asarray(im.convert("L").resize(size, Image.Resampling.BILINEAR), np.float32)


def _bits(mask: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in mask.flatten()), 2)


def dhash(path: Path, size: int = 8) -> int:
    """64-bit difference hash of the grey image (robust to rescaling and recompression)."""
    grey = _grey(path, (size + 1, size))
    return _bits(grey[:, 1:] > grey[:, :-1])


def phash(path: Path) -> int:
    """64-bit DCT hash of the grey image: the signs of its 8×8 lowest frequencies against their median. Speckle
    noise, a brightness change or a small shift (augmented copies, frames a moment apart) move few bits."""
    low = np.asarray(cv2.dct(_grey(path, (32, 32))), np.float32)[:8, :8].flatten()
    return _bits(low > np.median(low[1:]))


# hash name -> (function, Hamming distance within which two photos are near duplicates)
NEAR_DUPLICATE_HASHES: dict[str, tuple[Callable[[Path], int], int]] = {
    "dhash": (dhash, NEAR_DUPLICATE_BITS),
    "phash": (phash, 10),
}


_BITS_IN_BYTE = np.array([bin(i).count("1") for i in range(256)], np.uint64)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each 64-bit value (Hamming distance, applied to an XOR)."""
    x = x.astype(np.uint64)
    count = np.zeros(x.shape, np.uint64)
    for shift in range(0, 64, 8):
        count += _BITS_IN_BYTE[(x >> np.uint64(shift)) & np.uint64(255)]
    return count


def duplicate_groups(sha1s: Sequence[str], hashes: Sequence[int], bits: int = NEAR_DUPLICATE_BITS) -> list[int]:
    """Group id per item: union of exact (sha1) and near (dhash Hamming distance <= bits) duplicates."""
    n = len(sha1s)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[str, int] = {}
    for i, s in enumerate(sha1s):
        union(i, first.setdefault(s, i))
    h = np.array(hashes, dtype=np.uint64)
    for i in range(n - 1):
        close = np.flatnonzero(popcount(h[i + 1 :] ^ h[i]) <= bits) + i + 1
        for j in close.tolist():
            union(i, j)
    return [find(i) for i in range(n)]


def split_groups(
    samples: Sequence[Sample],
    groups: Sequence[int],
    n_classes: int,
    val_fraction: float = 0.2,
) -> list[str]:
    """'train' or 'val' per sample."""
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    totals = np.zeros(n_classes, np.int64)
    for s in samples:
        np.add.at(totals, s.labels.class_id, 1)

    def stratum(g: int) -> tuple[str, int]:
        classes = {int(c) for i in members[g] for c in samples[i].labels.class_id}
        rarest = min(classes, key=lambda c: (totals[c], c)) if classes else -1
        return samples[members[g][0]].source, rarest

    strata: dict[tuple[str, int], list[int]] = defaultdict(list)
    for g in members:
        strata[stratum(g)].append(g)
    side = ["train"] * len(samples)
    for key in sorted(strata):
        gs = sorted(
            strata[key],
            key=lambda g: hashlib.sha1("".join(sorted(samples[i].sha1 for i in members[g])).encode()).hexdigest(),
        )
        size = sum(len(members[g]) for g in gs)
        target = math.floor(size * val_fraction + 0.5) if len(gs) > 1 else 0
        taken = 0
        for g in gs:  # fill val up to the photo target; a group that would overshoot by over half waits
            n = len(members[g])
            if taken >= target:
                break
            if taken + n - target > n / 2:
                continue
            taken += n
            for i in members[g]:
                side[i] = "val"
    return side
