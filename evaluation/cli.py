"""``hazardscan eval``: score the served pipeline on a labelled set, choose thresholds, compare, gate.

    hazardscan eval --model models/hazardscan-v1 --data work/datasets/hazardscan-<ver> [--split val]
        [--out DIR] [--baseline models/current] [--thresholds max_f1|max_f1:0.5|precision:0.9] [--write-card]
        [--crosscheck]

Writes ``report.md``, ``report.json`` and PNG figures into ``--out``. Exit status: 0 done; 1 the
candidate is worse than ``--baseline`` beyond the bootstrap interval (a release gate); 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evaluation import ab, plots, speed
from evaluation.data import SPLITS, EvalSet, detect_format, load_eval_set
from evaluation.evaluate import Scored, score, summary, worst_examples
from evaluation.matching import MatchTable
from evaluation.predict import FLOOR_CONF, Prediction, predict, remap_classes
from evaluation.report import write_report
from evaluation.thresholds import MIN_GT, Goal, OperatingPoint, card_path_for, choose_thresholds, write_card
from inference_service.model_card import ModelCard, ModelLoadError, resolve_model_path
from inference_service.runtime import Detector
from inference_service.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

EXIT_WORSE = 1
EXIT_INPUT = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="model folder or .onnx file (the candidate)")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="dataset folder, YOLO data.yaml, COCO json, Label Studio export json or source spec yaml",
    )
    p.add_argument("--split", default="val", choices=SPLITS, help="split of a dataset folder / data.yaml")
    p.add_argument("--images", type=Path, help="image folder for COCO / Label Studio json")
    p.add_argument("--datasets-root", type=Path, help="where source specs' photo sets live")
    p.add_argument("--out", type=Path, help="report folder (default: work/eval/<model>_<data>)")
    p.add_argument("--baseline", type=Path, help="the current model: A/B with bootstrap intervals, exit 1 if worse")
    p.add_argument(
        "--thresholds",
        type=Goal.parse,
        metavar="GOAL",
        help="per-class thresholds: max_f1 | max_f1:P (precision floor) | precision:P",
    )
    p.add_argument(
        "--min-boxes",
        type=int,
        default=MIN_GT,
        help="fewest gt boxes for a class to get a chosen threshold and to count in the A/B gate",
    )
    p.add_argument("--write-card", action="store_true", help="write the chosen thresholds into the model card")
    p.add_argument("--crosscheck", action="store_true", help="also run Ultralytics' validator and compare")
    p.add_argument("--no-int8", action="store_true", help="skip model.int8.onnx even when it lies beside the model")
    p.add_argument(
        "--all-predictions",
        action="store_true",
        help="score every prediction, also of classes a photo's source never labels",
    )
    p.add_argument("--floor", type=float, default=FLOOR_CONF, help="lowest confidence kept for curves")
    p.add_argument("--bootstrap", type=int, default=1000, help="A/B resamples")
    p.add_argument("--margin", type=float, default=0.0, help="A/B: mAP50 points of worsening tolerated")
    p.add_argument("--contact", type=int, default=12, help="boxes per contact sheet")
    p.add_argument("--limit", type=int, help="evaluate only N photos, spread evenly over the set (quick look)")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    p.add_argument(
        "--nms-iou",
        type=float,
        help="score the candidate at this NMS IoU instead of its card's (to choose one: sweep it on --split train; "
        "set it with `hazardscan release --nms-iou`)",
    )
    p.add_argument(
        "--rect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score the candidate with minimum-rectangle inputs, or not (default: as its card says; the baseline "
        "always follows its own card)",
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80]


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _load_set(args: argparse.Namespace, classes: list[str]) -> EvalSet:
    eval_set = load_eval_set(args.data, classes, args.split, args.images, args.datasets_root)
    if args.limit and args.limit < len(eval_set.samples):
        idx = np.unique(np.linspace(0, len(eval_set.samples) - 1, args.limit).round().astype(int)).tolist()
        eval_set = eval_set.subset(idx, f"{eval_set.name}[{len(idx)}]")
    return eval_set


def _run_model(detector: Detector, eval_set: EvalSet, args: argparse.Namespace, label: str) -> list[Prediction]:
    t0 = time.perf_counter()
    preds = predict(detector, eval_set.samples, args.floor)
    logger.info("%s: %d photos in %.1f s", label, len(preds), time.perf_counter() - t0)
    return preds


def _baseline(current: Detector, args: argparse.Namespace, eval_set: EvalSet, candidate: Scored) -> dict[str, Any]:
    mapping = np.array([eval_set.classes.index(c) if c in eval_set.classes else -1 for c in current.card.classes])
    preds = [remap_classes(p.detections, mapping) for p in _run_model(current, eval_set, args, "baseline")]
    scored = score(eval_set, preds, candidate.federated)
    shared = [int(c) for c in mapping[mapping >= 0]]  # classes both models predict; new classes are not compared
    result = ab.bootstrap_ab(
        scored.table,
        candidate.table,
        eval_set.classes,
        args.bootstrap,
        margin=args.margin / 100,
        min_gt=args.min_boxes,
        shared=shared,
    )
    return {
        "ab": ab.ab_dict(result, eval_set.classes),
        "baseline": {
            "path": str(args.baseline),
            "model_id": current.card.model_id,
            "version": current.card.version,
            "map50": _round(scored.overall.map50),
            "map50_95": _round(scored.overall.map),
        },
        "_table": scored.table,
    }


def _speed(
    detector: Detector, eval_set: EvalSet, preds: list[Prediction], scored: Scored, args: argparse.Namespace
) -> dict[str, Any]:
    tensor = speed.prepared_tensor(detector, eval_set.samples[0].image)
    variants = {
        "fp32": {
            "path": str(detector.model.onnx_path),
            "map50": _round(scored.overall.map50),
            "map50_95": _round(scored.overall.map),
            "served": speed.served_latency(preds),
            "bare": speed.bare_session(detector, tensor),
        }
    }
    int8 = None if args.no_int8 else speed.int8_beside(detector.model.onnx_path)
    if int8 is not None:
        q = Detector.load(int8, threads=args.threads, rect=args.rect)
        q_preds = _run_model(q, eval_set, args, "int8")
        q_scored = score(eval_set, q_preds, scored.federated)
        variants["int8"] = {
            "path": str(int8),
            "map50": _round(q_scored.overall.map50),
            "map50_95": _round(q_scored.overall.map),
            "served": speed.served_latency(q_preds),
            "bare": speed.bare_session(q, tensor),
        }
    return {"machine": speed.machine(), "variants": variants}


def _crosscheck(detector: Detector, eval_set: EvalSet, flat: Scored) -> dict[str, Any]:
    if flat.overall.map50 is None or flat.overall.map is None:
        return {"error": "no ground truth to score"}
    try:
        from evaluation.crosscheck import crosscheck

        with tempfile.TemporaryDirectory(prefix="hazardscan-crosscheck-") as tmp:
            return crosscheck(detector, eval_set, flat.preds, flat.overall, Path(tmp))
    except ImportError as exc:
        return {"error": f"ultralytics is not installed ({exc}); pip install 'hazardscan[train]'"}


def _figures(
    out: Path,
    eval_set: EvalSet,
    scored: Scored,
    deployed: np.ndarray,
    matrix: list[list[int]],
    chosen: list[OperatingPoint] | None,
    baseline_table: MatchTable | None,
    contact: int,
) -> dict[str, Any]:
    classes = eval_set.classes
    with_gt = scored.table.classes_with_gt()
    (out / "pr").mkdir(parents=True, exist_ok=True)
    (out / "sheets").mkdir(parents=True, exist_ok=True)
    figs: dict[str, Any] = {"pr_overview": "pr_curves.png", "pr": {}, "sheets": {}}
    plots.pr_overview(out / "pr_curves.png", scored.table, classes, with_gt)
    for c in with_gt:
        thr = chosen[c].threshold if chosen else None
        name = _slug(classes[c])
        plots.pr_curve(out / "pr" / f"{name}.png", scored.table, c, classes[c], float(deployed[c]), thr, baseline_table)
        figs["pr"][classes[c]] = f"pr/{name}.png"
    plots.confusion_png(out / "confusion_matrix.png", np.asarray(matrix), [*classes, "background"])
    figs["confusion"] = "confusion_matrix.png"
    fps, misses = worst_examples(scored, deployed, contact)
    for c in eval_set.labelled:
        name, entry = _slug(classes[c]), {}
        fp_total = int(((~scored.table.tp) & (scored.table.class_id == c) & (scored.table.score >= deployed[c])).sum())
        for kind, examples, title in (
            (
                "fp",
                fps.get(c, []),
                f"{classes[c]}: highest-scored false positives at threshold {deployed[c]:.3g} ({fp_total} in all)",
            ),
            (
                "miss",
                misses.get(c, []),
                f"{classes[c]}: missed boxes the model was least sure of (threshold {deployed[c]:.3g})",
            ),
        ):
            if plots.contact_sheet(
                out / "sheets" / f"{name}_{kind}.png", eval_set, examples, title, kind, scored.preds
            ):
                entry[kind] = f"sheets/{name}_{kind}.png"
        if entry:
            figs["sheets"][classes[c]] = entry
    return figs


def _describe(
    args: argparse.Namespace,
    card: ModelCard,
    eval_set: EvalSet,
    preds: list[Prediction],
    scored: Scored,
    rect: bool = False,
) -> dict[str, Any]:
    """What was evaluated, on what, how."""
    deployed = card.thresholds()
    return {
        "model": {
            "path": str(args.model),
            "model_id": card.model_id,
            "version": card.version,
            "classes": card.classes,
            "input_size": list(card.input_size),
            "nms_iou": card.nms_iou,
            "rect": rect,
            "thresholds": {c: float(t) for c, t in zip(card.classes, deployed.tolist(), strict=True)},
        },
        "data": {
            "path": str(args.data),
            "name": eval_set.name,
            "split": args.split,
            "format": detect_format(args.data),
            "photos_per_source": {s: sum(x.source == s for x in eval_set.samples) for s in eval_set.sources},
            "labelled_classes": [card.classes[c] for c in eval_set.labelled],
            "dropped_gt": eval_set.dropped_gt,
            "unreadable_photos": sum(p.error is not None for p in preds),
            "issues": eval_set.issues[:200],
        },
        "settings": {"floor": args.floor, "iou": 0.5, "max_dets": 100, "federated": scored.federated},
    }


def _operating_points(
    args: argparse.Namespace, card: ModelCard, eval_set: EvalSet, scored: Scored, created: str
) -> tuple[list[OperatingPoint], dict[str, Any]]:
    """Per-class thresholds for the goal, written into the card with ``--write-card``."""
    chosen = choose_thresholds(scored.table, card.classes, args.thresholds, args.min_boxes)
    chosen_on = {
        "data": eval_set.name,
        "split": args.split,
        "photos": len(eval_set.samples),
        "federated": scored.federated,
        "date": created,
    }
    chosen_thr = card.thresholds().copy()
    for i, p in enumerate(chosen):
        if p.threshold is not None:
            chosen_thr[i] = p.threshold
    unscored_boxes, unscored_photos = scored.unscored_at(chosen_thr)
    section: dict[str, Any] = {
        "goal": str(args.thresholds),
        "chosen_on": chosen_on,
        "per_class": {
            p.class_name: {
                **{k: v for k, v in asdict(p).items() if k != "class_name"},
                "unscored_boxes": int(unscored_boxes[i]),
                "unscored_photos": int(unscored_photos[i]),
            }
            for i, p in enumerate(chosen)
            if i in eval_set.labelled
        },
    }
    if args.write_card:
        onnx_path, card_file = resolve_model_path(args.model)
        target = card_path_for(onnx_path, card_file)
        write_card(target, card, chosen, args.thresholds, chosen_on)
        section["written_to"] = str(target)
        logger.info("wrote thresholds for goal %s into %s", args.thresholds, target)
    return chosen, section


def _print_summary(doc: dict[str, Any], md_path: Path, json_path: Path) -> None:
    o = doc["overall"]
    print(
        f"{doc['data']['name']}: {o['photos']} photos, mAP50 {o['map50']}, mAP50-95 {o['map50_95']}, "
        f"P {o['precision']} R {o['recall']} F1 {o['f1']} at the card's thresholds"
    )
    x = doc.get("crosscheck") or {}
    if "difference" in x:
        print(
            f"cross-check: ours {x['ours_map50']} vs Ultralytics {x['ultralytics_map50']} "
            f"({100 * x['difference']:+.2f} points)"
        )
    print(f"report: {md_path} (figures: {json_path})")
    if "ab" in doc:
        print(doc["ab"]["line"])


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
        import pycocotools  # noqa: F401
    except ImportError as exc:
        print(
            f"error: {exc.name} is missing; install the evaluation extra: pip install 'hazardscan[eval]'",
            file=sys.stderr,
        )
        return EXIT_INPUT
    if args.write_card and not args.thresholds:
        print("error: --write-card needs --thresholds max_f1 | precision:P", file=sys.stderr)
        return EXIT_INPUT
    if args.nms_iou is not None and (args.write_card or not 0.0 < args.nms_iou <= 1.0):
        print(
            "error: --nms-iou must lie in (0, 1] and cannot go with --write-card (thresholds are chosen at the "
            "card's NMS IoU; release the model with --nms-iou to change it)",
            file=sys.stderr,
        )
        return EXIT_INPUT
    try:
        detector = Detector.load(args.model, threads=args.threads, rect=args.rect)
        if args.nms_iou is not None:
            detector.card = detector.card.model_copy(update={"nms_iou": args.nms_iou})
        card = detector.card
        eval_set = _load_set(args, list(card.classes))
        baseline = Detector.load(args.baseline, threads=args.threads) if args.baseline else None
    except (ModelLoadError, FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    out = args.out or Path("work/eval") / _slug(f"{card.model_id}-{card.version}_{eval_set.name}")
    out.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).isoformat(timespec="seconds")

    preds = _run_model(detector, eval_set, args, "model")
    scored = score(eval_set, preds, federated=not args.all_predictions)
    deployed = card.thresholds()
    doc: dict[str, Any] = {"created": created, **_describe(args, card, eval_set, preds, scored, detector.rect)}
    doc.update(summary(eval_set, scored, deployed, load_taxonomy()))
    flat = score(eval_set, preds, federated=False) if scored.federated else scored
    doc["overall"]["map50_all_predictions"] = _round(flat.overall.map50)
    doc["overall"]["map50_95_all_predictions"] = _round(flat.overall.map)
    chosen = None
    if args.thresholds:
        chosen, doc["operating_points"] = _operating_points(args, card, eval_set, scored, created)
    baseline_table = None
    if baseline is not None:
        b = _baseline(baseline, args, eval_set, scored)
        baseline_table = b.pop("_table")
        doc.update(b)
    doc["speed"] = _speed(detector, eval_set, preds, scored, args)
    if args.crosscheck:
        doc["crosscheck"] = _crosscheck(detector, eval_set, flat)
    doc["figures"] = _figures(
        out, eval_set, scored, deployed, doc["confusion_matrix"]["matrix"], chosen, baseline_table, args.contact
    )
    json_path, md_path = write_report(out, doc)
    _print_summary(doc, md_path, json_path)
    return EXIT_WORSE if doc.get("ab", {}).get("verdict") == "worse" else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.cli ...``: the same command without the ``hazardscan`` entry point."""
    parser = argparse.ArgumentParser(prog="hazardscan eval", description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
