"""A COCO checkpoint as a teacher for pseudo-labels: exported to ONNX with a card, so the served pipeline
(``Detector``) and ``hazardscan partial-labels --model`` run it like any shipped model.

    python -m training.teacher --weights ../shared/weights/yolov8n_coco_from_int8.pt --out work/teacher/yolov8n-coco
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import onnx

from training.export import _ultralytics_export, embed_card, stride_of
from training.offline import prepare_offline

log = logging.getLogger(__name__)


def export_teacher(weights: Path, out_dir: Path, imgsz: int = 640, nms_iou: float = 0.6) -> dict[str, Any]:
    """Write ``model.onnx`` (dynamic batch and size) and ``card.json`` for ``weights``; returns the card."""
    prepare_offline(out_dir / ".ultralytics")
    from ultralytics import YOLO

    names = YOLO(str(weights)).names
    card: dict[str, Any] = {
        "model_id": f"teacher-{weights.stem}",
        "version": "0",
        "architecture": weights.stem.split("_")[0],
        "classes": [str(names[i]) for i in sorted(names)],
        "input_size": [imgsz, imgsz],
        "conf_threshold": 0.25,
        "nms_iou": nms_iou,
        "data": {"note": f"COCO teacher {weights.name}, used only to pseudo-label photos"},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(str(_ultralytics_export(weights, Path(tmp), imgsz, True, 17)))
    card["stride"] = stride_of(model)
    onnx.save(embed_card(model, card), str(out_dir / "model.onnx"))
    (out_dir / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--imgsz", type=int, default=640)
    args = p.parse_args(argv)
    card = export_teacher(args.weights, args.out, args.imgsz)
    sys.stdout.write(f"{args.out}: {len(card['classes'])} classes\n")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
