from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from _builders import build_model_dir, build_tiny_yolo, encode, jpeg_with_orientation, noisy_photo, scene, tiny_card
from PIL import Image

from inference_service.imaging import DecodedImage, InvalidImageError
from inference_service.model_card import ModelLoadError
from inference_service.runtime import Detector, UnknownClassError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
# 256×256 photo → 64×64 input without padding: each grid cell is a 64-pixel square of the photo.
SQUARES = [(128, 64, 192, 128, RED), (0, 0, 64, 64, BLUE), (192, 192, 256, 256, GREEN)]
EXPECTED = {  # class id → box in photo pixels
    0: [128, 64, 192, 128],
    1: [192, 192, 256, 256],
    2: [0, 0, 64, 64],
}


def _as_dict(dets) -> dict[int, list[float]]:
    return {int(c): b.tolist() for b, c in zip(dets.xyxy, dets.class_id, strict=True)}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_detects_coloured_squares_where_they_are(detector: Detector, fmt: str):
    result = detector.detect(encode(scene(256, 256, SQUARES), fmt, quality=95))
    assert _as_dict(result.detections) == EXPECTED
    assert result.detections.score.min() > 0.99
    assert (result.width, result.height) == (256, 256)
    assert set(result.timings_ms) == {"decode", "preprocess", "infer", "postprocess"}


@pytest.mark.parametrize("orientation", [6, 8])
def test_boxes_come_back_in_the_upright_frame(detector: Detector, orientation: int):
    # Portrait 128×256 upright photo: letterboxed with 16 px side bars, so cell columns 1 and 2 cover it.
    upright = scene(128, 256, [(0, 0, 64, 64, RED), (64, 192, 128, 256, GREEN)])
    result = detector.detect(jpeg_with_orientation(upright, orientation))
    assert (result.width, result.height) == (128, 256)
    assert _as_dict(result.detections) == {0: [0, 0, 64, 64], 1: [64, 192, 128, 256]}


def test_large_jpeg_is_decoded_reduced_but_boxes_are_in_original_pixels(detector: Detector):
    photo = np.asarray(noisy_photo(1024, 1024), np.uint8) // 4 + 96  # low-saturation texture
    photo[512:768, 256:512] = RED
    result = detector.detect(encode(Image.fromarray(photo), "JPEG", quality=92))
    assert result.image.array.shape == (128, 128, 3)  # 1/8 DCT scale, both sides still >= 64
    assert _as_dict(result.detections) == {0: [256, 512, 512, 768]}


def test_threshold_override_and_class_filter_by_name(detector: Detector):
    data = encode(scene(256, 256, SQUARES), "PNG")
    assert _as_dict(detector.detect(data, classes=["fire"]).detections) == {0: EXPECTED[0]}
    assert len(detector.detect(data, classes=[]).detections) == 0  # an empty list keeps no class
    assert len(detector.detect(data, conf=0.9999).detections) == 0
    loose = detector.detect(data, conf=0.04)  # grey cells score ~0.047 for every class
    assert len(loose.detections) == 16
    with pytest.raises(UnknownClassError, match="helmet_typo"):
        detector.detect(data, classes=["helmet_typo"])


def test_batch_matches_single_and_bgr_arrays_work(detector: Detector):
    photos = [encode(scene(256, 256, SQUARES[:k]), "PNG") for k in range(4)]
    batch = detector.detect_batch(photos)
    single = [detector.detect(p) for p in photos]
    for b, s in zip(batch, single, strict=True):
        assert b.detections.equals(s.detections)
    rgb = np.asarray(scene(256, 256, SQUARES))
    bgr = DecodedImage.from_array(np.ascontiguousarray(rgb[..., ::-1]), "BGR")
    assert _as_dict(detector.detect(bgr).detections) == EXPECTED


def test_fixed_batch_model_runs_image_by_image(tmp_path: Path):
    build_tiny_yolo(tmp_path / "m" / "model.onnx", batch=1)
    (tmp_path / "m" / "card.json").write_text(json.dumps(tiny_card()), encoding="utf-8")
    fixed = Detector.load(tmp_path / "m", threads=1)
    assert not fixed.dynamic_batch
    results = fixed.detect_batch([encode(scene(256, 256, SQUARES), "PNG")] * 3)
    assert [_as_dict(r.detections) for r in results] == [EXPECTED] * 3


def test_one_session_shared_by_threads(detector: Detector):
    photos = [encode(scene(256, 256, SQUARES[: k % 4]), "PNG") for k in range(12)]
    expected = [_as_dict(detector.detect(p).detections) for p in photos]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda p: _as_dict(detector.detect(p).detections), photos))
    assert got == expected


