"""The service's one storage layer: :class:`Database` (SQLite or PostgreSQL) and versioned migrations."""

from inference_service.storage.db import (
    DDL,
    MAX_OFFSET,
    Cursor,
    Database,
    StorageError,
    is_unique_violation,
    like_escaped,
    parse_url,
)
from inference_service.storage.migrations import Migration, applied_versions, migrate
from inference_service.storage.space import DiskFullError, DiskReserve, free_bytes, is_disk_full

__all__ = [
    "DDL",
    "MAX_OFFSET",
    "Cursor",
    "Database",
    "DiskFullError",
    "DiskReserve",
    "Migration",
    "StorageError",
    "applied_versions",
    "free_bytes",
    "is_disk_full",
    "is_unique_violation",
    "like_escaped",
    "migrate",
    "parse_url",
]
