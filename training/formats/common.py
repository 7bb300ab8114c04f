"""What every label parser returns: named boxes in original-image pixels plus the issues it saw."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawBox:
    name: str  # class name as the source spells it
    xyxy: tuple[float, float, float, float]  # pixels of the EXIF-oriented image
    kind: str = "box"  # "box" or "polygon" (converted to its bounding box)


@dataclass(frozen=True)
class Issue:
    code: str  # machine-readable: polygon_to_box, clipped, zero_area, unknown_class, malformed_line, ...
    detail: str
    action: str  # "changed", "dropped" or "noted"


@dataclass
class ParsedLabels:
    boxes: list[RawBox] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
