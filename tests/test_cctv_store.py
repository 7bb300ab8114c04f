"""The event store on SQLite (a file) and on a real PostgreSQL server started for these tests."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from _cctv import event, postgres_bindir, postgres_server

from inference_service.cctv.scanner import StoreSink
from inference_service.cctv.store import MIGRATIONS, EventStore, StoreError, _dialect
from inference_service.storage import Database, migrate


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL binaries not found; apt-get install postgresql")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "sqlite":
        s = EventStore(tmp_path / "events.db")
    else:
        s = EventStore(request.getfixturevalue("postgres_url"))
        with s._tx() as cur:  # one server for the module: start each test empty
            cur.execute("TRUNCATE cctv_events, cctv_outbox")
    yield s
    s.close()


def test_record_then_close_upserts_one_row(store: EventStore):
    store.record(event(1), "opened", notify=False)
    store.record(
        event(1, status="closed", ended_at=1015.0, frames=9, peak_confidence=0.97, evidence_jpeg=b"\xff\xd8better"),
        "closed",
        notify=False,
    )
    assert store.count_events() == 1
    got = store.get_event("ev1", with_evidence=True)
    assert got is not None
    assert (got.status, got.ended_at, got.frames, got.peak_confidence) == ("closed", 1015.0, 9, pytest.approx(0.97))
    assert got.evidence_box == (1.5, 2.25, 30.0, 40.125) and got.hazard_name_zh == "现场明火"
    assert store.evidence("ev1") == b"\xff\xd8better"


def test_a_closing_without_new_evidence_keeps_the_old_jpeg(store: EventStore):
    store.record(event(1), "opened", notify=False)
    store.record(event(1, status="closed", evidence_jpeg=None), "closed", notify=False)
    assert store.evidence("ev1") == b"\xff\xd8jpeg1"
    assert store.evidence("missing") is None and store.get_event("missing") is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["ev6", "ev5", "ev4", "ev3", "ev2", "ev1"]),  # newest first
        ({"camera": "cam-1"}, ["ev5", "ev3", "ev1"]),
        ({"hazard": "CONST-001"}, ["ev6", "ev3"]),
        ({"since": 1030.0}, ["ev6", "ev5", "ev4", "ev3"]),  # inclusive
        ({"until": 1030.0}, ["ev2", "ev1"]),  # exclusive
        ({"since": 1020.0, "until": 1050.0, "camera": "cam-0"}, ["ev4", "ev2"]),
        ({"status": "closed"}, ["ev4"]),
        ({"limit": 2}, ["ev6", "ev5"]),
        ({"limit": 2, "offset": 4}, ["ev2", "ev1"]),
        ({"suspected": True}, ["ev5", "ev2"]),
        ({"suspected": False, "camera": "cam-0"}, ["ev6", "ev4"]),
        ({"unconfirmed": True}, ["ev6"]),
        ({"unconfirmed": False, "suspected": False}, ["ev4", "ev3", "ev1"]),
    ],
)
def test_list_filters(store: EventStore, filters: dict, expected: list[str]):
    for i in range(1, 7):
        marks = {"suspected": i in (2, 5), "unconfirmed": i == 6}
        store.record(event(i, status="closed" if i == 4 else "open", **marks), "opened", notify=False)
    got = store.list_events(**filters)
    assert [e.id for e in got] == expected
    assert all(e.suspected == (e.id in ("ev2", "ev5")) and e.unconfirmed == (e.id == "ev6") for e in got)
    assert all(e.alarm == (e.id not in ("ev2", "ev5", "ev6")) for e in got)
    assert all(e.evidence_jpeg is None for e in got)  # lists never carry the JPEGs


def test_outbox_rows_are_written_with_the_event_and_delivered_in_order(store: EventStore):
    store.record(event(1), "opened", notify=True)
    store.record(event(2), "opened", notify=False)  # no webhook configured for this one
    store.record(event(1, status="closed", ended_at=1020.0), "closed", notify=True)
    due = store.due_messages(now=2e9)
    assert [(m.event_id, m.kind, m.attempts) for m in due] == [("ev1", "event.opened", 0), ("ev1", "event.closed", 0)]
    assert '"status": "closed"' in due[1].payload and '"evidence_url": "/v1/events/ev1/evidence.jpg"' in due[1].payload

    store.mark_failed(due[0].id, next_attempt_at=5e9, error="HTTP 500")
    assert store.due_messages(now=2e9) == []  # the head is not due yet, so nothing behind it goes either
    assert store.next_due_at() == 5e9
    retry = store.due_messages(now=5e9)
    assert [(m.kind, m.attempts) for m in retry] == [("event.opened", 1), ("event.closed", 0)]
    store.mark_delivered(retry[0].id, now=5e9)
    assert store.pending_messages() == 1
    assert [m.kind for m in store.due_messages(now=5e9)] == ["event.closed"]


def test_a_webhook_message_says_a_suspicion_is_not_an_alarm(store: EventStore):
    store.record(event(1, suspected=True), "opened", notify=True)
    store.record(event(2), "opened", notify=True)
    suspicion, detection = (json.loads(m.payload)["event"] for m in store.due_messages(now=2e9))
    assert (suspicion["suspected"], suspicion["unconfirmed"], suspicion["alarm"]) == (True, False, False)
    assert (detection["suspected"], detection["alarm"], detection["severity"]) == (False, True, "critical")


def test_events_stored_before_migration_2_read_as_confirmed_alarms(tmp_path: Path):
    db = Database(tmp_path / "old.db")
    migrate(db, "cctv", MIGRATIONS[:1])  # the schema before suspected/unconfirmed existed
    old = {**asdict(event(1)), "evidence_box": "[1, 2, 3, 4]", "updated_at": 1.0}
    later = ("suspected", "unconfirmed", "org", "unit", "address", "scene", "frame_box", "frame_jpeg", "review")
    columns = [c for c in old if c not in later]
    with db.tx() as cur:
        cur.execute(
            f"INSERT INTO cctv_events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [old[c] for c in columns],
        )
    db.close()
    store = EventStore(tmp_path / "old.db")
    got = store.get_event("ev1")
    assert got is not None and (got.suspected, got.unconfirmed, got.alarm) == (False, False, True)
    assert [e.id for e in store.list_events(suspected=False)] == ["ev1"] and store.list_events(suspected=True) == []
    assert (got.org, got.unit, got.scene, got.frame_box) == (None, None, None, None)  # migration 3: no site
    assert store.list_events(org="示例安监站") == [] and store.count_org_events("示例安监站") == 0
    store.close()


def test_sqlite_data_survives_reopening(tmp_path: Path):
    path = tmp_path / "sub" / "events.db"
    first = EventStore(f"sqlite:///{path}")
    first.record(event(1), "opened", notify=True)
    first.close()
    again = EventStore(path)
    assert again.count_events() == 1 and again.pending_messages() == 1
    again.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("events.db", ("sqlite", "events.db")),
        ("sqlite:///var/lib/events.db", ("sqlite", "var/lib/events.db")),
        ("sqlite:////var/lib/events.db", ("sqlite", "/var/lib/events.db")),
        ("postgresql://u@h:5432/db", ("postgresql", "postgresql://u@h:5432/db")),
        ("postgres://u@h/db", ("postgresql", "postgresql://u@h/db")),
        ("postgresql+psycopg://u@h/db", ("postgresql", "postgresql://u@h/db")),
    ],
)
def test_database_urls(url: str, expected: tuple[str, str]):
    assert _dialect(url) == expected


def test_unsupported_url_says_what_is_supported():
    with pytest.raises(StoreError, match="use a file path, sqlite:///path or postgresql://"):
        EventStore("mysql://u@h/db")


def test_store_sink_keeps_events_while_the_database_is_locked(tmp_path: Path):
    db = tmp_path / "events.db"
    sink = StoreSink(EventStore(db, busy_timeout_s=0.05))
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    sink.emit("opened", event(1))
    sink.emit("opened", event(2))
    assert sink.pending == 2 and sink.flush() is False
    blocker.execute("ROLLBACK")
    blocker.close()
    sink.emit("closed", event(1, status="closed", ended_at=1050.0))
    assert sink.pending == 0
    assert [(e.id, e.status) for e in sink.store.list_events()] == [("ev2", "open"), ("ev1", "closed")]


def test_a_closing_without_a_new_frame_keeps_the_frame_and_its_box(store: EventStore):
    store.record(event(1, org="站", unit="厂", frame_jpeg=b"\xff\xd8frame", frame_box=(1.0, 2.0, 3.0, 4.0)),
                 "opened", notify=False)  # fmt: skip
    store.record(event(1, status="closed", org="站", unit="厂", ended_at=1020.0), "closed", notify=False)
    got = store.get_event("ev1", with_evidence=True)
    assert got is not None and got.frame_jpeg == b"\xff\xd8frame" and got.frame_box == (1.0, 2.0, 3.0, 4.0)
    newer = event(1, status="closed", org="站", unit="厂", frame_jpeg=b"\xff\xd8new", frame_box=(5.0, 6.0, 7.0, 8.0))
    store.record(newer, "closed", notify=False)
    got = store.get_event("ev1", with_evidence=True)
    assert got is not None and got.frame_jpeg == b"\xff\xd8new" and got.frame_box == (5.0, 6.0, 7.0, 8.0)
    assert "frame_jpeg" not in got.public_dict() and "frame_box" not in got.public_dict()
    assert got.public_dict()["org"] == "站" and [e.id for e in store.list_events(org="站")] == ["ev1"]


def prune_fixture(store: EventStore) -> None:
    """ev1 closed long ago (images), ev2 closed yesterday, ev3 still open since long ago; messages for each,
    ev1's delivered long ago, ev2's delivered yesterday, ev3's never."""
    day = 86_400.0
    rows = [(1, "closed", 1000.0), (2, "closed", 100 * day - day), (3, "open", None)]
    for i, status, ended in rows:
        e = event(i, status=status, ended_at=ended, frame_jpeg=b"F" * 10 if i == 1 else None, frame_box=(0, 0, 1, 1))
        store.record(e, "opened", notify=True)
    for msg in store.due_messages(now=1e12):
        if msg.event_id == "ev1":
            store.mark_delivered(msg.id, 2000.0)
        elif msg.event_id == "ev2":
            store.mark_delivered(msg.id, 100 * day - day)


