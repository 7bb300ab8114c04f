"""Label Studio JSON export (and the task dicts its API returns): RectangleLabels in percent."""

from __future__ import annotations

from typing import Any

from training.formats.common import Issue, ParsedLabels, RawBox


def parse_labelstudio_results(results: list[dict[str, Any]]) -> tuple[ParsedLabels, tuple[int, int] | None]:
    """Boxes of one annotation's ``result`` list, in pixels of the original image."""
    out = ParsedLabels()
    size = None
    for r in results:
        if r.get("type") != "rectanglelabels":
            continue
        v = r.get("value", {})
        w_img, h_img = r.get("original_width"), r.get("original_height")
        if not w_img or not h_img:
            out.issues.append(Issue("missing_size", f"result {r.get('id')}: no original size", "dropped"))
            continue
        size = (int(w_img), int(h_img))
        if v.get("rotation"):
            out.issues.append(
                Issue("rotated_box", f"result {r.get('id')}: rotation {v['rotation']} ignored", "changed")
            )
        x, y = v["x"] / 100 * w_img, v["y"] / 100 * h_img
        w, h = v["width"] / 100 * w_img, v["height"] / 100 * h_img
        for name in v.get("rectanglelabels", []):
            out.boxes.append(RawBox(name, (x, y, x + w, y + h)))
    return out, size


def parse_labelstudio_task(task: dict[str, Any]) -> tuple[ParsedLabels, tuple[int, int] | None]:
    """The latest non-cancelled annotation of an exported task (annotations win over predictions)."""
    anns = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    if not anns:
        return ParsedLabels(), None
    latest = max(anns, key=lambda a: (a.get("updated_at") or "", a.get("id") or 0))
    return parse_labelstudio_results(latest.get("result", []))


def to_labelstudio_results(
    boxes: list[RawBox],
    width: int,
    height: int,
    from_name: str = "label",
    to_name: str = "image",
    scores: list[float] | None = None,
) -> list[dict[str, Any]]:
    """Pixel boxes -> Label Studio rectangle results (percent units), for predictions or annotations."""
    results = []
    for i, b in enumerate(boxes):
        x1, y1, x2, y2 = b.xyxy
        r: dict[str, Any] = {
            "id": f"r{i}",
            "type": "rectanglelabels",
            "from_name": from_name,
            "to_name": to_name,
            "original_width": width,
            "original_height": height,
            "image_rotation": 0,
            "value": {
                "x": 100 * x1 / width,
                "y": 100 * y1 / height,
                "width": 100 * (x2 - x1) / width,
                "height": 100 * (y2 - y1) / height,
                "rotation": 0,
                "rectanglelabels": [b.name],
            },
        }
        if scores is not None:
            r["score"] = float(scores[i])
        results.append(r)
    return results
