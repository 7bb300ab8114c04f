"""Room on the disk that holds the service's files.

A photo is only stored while storing it leaves a reserve free (``HAZARDSCAN_MIN_FREE_DISK_MB``), so the
database, the decisions and the ledger, which need little, keep working when photos no longer fit. A disk that
fills up anyway (another program, a burst of uploads) is told apart from other failures by
:func:`is_disk_full`, so that the client hears "the disk is full, nothing was stored" instead of an internal
error, and a phone keeps its photo to send again.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from inference_service.budget import MB

_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


class DiskFullError(Exception):
    """Nothing was stored: the disk has no room left, or no more than the configured reserve."""

    code = "insufficient_storage"
    message = "the server's disk is full, so nothing was stored; send it again later"

    def __init__(self, detail: str = "no space left on the device") -> None:
        super().__init__(detail)  # for the log: what ran out; clients get ``message``


def free_bytes(path: Path) -> int | None:
    """Bytes free to the service on ``path``'s file system; None when it cannot be read."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, says that the disk is full: ENOSPC or EDQUOT from
    the OS, SQLite's SQLITE_FULL ("database or disk is full"), PostgreSQL's disk_full."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, DiskFullError):
            return True
        if isinstance(cur, OSError) and cur.errno in _DISK_FULL_ERRNOS:
            return True
        if isinstance(cur, sqlite3.Error) and (getattr(cur, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL:
            return True
        if getattr(cur, "sqlstate", None) == _PG_DISK_FULL:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


@dataclass(frozen=True)
class DiskReserve:
    """The space a folder's disk must keep free after a write (0: only a full disk refuses)."""

    path: Path
    reserve: int  # bytes

    def free(self) -> int | None:
        return free_bytes(self.path)

    def check(self, incoming: int) -> None:
        """Raise :class:`DiskFullError` unless ``incoming`` more bytes leave the reserve free."""
        free = self.free()
        if free is not None and free - incoming < self.reserve:
            raise DiskFullError(
                f"{incoming // 1024} KB to write, {free // MB} MB free, {self.reserve // MB} MB kept in reserve"
            )

    def shortfall(self) -> str | None:
        """Why new photos are refused now (for readiness; no paths), or None while there is room."""
        free = self.free()
        if free is None or (free >= self.reserve and free > 0):
            return None
        return (
            f"{free // MB} MB free on the data folder's disk, under the {self.reserve // MB} MB reserve "
            "(HAZARDSCAN_MIN_FREE_DISK_MB): new photos are refused"
        )
