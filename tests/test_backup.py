"""``hazardscan backup`` / ``restore`` end to end: a backup taken while a real service runs, restored into a fresh
data folder that a new service then serves (logins, inspections, photos, the ledger, API keys), on SQLite and
PostgreSQL; a damaged backup found by ``--check`` and refused by restore."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from _pg import fresh_database, pg_server  # noqa: F401  (fixture)
from app_fixtures import REPO, AppServer, clean_photo, fire_photo, open_item, start_app_server

from inference_service.cctv.store import EventStore


def hazardscan(*args: str, data_dir: Path, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "HAZARDSCAN_DATA_DIR": str(data_dir), "HAZARDSCAN_DATABASE_URL": database_url, **env}
    if "HAZARDSCAN_EVENTS_DB" not in env:
        environ.pop("HAZARDSCAN_EVENTS_DB", None)
    return subprocess.run([sys.executable, "-m", "inference_service.cli", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def add_photo(c: httpx.Client, iid: str, seed: int) -> dict:
    r = c.post(f"/app/api/inspections/{iid}/photos", files={"photo": ("p.jpg", fire_photo(seed=seed), "image/jpeg")},
               data={"idempotency_key": str(uuid.uuid4())})  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()


def make_records(server: AppServer) -> dict:
    """An inspection with two photos, a ledger item (a third photo, confirmed) and an API key."""
    c = server.client("inspector")
    unit = {"name": "备份测试单位", "address": "桃北路"}
    insp = c.post("/app/api/inspections", json={"unit": unit, "scene": "industry"})
    iid = insp.json()["id"]
    photos = [add_photo(c, iid, seed) for seed in (30, 130)]
    item = open_item(server.client("supervisor"), unit="备份测试化工厂", seed=230)
    key = hazardscan("keys", "create", "--name", "backup-test", "--scopes", "detect",
                     data_dir=server.data_dir, database_url=server.database_url)  # fmt: skip
    assert key.returncode == 0, key.stderr
    link = server.client("admin").post("/app/api/report-links", json={"name": "公示牌"}).json()
    report = httpx.post(f"{server.base_url}/app/api/report/{link['path'].split('#')[1]}",
                        files={"photo": ("r.jpg", clean_photo(seed=99), "image/jpeg")},
                        data={"idempotency_key": "r1", "place": "北街"})  # fmt: skip
    assert report.status_code == 201, report.text
    return {"iid": iid, "photos": photos, "item": item, "key": key.stdout.split()[0], "client": c,
            "receipt": report.json()["receipt"]}  # fmt: skip


def serves_what_was_backed_up(server: AppServer, made: dict, photo_count: int) -> None:
    c = server.client("inspector")  # the password came back with the users
    got = c.get(f"/app/api/inspections/{made['iid']}").json()
    assert got["photo_count"] == photo_count
    first = made["photos"][0]
    original = c.get(f"/app/api/photos/{first['id']}/original")
    assert original.status_code == 200 and original.content == fire_photo(seed=30)
    item = server.client("supervisor").get(f"/app/api/ledger/{made['item']['id']}").json()
    assert item["hazard_id"] == "FIRE-001" and item["status"] == made["item"]["status"]
    detect = httpx.post(f"{server.base_url}/v1/detect", headers={"Authorization": f"Bearer {made['key']}"},
                        files={"photo": ("p.jpg", fire_photo(seed=1), "image/jpeg")}, timeout=60)  # fmt: skip
    assert detect.status_code == 200, detect.text
    receipt = httpx.get(f"{server.base_url}/app/api/report-receipt/{made['receipt']}")  # the public report too
    assert receipt.status_code == 200 and receipt.json()["place"] == "北街"


def test_a_backup_of_a_running_service_restores_into_a_fresh_one_sqlite(tiny_model_dir: Path, tmp_path: Path):
    backup = tmp_path / "backup"
    with start_app_server(tiny_model_dir, tmp_path / "live") as live:
        made = make_records(live)
        first = hazardscan("backup", str(backup), data_dir=live.data_dir, database_url=live.database_url)
        assert first.returncode == 0, first.stderr
        assert "4 photos" in first.stdout and "4 photos copied this time" in first.stdout
        assert subprocess.run(["sha256sum", "--check", "--quiet", "photos.sha256"], cwd=backup).returncode == 0
        add_photo(made["client"], made["iid"], seed=80)  # taken after the first backup
        again = hazardscan("backup", str(backup), data_dir=live.data_dir, database_url=live.database_url)
        assert again.returncode == 0 and "1 photos copied this time" in again.stdout, again.stdout + again.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["photos"] == 5 and manifest["databases"][0]["file"] == "hazardscan.db"
    assert manifest["databases"][0]["tables"]["photos"] == 4 and manifest["databases"][0]["tables"]["users"] == 4
    assert not list(backup.glob("*-wal")) and not list(backup.glob(".*"))  # one self-contained file, no leftovers

    fresh = tmp_path / "fresh"
    url = str(fresh / "hazardscan.db")
    done = hazardscan("restore", str(backup), data_dir=fresh, database_url=url)
    assert done.returncode == 0, done.stderr
    assert "5 photos copied" in done.stdout
    with start_app_server(tiny_model_dir, fresh, seed=False) as restored:
        serves_what_was_backed_up(restored, made, photo_count=3)
    twice = hazardscan("restore", str(backup), data_dir=fresh, database_url=url)
    assert twice.returncode == 1 and "already exists" in twice.stderr and "Traceback" not in twice.stderr


def test_a_damaged_backup_is_found_and_not_restored(tiny_model_dir: Path, tmp_path: Path):
    backup = tmp_path / "backup"
    with start_app_server(tiny_model_dir, tmp_path / "live") as live:
        make_records(live)
        assert hazardscan("backup", str(backup), data_dir=live.data_dir, database_url=live.database_url).returncode == 0
    ok = hazardscan("backup", "--check", str(backup), data_dir=tmp_path / "x", database_url=str(tmp_path / "x.db"))
    assert ok.returncode == 0 and "4 photos" in ok.stdout, ok.stderr
    damaged, gone = sorted((backup / "photos").rglob("*"))[1::2][:2]  # two photo files (folders come first)
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    gone.unlink()
    checked = hazardscan("backup", "--check", str(backup), data_dir=tmp_path / "x", database_url=str(tmp_path / "x.db"))
    assert checked.returncode == 1
    assert f"1 photos missing ({gone.name[:12]})" in checked.stderr
    assert f"1 photos damaged ({damaged.name[:12]})" in checked.stderr
    target = tmp_path / "fresh"
    refused = hazardscan("restore", str(backup), data_dir=target, database_url=str(target / "hazardscan.db"))
    assert refused.returncode == 1 and "restore refused" in refused.stderr
    assert not (target / "hazardscan.db").exists()


def test_nothing_to_back_up_is_said_plainly(tmp_path: Path):
    done = hazardscan("backup", str(tmp_path / "b"), data_dir=tmp_path / "none", database_url=str(tmp_path / "no.db"))
    assert done.returncode == 1 and "no database at" in done.stderr and "Traceback" not in done.stderr
    not_one = hazardscan("restore", str(tmp_path), data_dir=tmp_path / "d", database_url=str(tmp_path / "d.db"))
    assert not_one.returncode == 1 and "not a hazardscan backup" in not_one.stderr


def test_events_kept_apart_are_backed_up_and_need_their_own_place_to_go(tmp_path: Path):
    live = tmp_path / "live"
    live.mkdir()
    service, events = live / "hazardscan.db", live / "events.db"
    EventStore(service).close()
    EventStore(events).close()
    backup = tmp_path / "backup"
    env = {"HAZARDSCAN_EVENTS_DB": str(events)}
    made = hazardscan("backup", str(backup), data_dir=live, database_url=str(service), **env)
    assert made.returncode == 0, made.stderr
    assert {d["file"] for d in json.loads((backup / "manifest.json").read_text())["databases"]} == {
        "hazardscan.db", "events.db"}  # fmt: skip
    fresh = tmp_path / "fresh"
    without = hazardscan("restore", str(backup), data_dir=fresh, database_url=str(fresh / "hazardscan.db"))
    assert without.returncode == 1 and "HAZARDSCAN_EVENTS_DB" in without.stderr
    assert not (fresh / "hazardscan.db").exists()
    put = hazardscan("restore", str(backup), data_dir=fresh, database_url=str(fresh / "hazardscan.db"),
                     HAZARDSCAN_EVENTS_DB=str(fresh / "events.db"))  # fmt: skip
    assert put.returncode == 0, put.stderr
    assert (fresh / "events.db").is_file() and (fresh / "hazardscan.db").is_file()


def test_a_postgresql_backup_restores_into_an_empty_database(
    tiny_model_dir: Path,
    tmp_path: Path,
    pg_server: str,  # noqa: F811
):
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump / pg_restore not on PATH (apt-get install postgresql-client)")
    backup, source = tmp_path / "backup", fresh_database(pg_server)
    with start_app_server(tiny_model_dir, tmp_path / "live", database_url=source) as live:
        made = make_records(live)
        done = hazardscan("backup", str(backup), data_dir=live.data_dir, database_url=source)
        assert done.returncode == 0, done.stderr
    assert (backup / "hazardscan.dump").is_file()
    assert hazardscan("backup", "--check", str(backup), data_dir=tmp_path, database_url=source).returncode == 0
    target = fresh_database(pg_server)
    put = hazardscan("restore", str(backup), data_dir=tmp_path / "fresh", database_url=target)
    assert put.returncode == 0, put.stderr
    with start_app_server(tiny_model_dir, tmp_path / "fresh", database_url=target, seed=False) as restored:
        serves_what_was_backed_up(restored, made, photo_count=2)
    again = hazardscan("restore", str(backup), data_dir=tmp_path / "fresh", database_url=target)
    assert again.returncode == 1 and "restore into an empty one" in again.stderr
