"""The app's static files as a phone on a weak network wants them: gzip-compressed, and always revalidated.

Phones that accept gzip get a copy compressed once per file version (kept in memory: the app is a handful of small
text files), with its own ETag, so a revalidation after an upgrade never pairs a new module with an old one. Every
answer says ``Cache-Control: no-cache``: without it browsers guess a freshness from ``Last-Modified`` and may run
stale modules next to fresh ones for days after an upgrade; with it a reload costs one ``304`` per file.
"""

from __future__ import annotations

import gzip
import os
import threading
from dataclasses import dataclass
from email.utils import formatdate
from mimetypes import guess_type

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from inference_service.api.negotiation import q_values

COMPRESSIBLE = (".js", ".css", ".html", ".svg", ".json", ".webmanifest")
MIN_COMPRESS_BYTES = 512  # smaller files gain less than the header costs
GZIP_LEVEL = 9  # once per file version, so the slowest level costs nothing per request
NO_CACHE = "no-cache"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip``, or else ``*``, with a q-value above 0)."""
    q = q_values(accept_encoding)
    return q.get("gzip", q.get("*", 0.0)) > 0


@dataclass(frozen=True)
class Compressed:
    version: tuple[int, int]  # (mtime_ns, size) of the file it was made from
    body: bytes
    etag: str


class CompressedStaticFiles(StaticFiles):
    """``StaticFiles`` answering with an in-memory gzip copy where the client accepts it, and ``no-cache``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._copies: dict[str, Compressed] = {}
        self._lock = threading.Lock()

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        request_headers = Headers(scope=scope)
        path = os.fspath(full_path)
        compressible = path.endswith(COMPRESSIBLE) and stat_result.st_size >= MIN_COMPRESS_BYTES
        gzip_ok = compressible and accepts_gzip(request_headers.get("accept-encoding", ""))
        copy = self._compressed(path, stat_result) if gzip_ok else None
        if copy is None:
            response: Response = FileResponse(path, status_code=status_code, stat_result=stat_result)
        else:
            media_type = guess_type(path)[0] or "application/octet-stream"
            response = Response(copy.body, status_code, media_type=media_type, headers={
                "content-encoding": "gzip", "etag": copy.etag,
                "last-modified": formatdate(stat_result.st_mtime, usegmt=True),
            })  # fmt: skip
        response.headers["cache-control"] = NO_CACHE
        if compressible:
            response.headers["vary"] = "Accept-Encoding"
        if self.is_not_modified(response.headers, request_headers):
            return NotModifiedResponse(response.headers)
        return response

    def _compressed(self, path: str, stat_result: os.stat_result) -> Compressed | None:
        """The gzip copy of the file as it is now, made on first use of each version; None if it cannot be read."""
        version = (stat_result.st_mtime_ns, stat_result.st_size)
        with self._lock:
            copy = self._copies.get(path)
            if copy is not None and copy.version == version:
                return copy
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        body = gzip.compress(data, GZIP_LEVEL, mtime=0)
        copy = Compressed(version, body, f'"{version[0]:x}-{version[1]:x}-gzip"')
        with self._lock:
            self._copies[path] = copy
        return copy
