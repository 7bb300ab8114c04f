"""Tiny models and synthetic photos for the tests (no torch, no network).

The tiny detector keeps the exact Ultralytics YOLO detection contract: input ``images`` float32
``[B, 3, S, S]`` (dynamic batch), output ``output0`` ``[B, 4 + 3, G*G]``; with ``rect=True`` the input is
``[B, 3, H, W]`` for any multiple of the cell size (like an Ultralytics ``dynamic=True`` export) and the grid
follows it. It average-pools the image into a
``G×G`` grid; each cell emits a box exactly covering the cell and three class scores from the cell's mean
colour: ``sigmoid(10 * (own channel - mean of the other two) - 3)``. Class 0 is red, 1 green, 2 blue, so a
pure red square covering a cell yields class 0 at that cell with score ~0.999; grey gives ~0.047.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

CLASSES = ["fire", "smoke", "no_helmet"]  # red, green, blue
SIZE = 64
GRID = 4
CELL = SIZE // GRID
GAIN, BIAS = 10.0, -3.0


def tiny_card(**overrides: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "model_id": "tiny-rgb",
        "version": "test-1",
        "classes": CLASSES,
        "input_size": [SIZE, SIZE],
        "conf_threshold": 0.25,
        "class_thresholds": {"no_helmet": 0.5},
        "nms_iou": 0.5,
        "taxonomy_version": None,
        "metrics": {"mAP50": 0.5},
        "data": {"train": "synthetic"},
    }
    card.update(overrides)
    return card


def _rect_graph(batch: int | str) -> onnx.GraphProto:
    """The same detector for a symbolic height and width: cell centres come from running sums over the grid."""
    nc = len(CLASSES)
    weight = np.full((nc, nc, 1, 1), -GAIN / 2, np.float32)
    for c in range(nc):
        weight[c, c] = GAIN
    inits = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(np.full(nc, BIAS, np.float32), "b"),
        numpy_helper.from_array(np.array([0, nc, -1], np.int64), "score_shape"),
        numpy_helper.from_array(np.array([0, 4, -1], np.int64), "box_shape"),
        numpy_helper.from_array(np.array([0], np.int64), "c0"),
        numpy_helper.from_array(np.array([1], np.int64), "c1"),
        numpy_helper.from_array(np.array(2, np.int64), "axis_y"),
        numpy_helper.from_array(np.array(3, np.int64), "axis_x"),
        numpy_helper.from_array(np.array(0.0, np.float32), "f0"),
        numpy_helper.from_array(np.array(1.0, np.float32), "f1"),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        numpy_helper.from_array(np.array(float(CELL), np.float32), "cell"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
        helper.make_node("Conv", ["pooled", "w", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
        helper.make_node("Reshape", ["probs", "score_shape"], ["scores"]),
        helper.make_node("Slice", ["pooled", "c0", "c1", "c1"], ["chan0"]),
        helper.make_node("Mul", ["chan0", "f0"], ["zeros"]),
        helper.make_node("Add", ["zeros", "f1"], ["ones"]),
        helper.make_node("CumSum", ["ones", "axis_x"], ["col"]),
        helper.make_node("CumSum", ["ones", "axis_y"], ["row"]),
        helper.make_node("Sub", ["col", "half"], ["col_c"]),
        helper.make_node("Sub", ["row", "half"], ["row_c"]),
        helper.make_node("Mul", ["col_c", "cell"], ["cx"]),
        helper.make_node("Mul", ["row_c", "cell"], ["cy"]),
        helper.make_node("Mul", ["ones", "cell"], ["side"]),
        helper.make_node("Concat", ["cx", "cy", "side", "side"], ["xywh_grid"], axis=1),
        helper.make_node("Reshape", ["xywh_grid", "box_shape"], ["xywh"]),
        helper.make_node("Concat", ["xywh", "scores"], ["output0"], axis=1),
    ]
    return helper.make_graph(
        nodes,
        "tiny_yolo_rect",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, "height", "width"])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 4 + nc, "anchors"])],
        inits,
    )


def build_tiny_yolo(
    path: Path, *, batch: int | str = "batch", metadata: dict[str, str] | None = None, rect: bool = False
) -> Path:
    """Write the tiny YOLO-contract ONNX model to ``path`` and return it (``rect``: symbolic height/width)."""
    nc = len(CLASSES)
    anchors = GRID * GRID
    weight = np.full((nc, nc), -GAIN / 2, np.float32)
    np.fill_diagonal(weight, GAIN)
    ys, xs = np.divmod(np.arange(anchors), GRID)
    boxes = np.stack(
        [xs * CELL + CELL / 2, ys * CELL + CELL / 2, np.full(anchors, CELL), np.full(anchors, CELL)]
    ).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(np.full(nc, BIAS, np.float32), "b"),
        numpy_helper.from_array(np.array([0, nc, -1], np.int64), "shape"),
        numpy_helper.from_array(np.zeros((4, nc), np.float32), "zero"),
        numpy_helper.from_array(boxes, "boxes"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["images"], ["pooled"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
        helper.make_node("Reshape", ["pooled", "shape"], ["cells"]),
        helper.make_node("Transpose", ["cells"], ["cells_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["cells_t", "w"], ["logits"]),
        helper.make_node("Add", ["logits", "b"], ["logits_b"]),
        helper.make_node("Sigmoid", ["logits_b"], ["probs"]),
        helper.make_node("Transpose", ["probs"], ["scores"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["zero", "scores"], ["zeros"]),
        helper.make_node("Add", ["zeros", "boxes"], ["xywh"]),
        helper.make_node("Concat", ["xywh", "scores"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, 4 + nc, anchors])],
        inits,
    )
    if rect:
        graph = _rect_graph(batch)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def build_model_dir(folder: Path, *, dynamic_size: bool = False, **card_overrides: Any) -> Path:
    build_tiny_yolo(folder / "model.onnx", rect=dynamic_size)
    (folder / "card.json").write_text(json.dumps(tiny_card(**card_overrides)), encoding="utf-8")
    return folder


def scene(width: int, height: int, squares: list[tuple[int, int, int, int, tuple[int, int, int]]]) -> Image.Image:
    """Grey photo with filled rectangles ``(x1, y1, x2, y2, rgb)``."""
    arr = np.full((height, width, 3), 114, np.uint8)
    for x1, y1, x2, y2, rgb in squares:
        arr[y1:y2, x1:x2] = rgb
    return Image.fromarray(arr)


def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def jpeg_with_orientation(upright: Image.Image, orientation: int) -> bytes:
    """JPEG whose stored pixels need EXIF ``orientation`` (6 or 8) applied to look like ``upright``."""
    undo = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    stored = upright.transpose(undo)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def png_declaring(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header declares ``width × height`` (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def noisy_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth gradients plus noise: compresses roughly like a real photo."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(height // 64, 2), max(width // 64, 2), 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), np.int16)
    noise = rng.integers(-24, 25, (height, width, 3), dtype=np.int16)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def fire_only_dataset(tmp_path: Path) -> Any:
    """A built dataset (``training.dataset.BuiltDataset``) of two sources: ``fireonly`` (4 photos, each with a
    labelled red fire square and an unlabelled green smoke square) and ``smokeonly`` (1 photo)."""
    from inference_service.taxonomy import load_taxonomy
    from training.dataset import build_dataset
    from training.importer import SourceSpec, import_all

    root = tmp_path / "sets" / "fireonly"
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    for i in range(4):
        # red square = fire (labelled), green square = smoke (this source never labels smoke)
        img = scene(64, 64, [(0, 0, 16, 16, (255, 0, 0)), (32, 32, 48, 48, (0, 255, 0))])
        noise = np.random.default_rng(i).integers(60, 170, (16, 64, 3), dtype=np.uint8)  # distinct photos
        arr = np.array(img)
        arr[48:64] = noise
        Image.fromarray(arr).save(root / "images" / f"{i}.png")
        (root / "labels" / f"{i}.txt").write_text("0 0.125 0.125 0.25 0.25\n")
    other = tmp_path / "sets" / "smokeonly"
    (other / "labels").mkdir(parents=True)
    (other / "images").mkdir()
    scene(64, 64, [(32, 32, 48, 48, (0, 255, 0))]).save(other / "images" / "s.png")
    (other / "labels" / "s.txt").write_text("0 0.625 0.625 0.25 0.25\n")
    specs = [
        SourceSpec.from_dict(
            {
                "name": "fireonly",
                "root": "fireonly",
                "images": ["images/*.png"],
                "names": ["f"],
                "class_map": {"f": "fire"},
            }
        ),
        SourceSpec.from_dict(
            {
                "name": "smokeonly",
                "root": "smokeonly",
                "images": ["images/*.png"],
                "names": ["s"],
                "class_map": {"s": "smoke"},
            }
        ),
    ]
    return build_dataset(import_all(specs, tmp_path / "sets", load_taxonomy()), tmp_path / "ds", val_fraction=0.25)
