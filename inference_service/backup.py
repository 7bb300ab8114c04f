"""``hazardscan backup`` / ``hazardscan restore``: the service's database and the photos it names, in one folder.

hazardscan backup /mnt/backup/hazardscan           # while the service runs; again later copies only new photos
hazardscan backup --check /mnt/backup/hazardscan   # is every photo there, whole? is the database readable?
hazardscan restore /mnt/backup/hazardscan          # into an empty data folder / database, service stopped

A backup folder holds:

- ``hazardscan.db`` (SQLite, copied with SQLite's online backup, so a running service is no obstacle) or
  ``hazardscan.dump`` (PostgreSQL, ``pg_dump --format=custom``): users, API keys, inspections, findings,
  decisions, the ledger, statistics and, unless ``HAZARDSCAN_EVENTS_DB`` keeps them elsewhere, CCTV events
  (then a second file, ``events.db`` / ``events.dump``);
- ``photos/ab/<sha256>``: every photo the database names (of inspections, rectifications and public reports),
  laid out as in the data folder. Photos never change once written, so a second backup into the same folder
  copies only the new ones;
- ``photos.sha256``: one line per photo, in ``sha256sum`` format (``sha256sum -c photos.sha256`` checks it);
- ``manifest.json``: when, which database kind, rows per table, photo count and bytes.

The database is copied first, then the photos: a photo stored meanwhile is one the copy does not name yet,
never the other way round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from inference_service.storage import Database, StorageError, parse_url

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
CHECKSUMS = "photos.sha256"
PHOTOS = "photos"
PHOTO_TABLES = ("photos", "reports")  # the tables whose sha256 column names a file under photos/
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup that cannot be made, checked or restored; the message says what and what to do."""


Role = Literal["service", "events"]


@dataclass
class DatabaseCopy:
    role: Role
    dialect: str
    file: str  # its name in the backup folder
    tables: dict[str, int] = field(default_factory=dict)


@dataclass
class Manifest:
    created_at: str
    databases: list[DatabaseCopy]
    photos: int
    photo_bytes: int
    format: int = FORMAT

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            raw = json.loads((folder / MANIFEST).read_text())
            dbs = [DatabaseCopy(**d) for d in raw.pop("databases")]
            manifest = cls(databases=dbs, **raw)
        except FileNotFoundError as exc:
            raise BackupError(f"{folder} is not a hazardscan backup: it has no {MANIFEST}") from exc
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"{folder / MANIFEST} is damaged: {exc}") from exc
        if manifest.format != FORMAT:
            raise BackupError(f"backup format {manifest.format}; this version reads format {FORMAT}")
        return manifest


@dataclass
class Outcome:
    """What a backup did, or what a check found."""

    manifest: Manifest
    copied: int = 0  # photos copied this time
    missing: list[str] = field(default_factory=list)  # named by the database, not found (or unreadable)
    damaged: list[str] = field(default_factory=list)  # content does not match its SHA-256 name

    @property
    def ok(self) -> bool:
        return not self.missing and not self.damaged


# ---- databases --------------------------------------------------------------------------------------------------


def _dump(url: str, folder: Path, stem: str) -> str:
    """Copy the database at ``url`` into ``folder`` as ``stem.db`` or ``stem.dump``; the file's name."""
    dialect, target = parse_url(url)
    name = f"{stem}.db" if dialect == "sqlite" else f"{stem}.dump"
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if dialect == "sqlite":
            if not Path(target).is_file():
                raise BackupError(f"no database at {target}: nothing to back up (is HAZARDSCAN_DATA_DIR right?)")
            _sqlite_copy(target, tmp)
        else:
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={tmp}", target], "pg_dump")
        os.replace(tmp, folder / name)
    finally:
        tmp.unlink(missing_ok=True)
    return name


def _sqlite_copy(source: str | Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while other connections read and write."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy SQLite database {source}: {exc}") from exc
    finally:
        src.close()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: PostgreSQL backups need it on PATH (apt-get install postgresql-client)")
    return found


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


def _contents(where: str | Path) -> tuple[dict[str, int], list[str]]:
    """Rows per table and the photos named (SHA-256) of a SQLite file, read-only, or a PostgreSQL URL."""
    dialect, target = parse_url(str(where))
    if dialect == "sqlite":
        conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)  # no -wal or -shm left beside a copy
        try:
            return _read(lambda sql: conn.execute(sql).fetchall(), "sqlite")
        finally:
            conn.close()
    db = Database(str(where))
    try:
        return _read(db.query, "postgresql")
    finally:
        db.close()


