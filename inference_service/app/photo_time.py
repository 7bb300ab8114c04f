"""When a photo was taken: the upload form's ``taken_at`` field, checked, and how the photo record shows it.

The form sends the file's time (the browser's ``File.lastModified``) as ISO 8601 or as epoch seconds or
milliseconds. The photo's own EXIF ``DateTimeOriginal`` wins when it has one (the file's time can be when it was
copied); the form's value is kept beside it either way. Shown as local wall-clock time ``YYYY-MM-DDTHH:MM:SS``, as
EXIF gives it.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta, timezone

SKEW_S = 300.0  # a phone's clock may run this far ahead of the server's
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()  # before: a reset clock, not a photo's time
MS_ABOVE = 1e11  # an epoch number above this is milliseconds (1e11 s is the year 5138)
_EPOCH = re.compile(r"[0-9]{1,16}(\.[0-9]{1,6})?")


def exif_taken_at(data: bytes) -> str | None:
    """EXIF DateTimeOriginal as ``YYYY-MM-DDTHH:MM:SS`` (camera local time), if the photo has one."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            raw = img.getexif().get_ifd(0x8769).get(36867)
    except Exception:
        return None
    if not isinstance(raw, str) or len(raw) < 19:
        return None
    return raw[:10].replace(":", "-") + "T" + raw[11:19]


class TakenAtError(ValueError):
    """``taken_at`` is not a time, or not a possible one; the message says which and what is accepted."""


def parse_taken_at(text: str, *, now: float, offset_hours: float, skew_s: float = SKEW_S) -> float:
    """Epoch seconds of ``text``: ISO 8601 (no zone: local time, ``offset_hours`` east of UTC) or epoch
    seconds or milliseconds. Raises :class:`TakenAtError` for anything else, a time more than ``skew_s`` after
    ``now``, or one before 2000."""
    raw = text.strip()
    if not raw:
        raise TakenAtError("taken_at is empty; send an ISO 8601 time (2026-03-02T10:00:00+08:00) or epoch seconds")
    if _EPOCH.fullmatch(raw):
        t = float(raw)
        t = t / 1000.0 if t > MS_ABOVE else t
    else:
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise TakenAtError(
                f"taken_at {raw[:40]!r} is neither ISO 8601 (2026-03-02T10:00:00+08:00) nor epoch seconds"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone(timedelta(hours=offset_hours)))
        t = when.timestamp()
    if t > now + skew_s:
        ahead = t - now
        raise TakenAtError(
            f"taken_at {raw[:40]!r} is {ahead:,.0f} s in the future (at most {skew_s:.0f} s of clock skew is "
            "allowed); check the device's clock"
        )
    if t < EARLIEST:
        raise TakenAtError(f"taken_at {raw[:40]!r} is before 2000-01-01: the device's clock was not set")
    return t


def local_text(t: float, offset_hours: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` in local time (the form EXIF ``DateTimeOriginal`` has)."""
    return datetime.fromtimestamp(t, timezone(timedelta(hours=offset_hours))).strftime("%Y-%m-%dT%H:%M:%S")


def shown(exif: str | None, client: float | None, offset_hours: float) -> tuple[str | None, str | None]:
    """``(taken_at, source)`` for the photo record: EXIF first, then the form's time; source exif | client."""
    if exif:
        return exif, "exif"
    if client is not None:
        return local_text(client, offset_hours), "client"
    return None, None