def test_session_options_are_deliberate(detector: Detector):
    opts = detector.model.session.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_photo_alone_runs_in_a_spinning_session_with_the_same_answers(tiny_model_dir: Path):
    """``spin_alone``: a second session of the same file, spinning between ops and parked when a run returns, for a
    photo that has the model to itself; the shared session keeps sleeping."""
    detector = Detector.load(tiny_model_dir, threads=1, spin_alone=True)
    assert detector.serving["spinning"] == "alone" and detector.alone_session is not None
    alone = detector.alone_session.get_session_options()
    assert alone.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert alone.get_session_config_entry("session.force_spinning_stop") == "1"
    shared = detector.model.session.get_session_options()
    assert shared.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    staged = detector.stage([encode(scene(256, 256, SQUARES), "PNG")])
    (by_alone,) = detector.infer(staged, alone=True)
    (by_shared,) = detector.infer(staged)
    np.testing.assert_allclose(by_alone, by_shared, rtol=1e-5, atol=1e-6)
    always = Detector.load(tiny_model_dir, threads=1, spinning=True, spin_alone=True)
    assert always.alone_session is None and always.serving["spinning"] == "always"  # one session spins for all


def test_undecodable_bytes_raise(detector: Detector):
    with pytest.raises(InvalidImageError):
        detector.detect(b"")


@pytest.fixture(scope="module")
def rect_detector(tmp_path_factory: pytest.TempPathFactory) -> Detector:
    folder = build_model_dir(tmp_path_factory.mktemp("rect") / "m", dynamic_size=True, stride=16)
    return Detector.load(folder, threads=1, rect=True)


def test_rect_model_pads_to_the_stride_not_the_square(rect_detector: Detector, detector: Detector):
    # 256×128 photo → 64×32 input: a 2×4 grid, no padding rows at all; the square model pads it to 64×64.
    wide = scene(256, 128, [(192, 64, 256, 128, RED), (0, 0, 64, 64, BLUE)])
    tensor, geometry = rect_detector.input_tensor(DecodedImage.from_array(np.asarray(wide)))
    assert tensor.shape == (1, 3, 32, 64) and geometry.pad == (0, 0)
    assert detector.input_tensor(DecodedImage.from_array(np.asarray(wide)))[0].shape == (1, 3, 64, 64)
    expected = {0: [192, 64, 256, 128], 2: [0, 0, 64, 64]}
    assert _as_dict(rect_detector.detect(encode(wide, "PNG")).detections) == expected
    assert _as_dict(detector.detect(encode(wide, "PNG")).detections) == expected


def test_rect_batch_of_mixed_shapes_matches_single_calls(rect_detector: Detector):
    photos = [
        encode(scene(256, 128, [(0, 0, 64, 64, RED)]), "PNG"),  # 64×32 input
        encode(scene(128, 256, [(64, 192, 128, 256, GREEN)]), "PNG"),  # 32×64
        encode(scene(256, 256, SQUARES), "PNG"),  # 64×64
        encode(scene(256, 128, [(128, 64, 192, 128, BLUE)]), "PNG"),  # 64×32 again: same call as the first
    ]
    batch = rect_detector.detect_batch(photos)
    single = [rect_detector.detect(p) for p in photos]
    for b, s in zip(batch, single, strict=True):
        assert b.detections.equals(s.detections)
    assert _as_dict(batch[1].detections) == {1: [64, 192, 128, 256]}
    assert _as_dict(batch[2].detections) == EXPECTED
    assert _as_dict(batch[3].detections) == {2: [128, 64, 192, 128]}


def test_rect_follows_the_card_unless_asked_and_needs_a_dynamic_size_model(tmp_path: Path):
    dynamic = build_model_dir(tmp_path / "dyn", dynamic_size=True, stride=16)
    assert not Detector.load(dynamic, threads=1).rect  # the card's default: square inputs
    assert Detector.load(build_model_dir(tmp_path / "on", dynamic_size=True, stride=16, rect=True)).rect
    assert not Detector.load(
        build_model_dir(tmp_path / "off", dynamic_size=True, stride=16, rect=True), rect=False
    ).rect
    with pytest.raises(ModelLoadError, match="input is fixed at"):
        Detector.load(build_model_dir(tmp_path / "fixed"), threads=1, rect=True)
    # "auto" (the CCTV scanner's default): rect whenever the model allows, whatever the card says
    assert Detector.load(dynamic, threads=1, rect="auto").rect
    assert not Detector.load(build_model_dir(tmp_path / "fixed2"), threads=1, rect="auto").rect
    with pytest.raises(ModelLoadError, match="not a multiple of its stride 48"):
        Detector.load(build_model_dir(tmp_path / "bad", dynamic_size=True, stride=48), threads=1)
