from __future__ import annotations

import cv2
import numpy as np
import pytest
from _builders import encode, jpeg_with_orientation, noisy_photo, png_declaring, scene
from PIL import Image

from inference_service.imaging import (
    LOW_CONTRAST,
    DecodedImage,
    ImageTooLargeError,
    InvalidImageError,
    UnsupportedImageError,
    decode_for_display,
    decode_image,
    letterbox,
    letterbox_tensor,
    photo_warnings,
    place,
    to_tensor,
)

RED = (255, 0, 0)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_decodes_supported_formats(fmt: str):
    img = scene(96, 64, [(0, 0, 32, 32, RED)])
    decoded = decode_image(encode(img, fmt, quality=95))
    assert (decoded.width, decoded.height) == (96, 64)
    assert decoded.array.shape == (64, 96, 3) and decoded.array.dtype == np.uint8
    assert decoded.array[8, 8, 0] > 200 and decoded.array[8, 8, 1] < 60  # red stays red: RGB order
    assert decoded.scale_x == decoded.scale_y == 1.0


@pytest.mark.parametrize(
    ("size", "target", "decoded"),
    [
        ((1024, 768), 64, (128, 96)),  # 1/8: still covers the 64×48 letterboxed image
        ((1024, 768), 300, (512, 384)),  # 1/2: 1/4 (256×192) would be smaller than 300×225
        ((1024, 768), 600, (1024, 768)),  # 1/2 (512×384) would be smaller than 600×450: no reduction
        ((4000, 3000), 640, (1000, 750)),  # phone photo for a 640 model: 1/4
        ((1920, 1080), 640, (960, 540)),  # 1080p for a 640 model: 1/2 still covers 640×360
        ((1000, 750), 64, (125, 94)),  # odd sizes round up
        ((600, 40), 64, (75, 5)),  # long thin strip: 1/8 still covers 64×5
        ((100, 80), 640, (100, 80)),  # smaller than the model input: full size (the letterbox upscales)
        ((1024, 768), None, (1024, 768)),  # no target: full size
    ],
)
def test_jpeg_decodes_at_reduced_scale_but_never_below_the_letterboxed_size(size, target, decoded):
    data = encode(noisy_photo(*size), "JPEG", quality=90)
    out = decode_image(data, target)
    if target:  # the letterbox never has to upsample a DCT-reduced decode
        r = target / max(size)
        assert min(out.array.shape[1], size[0]) >= min(round(size[0] * r), size[0])
        assert min(out.array.shape[0], size[1]) >= min(round(size[1] * r), size[1])
    assert (out.array.shape[1], out.array.shape[0]) == decoded
    assert (out.width, out.height) == size
    assert out.scale_x == pytest.approx(size[0] / decoded[0]) and out.scale_y == pytest.approx(size[1] / decoded[1])


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotation_gives_upright_pixels_and_size(orientation: int):
    upright = scene(128, 256, [(0, 0, 64, 64, RED)])  # red block top-left of a portrait photo
    out = decode_image(jpeg_with_orientation(upright, orientation), target=64)
    assert (out.width, out.height) == (128, 256)
    assert out.array.shape == (64, 32, 3)  # DCT-reduced by 4, upright
    assert out.array[5, 5, 0] > 200 and out.array[50, 25, 0] < 150


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff",  # IFD claims 65535 entries in 2 bytes
        b"Exif\x00\x00MM\x00*\xff\xff\xff\xff",  # IFD offset far past the end
        b"garbage that is not exif at all",
    ],
)
def test_broken_exif_is_ignored(exif: bytes):
    out = decode_image(encode(scene(40, 20, []), "JPEG", exif=exif))
    assert (out.width, out.height) == (40, 20)


