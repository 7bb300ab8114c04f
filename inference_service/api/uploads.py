"""Upload parts kept as a list of chunks while they arrive, joined once; which bodies are a photo itself.

Starlette writes each multipart chunk (64 KiB) of a file part into a ``SpooledTemporaryFile``, whose in-memory
``BytesIO`` grows by an eighth at a time: a phone photo was reallocated and copied dozens of times, in the event
loop (profiled: benchmarks/reports/service_load.md). :class:`PartBuffer` appends the chunks to a list
and joins them once, when the part is first read (a worker thread reads it, see ``routes.read_file``; the
rewind Starlette does after parsing does not join); the joined bytes then back the ``BytesIO`` as they are, so
reading the whole part copies nothing more.
"""

from __future__ import annotations

import io
from tempfile import SpooledTemporaryFile
from typing import IO, Any

import starlette.formparsers
from starlette.datastructures import Headers
from starlette.types import Scope


class PartBuffer(SpooledTemporaryFile[bytes]):
    """A ``SpooledTemporaryFile`` that collects writes in a list until anything else touches it."""

    def __init__(self, max_size: int = 0, mode: str = "w+b", **kwargs: Any) -> None:
        self._chunks: list[bytes] = []
        self._pending = 0
        self._at_start = False  # rewound (seek(0)) while still in chunks: the join leaves the position at 0
        super().__init__(max_size=max_size, mode=mode, **kwargs)

    @property  # every SpooledTemporaryFile method goes through _file: pending chunks are joined first
    def _file(self) -> IO[bytes]:
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._pending = 0
            held: IO[bytes] = self.__dict__["_held"]
            if isinstance(held, io.BytesIO) and held.tell() == 0 and not held.getbuffer().nbytes:
                held = io.BytesIO(data)  # backed by the joined bytes themselves: a whole read copies nothing
                held.seek(0, io.SEEK_SET if self._at_start else io.SEEK_END)
                self.__dict__["_held"] = held
            else:
                held.write(data)
            self._at_start = False
        file: IO[bytes] = self.__dict__["_held"]
        return file

    @_file.setter
    def _file(self, file: IO[bytes]) -> None:
        self.__dict__["_held"] = file

    def write(self, s: Any) -> int:
        data = bytes(s)
        rolled, max_size = self.__dict__["_rolled"], self.__dict__["_max_size"]
        if rolled or self._at_start or (max_size and self.tell() + len(data) > max_size):
            return super().write(data)  # over the spool size: as SpooledTemporaryFile does (to disk)
        self._chunks.append(data)
        self._pending += len(data)
        return len(data)

    def tell(self) -> int:
        if self._chunks:  # asked before each write (Starlette's UploadFile): answered without joining
            position: int = self.__dict__["_held"].tell()
            return 0 if self._at_start else position + self._pending
        return super().tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        held: IO[bytes] = self.__dict__["_held"]
        if self._chunks and offset == 0 and whence == io.SEEK_SET and held.tell() == 0:
            self._at_start = True  # Starlette rewinds every part after parsing, in the event loop: no join yet
            return 0
        return super().seek(offset, whence)


def install() -> None:
    """Have Starlette's multipart parser keep file parts in :class:`PartBuffer` (process-wide)."""
    starlette.formparsers.SpooledTemporaryFile = PartBuffer  # type: ignore[misc,assignment]


# A photo sent as the request body itself (``POST /v1/detect`` with one of these ``Content-Type``\ s): no
# multipart form to parse, the options in the query string. ``image/jpg`` is a common misspelling, taken too.
RAW_PHOTO_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/heif",
    "application/octet-stream",
)
_RAW_ALIASES = frozenset({*RAW_PHOTO_TYPES, "image/jpg"})


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type`` value, lower case (``""`` when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_raw_photo_type(content_type: str | None) -> bool:
    """Whether a body of this ``Content-Type`` is taken as a photo itself."""
    return media_type(content_type) in _RAW_ALIASES


def sends_form(scope: Scope) -> bool:
    """Whether a request is (or, without a ``Content-Type``, is taken as) a multipart form."""
    kind = media_type(Headers(scope=scope).get("content-type"))
    return kind in ("", "multipart/form-data")
