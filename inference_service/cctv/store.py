"""Event storage: SQLite by default (a file, no server), PostgreSQL by URL (``postgresql://...``).

On the service's storage layer (:mod:`inference_service.storage`, schema component ``cctv``). Two tables:

* ``cctv_events``: one row per event, upserted when it opens and again when it closes, with its best
  evidence JPEG and whether it is a suspicion (``suspected``) or was seen only on doubtful frames
  (``unconfirmed``): neither is an alarm (migration 2);
* ``cctv_outbox``: webhook messages written in the same transaction as the event row (transactional
  outbox), so a message exists exactly when its event state does, and stays until a 2xx marks it
  delivered.

Times are epoch seconds (float). Connections are per thread; every write is one short transaction.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from inference_service.storage import Cursor, Database, Migration, StorageError, migrate, parse_url

if TYPE_CHECKING:
    from inference_service.api.settings import Settings

logger = logging.getLogger(__name__)


def default_url() -> str:
    """Where events go when no ``--db`` says: ``$HAZARDSCAN_EVENTS_DB`` when set, else :func:`beside_records`, so
    that the service lists what a scanner writes without being told where."""
    from inference_service.api.settings import Settings
    from inference_service.cctv.api import CctvSettings

    return CctvSettings().events_db or beside_records(Settings())


def beside_records(settings: Settings) -> str:
    """The service database (``HAZARDSCAN_DATABASE_URL``, else ``<data_dir>/hazardscan.db``) as the events' store;
    a SQLite file's folder is made, as the service makes it at start-up."""
    url = settings.resolved_database_url()
    dialect, target = parse_url(url)
    if dialect == "sqlite" and target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    return url


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cctv_events (
        id TEXT PRIMARY KEY,
        camera_id TEXT NOT NULL,
        hazard_id TEXT NOT NULL,
        hazard_name_en TEXT NOT NULL,
        hazard_name_zh TEXT NOT NULL,
        severity TEXT NOT NULL,
        zone TEXT,
        status TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        opened_at DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION,
        peak_confidence DOUBLE PRECISION NOT NULL,
        frames INTEGER NOT NULL,
        evidence_ts DOUBLE PRECISION NOT NULL,
        evidence_box TEXT NOT NULL,
        evidence_jpeg {blob},
        model_id TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS cctv_events_camera ON cctv_events (camera_id, started_at)",
    "CREATE INDEX IF NOT EXISTS cctv_events_hazard ON cctv_events (hazard_id, started_at)",
    "CREATE INDEX IF NOT EXISTS cctv_events_started ON cctv_events (started_at)",
    """CREATE TABLE IF NOT EXISTS cctv_outbox (
        id {serial},
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        delivered_at DOUBLE PRECISION,
        last_error TEXT)""",
    "CREATE INDEX IF NOT EXISTS cctv_outbox_due ON cctv_outbox (delivered_at, next_attempt_at)",
)
_COLUMNS = (
    "id",
    "camera_id",
    "hazard_id",
    "hazard_name_en",
    "hazard_name_zh",
    "severity",
    "zone",
    "status",
    "started_at",
    "opened_at",
    "last_seen",
    "ended_at",
    "peak_confidence",
    "frames",
    "evidence_ts",
    "evidence_box",
    "evidence_jpeg",
    "model_id",
    "updated_at",
    "suspected",
    "unconfirmed",
    "org",
    "unit",
    "address",
    "scene",
    "frame_box",
    "frame_jpeg",
)
_IMAGES = ("evidence_jpeg", "frame_jpeg")
# written by a person in the inspector app (:meth:`EventStore.set_review`), never by the scanner's upsert
_REVIEW_COLUMNS = ("review", "review_reason", "review_note", "reviewed_by", "reviewed_at")
_LIST_COLUMNS = tuple(c for c in _COLUMNS if c not in _IMAGES) + _REVIEW_COLUMNS
_ALL_COLUMNS = _COLUMNS + _REVIEW_COLUMNS
Review = Literal["inspection", "dismissed"]


def _review_filter(review: Review | Literal["none"] | None) -> tuple[list[str], list[Any]]:
    if review is None:
        return [], []
    if review == "none":
        return ["review IS NULL"], []
    return ["review = ?"], [review]


StoreError = StorageError  # the event database cannot be opened or used; the message says which and why


@dataclass(frozen=True)
class EventReview:
    """What a person in the inspector app made of an event: an inspection of it, or dismissed with a reason."""

    review: Review
    reason: str | None  # dismissed: false_alarm | duplicate | handled | other
    note: str
    user_id: str  # the app user
    at: float


