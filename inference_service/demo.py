"""``hazardscan demo-photo OUT.jpg``: a picture of flames that the project draws itself, to try the service
with a photo everyone has (no licence question: it is made from a fixed random seed, not taken).

The shipped model raises FIRE-001 (open fire) on it. It is a drawing, not evidence of anything: use it
to see the API, the evidence image and the app work, not to judge the model.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)


def _turbulence(rng: np.random.Generator, height: int, width: int, octaves: int = 6) -> np.ndarray:
    """Sum of upscaled random grids, finest last (value noise), scaled to [0, 1]."""
    out = np.zeros((height, width))
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        grid = (rng.random((cells + 1, cells + 1)) * 255).astype(np.uint8)
        layer = np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC), float) / 255
        out += layer / 2**octave
    return out / out.max()


def demo_photo(width: int = 800, height: int = 600, seed: int = 1) -> Image.Image:
    """Flames rising from the bottom of a dark frame; the same pixels for the same arguments."""
    rng = np.random.default_rng(seed)
    t = _turbulence(rng, height, width)
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(-1, 1, width)[None, :]
    heat = np.clip((y * 1.6 - 0.35) - np.abs(x) * 0.9 + (t - 0.5) * 0.9, 0, 1)
    red, green, blue = (np.clip(heat * 3.0 - k, 0, 1) for k in (0.0, 1.0, 2.0))
    background = 25 + 20 * t
    rgb = np.stack([background + red * 230, background + green * 220, background + blue * 200], -1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, metavar="OUT.jpg", help="where to write the JPEG")
    p.add_argument("--width", type=int, default=800)
    p.add_argument("--height", type=int, default=600)


def run(args: argparse.Namespace) -> int:
    if not (64 <= args.width <= 8000 and 64 <= args.height <= 8000):
        sys.stderr.write("error: --width and --height must be between 64 and 8000 pixels\n")
        return 2
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        demo_photo(args.width, args.height).save(args.out, "JPEG", quality=90)
    except OSError as exc:
        sys.stderr.write(f"error: cannot write {args.out}: {exc.strerror or exc}\n")
        return 2
    logger.info("wrote %s (%d×%d): a drawing of flames, for trying the service", args.out, args.width, args.height)
    return 0
