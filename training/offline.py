"""Make Ultralytics work with no network: offline flag, private settings dir and a local font."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def local_font() -> Path:
    """A TTF that ships with matplotlib (an Ultralytics dependency), so nothing is downloaded."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def prepare_offline(config_dir: Path) -> None:
    """Must run before ``ultralytics`` is imported in this process."""
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir.resolve())
    os.environ.setdefault("YOLO_VERBOSE", "True")
    font_dir = config_dir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = font_dir / name
        if not target.exists():
            shutil.copyfile(local_font(), target)
