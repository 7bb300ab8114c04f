"""The statistics rollups kept by the writes equal a rebuild from the records, on SQLite and PostgreSQL.

A random sequence of writes through the records' and the ledger's own methods (inspections, photos with the
model's findings from two model versions, inspectors' findings, confirm/reject decisions and their reversals,
ledger moves that freeze a decision), dated by a clock that jumps across local midnights and month ends; then the
rollup tables are compared row by row with a rebuild, and every statistics table with the figures read from the
records themselves."""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)

from inference_service.accounts import Accounts
from inference_service.app import stats_rollup as sr
from inference_service.app.stats import StatsQuery, stats
from inference_service.ledger import DEFAULT_DEADLINE_DAYS, DeadlinePolicy, Ledger, LedgerConflict
from inference_service.records import BlobStore, NewFinding, NewPhoto, RecordConflict, Records
from inference_service.storage import Cursor, Database
from inference_service.taxonomy import load_taxonomy

HAZARDS = (("FIRE-001", "fire"), ("FIRE-002", "smoke"), ("CONST-001", "no_helmet"), ("FIRE-006", "exit_obstruction"))
SCENES = ("construction", "industry", "gas")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else str(tmp_path / "t.db")
    database = Database(url)
    try:
        yield database
    finally:
        database.close()


