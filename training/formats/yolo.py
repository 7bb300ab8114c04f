"""YOLO txt labels: ``cls cx cy w h`` box lines and ``cls x1 y1 x2 y2 ...`` polygon lines, mixed freely.

Pure: text in, pixel boxes out. The file wrapper lives in the importer.
"""

from __future__ import annotations

from collections.abc import Sequence

from training.formats.common import Issue, ParsedLabels, RawBox


def parse_yolo_labels(text: str, width: int, height: int, names: Sequence[str]) -> ParsedLabels:
    out = ParsedLabels()
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls = int(float(parts[0]))
            values = [float(v) for v in parts[1:]]
        except ValueError:
            out.issues.append(Issue("malformed_line", f"line {lineno}: {line[:60]!r} is not numeric", "dropped"))
            continue
        if not 0 <= cls < len(names):
            out.issues.append(Issue("unknown_class", f"line {lineno}: class id {cls} outside names", "dropped"))
            continue
        name = names[cls]
        if len(values) == 4:
            cx, cy, w, h = values
            xyxy = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
            out.boxes.append(RawBox(name, xyxy, "box"))
        elif len(values) >= 6 and len(values) % 2 == 0:
            xs, ys = values[0::2], values[1::2]
            xyxy = (min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height)
            out.boxes.append(RawBox(name, xyxy, "polygon"))
            out.issues.append(
                Issue("polygon_to_box", f"line {lineno}: {len(xs)}-point polygon of {name} -> bounding box", "changed")
            )
        else:
            out.issues.append(
                Issue(
                    "malformed_line", f"line {lineno}: {len(values)} coordinates is neither box nor polygon", "dropped"
                )
            )
    return out
