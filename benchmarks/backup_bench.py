"""How long ``hazardscan backup`` / ``--check`` / ``restore`` take on a data folder of many photos (SQLite).

    .venv/bin/python benchmarks/backup_bench.py [--inspections 2000] [--photo-kb 400] \\
        [--report benchmarks/reports/backup_bench.txt]

The records are stats_bench's (1.5 photos per inspection); each photo row gets a file of ``--photo-kb`` random bytes
(what a phone's 2048 px JPEG weighs; random bytes do not compress, as JPEGs do not) under its SHA-256. Timed, in
order, in one process: the first backup into an empty folder, a second with nothing new, a third after 100 new
photos, ``--check`` of the folder, and a restore into an empty data folder. The files were just written, so they
are read from the page cache: a cold disk adds its read time.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from stats_bench import populate  # noqa: E402

from inference_service import backup  # noqa: E402
from inference_service.storage import Database  # noqa: E402

log = logging.getLogger(__name__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inspections", type=int, default=2000)
    ap.add_argument("--photo-kb", type=int, default=400)
    ap.add_argument("--report", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    lines = [
        f"backup_bench: {args.inspections} inspections, photos of {args.photo_kb} KB, {platform.machine()}, "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = Database(root / "data" / "hazardscan.db")
        made = populate(db, root / "data", args.inspections, args.inspections * 3)
        rows = db.query("SELECT id FROM photos ORDER BY id")
        blobs = made.records.blobs
        for (pid,) in rows:  # every photo row named by the hash of a file of its own
            sha = blobs.put(os.urandom(args.photo_kb * 1024))
            with db.tx() as cur:
                cur.execute("UPDATE photos SET sha256 = ? WHERE id = ?", [sha, pid])
        n = len(rows)
        gb = n * args.photo_kb / 1024 / 1024
        lines.append(f"{n} photos, {gb:.2f} GB; database {os.path.getsize(root / 'data' / 'hazardscan.db') >> 20} MB")
        url, data, dest = str(root / "data" / "hazardscan.db"), root / "data", root / "backup"

        def timed(what: str, fn: object) -> None:
            t0 = time.perf_counter()
            out = fn()  # type: ignore[operator]
            took = time.perf_counter() - t0
            copied = getattr(out, "copied", 0)
            lines.append(f"{what:<36} {took:7.1f} s  {n / took:8.0f} photos/s looked at  {copied:6d} copied")
            log.info(lines[-1])

        timed("backup, first (everything)", lambda: backup.backup(url, data, dest))
        timed("backup, again (nothing new)", lambda: backup.backup(url, data, dest))
        extra = [r[0] for r in db.query("SELECT id FROM photos ORDER BY id LIMIT 100")]
        for pid in extra:  # 100 photos replaced by new ones: what a day of a small team adds
            sha = blobs.put(os.urandom(args.photo_kb * 1024))
            with db.tx() as cur:
                cur.execute("UPDATE photos SET sha256 = ? WHERE id = ?", [sha, pid])
        timed("backup, after 100 new photos", lambda: backup.backup(url, data, dest))
        timed("--check (reads every photo)", lambda: backup.check(dest))
        fresh = root / "fresh"
        timed("restore into an empty data folder", lambda: backup.restore(dest, str(fresh / "hazardscan.db"), fresh))
        db.close()
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.report:
        args.report.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
