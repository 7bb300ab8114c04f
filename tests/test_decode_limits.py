"""Decoding within limits: minimum size, decode memory per photo and process-wide, reduced decodes of large
photos, corrupt JPEG data reported instead of scored silently."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from _builders import encode, noisy_photo, scene
from PIL import Image, ImageOps

from inference_service.budget import MB, BudgetBusyError, DecodeBudget
from inference_service.imaging import (
    REDUCE_ABOVE_PIXELS,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    decode_cost,
    decode_image,
)


def _pillow_reference(data: bytes) -> np.ndarray:
    """What Pillow alone makes of a JPEG: load, EXIF transpose, RGB."""
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_decode_is_bit_identical_to_pillow_in_every_orientation(orientation: int):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(noisy_photo(200, 120), "JPEG", quality=90, exif=exif.tobytes())
    out = decode_image(data)
    assert np.array_equal(out.array, _pillow_reference(data))
    assert (out.width, out.height) == ((120, 200) if orientation >= 5 else (200, 120))
    assert not out.corrupt


@pytest.mark.parametrize(("size", "target"), [((1920, 1080), 416), ((4000, 3000), 416), ((1000, 750), 64)])
def test_reduced_jpeg_decode_is_bit_identical_to_pillow_draft(size: tuple[int, int], target: int):
    data = encode(noisy_photo(*size), "JPEG", quality=85)
    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (-(-size[0] * target // max(size)), -(-size[1] * target // max(size))))
    assert img.size != size  # drafted to a reduced scale
    assert np.array_equal(decode_image(data, target).array, np.asarray(img.convert("RGB")))


def _damaged(data: bytes, fill: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + fill + data[mid + len(fill) :]


@pytest.mark.parametrize(
    "fill",
    [b"\0" * 2000, bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8))],
    ids=["zeros", "random"],
)
def test_corrupt_jpeg_entropy_data_is_decoded_and_flagged(fill: bytes):
    data = encode(noisy_photo(640, 480), "JPEG", quality=90)
    assert not decode_image(data).corrupt
    out = decode_image(_damaged(data, fill), 160)
    assert out.corrupt and out.array.shape == (120, 160, 3)  # at its DCT scale, as an intact one


def test_a_cut_jpeg_is_refused_as_truncated():
    data = encode(noisy_photo(640, 480), "JPEG", quality=90)
    with pytest.raises(InvalidImageError, match="truncated") as info:
        decode_image(data[: len(data) // 2])
    assert "tjDecompress" not in info.value.message


@pytest.mark.parametrize(("size", "refused"), [((1, 1), True), ((31, 400), True), ((32, 32), False)])
def test_minimum_photo_side(size: tuple[int, int], refused: bool):
    data = encode(Image.new("RGB", size, (255, 0, 0)), "PNG")
    if refused:
        with pytest.raises(ImageTooSmallError, match="at least 32 pixels"):
            decode_image(data, min_side=32)
    else:
        assert decode_image(data, min_side=32).array.shape == (size[1], size[0], 3)


def test_a_photo_whose_decode_needs_too_much_memory_is_refused_before_decoding():
    data = encode(scene(2000, 1500, []), "PNG")  # 3 MP: 24 MB to decode, a few KB to send
    assert decode_cost("PNG", "RGB", 2000, 1500, 416) == 2000 * 1500 * 8
    with pytest.raises(ImageTooLargeError, match=r"needs about 23 MB; the limit is 10 MB"):
        decode_image(data, 416, max_decode_bytes=10 * MB)
    jpeg = encode(noisy_photo(2000, 1500), "JPEG")  # decoded at 1/4 scale: well under the limit
    assert decode_image(jpeg, 416, max_decode_bytes=10 * MB).array.shape == (375, 500, 3)


def test_large_non_jpeg_photos_are_box_reduced_and_small_ones_are_not():
    big = scene(4000, 2500, [(0, 0, 400, 400, (255, 0, 0))])
    assert REDUCE_ABOVE_PIXELS < 4000 * 2500
    out = decode_image(encode(big, "PNG"), 416)
    assert out.array.shape == (278, 445, 3)  # reduced by 9: still covers the 416×260 letterbox
    assert (out.width, out.height) == (4000, 2500) and out.array[10, 10].tolist() == [255, 0, 0]
    small = decode_image(encode(scene(1600, 1200, []), "PNG"), 416)
    assert small.array.shape == (1200, 1600, 3)


def test_decode_budget_bounds_bytes_in_flight_across_threads():
    budget = DecodeBudget(3 * MB, wait_s=30)
    inside = threading.Barrier(3, timeout=30)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with budget.hold(MB):
                inside.wait()  # three holders of 1 MB fit together
            for _ in range(50):
                with budget.hold(2 * MB):
                    assert budget.in_use <= budget.capacity
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and budget.in_use == 0 and budget.peak == 3 * MB


def test_a_spent_budget_refuses_after_its_wait():
    budget = DecodeBudget(MB, wait_s=0.01)
    with budget.hold(MB), pytest.raises(BudgetBusyError, match="retry"):
        decode_image(encode(noisy_photo(64, 64), "JPEG"), budget=budget)
    assert budget.in_use == 0
    assert decode_image(encode(noisy_photo(64, 64), "JPEG"), budget=budget).array.shape == (64, 64, 3)


def test_a_batch_shares_one_request_decode_budget(tiny_model_dir, taxonomy):
    from inference_service.runtime import Detector
    from inference_service.scan import Scanner

    big = encode(scene(1000, 1000, []), "PNG")  # 8 MB to decode
    detector = Detector.load(tiny_model_dir, threads=1, max_decode_bytes=20 * MB)
    results = Scanner(detector, taxonomy).scan_each([big, big, encode(noisy_photo(640, 480), "JPEG"), big])
    assert [type(r).__name__ for r in results] == ["ScanResult", "ScanResult", "ScanResult", "ImageTooLargeError"]
    assert "send this one in another request" in results[3].message  # type: ignore[union-attr]


@pytest.mark.parametrize("orientation", [1, 6, 8])
@pytest.mark.parametrize("reduce_above", [10**9, 100_000])  # as is, and box-reduced like a large photo
def test_webp_decodes_to_the_same_pixels_as_pillow(orientation: int, reduce_above: int, monkeypatch):
    # still opaque WebPs go through OpenCV's libwebp, which lets go of the GIL; the pixels must not change
    from inference_service import imaging

    monkeypatch.setattr(imaging, "REDUCE_ABOVE_PIXELS", reduce_above)
    calls: list[int] = []
    real = imaging._decode_webp
    monkeypatch.setattr(imaging, "_decode_webp", lambda *a: calls.append(1) or real(*a))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(noisy_photo(640, 480), "WEBP", quality=80, exif=exif.tobytes())
    decoded = imaging.decode_image(data, target=160)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        expected = img.reduce(4) if reduce_above < 640 * 480 else img
        expected = np.asarray(ImageOps.exif_transpose(expected).convert("RGB"))
    assert calls == [1]  # through OpenCV
    assert decoded.format == "WEBP" and np.array_equal(decoded.array, expected)
    assert (decoded.width, decoded.height) == ((480, 640) if orientation in (6, 8) else (640, 480))


def test_a_cut_webp_is_refused():
    data = encode(noisy_photo(320, 240), "WEBP", quality=80)
    with pytest.raises(InvalidImageError):
        decode_image(data[: len(data) // 2])