def test_failing_exif_transpose_falls_back_to_stored_orientation(monkeypatch: pytest.MonkeyPatch):
    def boom(image: Image.Image) -> Image.Image:
        raise SyntaxError("broken IFD")

    monkeypatch.setattr("inference_service.imaging.ImageOps.exif_transpose", boom)
    exif = Image.Exif()
    exif[0x0112] = 6
    png = encode(scene(256, 128, []), "PNG", exif=exif.tobytes())  # Pillow applies orientation to non-JPEGs
    out = decode_image(png)
    assert (out.width, out.height) == (256, 128) and out.array.shape == (128, 256, 3)


def test_absurd_orientation_is_ignored():
    exif = Image.Exif()
    exif[0x0112] = 99
    out = decode_image(encode(scene(40, 20, []), "JPEG", exif=exif.tobytes()))
    assert (out.width, out.height) == (40, 20) and out.array.shape == (20, 40, 3)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"", InvalidImageError, "empty"),
        (b"hello, this is a text file\n", UnsupportedImageError, "text"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", UnsupportedImageError, "PDF"),
        (encode(scene(8, 8, []), "GIF"), UnsupportedImageError, "GIF"),
        (encode(scene(8, 8, []), "BMP"), UnsupportedImageError, "BMP"),
        (b"\x00\x01\x02\x03\xff\xfe" * 50, UnsupportedImageError, "not a recognised image"),
        (encode(scene(8, 8, []), "JPEG")[:12], InvalidImageError, "JPEG but its header is corrupt"),
        (encode(noisy_photo(256, 256), "JPEG")[:3000], InvalidImageError, "truncated"),
        (encode(noisy_photo(256, 256), "PNG")[:3000], InvalidImageError, "truncated"),
        (png_declaring(20000, 20000), ImageTooLargeError, "too many pixels"),
        (png_declaring(8000, 8000), ImageTooLargeError, r"64\.0 megapixels"),
    ],
)
def test_bad_input_raises_typed_error_with_message(data: bytes, error: type[Exception], match: str):
    with pytest.raises(error, match=match) as info:
        decode_image(data, target=64)
    assert info.value.message  # type: ignore[attr-defined]


def test_pixel_limit_is_configurable():
    data = encode(scene(100, 100, []), "PNG")
    with pytest.raises(ImageTooLargeError, match=r"limit is 0\.005 megapixels"):
        decode_image(data, max_pixels=5_000)


@pytest.mark.parametrize(
    ("shape", "new", "unpadded", "pad", "stride", "out_shape"),
    [
        ((480, 640), (640, 640), (640, 480), (0, 80), None, (640, 640)),  # landscape: pad top/bottom
        ((640, 480), (640, 640), (480, 640), (80, 0), None, (640, 640)),  # portrait: pad left/right
        ((100, 100), (640, 640), (640, 640), (0, 0), None, (640, 640)),  # upscales (scaleup=True)
        ((3000, 4000), (640, 640), (640, 480), (0, 80), None, (640, 640)),
        (
            (1, 3000),
            (64, 64),
            (64, 1),
            (0, 31),
            None,
            (64, 64),
        ),  # thin images keep one pixel; odd pad: 31 top, 32 bottom
        ((1080, 1920), (384, 640), (640, 360), (0, 12), None, (384, 640)),  # non-square input
        # minimum rectangle (a dynamic-shape model): pad only to the next multiple of the stride
        ((1080, 1920), (416, 416), (416, 234), (0, 11), 32, (256, 416)),  # 16:9 frame: 182 rows of padding become 22
        ((3000, 4000), (416, 416), (416, 312), (0, 4), 32, (320, 416)),  # 4:3 phone photo
        ((4000, 3000), (416, 416), (312, 416), (4, 0), 32, (416, 320)),  # portrait phone photo
        ((640, 640), (416, 416), (416, 416), (0, 0), 32, (416, 416)),  # square: nothing changes
        ((1, 3000), (64, 64), (64, 1), (0, 7), 16, (16, 64)),
    ],
)
def test_letterbox_geometry(shape, new, unpadded, pad, stride, out_shape):
    img = np.full((*shape, 3), 7, np.uint8)
    out, gain, (left, top) = letterbox(img, new, stride)
    assert out.shape == (*out_shape, 3)
    assert (left, top) == pad
    assert gain == pytest.approx((unpadded[0] / shape[1], unpadded[1] / shape[0]))
    assert out[top, left, 0] == 7 and out[0, 0, 0] == (114 if pad != (0, 0) else 7)


