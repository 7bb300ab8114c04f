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
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()
logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")
SUPPORTED_HUMAN = "JPEG, PNG, WebP or HEIC"
DEFAULT_MAX_PIXELS = 50_000_000
PAD_VALUE = 114
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}

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
    """More pixels than the configured limit (decompression-bomb guard)."""

    code = "image_too_large"


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """The array actually decoded, plus the size of the upright original it stands for."""

    array: UInt8Image  # (h, w, 3) uint8, possibly DCT-reduced
    width: int  # original width after EXIF orientation
    height: int  # original height after EXIF orientation
    channels: Literal["RGB", "BGR"] = "RGB"
    format: str = "RAW"

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


def decode_image(data: bytes, target: int | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode a photo to an upright RGB array.

    ``target``: the model input side. A JPEG is then decoded at the smallest DCT scale (1/2, 1/4, 1/8)
    whose result still covers what the letterbox resizes the photo to (long side ``target``, aspect
    kept), so the letterbox only ever downsamples and no detail the model could see is lost: a 4000×3000
    photo decodes at 1000×750 and a 1920×1080 one at 960×540 for a 640 model.
    ``DecodedImage.width/height`` are always the full-size upright original.
    """
    if not data:
        raise InvalidImageError("empty file: no image data was received")
    try:
        img = _pil_open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image declares too many pixels ({exc}); limit is {max_pixels:,}") from exc
    except Exception as exc:  # UnidentifiedImageError, or a header parser's OSError/SyntaxError/...
        claimed = _magic_format(data)
        if claimed:
            raise InvalidImageError(f"file starts like a {claimed} but its header is corrupt or truncated") from exc
        if isinstance(exc, UnidentifiedImageError):
            raise UnsupportedImageError(_describe_unsupported(data)) from exc
        raise InvalidImageError(f"cannot read the image header: {exc}") from exc

    with img:
        stored_w, stored_h = img.size
        if stored_w * stored_h > max_pixels:
            raise ImageTooLargeError(
                f"image is {stored_w}×{stored_h} = {stored_w * stored_h / 1e6:.1f} megapixels; "
                f"the limit is {max_pixels / 1e6:g} megapixels"
            )
        fmt = img.format or "unknown"
        orientation = _orientation(img)
        if target and fmt == "JPEG":
            img.draft("RGB", _letterboxed_size(stored_w, stored_h, target))
        try:
            img.load()
        except Exception as exc:
            raise InvalidImageError(f"{fmt} data is corrupt or truncated: {exc}") from exc
        out: Image.Image = img
        if orientation != 1:
            try:
                out = ImageOps.exif_transpose(img)
            except Exception:
                logger.warning("EXIF orientation %d could not be applied; using the stored orientation", orientation)
                out, orientation = img, 1
        if out.mode != "RGB":
            out = out.convert("RGB")
        array = np.asarray(out, dtype=np.uint8)
    if orientation in _SWAPS_AXES:
        stored_w, stored_h = stored_h, stored_w
    return DecodedImage(np.ascontiguousarray(array), stored_w, stored_h, "RGB", fmt)


def decode_for_display(data: bytes, max_side: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Upright RGB copy whose long side is at most ``max_side`` (for evidence photos), decoded cheaply."""
    decoded = decode_image(data, max_side, max_pixels=max_pixels)
    arr_h, arr_w = decoded.array.shape[:2]
    fit = max_side / max(arr_w, arr_h)
    if fit < 1.0:
        size = (max(1, round(arr_w * fit)), max(1, round(arr_h * fit)))
        resized = np.asarray(cv2.resize(decoded.array, size, interpolation=cv2.INTER_AREA), np.uint8)
        decoded = DecodedImage(resized, decoded.width, decoded.height, decoded.channels, decoded.format)
    return decoded


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
    new_h, new_w = new_shape
    r = min(new_h / h, new_w / w)
    unpad_w, unpad_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = new_w - unpad_w, new_h - unpad_h
    if stride:
        dw, dh = dw % stride, dh % stride
    if (w, h) != (unpad_w, unpad_h):
        img = np.asarray(cv2.resize(img, (unpad_w, unpad_h), interpolation=cv2.INTER_LINEAR), np.uint8)
    top, bottom = round(dh / 2 - 0.1), round(dh / 2 + 0.1)
    left, right = round(dw / 2 - 0.1), round(dw / 2 + 0.1)
    border = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    padded = np.asarray(border, np.uint8)
    return padded, (unpad_w / w, unpad_h / h), (left, top)


def to_tensor(
    img: UInt8Image, *, bgr: bool = False, out: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """HWC uint8 (RGB, or BGR with ``bgr=True``) to a contiguous 1×3×H×W float32 tensor in [0, 1].

    With ``out`` (a ``(3, H, W)`` float32 view, e.g. one slot of a batch) the result is written there.
    """
    src = img[..., ::-1] if bgr else img
    chw = src.transpose(2, 0, 1)
    target = np.empty((1, *chw.shape), np.float32) if out is None else out
    np.divide(chw, np.float32(255), out=target.reshape(chw.shape), dtype=np.float32, casting="unsafe")
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
_FEATURELESS = PhotoWarning(
    "featureless",
    "The photo shows almost no detail; hazards in it cannot be seen. Retake it.",
    "照片几乎没有细节，无法识别其中的隐患，请重拍。",
)


def photo_warnings(img: UInt8Image) -> list[PhotoWarning]:
    """Warnings about a decoded photo (HWC uint8, any channel order): nearly uniform bright, dark or grey."""
    step = max(1, min(img.shape[:2]) // 128)  # every step-th pixel first: a 1080p photo costs 0.1 ms, not 4
    thumb = cv2.resize(img[::step, ::step], (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    if float(thumb.std(axis=0).max()) >= LOW_CONTRAST:  # per channel: a red object on grey is contrast too
        return []
    mean = float(thumb.mean())
    return [_WASHED_OUT if mean >= 170 else _TOO_DARK if mean < 50 else _FEATURELESS]
