"""The serving preprocessing and decoding match Ultralytics 8.4 exactly.

The only test outside ``training/`` that imports ultralytics (and torch); skipped where it is not installed.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from PIL import Image

from inference_service.imaging import letterbox, to_tensor
from inference_service.postprocess import ImageGeometry, postprocess

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="yolo-config-"))
ultralytics = pytest.importorskip("ultralytics")
torch = pytest.importorskip("torch")

from ultralytics.data.augment import LetterBox  # noqa: E402
from ultralytics.utils import ops  # noqa: E402
from ultralytics.utils.nms import non_max_suppression  # noqa: E402
from ultralytics.utils.patches import _image_open  # noqa: E402

# Importing ultralytics monkey-patches PIL.Image.open for the whole process (on an unidentified file it
# tries to pip-install pi-heif). Undo it so the other tests see the Pillow the service sees.
Image.open = _image_open

SHAPES = [(480, 640), (640, 480), (3000, 4000), (1080, 1920), (37, 501), (640, 640), (100, 60), (1, 300)]


def _ultralytics_tensor(bgr: np.ndarray, new_shape: tuple[int, int], stride: int | None = None) -> np.ndarray:
    """What Ultralytics' predictor feeds an ONNX model (``BasePredictor.preprocess``); with ``stride``, what it
    feeds a dynamic-shape model with ``rect=True`` (minimum rectangle)."""
    letterbox_ = LetterBox(
        new_shape, auto=stride is not None, scale_fill=False, scaleup=True, center=True, stride=stride or 32
    )
    im = letterbox_(image=bgr)
    im = np.stack([im])[..., ::-1].transpose((0, 3, 1, 2))
    t = torch.from_numpy(np.ascontiguousarray(im)).float()
    t /= 255
    return t.numpy()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("new_shape", "stride"),
    [((640, 640), None), ((384, 640), None), ((64, 64), None), ((416, 416), 32), ((64, 64), 16)],
)
def test_letterbox_and_tensor_are_bit_identical(shape: tuple[int, int], new_shape: tuple[int, int], stride: int | None):
    rng = np.random.default_rng(sum(shape) + new_shape[0])
    bgr = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    expected = _ultralytics_tensor(bgr, new_shape, stride)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    np.testing.assert_array_equal(to_tensor(letterbox(rgb, new_shape, stride)[0]), expected)
    np.testing.assert_array_equal(to_tensor(letterbox(bgr, new_shape, stride)[0], bgr=True), expected)


@pytest.mark.parametrize("seed", range(6))
def test_postprocess_matches_non_max_suppression_and_scale_boxes(seed: int):
    rng = np.random.default_rng(seed)
    nc, anchors = 5, 600
    h, w = SHAPES[seed % len(SHAPES)]
    new_shape = (640, 640)
    xy = rng.uniform(0, 640, (2, anchors))
    wh = rng.uniform(5, 200, (2, anchors))
    scores = rng.uniform(0, 1, (nc, anchors)) ** 3
    out = np.concatenate([xy, wh, scores]).astype(np.float32)[None]

    (ref,) = non_max_suppression(torch.from_numpy(out), conf_thres=0.25, iou_thres=0.45, max_det=300)
    ref = ref.numpy().copy()
    ref[:, :4] = ops.scale_boxes(new_shape, torch.from_numpy(ref[:, :4]), (h, w)).numpy()

    _, gain, pad = letterbox(np.zeros((h, w, 3), np.uint8), new_shape)
    geometry = ImageGeometry(gain, pad, (1.0, 1.0), (w, h))
    (dets,) = postprocess(out, [geometry], np.full(nc, 0.25, np.float32), iou=0.45)

    assert len(dets) == len(ref) > 0
    np.testing.assert_array_equal(dets.class_id, ref[:, 5].astype(np.int64))
    np.testing.assert_allclose(dets.score, ref[:, 4], rtol=0, atol=1e-6)
    np.testing.assert_allclose(dets.xyxy, ref[:, :4], rtol=0, atol=1e-3)