@pytest.mark.parametrize(
    ("shape", "new", "stride"),
    [
        ((270, 480), (416, 416), None),  # a 1080p frame at its DCT scale: pad top and bottom
        ((270, 480), (416, 416), 32),  # minimum rectangle: 11 rows of padding
        ((480, 360), (416, 416), None),  # portrait: pad left and right
        ((750, 1000), (640, 640), 32),
        ((416, 416), (416, 416), None),  # nothing to resize or pad
        ((100, 100), (640, 384), None),  # upscaled, non-square input
        ((1, 300), (64, 64), 16),  # one row kept
        ((33, 17), (64, 64), None),  # odd padding on both axes
    ],
)
@pytest.mark.parametrize("bgr", [False, True])
def test_letterbox_tensor_is_to_tensor_of_letterbox_bit_for_bit(shape, new, stride, bgr: bool):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    padded, gain, (left, top) = letterbox(img, new, stride)
    at = place(*shape, new, stride)
    assert at.shape == padded.shape[:2]
    assert at.gains(shape[1], shape[0]) == gain and at.pad[0] == top and at.pad[2] == left
    expected = to_tensor(padded, bgr=bgr)
    assert np.array_equal(letterbox_tensor(img, at, bgr=bgr), expected)
    batch = np.full((2, 3, *at.shape), np.nan, np.float32)  # every value of the slot is written
    letterbox_tensor(img[:, ::-1][:, ::-1], at, bgr=bgr, out=batch[1])  # a strided view of the same pixels
    assert np.array_equal(batch[1:], expected) and np.isnan(batch[0]).all()


def test_to_tensor_layout_and_channel_order():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255  # red in RGB, blue in BGR
    rgb = to_tensor(img)
    assert rgb.shape == (1, 3, 2, 3) and rgb.dtype == np.float32 and rgb.flags.c_contiguous
    assert rgb[0, 0].min() == 1.0 and rgb[0, 2].max() == 0.0
    bgr = to_tensor(img, bgr=True)
    assert bgr[0, 2].min() == 1.0 and bgr[0, 0].max() == 0.0
    batch = np.zeros((2, 3, 2, 3), np.float32)
    to_tensor(img, out=batch[1])
    assert batch[1, 0].min() == 1.0 and batch[0].max() == 0.0


@pytest.mark.parametrize("bgr", [False, True])
def test_to_tensor_equals_the_plain_quotient(bgr: bool):
    """Plane by plane gives bit for bit what dividing the transposed array gives, on a view too."""
    img = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    view = img[::-1, 1:]  # not contiguous
    for src in (img, view):
        expected = (src[..., ::-1] if bgr else src).transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
        assert np.array_equal(to_tensor(src, bgr=bgr), expected)


def test_decoded_image_from_array_and_rgb():
    arr = np.zeros((4, 6, 3), np.uint8)
    arr[..., 2] = 9
    d = DecodedImage.from_array(arr, "BGR")
    assert (d.width, d.height) == (6, 4) and d.rgb()[0, 0, 0] == 9
    with pytest.raises(ValueError, match="uint8"):
        DecodedImage.from_array(np.zeros((4, 6), np.float32))


@pytest.mark.parametrize(
    ("size", "max_side", "shape"),
    [
        ((2400, 1800), 1600, (1200, 1600, 3)),  # DCT 1/1 then shrunk to the cap
        ((4000, 3000), 1000, (750, 1000, 3)),  # DCT 1/4 lands exactly on the cap
        ((300, 200), 1600, (200, 300, 3)),  # never upscaled
    ],
)
def test_decode_for_display_caps_the_long_side(size, max_side, shape):
    out = decode_for_display(encode(noisy_photo(*size), "JPEG", quality=80), max_side)
    assert out.array.shape == shape and (out.width, out.height) == size


