"""Versioned schema migrations, one numbered list per component (``cctv``, ``accounts``, ``records`` …).

``schema_migrations`` keeps ``(component, version)`` of every step applied. :func:`migrate` is idempotent
and safe when several processes start at once: it runs under a database-wide lock (``BEGIN IMMEDIATE``
on SQLite, ``pg_advisory_xact_lock`` on PostgreSQL) in one transaction, so a second process waits, then
finds the steps applied and does nothing. DDL is transactional on both dialects, so a failing step
leaves the schema as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from inference_service.storage.db import Database, StorageError

logger = logging.getLogger(__name__)

LOCK_KEY = 0x68617A61  # "haza": the advisory lock every hazardscan process takes to migrate


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]  # DDL; ``{blob}`` and ``{serial}`` become the dialect's types


def applied_versions(db: Database, component: str) -> list[int]:
    try:
        rows = db.query("SELECT version FROM schema_migrations WHERE component = ? ORDER BY version", [component])
    except Exception:
        db.reset()
        return []
    return [int(r[0]) for r in rows]


def migrate(db: Database, component: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply the component's missing steps in order; returns the versions applied now."""
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise StorageError(f"{component}: migration versions must be unique, ascending, from 1: {versions}")
    applied: list[int] = []
    with db.tx() as cur:
        if db.dialect == "postgresql":
            cur.execute("SELECT pg_advisory_xact_lock(?)", [LOCK_KEY])
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, "
            "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (component, version))"
        )
        done = {
            int(r[0])
            for r in cur.execute("SELECT version FROM schema_migrations WHERE component = ?", [component]).fetchall()
        }
        newer = [v for v in done if v > (versions[-1] if versions else 0)]
        if newer:
            raise StorageError(
                f"{component}: the database has schema version {max(newer)}, newer than this program knows "
                f"({versions[-1] if versions else 0}); upgrade hazardscan"
            )
        for m in migrations:
            if m.version in done:
                continue
            for stmt in m.statements:
                cur.execute(stmt.format(**db.ddl))
            cur.execute(
                "INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
                [component, m.version, m.name, time.time()],
            )
            applied.append(m.version)
    if applied:
        logger.info("%s schema: applied migrations %s", component, applied)
    return applied