def _read(query: Callable[[str], list[Any]], dialect: str) -> tuple[dict[str, int], list[str]]:
    if dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
    tables = {str(n): int(query(f'SELECT COUNT(*) FROM "{n}"')[0][0]) for (n,) in query(sql)}
    named = [t for t in PHOTO_TABLES if t in tables]
    return tables, sorted({str(r[0]) for t in named for r in query(f"SELECT DISTINCT sha256 FROM {t}")})


# ---- photos -----------------------------------------------------------------------------------------------------


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _rel(sha: str) -> str:
    return f"{PHOTOS}/{sha[:2]}/{sha}"


def _copy_photo(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` (atomically) if its content matches its name; False if it does not."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != source.name:
            return False
        os.replace(tmp_name, target)
        return True
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def _sync_photos(shas: list[str], source_root: Path, target_root: Path, outcome: Outcome) -> int:
    """Copy the photos ``target_root`` lacks (same size means the same photo); their total bytes."""
    total = 0
    for sha in shas:
        src, dst = source_root / sha[:2] / sha, target_root / sha[:2] / sha
        try:
            size = src.stat().st_size
        except OSError:
            outcome.missing.append(sha)
            continue
        total += size
        if dst.is_file() and dst.stat().st_size == size:
            continue
        if _copy_photo(src, dst):
            outcome.copied += 1
        else:
            outcome.damaged.append(sha)
    return total


# ---- backup, check, restore -------------------------------------------------------------------------------------


def backup(database_url: str, data_dir: Path, dest: Path, events_url: str | None = None) -> Outcome:
    """Copy the database (and a separate events database), then the photos it names, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    sources: dict[Role, str] = {"service": database_url}
    if events_url and events_url != database_url:
        sources["events"] = events_url
    copies: list[DatabaseCopy] = []
    service_shas: list[str] = []
    for role, url in sources.items():
        copy = DatabaseCopy(role, parse_url(url)[0], _dump(url, dest, "hazardscan" if role == "service" else role))
        # rows and photos of the copy itself where it is a file; of the live database (a superset) on PostgreSQL
        copy.tables, shas = _contents(dest / copy.file if copy.dialect == "sqlite" else url)
        service_shas = shas if role == "service" else service_shas
        copies.append(copy)
    outcome = Outcome(Manifest(_now(), copies, len(service_shas), 0))
    outcome.manifest.photo_bytes = _sync_photos(service_shas, data_dir / PHOTOS, dest / PHOTOS, outcome)
    kept = [s for s in service_shas if s not in set(outcome.missing) | set(outcome.damaged)]
    _write_atomically(dest / CHECKSUMS, "".join(f"{s}  {_rel(s)}\n" for s in kept))
    outcome.manifest.photos = len(kept)
    _write_atomically(dest / MANIFEST, json.dumps(asdict(outcome.manifest), ensure_ascii=False, indent=2) + "\n")
    return outcome


def check(folder: Path) -> Outcome:
    """Whether the backup in ``folder`` can be restored: its databases readable, every photo there and whole."""
    manifest = Manifest.read(folder)
    for copy in manifest.databases:
        path = folder / copy.file
        if not path.is_file():
            raise BackupError(f"{path} is missing")
        if copy.dialect == "sqlite":
            _sqlite_intact(path)
        else:
            _run([_tool("pg_restore"), "--list", str(path)], f"pg_restore --list {copy.file}")
    outcome = Outcome(manifest)
    try:
        lines = (folder / CHECKSUMS).read_text().splitlines()
    except FileNotFoundError as exc:
        raise BackupError(f"{folder / CHECKSUMS} is missing") from exc
    for line in lines:
        sha = line.split(" ", 1)[0]
        path = folder / PHOTOS / sha[:2] / sha
        if not path.is_file():
            outcome.missing.append(sha)
        elif _sha256_of(path) != sha:
            outcome.damaged.append(sha)
    if len(lines) != manifest.photos:
        raise BackupError(f"{CHECKSUMS} lists {len(lines)} photos, {MANIFEST} says {manifest.photos}")
    return outcome


def _sqlite_intact(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            said = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path.name} cannot be read as SQLite: {exc}") from exc
    if said != "ok":
        raise BackupError(f"{path.name} is damaged: {said}")


def restore(folder: Path, database_url: str, data_dir: Path, events_url: str | None = None) -> Outcome:
    """Put the backup in ``folder`` back: the database into ``database_url`` (which must be empty: a new SQLite
    file or a PostgreSQL database without tables), the photos into ``data_dir``. Checked first; nothing is
    overwritten."""
    outcome = check(folder)
    if not outcome.ok:
        raise BackupError(_problems(outcome) + "; restore refused (the backup is incomplete)")
    targets: dict[Role, str | None] = {"service": database_url, "events": events_url}
    for copy in outcome.manifest.databases:
        url = targets[copy.role]
        if url is None or (copy.role == "events" and url == database_url):
            raise BackupError(
                f"{copy.file} holds CCTV events kept apart from the service database; set HAZARDSCAN_EVENTS_DB to "
                "where they go (another database than HAZARDSCAN_DATABASE_URL)"
            )
        dialect, _ = parse_url(url)
        if dialect != copy.dialect:
            raise BackupError(f"{copy.file} is a {copy.dialect} backup; it restores into {copy.dialect}, not {dialect}")
        _ensure_empty(url)
    for copy in outcome.manifest.databases:
        _, target = parse_url(str(targets[copy.role]))
        if copy.dialect == "sqlite":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            _sqlite_copy(folder / copy.file, Path(target))
        else:
            _run([_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={target}", str(folder / copy.file)],
                 f"pg_restore {copy.file}")  # fmt: skip
    shas = [line.split(" ", 1)[0] for line in (folder / CHECKSUMS).read_text().splitlines()]
    restored = Outcome(outcome.manifest)
    _sync_photos(shas, folder / PHOTOS, data_dir / PHOTOS, restored)
    return restored


def _ensure_empty(url: str) -> None:
    dialect, target = parse_url(url)
    if dialect == "sqlite":
        if Path(target).exists():
            raise BackupError(
                f"{target} already exists; restore goes into an empty data folder (stop the service, move the "
                "old database away, then restore)"
            )
        return
    tables, _ = _contents(url)
    if tables:
        raise BackupError(f"the PostgreSQL database already has {len(tables)} tables; restore into an empty one")


def _problems(outcome: Outcome) -> str:
    parts = []
    if outcome.missing:
        parts.append(f"{len(outcome.missing)} photos missing ({', '.join(s[:12] for s in outcome.missing[:5])})")
    if outcome.damaged:
        parts.append(f"{len(outcome.damaged)} photos damaged ({', '.join(s[:12] for s in outcome.damaged[:5])})")
    return "; ".join(parts)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---- the command ------------------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="the backup folder (made if missing; a later backup updates it)")
    p.add_argument("--check", action="store_true", help="check an existing backup instead of making one")


def add_restore_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a folder written by hazardscan backup")


def _where() -> tuple[str, Path, str | None]:
    from inference_service.api.settings import Settings
    from inference_service.cctv.api import CctvSettings

    settings = Settings()
    return settings.resolved_database_url(), settings.data_dir, CctvSettings().events_db


def _summary(outcome: Outcome) -> str:
    m = outcome.manifest
    rows = sum(sum(c.tables.values()) for c in m.databases)
    files = ", ".join(c.file for c in m.databases)
    return f"{files} ({rows} rows), {m.photos} photos ({m.photo_bytes / (1 << 20):.1f} MB)"


def run(args: argparse.Namespace) -> int:
    try:
        if args.check:
            outcome = check(args.folder)
            said = f"checked {args.folder}: {_summary(outcome)}"
        else:
            outcome = backup(*_where()[:2], args.folder, _where()[2])
            said = f"backed up into {args.folder}: {_summary(outcome)}; {outcome.copied} photos copied this time"
    except (BackupError, StorageError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(said + "\n")
    if not outcome.ok:
        sys.stderr.write(f"error: {_problems(outcome)}\n")
        return 1
    return 0


def run_restore(args: argparse.Namespace) -> int:
    url, data_dir, events = _where()
    try:
        outcome = restore(args.folder, url, data_dir, events)
    except (BackupError, StorageError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(f"restored {args.folder}: {_summary(outcome)}; {outcome.copied} photos copied\n")
    return 0