class Writer:
    """Random writes as the app makes them (the ledger hooks mirror the app's)."""

    def __init__(self, db: Database, folder: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        Accounts(db)  # the ledger's history names users
        self.records = Records(db, BlobStore(folder))
        self.ledger = Ledger(db, DeadlinePolicy(DEFAULT_DEADLINE_DAYS))
        # around local midnights (16:00 UTC) and across the month ends of February and March
        lo, hi = _ts("2026-02-26T00:00+08:00"), _ts("2026-03-03T00:00+08:00")
        self.records.clock = lambda: self.rng.uniform(lo, hi) + self.rng.choice((0.0, 31 * 86400.0))
        self.inspections: list[tuple[str, str]] = []  # (org, id)
        self.photos: list[tuple[str, dict]] = []
        self.findings: list[tuple[str, str]] = []  # (org, id)

    def hooks(self) -> dict:
        def on_confirm(cur: Cursor, finding: dict) -> str:
            insp = cur.execute("SELECT inspector_id, unit_name, unit_address, scene FROM inspections WHERE id = ?",
                               [finding["inspection_id"]]).fetch_dicts()[0]  # fmt: skip
            return self.ledger.open_item(cur, finding, insp, "high", "u")

        return {"ledger_status": self.ledger.status_in, "on_confirm": on_confirm, "on_withdraw": self.ledger.withdraw}

    def step(self) -> None:
        r, rng = self.rng.random(), self.rng
        if r < 0.15 or not self.inspections:
            org = rng.choice(("org-a", "org-b"))
            row, _ = self.records.create_inspection(
                org, rng.choice(("u1", "u2")), unit_name=rng.choice(("甲", "乙", "丙")), unit_address="",
                unit_credit_code=None, scene=rng.choice(SCENES), location=None, client_id=None)  # fmt: skip
            self.inspections.append((org, row["id"]))
        elif r < 0.4 or not self.photos:
            org, iid = rng.choice(self.inspections)
            version = rng.choice(("v1", "v2"))
            findings = [NewFinding(h, (0, 0, 9, 9), c, 0.8) for h, c in rng.sample(HAZARDS, rng.randint(0, 3))]
            photo = NewPhoto("inspection", f"k{rng.random()}", "0" * 64, "image/jpeg", 1, 64, 64, None, "m", version,
                             [], [], None, ("fire", "smoke"))  # fmt: skip
            row, _ = self.records.add_photo(org, iid, "u1", photo, findings)
            self.photos.append((org, row))
            self.findings += [(org, f["id"]) for f in self.records.findings_of([row["id"]])[row["id"]]]
        elif r < 0.5:
            org, photo = rng.choice(self.photos)
            h, c = rng.choice(HAZARDS)
            added = NewFinding(h, (0, 0, 5, 5), c, None, "inspector", "confirmed")
            f = self.records.add_finding(org, photo, "u2", added, self.hooks()["on_confirm"])
            self.findings.append((org, f["id"]))
        elif r < 0.75:
            org, fid = rng.choice(self.findings)
            with contextlib.suppress(RecordConflict):  # its ledger item has moved on: the decision is frozen
                self.records.decide(org, fid, "u1", rng.choice(("confirm", "reject")), None, None, **self.hooks())
        else:  # the item's next step: 整改中, a rectification photo (re-check passed, failed or none), 销号 or back
            org, fid = rng.choice(self.findings)
            item_id = self.records.finding(org, fid)["ledger_item_id"]  # type: ignore[index]
            item = self.ledger.get(org, item_id) if item_id else None
            if item is None:
                return
            with contextlib.suppress(LedgerConflict):
                if item["status"] == "open":
                    self.ledger.transition(org, item_id, "u3", "supervisor", "in_progress", item["version"])
                elif item["status"] == "in_progress":
                    recheck = rng.choice(("passed", "failed", None))
                    photo = NewPhoto("rectification", f"r{rng.random()}", "0" * 64, "image/jpeg", 1, 64, 64, None,
                                     "m", "v1", [], [])  # fmt: skip
                    self.records.add_photo(org, item["inspection_id"], "u3", photo, [], then=lambda cur, pid: (
                        self.ledger.rectify(cur, org, item_id, "u3", pid, recheck, "")))  # fmt: skip
                elif item["status"] == "pending_review":
                    to = rng.choice(("closed", "in_progress"))
                    self.ledger.transition(org, item_id, "u3", "supervisor", to, item["version"], note="ok",
                                           override=True)  # fmt: skip

    def listen(self) -> None:
        """From here on the rollups follow every write."""
        self.records.listener = self.ledger.listener = sr.RollupWriter()


def _all_stats(db: Database, org: str, use_rollup: bool) -> list[dict]:
    tax, out = load_taxonomy(), []
    march = (_ts("2026-03-01T00:00+08:00"), _ts("2026-04-01T00:00+08:00"))
    cut = (_ts("2026-02-27T00:00+08:00"), _ts("2026-03-02T00:00+08:00"))  # cuts both months
    for since, until in ((None, None), march, cut, (None, cut[1]), (cut[0], None)):
        for scene in (None, *SCENES):
            q = StatsQuery(db, org, tax, {}, since, until, 8.0, now=_ts("2026-03-15T00:00+08:00"), scene=scene,
                           use_rollup=use_rollup)  # fmt: skip
            out.append(stats(q))
    return out


def test_rollups_kept_by_random_writes_equal_a_rebuild(db: Database, tmp_path: Path):
    w = Writer(db, tmp_path / "photos", seed=17)
    for _ in range(40):  # records from before the rollups existed: the start-up build counts them
        w.step()
    assert sr.ensure(db, 8.0) is True and sr.ensure(db, 8.0) is False
    w.listen()
    for _ in range(260):
        w.step()
    kept = sr.snapshot(db)
    decided = db.query("SELECT COUNT(*) FROM decisions WHERE decision IN ('confirm', 'reject')")[0][0]
    assert decided > 50 and len(kept["stats_day"]) > 20 and len(kept["stats_month"]) > 20  # the sequence did things
    lifecycle = {r[3] for r in kept["stats_ledger"]}, {r[5:8] for r in kept["stats_ledger"]}
    assert lifecycle[0] == {"open", "in_progress", "pending_review", "closed"} and (1, 1, 0) in lifecycle[1]
    assert any(r[7] for r in kept["stats_ledger"]) and any(r[4] for r in kept["stats_ledger"])  # sent back, in time
    assert {r[1] for r in kept["stats_field"]} == {MARCH - 1, MARCH, MARCH + 1}  # February, March, April
    sr.rebuild(db)
    assert sr.snapshot(db) == kept
    for org in ("org-a", "org-b"):
        assert _all_stats(db, org, True) == _all_stats(db, org, False)


def test_concurrent_writers_neither_deadlock_nor_lose_counts(request: pytest.FixtureRequest, tmp_path: Path):
    """Four threads photograph and decide at once on PostgreSQL, on the same day, hazards in shuffled orders: the
    rollup rows they share are taken in one sorted order (no deadlock), and no +1 is lost."""
    db = Database(request.getfixturevalue("pg_url"))
    try:
        w = Writer(db, tmp_path / "photos", seed=5)
        t = _ts("2026-03-02T10:00+08:00")
        w.records.clock = lambda: t  # one day, one month: every writer counts in the same rows
        sr.ensure(db, 8.0)
        w.listen()
        for _ in range(30):
            w.step()
        pool = list(w.findings)
        errors: list[BaseException] = []

        def work(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for k in range(25):
                    org, iid = rng.choice(w.inspections)
                    if k % 3 == 0:
                        hazards = rng.sample(HAZARDS, 3)  # the same rows, another order each time
                        photo = NewPhoto("inspection", f"c{seed}-{k}", "0" * 64, "image/jpeg", 1, 64, 64, None, "m",
                                         "v1", [], [], None, ())  # fmt: skip
                        w.records.add_photo(org, iid, "u1", photo, [NewFinding(h, (0, 0, 9, 9), c) for h, c in hazards])
                    else:
                        org, fid = rng.choice(pool)
                        with contextlib.suppress(RecordConflict):
                            w.records.decide(org, fid, "u1", rng.choice(("confirm", "reject")), None, None, **w.hooks())
            except BaseException as exc:  # a deadlock or a failed transaction
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        kept = sr.snapshot(db)
        sr.rebuild(db)
        assert sr.snapshot(db) == kept
    finally:
        db.close()


def test_rollups_follow_another_offset_only_after_a_rebuild(db: Database, tmp_path: Path):
    w = Writer(db, tmp_path / "photos", seed=3)
    sr.ensure(db, 8.0)
    w.listen()
    for _ in range(60):
        w.step()
    q = StatsQuery(db, "org-a", load_taxonomy(), {}, offset_hours=0.0)
    assert q.days is None  # built for UTC+8: a UTC query reads the records instead of wrong rollups
    assert sr.ensure(db, 0.0) is True
    assert StatsQuery(db, "org-a", load_taxonomy(), {}, offset_hours=0.0).days == (None, None)
    raw = StatsQuery(db, "org-a", load_taxonomy(), {}, offset_hours=0.0, use_rollup=False)
    assert stats(StatsQuery(db, "org-a", load_taxonomy(), {}, offset_hours=0.0)) == stats(raw)


F = {"org_id": "o", "created_at": _ts("2026-03-31T23:30+08:00"), "hazard_id": "FIRE-001", "detector_class": "fire",
     "source": "model", "model_id": "m", "model_version": "v2", "scene": "gas", "unit_name": "甲",
     "inspector_id": "u1"}  # fmt: skip
DAY = int(_ts("2026-03-31T08:00+08:00") // 86400)  # the local day (UTC+8), 2026-03-31
MARCH = 2026 * 12 + 2


@pytest.mark.parametrize(
    ("status", "before", "expected"),
    [
        # a new pending finding counts in the day and field rollups only
        ("pending", None, {("stats_day", ("o", DAY, "FIRE-001", "fire", "model", "pending", "m", "v2")): 1,
                           ("stats_field", ("o", MARCH, "gas", "FIRE-001", "fire", "model", "pending", "m", "v2")): 1}),
        # confirmed: out of pending, into confirmed, and into unit, inspector, hazard and day of the local month
        ("confirmed", "pending", {
            ("stats_day", ("o", DAY, "FIRE-001", "fire", "model", "pending", "m", "v2")): -1,
            ("stats_field", ("o", MARCH, "gas", "FIRE-001", "fire", "model", "pending", "m", "v2")): -1,
            ("stats_day", ("o", DAY, "FIRE-001", "fire", "model", "confirmed", "m", "v2")): 1,
            ("stats_field", ("o", MARCH, "gas", "FIRE-001", "fire", "model", "confirmed", "m", "v2")): 1,
            ("stats_month", ("o", "unit", MARCH, "gas", "甲", "")): 1,
            ("stats_month", ("o", "inspector", MARCH, "gas", "u1", "")): 1,
            ("stats_month", ("o", "hazard", MARCH, "gas", "", "FIRE-001")): 1,
            ("stats_month", ("o", "day", MARCH, "gas", str(DAY), "")): 1}),
        ("confirmed", "confirmed", {}),  # a box adjusted: nothing counted changes
    ],
)  # fmt: skip
def test_finding_deltas(status: str, before: str | None, expected: dict):
    assert {k: v for k, v in sr.finding_deltas([({**F, "status": status}, before)], 8.0).items() if v} == expected


def test_a_finding_at_local_midnight_counts_in_the_local_day_and_month():
    f = {**F, "status": "pending", "created_at": _ts("2026-04-01T00:00+08:00")}  # 2026-03-31 16:00 UTC
    keys = Counter(sr.finding_deltas([(f, None)], 8.0))
    assert ("stats_field", ("o", MARCH + 1, "gas", "FIRE-001", "fire", "model", "pending", "m", "v2")) in keys
    assert ("stats_day", ("o", DAY + 1, "FIRE-001", "fire", "model", "pending", "m", "v2")) in keys


D = sr.month_days(MARCH)[0]  # 2026-03-01 as a day number


@pytest.mark.parametrize(
    ("d0", "d1", "whole", "rest"),
    [
        (None, None, (None, None), []),  # all time: every month from the rollup
        (D, D + 31, (MARCH, MARCH + 1), []),  # exactly March
        (D + 5, D + 10, None, [(D + 5, D + 10)]),  # inside one month: days only
        (D - 3, D + 31 + 2, (MARCH, MARCH + 1), [(D - 3, D), (D + 31, D + 33)]),  # March and two edges
        (D + 1, None, (MARCH + 1, None), [(D + 1, D + 31)]),  # open end
        (None, D + 31 + 30 + 1, (None, MARCH + 2), [(D + 61, D + 62)]),  # open start, one day of May
        (D + 10, D + 10, None, []),  # empty
    ],
)
def test_split_months(d0: int | None, d1: int | None, whole: tuple | None, rest: list):
    assert sr.split_months(d0, d1) == (whole, rest)
