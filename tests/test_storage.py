"""The storage layer on a real SQLite file and a real PostgreSQL server: transactions, placeholders,
versioned migrations (idempotent, refused when the database is newer, safe when processes race)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)

from inference_service.storage import Database, Migration, StorageError, applied_versions, is_unique_violation, migrate

STEPS = (
    Migration(1, "things", ("CREATE TABLE things (id {serial}, name TEXT NOT NULL UNIQUE, data {blob})",)),
    Migration(2, "things.size", ("ALTER TABLE things ADD COLUMN size INTEGER NOT NULL DEFAULT 0",)),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "sub" / "app.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    d = Database(url)
    yield d
    d.close()


def test_migrations_apply_once_in_order(db: Database):
    assert migrate(db, "demo", STEPS[:1]) == [1]
    assert migrate(db, "demo", STEPS) == [2]
    assert migrate(db, "demo", STEPS) == []
    assert applied_versions(db, "demo") == [1, 2]
    assert applied_versions(db, "other") == []
    with db.tx() as cur:
        cur.execute("INSERT INTO things (name, data, size) VALUES (?, ?, ?)", ["a", b"\x00\xff", 3])
    assert db.query("SELECT name, data, size FROM things") == [("a", b"\x00\xff", 3)]


def test_a_database_newer_than_the_program_is_refused(db: Database):
    migrate(db, "demo", STEPS)
    with pytest.raises(StorageError, match="newer than this program knows"):
        migrate(db, "demo", STEPS[:1])


def test_a_failing_step_leaves_nothing_applied(db: Database):
    bad = (*STEPS, Migration(3, "broken", ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL")))
    with pytest.raises(Exception, match=r"(?i)syntax"):
        migrate(db, "demo", bad)
    db.reset()
    assert applied_versions(db, "demo") == []  # steps 1 and 2 were in the same transaction
    assert migrate(db, "demo", STEPS) == [1, 2]


def test_transactions_roll_back_and_unique_conflicts_are_recognised(db: Database):
    migrate(db, "demo", STEPS)
    with pytest.raises(RuntimeError), db.tx() as cur:
        cur.execute("INSERT INTO things (name) VALUES (?)", ["kept?"])
        raise RuntimeError("boom")
    assert db.query("SELECT COUNT(*) FROM things") == [(0,)]
    with db.tx() as cur:
        cur.execute("INSERT INTO things (name) VALUES (?)", ["x"])
    with pytest.raises(Exception) as err, db.tx() as cur:
        cur.execute("INSERT INTO things (name) VALUES (?)", ["x"])
    assert is_unique_violation(err.value)
    assert db.query_dicts("SELECT name, size FROM things") == [{"name": "x", "size": 0}]


def test_bad_versions_and_urls_are_refused(tmp_path: Path):
    with pytest.raises(StorageError, match="unique, ascending"):
        migrate(Database(tmp_path / "a.db"), "demo", (STEPS[1], STEPS[0]))
    with pytest.raises(StorageError, match="use a file path, sqlite:///path or postgresql://"):
        Database("mysql://u@h/db")


_RACER = """
import sys, time
from inference_service.storage import Database, Migration, migrate
slow = "SELECT 1" if sys.argv[2] == "sqlite" else "SELECT pg_sleep(0.3)"
steps = (
    Migration(1, "a", ("CREATE TABLE IF NOT EXISTS racers (id INTEGER PRIMARY KEY, who TEXT)", slow)),
    Migration(2, "b", ("INSERT INTO racers (id, who) VALUES (1, 'first')",)),
)
db = Database(sys.argv[1])
while time.time() < float(sys.argv[3]):
    time.sleep(0.005)
print(migrate(db, "race", steps))
"""


def test_two_processes_migrating_at_once_apply_each_step_once(url: str):
    import time

    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    start = time.time() + 1.5  # both processes are up and waiting by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, url, dialect, str(start)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-800:] for o in outs]
    results = sorted(o[0].decode().strip() for o in outs)
    assert results == ["[1, 2]", "[]"]  # one applied both steps, the other found them applied
    db = Database(url)
    assert db.query("SELECT id, who FROM racers") == [(1, "first")]
    assert applied_versions(db, "race") == [1, 2]
    db.close()


class _Locked:
    """A connection whose first ``locked`` journal switches are refused, as SQLite refuses one of two processes
    that switch one new database to WAL at once."""

    def __init__(self, locked: int, error: str = "database is locked") -> None:
        self.locked, self.error, self.calls = locked, error, 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.locked:
            raise sqlite3.OperationalError(self.error)


def test_wal_mode_asks_again_while_the_database_is_locked():
    from inference_service.storage.db import wal_mode

    conn = _Locked(locked=3)
    wal_mode(conn, timeout_s=5, pause_s=0)  # type: ignore[arg-type]
    assert conn.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        wal_mode(_Locked(locked=10**6), timeout_s=0.05, pause_s=0.01)  # type: ignore[arg-type]
    other = _Locked(locked=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        wal_mode(other, timeout_s=5, pause_s=0)  # type: ignore[arg-type]
    assert other.calls == 1  # any other error is not retried
