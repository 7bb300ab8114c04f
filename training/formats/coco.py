"""COCO detection json: one document, many images; ``bbox`` is ``[x, y, w, h]`` in pixels."""

from __future__ import annotations

import json
from typing import Any

from training.formats.common import Issue, ParsedLabels, RawBox


def parse_coco(text: str) -> dict[str, tuple[ParsedLabels, tuple[int, int]]]:
    """Map of image file name -> (labels, (width, height))."""
    doc: dict[str, Any] = json.loads(text)
    cats = {c["id"]: c["name"] for c in doc.get("categories", [])}
    images = {im["id"]: im for im in doc.get("images", [])}
    out: dict[str, tuple[ParsedLabels, tuple[int, int]]] = {
        im["file_name"]: (ParsedLabels(), (int(im["width"]), int(im["height"]))) for im in images.values()
    }
    for ann in doc.get("annotations", []):
        im = images.get(ann.get("image_id"))
        if im is None:
            continue
        labels = out[im["file_name"]][0]
        name = cats.get(ann.get("category_id"))
        if name is None:
            labels.issues.append(
                Issue(
                    "unknown_class",
                    f"annotation {ann.get('id')}: category {ann.get('category_id')} not in categories",
                    "dropped",
                )
            )
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        labels.boxes.append(RawBox(name, (x, y, x + w, y + h)))
    return out
