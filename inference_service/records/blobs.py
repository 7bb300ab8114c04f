"""Photo bytes on disk, content-addressed by SHA-256: ``<root>/ab/<sha256>``. Written before any row
refers to them (atomically: a temporary file renamed into place), so a failed transaction leaves at
most an unreferenced file, never a row without its photo."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from inference_service.storage import DiskFullError, DiskReserve, is_disk_full


class BlobStore:
    def __init__(self, root: Path, reserve_bytes: int = 0) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.reserve = DiskReserve(root, reserve_bytes)

    def check_room(self, size: int) -> None:
        """Raise :class:`DiskFullError` when a new photo of ``size`` bytes would eat into the disk's reserve."""
        self.reserve.check(size)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.is_file() and target.stat().st_size == len(data):
            return sha
        self.check_room(len(data))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError() from exc
            raise
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if is_disk_full(exc):
                raise DiskFullError() from exc
            raise
        return sha

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()
