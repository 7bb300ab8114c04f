"""Pascal VOC xml: absolute pixel boxes, class names as strings (spaces allowed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from training.formats.common import Issue, ParsedLabels, RawBox


def parse_voc(xml_text: str) -> tuple[ParsedLabels, tuple[int, int] | None]:
    """Returns the labels and the ``(width, height)`` the file declares (None if absent)."""
    out = ParsedLabels()
    root = ET.fromstring(xml_text)
    size = None
    sz = root.find("size")
    if sz is not None:
        try:
            size = (int(float(sz.findtext("width", "0"))), int(float(sz.findtext("height", "0"))))
        except ValueError:
            size = None
    for i, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if not name or bb is None:
            out.issues.append(Issue("malformed_object", f"object {i}: missing name or bndbox", "dropped"))
            continue
        try:
            # VOC is 1-based inclusive; the canonical frame is 0-based with exclusive max.
            x1, y1 = float(bb.findtext("xmin", "")) - 1, float(bb.findtext("ymin", "")) - 1
            x2, y2 = float(bb.findtext("xmax", "")), float(bb.findtext("ymax", ""))
        except ValueError:
            out.issues.append(Issue("malformed_object", f"object {i} ({name}): non-numeric bndbox", "dropped"))
            continue
        out.boxes.append(RawBox(name, (max(x1, 0.0), max(y1, 0.0), x2, y2)))
    return out, (size if size and size[0] > 0 and size[1] > 0 else None)
