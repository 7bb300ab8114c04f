"""Evidence photos: hazards and detections drawn on the photo with Chinese + English labels.

Labels use a CJK font (WenQuanYi Micro Hei from Debian's ``fonts-wqy-microhei``, or whatever fontconfig
offers for Chinese). Without one, a warning is logged once and labels are English only; nothing is ever
downloaded.
"""

from __future__ import annotations

import io
import logging
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inference_service.imaging import DecodedImage, fit_inside
from inference_service.runtime import DetectResult
from inference_service.taxonomy import HazardFinding

logger = logging.getLogger(__name__)

DEFAULT_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
SEVERITY_COLOURS: dict[str, tuple[int, int, int]] = {
    "critical": (220, 20, 60),
    "high": (255, 110, 0),
    "medium": (235, 190, 0),
    "low": (30, 144, 255),
}
DETECTION_COLOUR = (0, 170, 110)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Annotation:
    box: tuple[float, float, float, float]  # xyxy in original pixels
    label_en: str
    label_zh: str | None
    colour: tuple[int, int, int]
    dashed: bool = False  # a suspicion or a hazard on a doubtful frame: a person confirms it


# Label prefixes that say a hazard is not confirmed (the box is dashed too): a suspicion (the rule only
# suspects it) and a hazard on a photo or frame with a warning (washed out, too dark, featureless, damaged).
SUSPECTED_MARK = ("suspected ", "疑似")
UNCONFIRMED_MARK = ("unconfirmed ", "待确认 ")


def doubt_marks(suspected: bool, unconfirmed: bool) -> tuple[str, str]:
    """``(english, chinese)`` prefixes for a hazard's label: empty for a confirmed detection."""
    en = (UNCONFIRMED_MARK[0] if unconfirmed else "") + (SUSPECTED_MARK[0] if suspected else "")
    zh = (UNCONFIRMED_MARK[1] if unconfirmed else "") + (SUSPECTED_MARK[1] if suspected else "")
    return en, zh


@lru_cache(maxsize=4)
def find_cjk_font(configured: Path | None = DEFAULT_FONT) -> Path | None:
    """The configured font if it exists, else fontconfig's match for WenQuanYi if it covers Chinese."""
    if configured is not None and configured.is_file():
        return configured
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}\n%{lang}", "WenQuanYi Micro Hei:lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        found = ""
    file, _, langs = found.partition("\n")
    if file and any(lang.startswith("zh") for lang in langs.split("|")) and Path(file).is_file():
        return Path(file)
    logger.warning("no CJK font at %s or via fontconfig; evidence labels will be English only", configured)
    return None


@lru_cache(maxsize=16)
def _font(path: Path | None, size: int) -> Font:
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            logger.warning("cannot open font %s; using Pillow's default", path)
    return ImageFont.load_default(size)


def annotations_for(
    result: DetectResult,
    findings: Sequence[HazardFinding],
    class_names: Sequence[str],
    class_zh: Mapping[str, str] | None = None,
    unconfirmed: bool = False,
) -> list[Annotation]:
    """Hazards (coloured by severity) first, then detections that raised no hazard. A suspicion, and every hazard
    of an ``unconfirmed`` photo (one with a warning), is dashed and labelled so."""
    out: list[Annotation] = []
    used: set[int] = set()
    for f in findings:
        used.update(f.detection_indices)
        if f.box is not None:
            colour = SEVERITY_COLOURS.get(f.severity, DETECTION_COLOUR)
            conf = f"{f.confidence:.0%}"
            # a suspicion or a doubtful photo says so on the photo: the inspector confirms it
            mark_en, mark_zh = doubt_marks(f.suspected, unconfirmed)
            text_zh = f"{mark_zh}{f.name_zh} {f.name_en} {conf}"
            doubtful = f.suspected or unconfirmed
            out.append(Annotation(f.box, f"{mark_en}{f.name_en} {conf}", text_zh, colour, dashed=doubtful))
    dets = result.detections
    for i in range(len(dets)):
        if i in used:
            continue
        name = class_names[int(dets.class_id[i])]
        conf = f"{float(dets.score[i]):.0%}"
        zh = (class_zh or {}).get(name)
        x1, y1, x2, y2 = (float(v) for v in dets.xyxy[i])
        label_zh = f"{zh} {name} {conf}" if zh else None
        out.append(Annotation((x1, y1, x2, y2), f"{name} {conf}", label_zh, DETECTION_COLOUR))
    return out


def _dashed_rectangle(
    draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], colour: tuple[int, int, int], line: int
) -> None:
    """The outline :meth:`ImageDraw.rectangle` would draw (``line`` px wide, inside the box) in dashes ``4 * line``
    long with gaps of ``3 * line``."""
    x1, y1, x2, y2 = box
    dash, period = 4 * line, 7 * line
    w = line - 1
    x = x1
    while x < x2:
        end = min(x + dash, x2)
        draw.rectangle((x, y1, end, y1 + w), fill=colour)
        draw.rectangle((x, y2 - w, end, y2), fill=colour)
        x += period
    y = y1
    while y < y2:
        end = min(y + dash, y2)
        draw.rectangle((x1, y, x1 + w, end), fill=colour)
        draw.rectangle((x2 - w, y, x2, end), fill=colour)
        y += period


def render_evidence(
    image: DecodedImage,
    annotations: Sequence[Annotation],
    *,
    max_side: int = 1600,
    quality: int = 85,
    font_path: Path | None = DEFAULT_FONT,
) -> bytes:
    """JPEG bytes of the photo (long side at most ``max_side``, never upscaled) with labelled boxes."""
    h, w = image.array.shape[:2]
    size = fit_inside(w, h, max_side)
    array = image.array
    if size != (w, h):  # shrink first (area average), then convert only the small image's channels
        array = np.asarray(cv2.resize(array, size, interpolation=cv2.INTER_AREA), np.uint8)
    canvas = Image.fromarray(array if image.channels == "RGB" else np.ascontiguousarray(array[..., ::-1]))
    sx, sy = canvas.width / image.width, canvas.height / image.height
    cjk = find_cjk_font(font_path)
    long_side = max(canvas.size)
    font = _font(cjk, max(12, long_side // 50))
    line = max(2, long_side // 400)
    draw = ImageDraw.Draw(canvas)
    for a in annotations:
        # in order whatever the box says: a box stored inverted must not cost the photo its evidence
        x1, x2 = sorted((a.box[0] * sx, a.box[2] * sx))
        y1, y2 = sorted((a.box[1] * sy, a.box[3] * sy))
        if a.dashed:
            _dashed_rectangle(draw, (x1, y1, x2, y2), a.colour, line)
        else:
            draw.rectangle((x1, y1, x2, y2), outline=a.colour, width=line)
        text = a.label_zh if (cjk is not None and a.label_zh) else a.label_en
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        ty = y1 - th - 2 * line if y1 - th - 2 * line >= 0 else y1
        tx = min(max(0.0, x1), max(0.0, canvas.width - tw - 2 * line))
        draw.rectangle((tx, ty, tx + tw + 2 * line, ty + th + 2 * line), fill=a.colour)
        draw.text((tx + line - left, ty + line - top), text, fill=(255, 255, 255), font=font)
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
