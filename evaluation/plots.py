"""PNG figures of an evaluation: PR curves, confusion matrix, contact sheets of the worst boxes.

matplotlib (Agg, through ``Figure`` without pyplot) draws the charts; Pillow draws the contact sheets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from evaluation.data import EvalSet
from evaluation.evaluate import Example
from evaluation.matching import MatchTable, class_ap, pr_points
from inference_service.detections import Detections
from inference_service.imaging import ImageError, decode_image

logger = logging.getLogger(__name__)

TILE = 224
CAPTION = 30
COLUMNS = 4
GT_COLOUR = (40, 200, 60)
PRED_COLOUR = (230, 40, 40)
OTHER_COLOUR = (255, 170, 0)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _curve(table: MatchTable, c: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    _, tp, fp, n_gt = pr_points(table, c)
    if n_gt <= 0 or tp.size == 0:
        return np.zeros(0), np.zeros(0), n_gt
    return tp / n_gt, tp / np.maximum(tp + fp, 1e-12), n_gt


def _point(table: MatchTable, c: int, threshold: float) -> tuple[float, float] | None:
    scores, tp, fp, n_gt = pr_points(table, c)
    keep = int((scores >= np.float32(threshold)).sum())
    if n_gt <= 0 or keep == 0:
        return None
    return float(tp[keep - 1] / n_gt), float(tp[keep - 1] / (tp[keep - 1] + fp[keep - 1]))


def pr_curve(
    path: Path,
    table: MatchTable,
    c: int,
    name: str,
    deployed: float,
    chosen: float | None = None,
    baseline: MatchTable | None = None,
) -> Path:
    fig = _figure(4.2, 3.6)
    ax = fig.add_subplot()
    rc, pr, n_gt = _curve(table, c)
    ap = class_ap(table, c)
    ax.plot(rc, pr, color="tab:blue", lw=1.5, label=f"model AP50 {ap if ap is not None else float('nan'):.3f}")
    if baseline is not None:
        brc, bpr, _ = _curve(baseline, c)
        bap = class_ap(baseline, c)
        ax.plot(brc, bpr, color="tab:grey", lw=1.2, ls="--", label=f"baseline AP50 {bap or 0:.3f}")
    for thr, marker, colour, label in ((deployed, "o", "tab:red", "deployed"), (chosen, "*", "tab:green", "chosen")):
        pt = _point(table, c, thr) if thr is not None else None
        if pt is not None:
            ax.plot(*pt, marker=marker, ms=9, color=colour, ls="", label=f"{label} @ {thr:.3g}")
    ax.set(xlim=(0, 1.01), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=f"{name} ({int(n_gt)} boxes)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.savefig(path)
    return path


def pr_overview(path: Path, table: MatchTable, classes: Sequence[str], scored: Sequence[int]) -> Path:
    """Every class's interpolated PR curve in one chart (20 distinct colours, legend beside it)."""
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    for i, c in enumerate(scored):
        rc, pr, _ = _curve(table, c)
        if rc.size:
            envelope = np.maximum.accumulate(pr[::-1])[::-1]
            ax.plot(rc, envelope, lw=1.4, color=palette(i % 20), label=f"{classes[c]} {class_ap(table, c):.2f}")
    ax.set(xlim=(0, 1.01), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title="PR curves (AP50)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.savefig(path)
    return path


def confusion_png(path: Path, matrix: npt.NDArray[np.int64], labels: Sequence[str]) -> Path:
    """Row-normalised (share of each true class), with the counts written in the cells."""
    m = np.asarray(matrix, np.float64)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    n = len(labels)
    fig = _figure(1.0 + 0.55 * n, 0.8 + 0.5 * n)
    ax = fig.add_subplot()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    str(int(m[i, j])),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="confusion at operating thresholds (IoU 0.5)")
    fig.savefig(path)
    return path


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def _tile(
    eval_set: EvalSet, ex: Example, others: Detections, caption: str, colour: tuple[int, int, int]
) -> Image.Image:
    """A crop around the example box with context, boxes drawn, caption underneath."""
    sample = eval_set.samples[ex.photo]
    tile = Image.new("RGB", (TILE, TILE + CAPTION), (30, 30, 30))
    draw = ImageDraw.Draw(tile)
    try:
        img = decode_image(sample.image.read_bytes(), 1024)  # DCT-reduced: plenty for a tile
    except (OSError, ImageError) as exc:
        draw.text((4, 4), f"unreadable: {exc}"[:60], fill=(255, 255, 255), font=_font(11))
        return tile
    arr = img.rgb()
    sx, sy = arr.shape[1] / sample.width, arr.shape[0] / sample.height
    x1, y1, x2, y2 = ex.box
    side = max(x2 - x1, y2 - y1) * 1.6 + 32
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = max(0.0, cx - side / 2), max(0.0, cy - side / 2)
    right, bottom = min(float(sample.width), left + side), min(float(sample.height), top + side)
    crop = Image.fromarray(arr).crop((int(left * sx), int(top * sy), int(right * sx), int(bottom * sy)))
    scale = TILE / max(crop.width, crop.height, 1)
    crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    tile.paste(crop, (0, 0))
    draw = ImageDraw.Draw(tile)
    k = scale * sx

    def rect(box: Sequence[float], fill: tuple[int, int, int], width: int) -> None:
        b = [(box[0] - left) * k, (box[1] - top) * k, (box[2] - left) * k, (box[3] - top) * k]
        draw.rectangle(b, outline=fill, width=width)

    for box in others.xyxy.tolist():
        rect(box, GT_COLOUR if colour == PRED_COLOUR else OTHER_COLOUR, 1)  # FP: gt around it; miss: preds
    rect(ex.box, colour, 3)
    font = _font(11)
    for n, line in enumerate(caption.split("\n")[:2]):
        draw.text((3, TILE + 2 + 13 * n), line[:40], fill=(235, 235, 235), font=font)
    return tile


def contact_sheet(
    path: Path,
    eval_set: EvalSet,
    examples: Sequence[Example],
    title: str,
    kind: str,
    preds: Sequence[Detections],
) -> Path | None:
    """Worst false positives (``kind='fp'``: red, gt of the photo in green) or misses (``'miss'``: the gt box
    in green, the model's boxes of any class near it in orange)."""
    if not examples:
        return None
    rows = (len(examples) + COLUMNS - 1) // COLUMNS
    sheet = Image.new("RGB", (COLUMNS * (TILE + 4) + 4, rows * (TILE + CAPTION + 4) + 28), (255, 255, 255))
    ImageDraw.Draw(sheet).text((6, 6), title[:110], fill=(0, 0, 0), font=_font(14))
    for n, ex in enumerate(examples):
        sample = eval_set.samples[ex.photo]
        if kind == "fp":
            others = sample.gt
            caption = f"score {ex.score:.2f}  IoU {ex.iou:.2f}\n{sample.source}/{sample.image.name}"
            colour = PRED_COLOUR
        else:
            p = preds[ex.photo]
            others = p[p.score >= 0.1] if len(p) else p
            caption = f"model score {ex.score:.2f}\n{sample.source}/{sample.image.name}"
            colour = GT_COLOUR
        tile = _tile(eval_set, ex, others, caption, colour)
        sheet.paste(tile, (4 + (n % COLUMNS) * (TILE + 4), 28 + (n // COLUMNS) * (TILE + CAPTION + 4)))
    sheet.save(path, optimize=True)
    return path
