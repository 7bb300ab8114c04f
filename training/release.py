"""Turn a training run into a shipped model folder: export, parity, accuracy, card.

hazardscan release --run work/runs/hazardscan-v1 --out models/hazardscan-v1 --version 1.0.0
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from inference_service.taxonomy import load_taxonomy
from training.card import DEFAULT_NMS_IOU, base_card, regroup, render_markdown
from training.export import embed_card, export_model
from training.recover import ARCHITECTURES

log = logging.getLogger(__name__)


def _split_images(data_yaml: Path, split: str, limit: int) -> list[Path]:
    data = yaml.safe_load(data_yaml.read_text())
    folder = Path(data["path"]) / data[split]
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
    step = max(1, len(photos) // limit) if limit else 1
    return photos[::step][:limit] if limit else photos


def _stage(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": run["config"]["name"],
        "start_weights": run["config"]["weights"],
        "epochs": run.get("epochs_run"),
        "wall_time_s": run.get("wall_time_s"),
        "image_size": run.get("train_args", {}).get("imgsz"),
        "torch_threads": (run.get("hardware") or {}).get("torch_threads", 1),
        "metrics": run.get("metrics"),
        **({"soup": run["soup"]} if "soup" in run else {}),
    }


def _run_folder(weights: str) -> Path:
    start = Path(weights)
    return (start if start.is_absolute() else Path(__file__).resolve().parent.parent / start).parent.parent


def architecture_of(start: Path) -> str:
    """The Ultralytics architecture (``yolov8n``, ``yolo11n``) of the checkpoint a lineage started from.

    A COCO checkpoint's name says it (``yolov8n_coco_from_int8.pt``), as does a model yaml. A recovered or taught
    start's does not (``work/recovered/v5.pt``), yet a released model's card must name its architecture or it
    cannot be recovered again: then the checkpoint's own model yaml tells, or, for an ONNX start, its card."""
    for named in (start.name.split("_")[0], start.stem):  # yolov8n_coco….pt, yolov8n.yaml (from scratch)
        if named in ARCHITECTURES:
            return named
    if start.suffix == ".onnx" and (start.parent / "card.json").exists():
        arch = json.loads((start.parent / "card.json").read_text()).get("architecture")
        if arch in ARCHITECTURES:
            return str(arch)
    elif start.suffix == ".pt" and start.exists():
        import torch

        ckpt = torch.load(start, map_location="cpu", weights_only=False)
        model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
        yaml_file = (getattr(model, "yaml", None) or {}).get("yaml_file")
        if yaml_file and Path(yaml_file).stem in ARCHITECTURES:
            return Path(yaml_file).stem
    raise ValueError(
        f"cannot tell the architecture of {start}: neither its name nor its contents say one of {sorted(ARCHITECTURES)}"
    )


def _stages(run: dict[str, Any]) -> list[dict[str, Any]]:
    """This run and every run it continued from (its start weights lie in another run's weights/).

    A uniform soup continues its first ingredient; its other ingredients (siblings trained from the same
    start) are stages too, listed before the soup, so epochs and time count every run that went into it.
    """
    stages: list[dict[str, Any]] = []
    while True:
        stages.insert(0, _stage(run))
        siblings = (run.get("soup") or {}).get("ingredients", [])[1:]
        for weights in reversed(siblings):
            stages.insert(0, _stage(json.loads((_run_folder(weights) / "run.json").read_text())))
        previous = _run_folder(run["config"]["weights"])
        if not (previous / "run.json").exists():
            return stages
        run = json.loads((previous / "run.json").read_text())


