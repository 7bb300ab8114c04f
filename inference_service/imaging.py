"""Photo bytes to an upright RGB array, and the letterbox + tensor layout the detector expects.

Pure functions. ``decode_image`` applies EXIF orientation, rejects decompression bombs from the header
alone and, for JPEG, decodes at a DCT-reduced scale (1/2, 1/4, 1/8) as long as the result still covers
the letterbox's resized image, so the letterbox still only downsamples. ``letterbox`` reproduces Ultralytics 8.4
``LetterBox(auto=False, scale_fill=False, scaleup=True, center=True)`` bit for bit.
"""

from __future__ import annotations

import io
import logging
import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from inference_service.budget import MB, DecodeBudget

register_heif_opener()
logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
SUPPORTED_HUMAN = "JPEG, PNG, WebP or HEIC"
DEFAULT_MAX_PIXELS = 50_000_000
PAD_VALUE = 114
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}
_SIMPLE_JPEG_MODES = ("L", "RGB")  # decoded by libjpeg-turbo straight to RGB; CMYK/YCCK go through Pillow
# Non-JPEG photos over this many pixels are box-reduced right after decoding (before any copy); smaller ones,
# i.e. every photo of the training sets, decode exactly as they always have.
REDUCE_ABOVE_PIXELS = 8_000_000
_DECODE_BYTES_PER_PIXEL = {"WEBP": 16, "HEIF": 10}  # peak decode memory, measured (see decode_cost)

UInt8Image = npt.NDArray[np.uint8]


class ImageError(ValueError):
    """A photo the service cannot use; ``message`` is shown to the client as is."""

    code = "invalid_image"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidImageError(ImageError):
    """Empty, corrupt or truncated image data."""


class UnsupportedImageError(InvalidImageError):
    """Not an image, or an image format the service does not read."""

    code = "unsupported_media_type"


class ImageTooLargeError(ImageError):
    """More pixels than the configured limit (decompression-bomb guard), or more decode memory."""

    code = "image_too_large"


class ImageTooSmallError(ImageError):
    """Too few pixels to show a hazard (a thumbnail, an icon, a 1×1 probe)."""

    code = "image_too_small"


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """The array actually decoded, plus the size of the upright original it stands for."""

    array: UInt8Image  # (h, w, 3) uint8, possibly DCT-reduced
    width: int  # original width after EXIF orientation
    height: int  # original height after EXIF orientation
    channels: Literal["RGB", "BGR"] = "RGB"
    format: str = "RAW"
    corrupt: bool = False  # the data was damaged; the decoder recovered (grey or smeared blocks)

    def __post_init__(self) -> None:
        if self.array.dtype != np.uint8 or self.array.ndim != 3 or self.array.shape[2] != 3:
            raise ValueError(f"array must be (h, w, 3) uint8, got {self.array.shape} {self.array.dtype}")

    @classmethod
    def from_array(cls, array: UInt8Image, channels: Literal["RGB", "BGR"] = "RGB") -> DecodedImage:
        return cls(np.ascontiguousarray(array), int(array.shape[1]), int(array.shape[0]), channels)

    @property
    def scale_x(self) -> float:
        """Original pixels per decoded pixel along x."""
        return self.width / self.array.shape[1]

    @property
    def scale_y(self) -> float:
        return self.height / self.array.shape[0]

    def rgb(self) -> UInt8Image:
        return self.array if self.channels == "RGB" else np.ascontiguousarray(self.array[..., ::-1])


def _pil_open(fp: io.BytesIO, formats: tuple[str, ...] | None = None) -> Image.Image:
    """Pillow's own ``Image.open``, also when a library has monkey-patched it in this process.

    Importing Ultralytics (training, export, the evaluation cross-check, or unpickling a checkpoint) replaces
    ``PIL.Image.open`` with a wrapper that, on an unidentified file, tries to pip-install a HEIF plugin: a network
    call and a confusing error where the caller should get "unsupported format". Its original stays in
    ``ultralytics.utils.patches._image_open``.
    """
    opener = Image.open
    if getattr(opener, "__module__", Image.__name__) != Image.__name__:
        opener = getattr(sys.modules.get("ultralytics.utils.patches"), "_image_open", opener)
    return opener(fp, formats=formats)


