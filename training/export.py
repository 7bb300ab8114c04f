"""Export a trained checkpoint to the ONNX files the service runs, with the model card inside.

Writes into a model folder:
  model.onnx        fp32, dynamic batch axis, fixed input size (from the training image size)
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


def fix_spatial_dims(model: onnx.ModelProto, height: int, width: int) -> onnx.ModelProto:
    """Keep the batch axis symbolic but pin height/width, then fold the shape arithmetic away."""
    import onnxslim

    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].ClearField("dim_param")
    dims[2].dim_value = height
    dims[3].ClearField("dim_param")
    dims[3].dim_value = width
    model.graph.ClearField("value_info")
    slimmed = onnxslim.slim(model)
    return slimmed if isinstance(slimmed, onnx.ModelProto) else model


def embed_card(model: onnx.ModelProto, card: dict[str, Any]) -> onnx.ModelProto:
    for prop in list(model.metadata_props):
        if prop.key == CARD_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key = CARD_KEY
    entry.value = json.dumps(card, ensure_ascii=False)
    return model


def _prepared(path: Path, size: tuple[int, int]) -> np.ndarray:
    img = decode_image(path.read_bytes(), max(size))
    return to_tensor(letterbox(img.array, size)[0], bgr=img.channels == "BGR")


class _Calibration:
    """onnxruntime CalibrationDataReader over photos prepared exactly as the service prepares them."""

    def __init__(self, images: Sequence[Path], input_name: str, size: tuple[int, int]) -> None:
        self._iter: Iterator[dict[str, np.ndarray]] = ({input_name: _prepared(p, size)} for p in images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)


def quantize_int8(fp32: Path, out: Path, calibration: Sequence[Path], size: tuple[int, int]) -> Path:
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
            _Calibration(calibration, model.graph.input[0].name, size),
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
    """Export fp32 (dynamic batch and batch-1) and int8 models with the card embedded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    height, width = card["input_size"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dyn = fix_spatial_dims(
            onnx.load(str(_ultralytics_export(pt, work, max(height, width), True, opset))), height, width
        )
        b1 = onnx.load(str(_ultralytics_export(pt, work, max(height, width), False, opset)))
        paths = {
            "fp32": out_dir / "model.onnx",
            "fp32_b1": out_dir / "model.b1.onnx",
            "int8": out_dir / "model.int8.onnx",
        }
        onnx.save(embed_card(dyn, card), str(paths["fp32"]))
        onnx.save(embed_card(b1, card), str(paths["fp32_b1"]))
    quantize_int8(paths["fp32"], paths["int8"], calibration, (height, width))
    onnx.save(embed_card(onnx.load(str(paths["int8"])), {**card, "variant": "int8"}), str(paths["int8"]))
    (out_dir / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1) + "\n")
    log.info("exported %s -> %s", pt, {k: str(v) for k, v in paths.items()})
    return paths
