"""Repeat-factor sampling for rare classes (Gupta et al., LVIS, 2019).

A class seen in a fraction ``f`` of the training photos gets the repeat factor ``max(1, sqrt(t / f))``;
a photo is repeated by the largest factor of the classes it shows (photos without boxes: 1). So with
``t = 0.1`` the 19 e-bike photos (0.8 % of training photos) are seen about 3.5 times an epoch while
helmet photos are seen once. Ultralytics has no sampler weights, so the repeats are written as a derived
dataset (one link per copy); validation photos are never repeated.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from training.dataset import load_manifest, write_derived_dataset
from training.importer import Sample


def class_repeat_factors(samples: list[Sample], n_classes: int, threshold: float) -> np.ndarray:
    """``max(1, sqrt(t / f_c))`` per class, ``f_c`` the fraction of photos showing class ``c`` (absent: 1)."""
    if not samples:
        return np.ones(n_classes)
    shown = np.zeros(n_classes)
    for s in samples:
        shown[np.unique(s.labels.class_id)] += 1
    frac = shown / len(samples)
    factors = np.ones(n_classes)
    seen = frac > 0
    factors[seen] = np.maximum(1.0, np.sqrt(threshold / frac[seen]))
    return factors


def copies(factor: float, key: str) -> int:
    """Deterministic stochastic rounding: ``floor(r)`` plus one more copy with probability ``r - floor(r)``,
    the coin decided by a hash of ``key`` (the photo's content hash), so a rebuild gives the same dataset."""
    whole = int(np.floor(factor))
    coin = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 16**8
    return whole + (1 if coin < factor - whole else 0)


def resampled(samples: list[tuple[Sample, str]], factors: np.ndarray) -> list[tuple[Sample, str]]:
    """Training photos repeated by the largest class factor they show; validation photos once, in order."""
    out = []
    for s, split in samples:
        n = 1
        if split == "train" and len(s.labels):
            n = copies(float(factors[np.unique(s.labels.class_id)].max()), s.sha1)
        out += [(s, split)] * n
    return out


def write_resampled_dataset(root: Path, out: Path, threshold: float) -> Path:
    """A derived dataset with training photos repeated by :func:`resampled`; its card states the factors."""
    classes = json.loads((root / "dataset_card.json").read_text())["classes"]
    samples = load_manifest(root)
    train = [s for s, split in samples if split == "train"]
    factors = class_repeat_factors(train, len(classes), threshold)
    repeated = resampled(samples, factors)
    extra = len(repeated) - len(samples)
    rare = ", ".join(f"{c} {f:.1f}" for c, f in zip(classes, factors.tolist(), strict=True) if f > 1)
    derivation = (
        f"repeat-factor sampling with threshold {threshold}: {extra} extra copies of training photos "
        f"(class factors: {rare or 'none'}); validation unchanged"
    )
    return write_derived_dataset(root, out, repeated, derivation)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="a built dataset folder (holds manifest.jsonl)")
    p.add_argument("--threshold", type=float, default=0.1, help="t in max(1, sqrt(t / f)); 0 repeats nothing")
    p.add_argument("--out", type=Path, required=True, help="where the resampled dataset is written")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.threshold <= 1:
        raise SystemExit(f"--threshold must be within [0, 1], got {args.threshold}")
    sys.stdout.write(f"{write_resampled_dataset(args.data, args.out, args.threshold)}\n")
    return 0