@dataclass(frozen=True, eq=False)
class StoredEvent:
    id: str
    camera_id: str
    hazard_id: str
    hazard_name_en: str
    hazard_name_zh: str
    severity: str
    zone: str | None
    status: Literal["open", "closed"]
    started_at: float
    opened_at: float
    last_seen: float
    ended_at: float | None
    peak_confidence: float
    frames: int
    evidence_ts: float
    evidence_box: tuple[float, float, float, float]
    model_id: str
    evidence_jpeg: bytes | None = None
    suspected: bool = False  # a suspicion (the taxonomy rule only suspects it): a person confirms it
    unconfirmed: bool = False  # seen only on doubtful frames (washed out, too dark, featureless)
    # where the camera hangs (its ``site``), for the inspector app; None for cameras without one
    org: str | None = None
    unit: str | None = None
    address: str | None = None
    scene: str | None = None  # the camera's taxonomy scene
    # the evidence frame without drawings (cameras with a site only), and the evidence box in its pixels
    frame_jpeg: bytes | None = None
    frame_box: tuple[float, float, float, float] | None = None
    review: EventReview | None = None  # set in the inspector app, read only

    @property
    def alarm(self) -> bool:
        """Raise it as an alarm at its severity; never for a suspicion or an unconfirmed event."""
        return not (self.suspected or self.unconfirmed)

    def public_dict(self) -> dict[str, Any]:
        """Everything but the JPEGs, for webhooks and logs."""
        data = asdict(replace(self, evidence_jpeg=None, frame_jpeg=None, review=None))
        for key in (*_IMAGES, "frame_box", "review"):
            data.pop(key)
        data["evidence_box"] = [round(v, 2) for v in self.evidence_box]
        data["evidence_url"] = f"/v1/events/{self.id}/evidence.jpg"
        data["alarm"] = self.alarm
        return data


@dataclass(frozen=True)
class OutboxItem:
    id: int
    event_id: str
    kind: str
    payload: str
    attempts: int


def _dialect(url: str) -> tuple[str, str]:
    """``(dialect, target)``: a SQLite path or a PostgreSQL conninfo URL."""
    return parse_url(url)


