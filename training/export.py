"""Export a trained checkpoint to the ONNX files the service runs, with the model card inside.

Writes into a model folder:
  model.onnx        fp32, dynamic batch, height and width: the service pads each photo only to the next
                    multiple of the stride (a 16:9 frame runs at 416×256), up to the training image size
  model.b1.onnx     fp32, batch fixed at 1 (for runtimes that want static shapes)
  model.int8.onnx   static int8 (QDQ), calibrated on training photos; the detection head stays fp32
  card.json         the model card (also embedded in every ONNX file as metadata ``hazardscan_card``)
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from inference_service.imaging import decode_image, letterbox, to_tensor
from training.offline import prepare_offline

log = logging.getLogger(__name__)
CARD_KEY = "hazardscan_card"


def _ultralytics_export(pt: Path, workdir: Path, imgsz: int, dynamic: bool, opset: int) -> Path:
    prepare_offline(workdir / ".ultralytics")
    from ultralytics import YOLO

    local = workdir / ("dyn" if dynamic else "b1") / pt.name
    local.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pt, local)
    out = YOLO(str(local)).export(
        format="onnx", imgsz=imgsz, dynamic=dynamic, simplify=True, opset=opset, batch=1, device="cpu"
    )
    return Path(out)


def stride_of(model: onnx.ModelProto) -> int:
    """The model's largest stride from Ultralytics' export metadata (32 for YOLOv8/11 detectors)."""
    meta = {p.key: p.value for p in model.metadata_props}
    value = meta.get("stride", "32")
    return int(value) if value.isdigit() else 32


def embed_card(model: onnx.ModelProto, card: dict[str, Any]) -> onnx.ModelProto:
    for prop in list(model.metadata_props):
        if prop.key == CARD_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = CARD_KEY
    entry.value = json.dumps(card, ensure_ascii=False)
    return model


def _prepared(path: Path, size: tuple[int, int], stride: int | None) -> np.ndarray:
    img = decode_image(path.read_bytes(), max(size))
    return to_tensor(letterbox(img.array, size, stride)[0], bgr=img.channels == "BGR")


class _Calibration:
    """onnxruntime CalibrationDataReader over photos prepared exactly as the service prepares them."""

    def __init__(self, images: Sequence[Path], input_name: str, size: tuple[int, int], stride: int | None) -> None:
        self._iter: Iterator[dict[str, np.ndarray]] = ({input_name: _prepared(p, size, stride)} for p in images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)


def quantize_int8(
    fp32: Path, out: Path, calibration: Sequence[Path], size: tuple[int, int], stride: int | None = None
) -> Path:
    """Static int8 of ``fp32``; ``stride``: calibrate on minimum-rectangle inputs (a dynamic-size model)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(str(fp32))
    # The head decodes boxes (pixel range) and scores (0..1) into one tensor: keep it in fp32.
    head = [n.name for n in model.graph.node if n.name.startswith("/model.22/") and n.op_type != "Conv"]
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            _Calibration(calibration, model.graph.input[0].name, size, stride),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=head,
        )
    return out


def export_model(
    pt: Path,
    out_dir: Path,
    card: dict[str, Any],
    calibration: Sequence[Path],
    opset: int = 17,
) -> dict[str, Path]:
    """Export fp32 (dynamic batch and size, and batch-1 at the full size) and int8 models with the card embedded.

    Sets ``card["stride"]`` from the export."""
    out_dir.mkdir(parents=True, exist_ok=True)
    height, width = card["input_size"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dyn = onnx.load(str(_ultralytics_export(pt, work, max(height, width), True, opset)))
        card["stride"] = stride_of(dyn)
        b1 = onnx.load(str(_ultralytics_export(pt, work, max(height, width), False, opset)))
        paths = {
            "fp32": out_dir / "model.onnx",
            "fp32_b1": out_dir / "model.b1.onnx",
            "int8": out_dir / "model.int8.onnx",
        }
        onnx.save(embed_card(dyn, card), str(paths["fp32"]))
        onnx.save(embed_card(b1, card), str(paths["fp32_b1"]))
    quantize_int8(paths["fp32"], paths["int8"], calibration, (height, width), card["stride"])
    onnx.save(embed_card(onnx.load(str(paths["int8"])), {**card, "variant": "int8"}), str(paths["int8"]))
    (out_dir / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n")
    log.info("exported %s -> %s", pt, {k: str(v) for k, v in paths.items()})
    return paths
