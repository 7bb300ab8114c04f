"""Photo level: how many photos showing a class a model flags, at a budget of false alarms on photos without it.

    .venv/bin/python benchmarks/photo_level.py --data work/datasets/smoker-a748 --class smoking \\
        --seen work/datasets/hazardscan-f6a76cd8b67d --budget 0.02 models/hazardscan-v5 work/smoker/teach-C/model

An inspector asks of a photo "is someone smoking here?", not where the box's edges lie. For each model this scores
every photo by its highest detection of ``--class`` and reads two operating points:

* the model's own card threshold;
* a threshold chosen on the training photos of ``--data`` that none of the models was trained on (not in
  ``--seen``, the dataset the start model learned from): the lowest at which at most ``--budget`` of those photos
  without the class raise it. The figures are then read on the validation split, which chose nothing.

A photo without the class is any photo with no box of it, from any source: the photo sets that never label the
class are taken to show none (the assumption ``eval --all-predictions`` makes). ``on target`` counts flagged photos
with a detection at least half inside a labelled box of the class.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from inference_service.detections import Detections
from inference_service.model_card import load_model
from inference_service.runtime import Detector
from training.dataset import load_manifest
from training.importer import Sample
from training.relabel import holder_of


def best_scores(
    detector: Detector, samples: list[Sample], class_name: str
) -> tuple[npt.NDArray[np.float64], list[Detections]]:
    """Each photo's highest score of the class (0 when none above 0.01), and the detections of the class."""
    cid = detector.card.classes.index(class_name)
    best, found = [], []
    for s in samples:
        d = detector.detect(s.image.read_bytes(), conf=0.01).detections
        d = d[d.class_id == cid]
        best.append(float(d.score.max()) if len(d) else 0.0)
        found.append(d)
    return np.array(best), found


def lowest_threshold(best: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_], budget: float) -> float:
    """The lowest score threshold at which at most ``budget`` of the negative photos are flagged."""
    negatives = np.sort(best[~positive])[::-1]
    allowed = int(np.floor(budget * len(negatives)))
    # flagging the top `allowed` negatives is within budget; the next one must stay below the threshold
    return float(np.nextafter(negatives[allowed], 1.0)) if allowed < len(negatives) else 0.01


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--data", type=Path, required=True, help="a built dataset (validation split: the figures)")
    p.add_argument("--class", dest="class_name", required=True)
    p.add_argument("--seen", type=Path, required=True, help="the dataset the models started from (left out)")
    p.add_argument("--budget", type=float, default=0.02, help="share of photos without the class flagged")
    args = p.parse_args(argv)

    classes = json.loads((args.data / "dataset_card.json").read_text())["classes"]
    cid = classes.index(args.class_name)
    seen = {s.sha1 for s, _ in load_manifest(args.seen)}
    rows = load_manifest(args.data)
    choose_on = [s for s, side in rows if side == "train" and s.sha1 not in seen]
    val = [s for s, side in rows if side == "val"]
    pos_c = np.array([(s.labels.class_id == cid).any() for s in choose_on])
    pos_v = np.array([(s.labels.class_id == cid).any() for s in val])
    out = sys.stdout
    out.write(
        f"{args.class_name}: threshold chosen on {len(choose_on)} unseen training photos ({pos_c.sum()} with it), "
        f"read on {len(val)} val photos ({pos_v.sum()} with it, {(~pos_v).sum()} without); budget {args.budget:g}\n"
    )
    out.write(f"{'model':<34}{'threshold':>16}{'flagged':>16}{'on target':>11}{'false alarms':>16}\n")
    for model in args.models:
        detector = Detector(load_model(model))
        card_t = detector.card.class_thresholds.get(args.class_name, detector.card.conf_threshold)
        chosen = lowest_threshold(best_scores(detector, choose_on, args.class_name)[0], pos_c, args.budget)
        best, found = best_scores(detector, val, args.class_name)
        for label, t in (("card", card_t), ("chosen", chosen)):
            flagged = best >= t
            on = sum(
                bool((holder_of(d.xyxy[d.score >= t], s.labels.xyxy[s.labels.class_id == cid], 0.5) >= 0).any())
                for s, d, f, pos in zip(val, found, flagged, pos_v, strict=True)
                if f and pos
            )
            out.write(
                f"{model.name if model.name != 'model' else model.parent.name:<34}{label:>7} {t:8.3f}"
                f"{(flagged & pos_v).sum():>9} ({np.mean(flagged[pos_v]):.0%}){on:>11}"
                f"{(flagged & ~pos_v).sum():>9} ({np.mean(flagged[~pos_v]):.1%})\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