MIGRATIONS = (
    Migration(1, "events and webhook outbox", _SCHEMA),
    Migration(
        2,
        "event suspected (a suspicion for a person to confirm) and unconfirmed (seen only on doubtful frames)",
        (
            "ALTER TABLE cctv_events ADD COLUMN suspected INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE cctv_events ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        3,
        "where the camera hangs (organisation, unit, address, scene) and the evidence frame without drawings, "
        "for the inspector app",
        (
            "ALTER TABLE cctv_events ADD COLUMN org TEXT",
            "ALTER TABLE cctv_events ADD COLUMN unit TEXT",
            "ALTER TABLE cctv_events ADD COLUMN address TEXT",
            "ALTER TABLE cctv_events ADD COLUMN scene TEXT",
            "ALTER TABLE cctv_events ADD COLUMN frame_box TEXT",
            "ALTER TABLE cctv_events ADD COLUMN frame_jpeg {blob}",
            "CREATE INDEX IF NOT EXISTS cctv_events_org ON cctv_events (org, started_at)",
        ),
    ),
    Migration(
        4,
        "what a person in the inspector app made of an event: an inspection of it, or dismissed with a reason",
        (
            "ALTER TABLE cctv_events ADD COLUMN review TEXT",
            "ALTER TABLE cctv_events ADD COLUMN review_reason TEXT",
            "ALTER TABLE cctv_events ADD COLUMN review_note TEXT",
            "ALTER TABLE cctv_events ADD COLUMN reviewed_by TEXT",
            "ALTER TABLE cctv_events ADD COLUMN reviewed_at DOUBLE PRECISION",
        ),
    ),
)


class EventStore:
    """Thread-safe: each thread gets its own connection (the shared :class:`~inference_service.storage.Database`)."""

    def __init__(self, url: str | Path | Database, *, busy_timeout_s: float = 30.0) -> None:
        self.db = url if isinstance(url, Database) else Database(url, busy_timeout_s=busy_timeout_s)
        self.url = self.db.url
        self.busy_timeout_s = self.db.busy_timeout_s
        self.dialect = self.db.dialect
        self.create_schema()

    def reset(self) -> None:
        """Drop this thread's connection (after an error); the next call reconnects."""
        self.db.reset()

    def _tx(self) -> AbstractContextManager[Cursor]:
        return self.db.tx()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(sql, params)

    def create_schema(self) -> None:
        migrate(self.db, "cctv", MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    # ---- events ---------------------------------------------------------------------------------

    def record(self, event: StoredEvent, kind: str, *, notify: bool) -> None:
        """Upsert the event; with ``notify`` also queue webhook message ``event.<kind>`` atomically."""
        now = time.time()
        values = {
            **asdict(event),
            "evidence_box": json.dumps(list(event.evidence_box)),
            "frame_box": None if event.frame_box is None else json.dumps(list(event.frame_box)),
            "updated_at": now,
            "suspected": int(event.suspected),
            "unconfirmed": int(event.unconfirmed),
        }
        row = [values[c] for c in _COLUMNS]
        # an image left out (None) keeps the stored one, and the frame its box with it
        updates = [f"{c} = excluded.{c}" for c in _COLUMNS if c not in ("id", "frame_box", *_IMAGES)]
        updates += [f"{c} = COALESCE(excluded.{c}, cctv_events.{c})" for c in _IMAGES]
        updates += ["frame_box = CASE WHEN excluded.frame_jpeg IS NULL THEN cctv_events.frame_box "
                    "ELSE excluded.frame_box END"]  # fmt: skip
        sql = (
            f"INSERT INTO cctv_events ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
            f"ON CONFLICT (id) DO UPDATE SET {', '.join(updates)}"
        )
        with self._tx() as cur:
            cur.execute(sql, row)
            if notify:
                payload = json.dumps({"type": f"event.{kind}", "event": event.public_dict()}, ensure_ascii=False)
                cur.execute(
                    "INSERT INTO cctv_outbox (event_id, kind, payload, created_at, next_attempt_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (event.id, f"event.{kind}", payload, now, now),
                )

    @staticmethod
    def _event(row: Sequence[Any], columns: Sequence[str]) -> StoredEvent:
        data = dict(zip(columns, row, strict=True))
        data.pop("updated_at", None)
        box = json.loads(data["evidence_box"])
        data["evidence_box"] = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        for image in _IMAGES:
            if data.get(image) is not None:
                data[image] = bytes(data[image])
        if data["frame_box"] is not None:
            fb = json.loads(data["frame_box"])
            data["frame_box"] = (float(fb[0]), float(fb[1]), float(fb[2]), float(fb[3]))
        data["suspected"], data["unconfirmed"] = bool(data["suspected"]), bool(data["unconfirmed"])
        review, reason, note, by, at = (data.pop(c, None) for c in _REVIEW_COLUMNS)
        if review is not None:
            data["review"] = EventReview(review, reason, note or "", str(by), float(at))
        return StoredEvent(**data)

    def list_events(
        self,
        *,
        camera: str | None = None,
        hazard: str | None = None,
        since: float | None = None,
        until: float | None = None,
        status: str | None = None,
        suspected: bool | None = None,
        unconfirmed: bool | None = None,
        org: str | None = None,
        review: Review | Literal["none"] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[StoredEvent]:
        """Events newest first (by start); ``since``/``until`` bound the start time, inclusive/exclusive;
        ``suspected``/``unconfirmed`` keep only events that are (True) or are not (False) so; ``org``: only the
        events of cameras whose site names that organisation; ``review``: only those so reviewed ("none": not yet)."""
        where, params = _review_filter(review)
        for clause, value in (
            ("org = ?", org),
            ("camera_id = ?", camera),
            ("hazard_id = ?", hazard),
            ("started_at >= ?", since),
            ("started_at < ?", until),
            ("status = ?", status),
            ("suspected = ?", None if suspected is None else int(suspected)),
            ("unconfirmed = ?", None if unconfirmed is None else int(unconfirmed)),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {', '.join(_LIST_COLUMNS)} FROM cctv_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id LIMIT ? OFFSET ?"
        rows = self._query(sql, [*params, int(limit), int(offset)])
        return [self._event(r, _LIST_COLUMNS) for r in rows]

    def get_event(self, event_id: str, *, with_evidence: bool = False) -> StoredEvent | None:
        columns = _ALL_COLUMNS if with_evidence else _LIST_COLUMNS
        rows = self._query(f"SELECT {', '.join(columns)} FROM cctv_events WHERE id = ?", [event_id])
        return self._event(rows[0], columns) if rows else None

    def evidence(self, event_id: str) -> bytes | None:
        rows = self._query("SELECT evidence_jpeg FROM cctv_events WHERE id = ?", [event_id])
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def count_org_events(
        self, org: str, status: str | None = None, review: Review | Literal["none"] | None = None
    ) -> int:
        """How many events the cameras of organisation ``org`` raised (with ``status`` / ``review``, only those)."""
        where, params = _review_filter(review)
        where.append("org = ?")
        params.append(org)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        return int(self._query(f"SELECT COUNT(*) FROM cctv_events WHERE {' AND '.join(where)}", params)[0][0])

    def review_counts(
        self, org: str, since: float | None = None, until: float | None = None
    ) -> list[tuple[str, str, str | None, str | None, int]]:
        """Events of organisation ``org`` started in [since, until), counted by (camera, hazard, review, reason)."""
        where: list[str] = ["org = ?"]
        params: list[Any] = [org]
        for clause, value in (("started_at >= ?", since), ("started_at < ?", until)):
            if value is not None:
                where.append(clause)
                params.append(value)
        rows = self._query(
            "SELECT camera_id, hazard_id, review, review_reason, COUNT(*) FROM cctv_events "
            f"WHERE {' AND '.join(where)} GROUP BY camera_id, hazard_id, review, review_reason",
            params,
        )
        return [(str(c), str(h), r, rr, int(n)) for c, h, r, rr, n in rows]

    def set_review(self, event_id: str, review: EventReview | None, *, unless: Review | None = None) -> bool:
        """Record what a person made of the event (None: undo it); not when its review is ``unless`` already.
        False when the event is missing or was so reviewed."""
        values = (
            [None] * len(_REVIEW_COLUMNS)
            if review is None
            else [review.review, review.reason, review.note, review.user_id, review.at]
        )
        sets = ", ".join(f"{c} = ?" for c in _REVIEW_COLUMNS)
        sql, params = f"UPDATE cctv_events SET {sets} WHERE id = ?", [*values, event_id]
        if unless is not None:
            sql, params = sql + " AND (review IS NULL OR review <> ?)", [*params, unless]
        with self._tx() as cur:
            cur.execute(sql, params)
            return bool(cur.rowcount)

    def count_events(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM cctv_events")[0][0])

    def prune(self, before: float, *, images_only: bool = False, dry_run: bool = False) -> tuple[int, int, int]:
        """Keep the database in bounds: events closed before ``before`` (epoch seconds) deleted, or with
        ``images_only`` kept without their JPEGs, and webhook messages delivered before it deleted. Open events and
        undelivered messages are never touched. Returns (events deleted or stripped, bytes of JPEG freed,
        messages deleted); ``dry_run`` only counts."""
        where = "status = 'closed' AND ended_at < ?"
        if images_only:
            where += " AND (evidence_jpeg IS NOT NULL OR frame_jpeg IS NOT NULL)"
        size = "COALESCE(LENGTH(evidence_jpeg), 0) + COALESCE(LENGTH(frame_jpeg), 0)"
        delivered = "delivered_at IS NOT NULL AND delivered_at < ?"
        with self._tx() as cur:
            row = cur.execute(f"SELECT COUNT(*), COALESCE(SUM({size}), 0) FROM cctv_events WHERE {where}", [before])
            counted = row.fetchone()
            messages = cur.execute(f"SELECT COUNT(*) FROM cctv_outbox WHERE {delivered}", [before]).fetchone()
            assert counted is not None and messages is not None
            result = int(counted[0]), int(counted[1]), int(messages[0])
            if dry_run:
                return result
            if images_only:
                cur.execute(f"UPDATE cctv_events SET evidence_jpeg = NULL, frame_jpeg = NULL WHERE {where}", [before])
            else:
                cur.execute(f"DELETE FROM cctv_events WHERE {where}", [before])
            cur.execute(f"DELETE FROM cctv_outbox WHERE {delivered}", [before])
        return result

    # ---- outbox ---------------------------------------------------------------------------------

    def due_messages(self, now: float, limit: int = 50) -> list[OutboxItem]:
        """Undelivered messages, oldest first; stops at the first not yet due (keeps order)."""
        rows = self._query(
            "SELECT id, event_id, kind, payload, attempts, next_attempt_at FROM cctv_outbox "
            "WHERE delivered_at IS NULL ORDER BY id LIMIT ?",
            [int(limit)],
        )
        due = []
        for r in rows:
            if float(r[5]) > now:
                break
            due.append(OutboxItem(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])))
        return due

    def next_due_at(self) -> float | None:
        """When the oldest undelivered message is due (messages go out in order, so it gates the rest)."""
        rows = self._query("SELECT next_attempt_at FROM cctv_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1")
        return float(rows[0][0]) if rows else None

    def mark_delivered(self, message_id: int, now: float) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE cctv_outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?", (now, message_id)
            )

    def mark_failed(self, message_id: int, next_attempt_at: float, error: str) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE cctv_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (next_attempt_at, error[:500], message_id),
            )

    def pending_messages(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM cctv_outbox WHERE delivered_at IS NULL")[0][0])
