"""Contact sheets for counting a scene rule's raises by eye: the photos of some sources scanned through the served
pipeline in a declared scene, each tile numbered, the chosen hazard's findings drawn (orange: suspected, red:
confirmed) over the detections of the rule's classes (thin, grey), and a CSV to fill in (true and false raises per
tile). The sheets are for a person to read, never committed; this recipe is.

    python -m evaluation.scene_rules --model models/hazardscan-v6 --data work/datasets/v8-person30 \
        --sources safety-harness --scene work_at_height --hazard CONST-002 --out work/scene/const002 [--limit 48]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from evaluation.plots import _font
from inference_service.runtime import Detector
from inference_service.scan import Scanner, ScanOptions
from inference_service.taxonomy import load_taxonomy
from training.dataset import load_manifest

TILE, COLUMNS = 300, 4


def spread(items: Sequence[Any], limit: int | None) -> list[Any]:
    """At most ``limit`` items, evenly spread over the sequence (all when ``limit`` is None)."""
    if limit is None or len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def scan_photos(
    scanner: Scanner, photos: Sequence[Path], hazard: str, scene: str | None
) -> list[tuple[Path, list[Any], Any]]:
    """Per photo: the findings of ``hazard`` in ``scene`` and the detect result."""
    out = []
    for photo in photos:
        scan = scanner.scan(photo.read_bytes(), ScanOptions(scene=scene))
        out.append((photo, [f for f in scan.findings if f.hazard_id == hazard], scan.detect))
    return out


def _tile(photo: Path, findings: list[Any], detect: Any, classes: Sequence[str], keep: set[str], n: int) -> Image.Image:
    img = Image.open(photo).convert("RGB")
    scale = TILE / max(img.size)
    img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    tile = Image.new("RGB", (TILE, TILE + 18), (255, 255, 255))
    tile.paste(img, (0, 18))
    draw = ImageDraw.Draw(tile)
    dets = detect.detections
    for box, c in zip(dets.xyxy.tolist(), dets.class_id.tolist(), strict=True):
        if classes[c] in keep:
            draw.rectangle([v * scale + (18 if i % 2 else 0) for i, v in enumerate(box)], outline=(150, 150, 150))
    for f in findings:
        colour = (255, 140, 0) if f.suspected else (220, 0, 0)
        draw.rectangle([v * scale + (18 if i % 2 else 0) for i, v in enumerate(f.box)], outline=colour, width=3)
    draw.text((4, 2), f"#{n}  raises {len(findings)}  {photo.name[:28]}", fill=(0, 0, 0), font=_font(12))
    return tile


def write_sheets(
    rows: list[tuple[Path, list[Any], Any]], classes: Sequence[str], keep: set[str], out: Path, per_sheet: int = 24
) -> list[Path]:
    sheets = []
    for start in range(0, len(rows), per_sheet):
        chunk = rows[start : start + per_sheet]
        lines = (len(chunk) + COLUMNS - 1) // COLUMNS
        sheet = Image.new("RGB", (COLUMNS * (TILE + 4), lines * (TILE + 22)), (255, 255, 255))
        for k, (photo, findings, detect) in enumerate(chunk):
            tile = _tile(photo, findings, detect, classes, keep, start + k)
            sheet.paste(tile, ((k % COLUMNS) * (TILE + 4), (k // COLUMNS) * (TILE + 22)))
        path = out / f"sheet-{start // per_sheet:02d}.png"
        sheet.save(path, optimize=True)
        sheets.append(path)
    return sheets


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="a built dataset folder (manifest.jsonl)")
    p.add_argument("--split", default="val", choices=["train", "val", "all"])
    p.add_argument("--sources", required=True, help="comma-separated source names whose photos show the scene")
    p.add_argument("--scene", required=True)
    p.add_argument("--hazard", required=True)
    p.add_argument("--limit", type=int, default=48)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--only-raising", action="store_true", help="sheets of the photos that raise it only")
    args = p.parse_args(argv)
    taxonomy = load_taxonomy()
    taxonomy.check_scene(args.scene)
    hazard = taxonomy.hazard(args.hazard)
    sources = {s.strip() for s in args.sources.split(",")}
    photos = spread(
        [s.image for s, split in load_manifest(args.data) if args.split in ("all", split) and s.source in sources],
        args.limit,
    )
    detector = Detector.load(args.model, threads=1)
    scanner = Scanner(detector, taxonomy)
    rows = scan_photos(scanner, photos, args.hazard, args.scene)
    without = sum(len(f) for _, f, _ in scan_photos(scanner, photos, args.hazard, None))
    args.out.mkdir(parents=True, exist_ok=True)
    keep = {c for r in hazard.rules for c in (*r.when, *r.with_, *r.without)}
    shown = [r for r in rows if r[1]] if args.only_raising else rows
    sheets = write_sheets(shown, detector.card.classes, keep, args.out)
    with (args.out / "count.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tile", "photo", "raises", "true_raises", "false_raises", "missed"])
        for n, (photo, findings, _) in enumerate(shown):
            w.writerow([n, str(photo), len(findings), "", "", ""])
    summary = {
        "model": f"{detector.card.model_id} {detector.card.version}",
        "hazard": args.hazard,
        "scene": args.scene,
        "photos": len(rows),
        "photos_raising": sum(1 for _, f, _ in rows if f),
        "raises": sum(len(f) for _, f, _ in rows),
        "raises_without_scene": without,
        "sheets": [str(s) for s in sheets],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    sys.stdout.write(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