def write_card(out_dir: Path, card: dict[str, Any]) -> None:
    """card.json, README.md, and the card embedded again in every ONNX file of the folder."""
    import onnx

    (out_dir / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n")
    (out_dir / "README.md").write_text(render_markdown(card))
    for path in sorted(out_dir.glob("*.onnx")):
        variant = {**card, "variant": "int8"} if path.name.endswith(".int8.onnx") else card
        onnx.save(embed_card(onnx.load(str(path)), variant), str(path))


def release(
    run_dir: Path,
    out_dir: Path,
    version: str,
    parity_photos: int = 40,
    calib_photos: int = 120,
    skip_map: bool = False,
    nms_iou: float = DEFAULT_NMS_IOU,
    own_group: Sequence[str] = (),
    calibration_data: Path | None = None,
) -> dict[str, Any]:
    """Export a training run as a model folder. ``own_group``: classes given a label group of their own (a context
    class beside the hazards), so that they never take an anchor from the others. ``calibration_data``: a
    data.yaml whose training photos calibrate the int8 file instead of the run's (``teach --branch``: the start
    model's own, so the frozen layers get the start model's int8 ranges)."""
    from training.parity import tensor_parity, ultralytics_map

    run = json.loads((run_dir / "run.json").read_text())
    data_yaml = Path(run["dataset"]["data_yaml"])
    classes = list(yaml.safe_load(data_yaml.read_text())["names"].values())
    unknown = sorted(set(own_group) - set(classes))
    if unknown:
        raise ValueError(f"--own-group names classes the run does not have: {unknown}; it has {classes}")
    imgsz = int(run["train_args"]["imgsz"])
    stages = _stages(run)
    arch = architecture_of(Path(stages[0]["start_weights"]))
    card = base_card(
        model_id=out_dir.name,
        version=version,
        architecture=arch,
        classes=classes,
        input_size=(imgsz, imgsz),
        taxonomy=load_taxonomy(),
        dataset_card=run["dataset"].get("card"),
        run=run,
        nms_iou=nms_iou,
    )
    if groups := regroup([], classes, own_group):
        card["label_groups"] = groups
    card["training"].update(
        stages=stages,
        start_weights=stages[0]["start_weights"],
        epochs=sum(st["epochs"] or 0 for st in stages),
        wall_time_s=round(sum(st["wall_time_s"] or 0 for st in stages), 1),
    )
    pt = run_dir / "weights" / "best.pt"
    paths = export_model(pt, out_dir, card, _split_images(calibration_data or data_yaml, "train", calib_photos))
    val_photos = _split_images(data_yaml, "val", parity_photos)
    metrics: dict[str, Any] = {
        "parity": {
            "fp32": tensor_parity(pt, paths["fp32"], val_photos),
            "int8": tensor_parity(pt, paths["int8"], val_photos),
        }
    }
    if not skip_map:
        work = run_dir / "release_val"
        maps = {
            name: ultralytics_map(p, data_yaml, imgsz, work)
            for name, p in (("pytorch", pt), ("onnx_fp32", paths["fp32_b1"]), ("onnx_int8", paths["int8"]))
        }
        metrics["parity"]["ultralytics_val"] = maps
        metrics["parity"]["mAP50_diff_points_fp32"] = round(
            100 * (maps["onnx_fp32"]["mAP50"] - maps["pytorch"]["mAP50"]), 2
        )
        metrics["parity"]["mAP50_diff_points_int8"] = round(
            100 * (maps["onnx_int8"]["mAP50"] - maps["pytorch"]["mAP50"]), 2
        )
    card["metrics"] = metrics
    write_card(out_dir, card)
    return card


def attach_eval(model_dir: Path, report_json: Path) -> dict[str, Any]:
    """Copy the served-pipeline evaluation (``hazardscan eval``'s report.json, or ``evaluation.robustness``'s
    JSON) into the card."""
    card = json.loads((model_dir / "card.json").read_text())
    report = json.loads(report_json.read_text())
    if "degradations" in report:
        # alarms per class under degraded photos (`python -m evaluation.robustness --out`)
        card["metrics"]["robustness"] = {k: report[k] for k in ("data", "photos", "classes", "degradations")}
        write_card(model_dir, card)
        return card
    overall = report["overall"]
    if report["model"].get("rect") and not card.get("rect"):
        # the same model scored with minimum-rectangle inputs (`eval --rect`): kept beside the main figures
        card["metrics"]["val_rect"] = {
            "mAP50": overall["map50"],
            "mAP50-95": overall["map50_95"],
            "mAP50_all_predictions": overall["map50_all_predictions"],
            "per_class_ap50": {c["class"]: c["ap50"] for c in report["per_class"]},
            "ab_vs_square": report.get("ab", {}).get("line"),
            "speed": report.get("speed"),
        }
        write_card(model_dir, card)
        return card
    card["metrics"]["val"] = {
        "source": f"served ONNX pipeline, pycocotools, {report['data']['name']} ({overall['photos']} photos), "
        "federated scoring (a photo's unlabelled classes are not scored)",
        "mAP50": overall["map50"],
        "mAP50-95": overall["map50_95"],
        "mAP50_all_predictions": overall["map50_all_predictions"],
        "mAP50-95_all_predictions": overall["map50_95_all_predictions"],
        "precision": overall["precision"],
        "recall": overall["recall"],
        "f1": overall["f1"],
        "per_class": {
            c["class"]: {k: c[k] for k in ("gt", "ap50", "ap50_95", "precision", "recall", "f1")}
            for c in report["per_class"]
        },
        "crosscheck": {k: report["crosscheck"].get(k) for k in ("ours_map50", "ultralytics_map50", "difference")},
        "speed": report.get("speed"),
    }
    write_card(model_dir, card)
    return card


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, help="training run folder (holds run.json, weights/best.pt)")
    p.add_argument("--out", type=Path, required=True, help="model folder to write, e.g. models/hazardscan-v1")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--skip-map", action="store_true", help="skip the Ultralytics mAP parity (faster)")
    p.add_argument(
        "--nms-iou",
        type=float,
        default=DEFAULT_NMS_IOU,
        help=f"the card's NMS IoU (default {DEFAULT_NMS_IOU}); choose it with `eval --split train --nms-iou X`",
    )
    p.add_argument(
        "--attach-eval",
        type=Path,
        metavar="REPORT_JSON",
        help="only copy a `hazardscan eval` report.json (or `python -m evaluation.robustness --out` JSON) into the "
        "model card of --out",
    )
    p.add_argument(
        "--own-group",
        default="",
        metavar="CLASSES",
        help="comma-separated classes decoded in a label group of their own (e.g. person beside the hazards): an "
        "anchor answers with its best class of each group",
    )


def run(args: argparse.Namespace) -> int:
    if args.attach_eval:
        attach_eval(args.out, args.attach_eval)
        return 0
    if args.run is None:
        sys.stderr.write("hazardscan release: --run is required (unless --attach-eval)\n")
        return 2
    if not 0.0 < args.nms_iou <= 1.0:
        sys.stderr.write(f"hazardscan release: --nms-iou must lie in (0, 1], got {args.nms_iou}\n")
        return 2
    own_group = [c for c in args.own_group.split(",") if c]
    try:
        card = release(
            args.run, args.out, args.version, skip_map=args.skip_map, nms_iou=args.nms_iou, own_group=own_group
        )
    except ValueError as e:
        sys.stderr.write(f"hazardscan release: {e}\n")
        return 2
    sys.stdout.write(json.dumps(card["metrics"], ensure_ascii=False, indent=1) + "\n")
    return 0
