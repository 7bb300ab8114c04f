"""Inspection records: inspections, photos (content-addressed bytes), findings, decisions (append-only)."""

from inference_service.records.blobs import BlobStore
from inference_service.records.store import (
    Box,
    NewFinding,
    NewPhoto,
    PendingFindings,
    RecordConflict,
    Records,
    RecordsListener,
)

__all__ = [
    "BlobStore",
    "Box",
    "NewFinding",
    "NewPhoto",
    "PendingFindings",
    "RecordConflict",
    "Records",
    "RecordsListener",
]