def _magic_format(data: bytes) -> str | None:
    """Which supported format the first bytes claim to be (to tell 'corrupt' from 'not an image')."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc"):
        return "HEIC"
    return None


def _describe_unsupported(data: bytes) -> str:
    if data[:5] == b"%PDF-":
        kind = "a PDF document"
    else:
        try:
            with _pil_open(io.BytesIO(data)) as other:
                name = other.format or "unknown"
                kind = f"{'an' if name[0] in 'AEIOU' else 'a'} {name} image"
        except Exception:
            head = data[:512]
            try:
                head.decode("utf-8")
                kind = "text, not an image"
            except UnicodeDecodeError:
                kind = "not a recognised image"
    return f"file is {kind}; send a {SUPPORTED_HUMAN} photo"


def _orientation(img: Image.Image) -> int:
    """EXIF orientation 1..8, or 1 when absent, absurd or unreadable."""
    try:
        value = img.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        logger.debug("unreadable EXIF ignored", exc_info=True)
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _letterboxed_size(width: int, height: int, target: int) -> tuple[int, int]:
    """Size (rounded up) of the photo resized so its long side is ``target``; never above the photo."""
    r = min(1.0, target / max(width, height))
    return max(1, math.ceil(width * r)), max(1, math.ceil(height * r))


def dct_scale(width: int, height: int, target: int | None) -> int:
    """The JPEG DCT scale denominator (1, 2, 4, 8) Pillow's ``draft`` picks to still cover the letterbox."""
    if not target:
        return 1
    need_w, need_h = _letterboxed_size(width, height, target)
    fits = min(width // need_w, height // need_h)
    return next(d for d in (8, 4, 2, 1) if fits >= d)


def _oriented(array: UInt8Image, orientation: int) -> UInt8Image:
    """``array`` with EXIF ``orientation`` applied (as ``ImageOps.exif_transpose``), as views where possible."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return array if op is None else np.asarray(op(array))


def decode_cost(fmt: str, mode: str, width: int, height: int, target: int | None) -> int:
    """Bytes a decode of this photo holds at its peak (measured per format, on the safe side).

    JPEG decodes straight to RGB at its DCT scale. PNG decodes at full size into Pillow's 4-byte pixels
    (1 byte for palette/grey), plus the reduced or converted copy. WebP goes through libwebp's buffer, a
    copy and Pillow's image (measured 15.3 bytes a pixel on a 12 MP photo), HEIC through libheif's (8.7).
    """
    if fmt == "JPEG" and mode in _SIMPLE_JPEG_MODES:
        d = dct_scale(width, height, target)
        return 2 * 3 * math.ceil(width / d) * math.ceil(height / d)  # the array and its upright copy
    per_pixel = _DECODE_BYTES_PER_PIXEL.get(fmt, (1 if mode in ("1", "L", "P") else 4) + 4)
    return width * height * per_pixel


def decode_cost_of(data: bytes, target: int | None = None) -> int:
    """:func:`decode_cost` from the photo's header alone (0 when the header cannot be read: decoding will say why)."""
    try:
        with _pil_open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as img:
            return decode_cost(img.format or "unknown", img.mode, *img.size, target)
    except Exception:
        return 0


def photo_header(data: bytes) -> tuple[str, int] | None:
    """The photo's format (``JPEG``, ``PNG``, ``WEBP``, ``HEIF``) and its stored pixels, from its header alone;
    None when the header cannot be read (decoding will say why)."""
    try:
        with _pil_open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as img:
            return img.format or "unknown", img.size[0] * img.size[1]
    except Exception:
        return None


def _decode_jpeg(data: bytes, width: int, height: int, target: int | None) -> tuple[UInt8Image, bool]:
    """RGB array at Pillow's DCT scale (bit-identical to ``draft`` + ``load``) and whether the data was corrupt.

    libjpeg-turbo recovers from corrupt entropy-coded data (grey or smeared blocks) with a warning that
    Pillow drops; decoded strictly first, such a photo is still decoded but reported. Data that simply
    ends early (an upload cut short) is refused, as Pillow does.
    """
    d = dct_scale(width, height, target)
    scale = {"min_factor": d, "min_height": -(-height // d), "min_width": -(-width // d)} if d > 1 else {}
    try:
        return simplejpeg.decode_jpeg(data, "RGB", **scale), False
    except ValueError as exc:
        if str(exc).startswith("Premature end"):
            raise InvalidImageError("JPEG data is truncated: the upload was cut short; send the whole photo") from exc
        logger.info("corrupt JPEG data (%s)", exc)
    try:
        return simplejpeg.decode_jpeg(data, "RGB", strict=False, **scale), True
    except ValueError as exc:
        raise InvalidImageError("JPEG data is corrupt or truncated and cannot be decoded") from exc


def _decode_webp(data: bytes, width: int, height: int, target: int | None) -> UInt8Image:
    """A still, opaque WebP through OpenCV's libwebp: the same pixels as Pillow's decoder, bit for bit, but
    OpenCV lets go of the GIL while libwebp works, where Pillow holds it for the whole frame (a 12 MP photo:
    every other thread, the event loop included, waited up to 86 ms at a time; 10 ms through OpenCV)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.shape[:2] != (height, width):
        raise InvalidImageError("WEBP data is corrupt or truncated")
    rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)
    del bgr
    if not target or width * height <= REDUCE_ABOVE_PIXELS:
        return rgb
    return np.asarray(_reduced(Image.fromarray(rgb), width, height, target), np.uint8)


def _reduced(img: Image.Image, width: int, height: int, target: int | None) -> Image.Image:
    """A large non-JPEG photo box-reduced by an integer factor that still covers the letterbox, before any
    conversion copies it; photos up to ``REDUCE_ABOVE_PIXELS`` are left as they are."""
    if not target or width * height <= REDUCE_ABOVE_PIXELS:
        return img
    need_w, need_h = _letterboxed_size(width, height, target)
    factor = min(width // need_w, height // need_h)
    if factor < 2:
        return img
    if img.mode not in ("L", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
    return img.reduce(factor)


def decode_image(
    data: bytes,
    target: int | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 1,
    max_decode_bytes: int | None = None,
    budget: DecodeBudget | None = None,
) -> DecodedImage:
    """Decode a photo to an upright RGB array.

    ``target``: the model input side. A JPEG is then decoded at the smallest DCT scale (1/2, 1/4, 1/8)
    whose result still covers what the letterbox resizes the photo to (long side ``target``, aspect
    kept), so the letterbox only ever downsamples and no detail the model could see is lost: a 4000×3000
    photo decodes at 1000×750 and a 1920×1080 one at 960×540 for a 640 model. A PNG, WebP or HEIC over
    ``REDUCE_ABOVE_PIXELS`` is box-reduced likewise right after decoding.
    ``DecodedImage.width/height`` are always the full-size upright original.

    Before any pixel is decoded: a photo with a side under ``min_side`` or over ``max_pixels`` pixels,
    or whose decode would hold more than ``max_decode_bytes``, is refused; with ``budget`` the decode
    first holds its bytes there (waiting for room, or raising ``BudgetBusyError``).
    """
    if not data:
        raise InvalidImageError("empty file: no image data was received")
    try:
        img = _pil_open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image declares too many pixels; the limit is {max_pixels:,}") from exc
    except Exception as exc:  # UnidentifiedImageError, or a header parser's OSError/SyntaxError/...
        claimed = _magic_format(data)
        if claimed:
            raise InvalidImageError(f"file starts like a {claimed} but its header is corrupt or truncated") from exc
        if isinstance(exc, UnidentifiedImageError):
            raise UnsupportedImageError(_describe_unsupported(data)) from exc
        raise InvalidImageError("cannot read the image header: the file is damaged") from exc

    with img:
        stored_w, stored_h = img.size
        if stored_w * stored_h > max_pixels:
            raise ImageTooLargeError(
                f"image is {stored_w}×{stored_h} = {stored_w * stored_h / 1e6:.1f} megapixels; "
                f"the limit is {max_pixels / 1e6:g} megapixels"
            )
        if min(stored_w, stored_h) < min_side:
            raise ImageTooSmallError(
                f"image is {stored_w}×{stored_h} pixels; photos need at least {min_side} pixels on each side "
                "to show a hazard"
            )
        fmt = img.format or "unknown"
        cost = decode_cost(fmt, img.mode, stored_w, stored_h, target)
        if max_decode_bytes is not None and cost > max_decode_bytes:
            raise ImageTooLargeError(
                f"decoding this {stored_w}×{stored_h} {fmt} needs about {cost / MB:.0f} MB; the limit is "
                f"{max_decode_bytes / MB:.0f} MB; send it as a JPEG or smaller"
            )
        with budget.hold(cost) if budget is not None else nullcontext():
            array, orientation, corrupt = _decode_pixels(data, img, fmt, target)
    if orientation in _SWAPS_AXES:
        stored_w, stored_h = stored_h, stored_w
    return DecodedImage(np.ascontiguousarray(array), stored_w, stored_h, "RGB", fmt, corrupt)


def _decode_pixels(data: bytes, img: Image.Image, fmt: str, target: int | None) -> tuple[UInt8Image, int, bool]:
    """The upright RGB pixels, the orientation applied, and whether the data was corrupt."""
    stored_w, stored_h = img.size
    orientation = _orientation(img)
    if fmt == "JPEG" and img.mode in _SIMPLE_JPEG_MODES:
        array, corrupt = _decode_jpeg(data, stored_w, stored_h, target)
        return _oriented(array, orientation), orientation, corrupt
    if fmt == "WEBP" and img.mode == "RGB" and not getattr(img, "is_animated", False):
        return _oriented(_decode_webp(data, stored_w, stored_h, target), orientation), orientation, False
    try:
        img.load()
    except Exception as exc:
        raise InvalidImageError(f"{fmt} data is corrupt or truncated") from exc
    out: Image.Image = _reduced(img, stored_w, stored_h, target)
    if orientation != 1:
        try:
            out = ImageOps.exif_transpose(out)
        except Exception:
            logger.warning("EXIF orientation %d could not be applied; using the stored orientation", orientation)
            orientation = 1
    if out.mode != "RGB":
        out = out.convert("RGB")
    return np.asarray(out, dtype=np.uint8), orientation, False


def fit_inside(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size with the long side at most ``max_side``, aspect kept (rounded); never enlarged."""
    scale = max_side / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def decode_for_display(
    data: bytes, max_side: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, budget: DecodeBudget | None = None
) -> DecodedImage:
    """Upright RGB copy whose long side is at most ``max_side`` (for evidence photos), decoded cheaply."""
    decoded = decode_image(data, max_side, max_pixels=max_pixels, budget=budget)
    arr_h, arr_w = decoded.array.shape[:2]
    size = fit_inside(arr_w, arr_h, max_side)
    if size != (arr_w, arr_h):
        resized = np.asarray(cv2.resize(decoded.array, size, interpolation=cv2.INTER_AREA), np.uint8)
        decoded = DecodedImage(resized, decoded.width, decoded.height, decoded.channels, decoded.format)
    return decoded


@dataclass(frozen=True)
class Placement:
    """Where a photo of ``h×w`` lands in a letterboxed model input (:func:`place`)."""

    shape: tuple[int, int]  # (h, w) of the model input
    size: tuple[int, int]  # (w, h) the photo is resized to
    pad: tuple[int, int, int, int]  # (top, bottom, left, right) rows and columns of padding

    def gains(self, w: int, h: int) -> tuple[float, float]:
        """The per-axis gains ``(gx, gy)`` from a ``w×h`` photo to its resized pixels (Ultralytics ``scale_boxes``)."""
        return self.size[0] / w, self.size[1] / h


def place(h: int, w: int, new_shape: tuple[int, int] = (640, 640), stride: int | None = None) -> Placement:
    """Where :func:`letterbox` puts an ``h×w`` photo: resized keeping aspect ratio, padded to ``new_shape`` (h, w),
    or with ``stride`` only up to the next multiple of ``stride`` (Ultralytics' ``LetterBox(auto=True)``)."""
    new_h, new_w = new_shape
    r = min(new_h / h, new_w / w)
    unpad_w, unpad_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = new_w - unpad_w, new_h - unpad_h
    if stride:
        dw, dh = dw % stride, dh % stride
    top, bottom = round(dh / 2 - 0.1), round(dh / 2 + 0.1)
    left, right = round(dw / 2 - 0.1), round(dw / 2 + 0.1)
    return Placement((unpad_h + top + bottom, unpad_w + left + right), (unpad_w, unpad_h), (top, bottom, left, right))


def letterbox(
    img: UInt8Image, new_shape: tuple[int, int] = (640, 640), stride: int | None = None
) -> tuple[UInt8Image, tuple[float, float], tuple[int, int]]:
    """Resize keeping aspect ratio and pad with 114 to ``new_shape`` (h, w), like Ultralytics 8.4.

    With ``stride`` (a model that accepts any input size that is a multiple of its stride), pad only up
    to the next multiple of ``stride`` instead (Ultralytics' ``LetterBox(auto=True)``, "minimum
    rectangle"): a 16:9 frame becomes 416×256 instead of 416×416.
    Returns the padded image, the per-axis gains ``(gx, gy)`` from input to resized pixels (those of
    Ultralytics ``scale_boxes``) and the ``(left, top)`` padding in pixels.
    """
    h, w = img.shape[:2]
    at = place(h, w, new_shape, stride)
    top, bottom, left, right = at.pad
    border = cv2.copyMakeBorder(
        _resized(img, at), top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return np.asarray(border, np.uint8), at.gains(w, h), (left, top)


def _resized(img: UInt8Image, at: Placement) -> UInt8Image:
    if img.shape[1::-1] == at.size:
        return img
    return np.asarray(cv2.resize(img, at.size, interpolation=cv2.INTER_LINEAR), np.uint8)


_PAD_LEVEL = np.float32(PAD_VALUE) / np.float32(255)


def letterbox_tensor(
    img: UInt8Image, at: Placement, *, bgr: bool = False, out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """``to_tensor(letterbox(img, ...)[0])`` bit for bit, for the placement ``at`` (:func:`place`), without the
    padded uint8 image in between: the resized photo is divided straight into its window of the tensor and only
    the padding is filled. ``out``: a ``(3, H, W)`` float32 view to write into (one slot of a batch)."""
    h, w = at.shape
    target = np.empty((1, 3, h, w), np.float32) if out is None else out
    planes = target.reshape(3, h, w)
    top, bottom, left, right = at.pad
    inner_w, inner_h = at.size
    planes[:, :top] = _PAD_LEVEL
    planes[:, h - bottom :] = _PAD_LEVEL
    planes[:, top : h - bottom, :left] = _PAD_LEVEL
    planes[:, top : h - bottom, w - right :] = _PAD_LEVEL
    window = planes[:, top : top + inner_h, left : left + inner_w]
    split = cv2.split(np.ascontiguousarray(_resized(img, at)))
    for c, plane in enumerate(reversed(split) if bgr else split):
        np.divide(plane, np.float32(255), out=window[c], dtype=np.float32, casting="unsafe")
    return target


def model_input(img: DecodedImage, new_shape: tuple[int, int], stride: int | None = None) -> npt.NDArray[np.float32]:
    """The ``1×3×H×W`` tensor a model runs on for ``img``, prepared as the service prepares it (:func:`place`,
    :func:`letterbox_tensor`); for tools that need the pixels only, not the geometry."""
    h, w = img.array.shape[:2]
    return letterbox_tensor(img.array, place(h, w, new_shape, stride), bgr=img.channels == "BGR")


def to_tensor(
    img: UInt8Image, *, bgr: bool = False, out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """HWC uint8 (RGB, or BGR with ``bgr=True``) to a contiguous 1×3×H×W float32 tensor in [0, 1].

    With ``out`` (a ``(3, H, W)`` float32 view, e.g. one slot of a batch) the result is written there.
    """
    h, w, channels = img.shape
    target = np.empty((1, channels, h, w), np.float32) if out is None else out
    planes = target.reshape(channels, h, w)
    # one contiguous plane at a time (cv2.split): the same quotients as dividing the transposed array, without
    # numpy's strided reads across the pixels
    split = cv2.split(np.ascontiguousarray(img))
    for c, plane in enumerate(reversed(split) if bgr else split):
        np.divide(plane, np.float32(255), out=planes[c], dtype=np.float32, casting="unsafe")
    return target


@dataclass(frozen=True)
class PhotoWarning:
    """Something about a usable photo that makes its result doubtful; the client shows it to the inspector."""

    code: str
    message: str
    message_zh: str


# Contrast (the largest per-channel standard deviation on a 64×64 thumbnail) below which a photo is nearly
# uniform. Measured on 2026-11-30: none of the 2,831 photos of dataset f6a76cd8b67d is below 10 (438 smoke
# photos among them); under a 90 % white veil 363 of its 365 held-out photos are, and there the shipped model
# raises 77 smoke alarms the photos do not show (README, row "weak classes").
LOW_CONTRAST = 10.0

_WASHED_OUT = PhotoWarning(
    "washed_out",
    "The photo is almost uniformly bright (overexposure, fog, steam, or a covered or flared lens); the model reads "
    "such frames as smoke, so smoke found here may be haze. Retake it if you can.",
    "照片几乎一片白（过曝、雾气、蒸汽或镜头被遮挡/眩光），模型可能把这种画面误认为烟雾，请尽量重拍。",
)
_TOO_DARK = PhotoWarning(
    "too_dark",
    "The photo is almost uniformly dark; hazards in it cannot be seen. Retake it with more light.",
    "照片几乎全黑，无法识别其中的隐患，请补光后重拍。",
)
CORRUPT_DATA = PhotoWarning(
    "corrupt_data",
    "Part of the photo's data is damaged (a broken file or transfer); parts of the picture may be grey or "
    "smeared, so what the model found is doubtful. Send the photo again.",
    "照片数据部分损坏（文件或传输出错），画面可能有灰块或花屏，识别结果存疑，请重新上传。",
)
_FEATURELESS = PhotoWarning(
    "featureless",
    "The photo shows almost no detail; hazards in it cannot be seen. Retake it.",
    "照片几乎没有细节，无法识别其中的隐患，请重拍。",
)


# How far from LOW_CONTRAST OpenCV's double-precision deviation must be for the float32 one to agree with it (their
# difference on a 64×64 thumbnail is about 1e-5).
_CONTRAST_MARGIN = 0.01


def photo_warnings(img: UInt8Image) -> list[PhotoWarning]:
    """Warnings about a decoded photo (HWC uint8, any channel order): nearly uniform bright, dark or grey."""
    thumb = cv2.resize(_every_nth_pixel(img), (64, 64), interpolation=cv2.INTER_AREA)
    # per channel: a red object on grey is contrast too. OpenCV's deviation decides unless it is too near the
    # threshold; then numpy's float32 one, which always decided, does (same answers, a fraction of the time)
    quick = float(cv2.meanStdDev(thumb)[1].max())
    if quick >= LOW_CONTRAST + _CONTRAST_MARGIN:
        return []
    pixels = thumb.reshape(-1, 3).astype(np.float32)
    if quick > LOW_CONTRAST - _CONTRAST_MARGIN and float(pixels.std(axis=0).max()) >= LOW_CONTRAST:
        return []
    mean = float(pixels.mean())
    return [_WASHED_OUT if mean >= 170 else _TOO_DARK if mean < 50 else _FEATURELESS]


def _every_nth_pixel(img: UInt8Image) -> UInt8Image:
    """``img[::step, ::step]`` as a contiguous array, ``step`` leaving at least 128 pixels on the short side.
    Copied as 3-byte items: numpy copies 3-channel strided pixels slowly."""
    step = max(1, min(img.shape[:2]) // 128)
    if step == 1 and img.flags.c_contiguous:
        return img
    h, w = img.shape[:2]
    pixels = np.ascontiguousarray(img).view(np.dtype("V3")).reshape(h, w)
    return np.asarray(pixels[::step, ::step].copy().view(np.uint8).reshape(-(-h // step), -(-w // step), 3))
