"""Two service processes on one PostgreSQL serve the same inspections and ledger: uploads through both at
once with the same and with different idempotency keys, then the same ledger transitions through both.
No record lost, none duplicated, no transition applied twice, the statistics rollups exact."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import clean_photo, fire_photo, start_app_server

from inference_service.app import stats_rollup
from inference_service.storage import Database


def test_two_processes_on_one_postgresql(tiny_model_dir: Path, tmp_path: Path, pg_url: str):  # noqa: F811
    data = tmp_path / "data"
    with start_app_server(tiny_model_dir, data, pg_url) as one, start_app_server(tiny_model_dir, data, pg_url) as two:
        a, b = one.client("inspector"), two.client("inspector")
        both = (a, b)
        # the same inspection created through both at once (one client_id): one inspection
        body = {"unit": {"name": "双进程测试单位", "address": "X"}, "scene": "construction", "client_id": "two-proc"}
        with ThreadPoolExecutor(8) as pool:
            created = list(pool.map(lambda c: c.post("/app/api/inspections", json=body), both * 3))
        ids = {r.json()["id"] for r in created}
        assert len(ids) == 1 and sorted(r.status_code for r in created).count(201) == 1
        inspection = ids.pop()

        def send(job: tuple[httpx.Client, str, bytes]) -> httpx.Response:
            client, key, photo = job
            return client.post(
                f"/app/api/inspections/{inspection}/photos",
                files={"photo": ("p.jpg", photo, "image/jpeg")},
                data={"idempotency_key": key},
            )

        jobs = []
        for i in range(8):  # each shared key goes through both processes (twice each) at once
            jobs += [(c, f"shared-{i}", fire_photo(seed=i)) for c in both * 2]
        for i in range(8):  # distinct keys, alternating processes
            jobs.append((both[i % 2], f"own-{i}", clean_photo(seed=i)))
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(send, jobs))
        assert all(r.status_code in (200, 201) for r in answers), [r.text for r in answers if r.status_code >= 300]
        by_key: dict[str, set[str]] = {}
        for (_, key, _), r in zip(jobs, answers, strict=True):
            by_key.setdefault(key, set()).add(r.json()["id"])
        assert all(len(v) == 1 for v in by_key.values())  # every answer for a key names the same photo
        assert sum(r.status_code == 201 for r in answers) == 16  # one creation per key, through either process
        db = Database(pg_url)
        assert db.query("SELECT COUNT(*), COUNT(DISTINCT idempotency_key) FROM photos") == [(16, 16)]
        assert db.query("SELECT COUNT(*) FROM findings")[0][0] == 8  # one fire per shared-key photo
        full = b.get(f"/app/api/inspections/{inspection}").json()
        assert full["photo_count"] == 16 and full["hazard_count"] == 8

        # confirm every fire through both processes at once: one ledger item each
        findings = [f["id"] for p in full["photos"] for f in p["findings"]]
        with ThreadPoolExecutor(8) as pool:
            decided = list(pool.map(
                lambda job: job[0].post(f"/app/api/findings/{job[1]}/decision", json={"decision": "confirm"}),
                [(c, f) for f in findings for c in both],
            ))  # fmt: skip
        assert all(r.status_code == 200 for r in decided), [r.text for r in decided if r.status_code != 200]
        assert db.query("SELECT COUNT(*), COUNT(DISTINCT finding_id) FROM ledger_items") == [(8, 8)]
        items = a.get("/app/api/ledger", params={"unit": "双进程"}).json()["items"]
        assert len(items) == 8

        # every transition sent through both processes at once (same version): applied once
        def start(job: tuple[httpx.Client, dict]) -> int:
            client, item = job
            r = client.post(f"/app/api/ledger/{item['id']}/transition", json={"to": "in_progress", "version": 1})
            return r.status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(start, [(c, item) for item in items for c in both * 2]))
        assert sorted(codes) == [200] * 8 + [409] * 24
        assert db.query("SELECT COUNT(*) FROM ledger_history WHERE to_status = 'in_progress'") == [(8,)]
        assert db.query("SELECT DISTINCT version FROM ledger_items") == [(2,)]
        # both processes kept the statistics rollups in their own transactions: what a rebuild makes, no more
        kept = stats_rollup.snapshot(db)
        stats_rollup.rebuild(db)
        assert stats_rollup.snapshot(db) == kept and kept["stats_ledger"][0][-1] == 8
        db.close()
