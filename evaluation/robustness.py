"""Alarms under photo degradations: what an overexposed, hazy or dark photo does to each class.

    .venv/bin/python -m evaluation.robustness --model models/default --data DATASET [--out report.json]

Every photo goes through the served pipeline (``Detector.detect`` on JPEG bytes, the card's thresholds) as
taken and under each degradation of :data:`DEGRADATIONS` ("as taken" is always measured). Per class and
degradation it counts photos, only where the photo's source labels the class (federated, as ``hazardscan
eval`` scores): those showing the class that still raise it ("kept"), and those not showing it that raise it
anyway ("false alarms"). Over every photo, whatever its source labels, it also counts the alarms a
degradation adds (raised after it, not before it, not labelled). A white veil is what fog, steam or a flared
lens does; the shipped models read a near-white frame as smoke, and this measures how near it has to be.
Figures, not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from evaluation.data import EvalSet, load_eval_set
from inference_service.runtime import Detector
from training.card import ROBUSTNESS_CELLS, robustness_table

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]  # H×W×3 RGB


def _veil(share: float) -> Callable[[Image], Image]:
    return lambda rgb: np.round(rgb * (1.0 - share) + 255.0 * share).astype(np.uint8)


def _gain(factor: float) -> Callable[[Image], Image]:
    return lambda rgb: np.clip(np.round(rgb * factor), 0, 255).astype(np.uint8)


# name -> degradation of an RGB photo
DEGRADATIONS: dict[str, Callable[[Image], Image]] = {
    "as taken": lambda rgb: rgb,
    "exposure x2.5": _gain(2.5),
    "dark x0.3": _gain(0.3),
    "white veil 70%": _veil(0.7),
    "white veil 90%": _veil(0.9),
}


def tally(
    shown: Sequence[set[int]],
    raised: Sequence[set[int]],
    scored: Sequence[Sequence[int]],
    n_classes: int,
    as_taken: Sequence[set[int]],
) -> dict[str, list[int]]:
    """Per class: photos showing it, of those raising it, photos not showing it, of those raising it, counting
    a photo for a class only where ``scored`` (its source labels the class); and, over every photo, alarms the
    degradation adds: raised now, not raised ``as_taken``, and not labelled."""
    out = {k: [0] * n_classes for k in ("shown", "kept", "not_shown", "false_alarms", "new_alarms")}
    for gt, alarms, classes, before in zip(shown, raised, scored, as_taken, strict=True):
        for c in alarms - before - gt:
            out["new_alarms"][c] += 1
        for c in classes:
            if c in gt:
                out["shown"][c] += 1
                out["kept"][c] += c in alarms
            else:
                out["not_shown"][c] += 1
                out["false_alarms"][c] += c in alarms
    return out


def measure(detector: Detector, data: EvalSet, degradations: Sequence[str]) -> dict[str, Any]:
    """:func:`tally` for each degradation over every photo of ``data``."""
    shown: list[set[int]] = []
    scored: list[list[int]] = []
    degradations = ["as taken", *(name for name in degradations if name != "as taken")]
    raised: dict[str, list[set[int]]] = {name: [] for name in degradations}
    unreadable = []
    for i, sample in enumerate(data.samples):
        bgr = cv2.imread(str(sample.image), cv2.IMREAD_COLOR)
        if bgr is None:
            logger.warning("cannot read %s; left out", sample.image)
            unreadable.append(str(sample.image))
            continue
        rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)
        shown.append(set(sample.gt.class_id.tolist()))
        scored.append(list(data.scored_classes(sample)))
        for name in degradations:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(DEGRADATIONS[name](rgb), cv2.COLOR_RGB2BGR))
            assert ok, "JPEG encoding of an in-memory image cannot fail"
            raised[name].append(set(detector.detect(jpeg.tobytes()).detections.class_id.tolist()))
        if (i + 1) % 100 == 0:
            logger.info("%d/%d photos", i + 1, len(data.samples))
    n = len(data.classes)
    return {
        "model": detector.card.model_id,
        "version": detector.card.version,
        "data": data.name,
        "photos": len(shown),
        "unreadable": unreadable,
        "classes": data.classes,
        "degradations": {name: tally(shown, raised[name], scored, n, raised["as taken"]) for name in degradations},
    }


def render(report: dict[str, Any]) -> str:
    head = f"{report['model']} {report['version']} on {report['data']} ({report['photos']} photos). "
    return "\n".join([head + f"Cells: {ROBUSTNESS_CELLS}.", "", *robustness_table(report)]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.robustness", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="model folder or .onnx file")
    p.add_argument("--data", type=Path, required=True, help="a dataset (as for hazardscan eval)")
    p.add_argument("--split", default="val", choices=["train", "val", "all"])
    p.add_argument("--degradations", nargs="+", default=list(DEGRADATIONS), choices=list(DEGRADATIONS))
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    detector = Detector.load(args.model)
    try:
        data = load_eval_set(args.data, detector.card.classes, args.split)
    except (FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"robustness: {exc}\n")
        return 2
    report = measure(detector, data, args.degradations)
    sys.stdout.write(render(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