def test_decoding_ignores_a_monkey_patched_image_open(monkeypatch: pytest.MonkeyPatch):
    # Importing Ultralytics swaps PIL.Image.open for a wrapper that pip-installs a plugin on unknown files;
    # decoding in the same process (evaluation, export) must still use Pillow's own opener.
    import sys
    import types

    from PIL import Image as PILImage

    patches = types.ModuleType("ultralytics.utils.patches")
    # Pillow's own opener: a test that imported the real Ultralytics earlier has already swapped PIL.Image.open
    real = sys.modules.get(patches.__name__)
    patches._image_open = getattr(real, "_image_open", PILImage.open)  # type: ignore[attr-defined]

    def patched(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'pi_heif'")

    patched.__module__ = patches.__name__
    monkeypatch.setitem(sys.modules, patches.__name__, patches)
    monkeypatch.setattr(PILImage, "open", patched)
    with pytest.raises(UnsupportedImageError, match="text, not an image"):
        decode_image(b"hello, this is not a photo")
    assert decode_image(encode(scene(40, 30, []), "PNG")).array.shape == (30, 40, 3)


def _veiled(share: float) -> np.ndarray:
    """A photo-like image under a white veil (fog, steam, a flared lens)."""
    photo = np.asarray(noisy_photo(320, 240), np.float32)
    return np.round(photo * (1 - share) + 255 * share).astype(np.uint8)


@pytest.mark.parametrize(
    ("image", "codes"),
    [
        (np.asarray(noisy_photo(320, 240)), []),
        (np.asarray(scene(320, 240, [(100, 80, 200, 160, RED)])), []),  # plain wall, one red object: contrast
        (np.full((240, 320, 3), 255, np.uint8), ["washed_out"]),
        (_veiled(0.9), ["washed_out"]),
        (_veiled(0.6), []),  # hazy, but the scene still shows
        (np.full((240, 320, 3), 8, np.uint8), ["too_dark"]),
        (np.full((240, 320, 3), 128, np.uint8), ["featureless"]),
    ],
    ids=["photo", "object-on-white", "white", "veil-90", "veil-60", "black", "grey"],
)
def test_photo_warnings(image: np.ndarray, codes: list[str]):
    warnings = photo_warnings(image)
    assert [w.code for w in warnings] == codes
    assert all(w.message and w.message_zh for w in warnings)


def _contrast_rule(image: np.ndarray) -> bool:
    """The rule as first written: numpy's float32 deviation of the 64×64 thumbnail of every step-th pixel."""
    step = max(1, min(image.shape[:2]) // 128)
    thumb = cv2.resize(image[::step, ::step], (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3)
    return float(thumb.astype(np.float32).std(axis=0).max()) < LOW_CONTRAST


def test_photo_warnings_decide_as_the_float32_rule_next_to_the_threshold():
    """The quick double-precision check leaves the close cases to the float32 rule: the same answers."""
    rng = np.random.default_rng(7)
    pattern = rng.normal(0, 1, (8, 8, 3)).astype(np.float32)
    decided = set()
    for shape in ((241, 333), (541, 962)):
        smooth = cv2.resize(pattern, shape[::-1], interpolation=cv2.INTER_LINEAR)
        step = max(1, min(shape) // 128)
        unit = cv2.resize(smooth[::step, ::step], (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3).std(axis=0)
        for amplitude in np.linspace(0.98, 1.02, 41) * LOW_CONTRAST / float(unit.max()):
            image = np.clip(120 + amplitude * smooth, 0, 255).astype(np.uint8)
            for view in (image, image[:, ::-1], image[..., ::-1]):
                low = _contrast_rule(view)
                assert bool(photo_warnings(view)) is low, (amplitude, shape)
                decided.add(low)
    assert decided == {True, False}  # the sweep crosses the threshold
