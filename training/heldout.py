"""A held-out set shared by dataset versions, for comparing models trained on different splits.

When the split changes between model versions (say dHash groups, then pHash groups), each model's own
validation figure is measured on other photos, and one model may have trained on the other's validation
photos or on near-copies of them. The fair A/B is on photos that are validation photos in every version and
have no training photo of their source within a few hash bits in any version. ``hazardscan heldout --data A
--data B --out DIR`` writes those as a derived dataset of A (its labels, sources and licences), ready for
``hazardscan eval --model NEW --baseline OLD --data DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.dataset import load_manifest, write_derived_dataset
from training.importer import Sample
from training.split import NEAR_DUPLICATE_HASHES, popcount

DEFAULT_BITS = 8


@dataclass(frozen=True)
class HeldOut:
    samples: list[Sample]  # validation photos of the first version, in its order
    not_val_everywhere: int  # validation photos of the first version that another version trains on
    near_training: int  # of the rest: a training photo of their source within the bits, in some version


def held_out(versions: Sequence[Sequence[tuple[Sample, str]]], hash_of: Callable[[Sample], int], bits: int) -> HeldOut:
    """The first version's validation photos that every version validates on (same bytes: same SHA-1) and that
    lie more than ``bits`` Hamming bits from every training photo of the same source in any version."""
    val_everywhere = set.intersection(*({s.sha1 for s, split in v if split == "val"} for v in versions))
    first_val = [s for s, split in versions[0] if split == "val"]
    candidates = [s for s in first_val if s.sha1 in val_everywhere]
    training: dict[str, dict[str, Sample]] = defaultdict(dict)  # source -> sha1 -> photo, over all versions
    for version in versions:
        for s, split in version:
            if split == "train":
                training[s.source][s.sha1] = s
    hashes: dict[str, int] = {}

    def hashed(s: Sample) -> int:
        if s.sha1 not in hashes:
            hashes[s.sha1] = hash_of(s)
        return hashes[s.sha1]

    train_hashes = {
        source: np.array([hashed(s) for s in photos.values()], np.uint64) for source, photos in training.items()
    }
    kept = []
    for s in candidates:
        near = train_hashes.get(s.source, np.zeros(0, np.uint64))
        if not (popcount(near ^ np.uint64(hashed(s))) <= bits).any():
            kept.append(s)
    return HeldOut(kept, len(first_val) - len(candidates), len(candidates) - len(kept))


def write_held_out(
    roots: Sequence[Path], out: Path, hash_name: str = "dhash", bits: int = DEFAULT_BITS
) -> tuple[Path, HeldOut]:
    """Write :func:`held_out` of the dataset folders ``roots`` as a derived dataset of the first one; returns
    its data.yaml and what was held out."""
    cards = [json.loads((root / "dataset_card.json").read_text()) for root in roots]
    if any(card["classes"] != cards[0]["classes"] for card in cards):
        raise ValueError("the datasets have different class lists; a shared held-out set needs one")
    versions = [load_manifest(root) for root in roots]
    hash_path = NEAR_DUPLICATE_HASHES[hash_name][0]
    result = held_out(versions, lambda s: hash_path(s.image), bits)
    if not result.samples:
        raise ValueError("no photo is held out by every dataset")
    names = ", ".join(card["version"] for card in cards)
    derivation = (
        f"held out by every one of {names}: validation photos in each, none with a training photo of its source "
        f"within {bits} bits of {hash_name} in any ({result.not_val_everywhere} trained on by one, "
        f"{result.near_training} near a training photo, dropped)"
    )
    return write_derived_dataset(roots[0], out, [(s, "val") for s in result.samples], derivation), result


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        action="append",
        required=True,
        help="a built dataset folder (holds manifest.jsonl); repeat it for every version whose models are compared",
    )
    p.add_argument("--hash", choices=sorted(NEAR_DUPLICATE_HASHES), default="dhash", help="near-duplicate hash")
    p.add_argument(
        "--bits", type=int, default=DEFAULT_BITS, help=f"Hamming bits that count as near (default {DEFAULT_BITS})"
    )
    p.add_argument("--out", type=Path, required=True, help="where the held-out dataset is written")


def run(args: argparse.Namespace) -> int:
    missing = [
        str(d) for d in args.data if not (d / "manifest.jsonl").is_file() or not (d / "dataset_card.json").is_file()
    ]
    if missing:
        sys.stderr.write(
            f"hazardscan heldout: not a built dataset (no manifest.jsonl and dataset_card.json): {', '.join(missing)}\n"
        )
        return 2
    if not 0 <= args.bits <= 64:
        sys.stderr.write(f"hazardscan heldout: --bits must lie within [0, 64], got {args.bits}\n")
        return 2
    try:
        data_yaml, result = write_held_out(args.data, args.out, args.hash, args.bits)
    except ValueError as exc:
        sys.stderr.write(f"hazardscan heldout: {exc}\n")
        return 2
    per_source = Counter(s.source for s in result.samples)
    sources = ", ".join(f"{k} {v}" for k, v in sorted(per_source.items()))
    sys.stderr.write(f"{len(result.samples)} photos held out ({sources})\n")
    sys.stdout.write(f"{data_yaml}\n")
    return 0