def test_prune_deletes_old_closed_events_and_delivered_messages_only(store: EventStore):
    prune_fixture(store)
    cutoff = 50 * 86_400.0
    assert store.prune(cutoff, dry_run=True) == (1, len(b"\xff\xd8jpeg1") + 10, 1)
    assert store.count_events() == 3  # a dry run changes nothing
    assert store.prune(cutoff) == (1, len(b"\xff\xd8jpeg1") + 10, 1)
    assert sorted(e.id for e in store.list_events()) == ["ev2", "ev3"]  # ev3: open, however old
    assert store.pending_messages() == 1  # ev3's undelivered message stays
    assert store.prune(cutoff) == (0, 0, 0)


def test_prune_images_only_keeps_the_events(store: EventStore):
    prune_fixture(store)
    assert store.prune(50 * 86_400.0, images_only=True) == (1, len(b"\xff\xd8jpeg1") + 10, 1)
    got = store.get_event("ev1", with_evidence=True)
    assert got is not None and got.evidence_jpeg is None and got.frame_jpeg is None and store.count_events() == 3
    assert store.evidence("ev2") is not None
    assert store.prune(50 * 86_400.0, images_only=True) == (0, 0, 0)  # nothing left to strip


def test_events_prune_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from inference_service.cli import main

    db = tmp_path / "events.db"
    s = EventStore(db)
    s.record(event(1, status="closed", ended_at=1000.0), "closed", notify=False)
    s.record(event(2), "opened", notify=False)
    s.close()
    assert main(["events", "prune", "--db", str(db), "--older-than-days", "30", "--dry-run"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["events"] == 1 and said["action"] == "would delete" and said["dry_run"] is True
    assert main(["events", "prune", "--db", str(db), "--older-than-days", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["action"] == "delete"
    s = EventStore(db)
    assert [e.id for e in s.list_events()] == ["ev2"]
    s.close()
    for bad in ("0", "-3", "soon", "inf"):
        with pytest.raises(SystemExit) as exit_:
            main(["events", "prune", "--db", str(db), "--older-than-days", bad])
        assert exit_.value.code == 2
        assert "days" in capsys.readouterr().err
    assert main(["events", "prune", "--db", "postgresql://nobody@127.0.0.1:1/none", "--older-than-days", "1"]) == 2
    assert "error:" in capsys.readouterr().err


def test_a_review_survives_the_scanners_later_writes(store: EventStore):
    from inference_service.cctv.store import EventReview

    store.record(event(1, org="站"), "opened", notify=False)
    assert store.set_review("ev1", EventReview("dismissed", "false_alarm", "广告牌", "u1", 5.0))
    store.record(event(1, org="站", status="closed", ended_at=1020.0), "closed", notify=True)  # the scanner closes it
    got = store.get_event("ev1")
    assert got is not None and got.review == EventReview("dismissed", "false_alarm", "广告牌", "u1", 5.0)
    assert "review" not in got.public_dict()
    assert store.count_org_events("站", review="dismissed") == 1 and store.count_org_events("站", review="none") == 0
    assert not store.set_review("ev1", EventReview("dismissed", "duplicate", "", "u2", 6.0), unless="dismissed")
    assert store.set_review("ev1", EventReview("inspection", None, "", "u2", 7.0), unless="inspection")
    assert not store.set_review("ev1", None, unless="inspection")  # an inspection is not undone
    assert not store.set_review("missing", None)
    assert [e.id for e in store.list_events(review="inspection")] == ["ev1"] and store.list_events(review="none") == []
