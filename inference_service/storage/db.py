"""One database handle for the whole service: SQLite by default (a file, WAL), PostgreSQL by URL.

Plain DB-API on both (``sqlite3``, ``psycopg`` 3), SQL written with ``?`` placeholders (rewritten to ``%s``
for PostgreSQL). Connections are per thread; :meth:`Database.tx` is one short transaction (``BEGIN
IMMEDIATE`` on SQLite, so writers queue instead of failing half-way).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgresql"]

# Column types that differ between the dialects; DDL strings use them as ``{blob}`` etc.
DDL: dict[str, dict[str, str]] = {
    "sqlite": {"blob": "BLOB", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgresql": {"blob": "BYTEA", "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
}


MAX_OFFSET = 10_000_000  # the largest OFFSET a listing takes: far past any table, inside SQLite's 64-bit integers


class StorageError(RuntimeError):
    """The database cannot be opened or used; the message says which and why."""


def parse_url(url: str) -> tuple[Dialect, str]:
    """``(dialect, target)``: a SQLite path or a PostgreSQL conninfo URL."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql", "postgresql://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite", url[len("sqlite:///") :] or ":memory:"
    if "://" in url:
        raise StorageError(f"unsupported database URL {url!r}; use a file path, sqlite:///path or postgresql://...")
    return "sqlite", url


def is_unique_violation(exc: BaseException) -> bool:
    """True for a UNIQUE/PRIMARY KEY conflict on either dialect."""
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc)
    return getattr(exc, "sqlstate", None) == "23505"


def wal_mode(conn: sqlite3.Connection, timeout_s: float, pause_s: float = 0.02) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while the database is locked, for up to ``timeout_s``. Two
    processes opening one database at once both read it and both want it exclusively to switch the journal:
    SQLite answers one of them "database is locked" at once, without waiting (it would be a deadlock), and that
    one must let go and ask again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause_s)


class Database:
    """Thread-safe: each thread gets its own connection."""

    def __init__(self, url: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        self.url = str(url)
        self.busy_timeout_s = busy_timeout_s
        self.dialect, self._target = parse_url(self.url)
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        if self.dialect == "sqlite" and self._target != ":memory:":
            Path(self._target).parent.mkdir(parents=True, exist_ok=True)

    @property
    def ddl(self) -> dict[str, str]:
        return DDL[self.dialect]

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            try:
                conn = sqlite3.connect(
                    self._target, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
                )
                wal_mode(conn, self.busy_timeout_s)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open SQLite database {self._target}: {exc}") from exc
            return conn
        try:
            import psycopg
        except ImportError as exc:
            raise StorageError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'") from exc
        try:
            return psycopg.connect(self._target, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc

    def conn(self) -> Any:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def reset(self) -> None:
        """Drop this thread's connection (after an error); the next call reconnects."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
            try:
                conn.close()
            except Exception:
                logger.debug("closing a broken connection failed", exc_info=True)

    def sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    @contextmanager
    def tx(self) -> Iterator[Cursor]:
        """One transaction; commits on leaving, rolls back on any exception."""
        conn = self.conn()
        if self.dialect == "sqlite":
            raw = conn.cursor()
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield Cursor(self, raw)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
        else:
            with conn.transaction(), conn.cursor() as raw:
                yield Cursor(self, raw)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read outside any explicit transaction."""
        cur = self.conn().cursor()
        try:
            cur.execute(self.sql(sql), tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()

    def query_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn().cursor()
        try:
            cur.execute(self.sql(sql), tuple(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            cur.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:
                    logger.debug("closing a connection failed", exc_info=True)
            self._all.clear()
        self._local = threading.local()


class Cursor:
    """A cursor inside :meth:`Database.tx` that takes ``?`` placeholders on both dialects."""

    def __init__(self, db: Database, raw: Any) -> None:
        self.db = db
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(self.db.sql(sql), tuple(params))
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self.raw.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.raw.fetchall()]

    def fetch_dicts(self) -> list[dict[str, Any]]:
        names = [d[0] for d in self.raw.description]
        return [dict(zip(names, row, strict=True)) for row in self.raw.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self.raw.rowcount)


def like_escaped(text: str) -> str:
    """``text`` matched literally inside a ``LIKE … ESCAPE '!'`` pattern: its ``%``, ``_`` and ``!`` escaped."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
