"""Content negotiation: which form a client wants the answer of ``/v1/detect`` in (JSON, the default, or the
evidence JPEG), and the q-values of ``Accept``-style headers."""

from __future__ import annotations

from typing import Literal

Format = Literal["json", "jpeg"]
JPEG_TYPES = ("image/jpeg", "image/*")


def q_values(header: str) -> dict[str, float]:
    """The items of an ``Accept`` or ``Accept-Encoding`` header with their q-values, lower-cased (a broken q-value
    counts as 0)."""
    out: dict[str, float] = {}
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out[media.lower()] = max(q, out.get(media.lower(), 0.0))
    return out


def wants_jpeg(accept: str | None, fmt: Format | None = None) -> bool:
    """True for ``?format=jpeg``, or for an ``Accept`` header that asks for ``image/jpeg`` (or ``image/*``)
    at least as much as for ``application/json``. ``*/*`` alone (curl's default) means JSON."""
    if fmt is not None:
        return fmt == "jpeg"
    ranges = q_values(accept or "")
    jpeg = max((ranges.get(t, 0.0) for t in JPEG_TYPES), default=0.0)
    return jpeg > 0 and jpeg >= ranges.get("application/json", 0.0)
