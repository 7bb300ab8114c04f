"""Inspection records on the storage layer. Every write is one transaction; photo bytes are in the
:class:`~inference_service.records.blobs.BlobStore` before the row that names them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from inference_service.records.blobs import BlobStore
from inference_service.records.schema import MIGRATIONS
from inference_service.storage import Cursor, Database, is_unique_violation, like_escaped, migrate

Row = dict[str, Any]
Box = tuple[float, float, float, float]


class RecordConflict(Exception):
    """The change is not allowed in the record's current state (the message says why)."""


class PendingFindings(RecordConflict):
    """An inspection cannot be finished while ``count`` of the AI's findings await a decision."""

    def __init__(self, count: int) -> None:
        self.count = count
        what = f"{count} hazards found by the AI still await" if count != 1 else "1 hazard found by the AI still awaits"
        super().__init__(f"{what} a decision")


@dataclass(frozen=True)
class NewFinding:
    hazard_id: str
    box: Box
    detector_class: str | None = None
    confidence: float | None = None
    source: str = "model"  # model | inspector
    status: str = "pending"  # pending | confirmed | rejected
    note: str = ""
    suspected: bool = False  # the rule that raised it marks a suspicion for the inspector to confirm
    unconfirmed: bool = False  # found on a photo with a warning (washed out, too dark, featureless, damaged)


@dataclass(frozen=True)
class NewPhoto:
    kind: str  # inspection | rectification
    idempotency_key: str
    sha256: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    taken_at: str | None
    model_id: str
    model_version: str
    warnings: list[dict[str, str]]
    detections: list[dict[str, Any]]
    scene: str | None = None  # the taxonomy scene id the hazard rules ran with
    model_classes: tuple[str, ...] = ()  # the classes of the model that scored it (kept once per version)
    # where taken_at came from: exif | client (the upload form's taken_at) | camera (a CCTV frame's time)
    taken_at_source: str | None = None
    client_taken_at: float | None = None  # the upload form's taken_at, epoch seconds (kept even when EXIF wins)


_INSPECTION_COLUMNS = (
    "i.id, i.org_id, i.inspector_id, i.unit_name, i.unit_address, i.unit_credit_code, i.scene, i.lat, i.lon, "
    "i.accuracy_m, i.client_id, i.created_at, "
    "(SELECT COUNT(*) FROM photos p WHERE p.inspection_id = i.id AND p.kind = 'inspection' "
    "AND p.voided_at IS NULL) AS photo_count, "
    "(SELECT COUNT(*) FROM findings f WHERE f.inspection_id = i.id AND f.status IN ('pending', 'confirmed')) "
    "AS hazard_count, "
    "(SELECT COUNT(*) FROM findings f WHERE f.inspection_id = i.id AND f.status = 'pending') AS pending_count, "
    "i.finished_at, i.finished_by"
)


class RecordsListener(Protocol):
    """Told of every change to the counted facts, inside the write's transaction (derived tables follow it)."""

    def inspection_added(self, cur: Cursor, inspection_id: str) -> None: ...

    def findings_changed(self, cur: Cursor, changes: Sequence[tuple[str, str | None]]) -> None:
        """``changes``: (finding id, its status before the write; None for a new finding)."""


class Records:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        listener: RecordsListener | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.listener = listener
        self.clock = clock  # when a write happens (tests date records with it)
        migrate(db, "records", MIGRATIONS)

    # ---- inspections -------------------------------------------------------------------------------

    def create_inspection(
        self,
        org_id: str,
        inspector_id: str,
        *,
        unit_name: str,
        unit_address: str,
        unit_credit_code: str | None,
        scene: str,
        location: tuple[float, float, float | None] | None,
        client_id: str | None,
    ) -> tuple[Row, bool]:
        """The new inspection and True; or, for a ``client_id`` seen before, that inspection and False."""
        if client_id:
            found = self._inspection_by_client(org_id, client_id)
            if found:
                return found, False
        iid = uuid.uuid4().hex
        lat, lon, acc = location if location else (None, None, None)
        try:
            with self.db.tx() as cur:
                cur.execute(
                    "INSERT INTO inspections (id, org_id, inspector_id, unit_name, unit_address, unit_credit_code, "
                    "scene, lat, lon, accuracy_m, client_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [iid, org_id, inspector_id, unit_name, unit_address, unit_credit_code, scene, lat, lon, acc,
                     client_id, self.clock()],
                )  # fmt: skip
                if self.listener is not None:
                    self.listener.inspection_added(cur, iid)
        except Exception as exc:
            if client_id and is_unique_violation(exc):  # another request with this key won the race
                found = self._inspection_by_client(org_id, client_id)
                if found:
                    return found, False
            raise
        row = self.inspection(org_id, iid)
        assert row is not None
        return row, True

    def _inspection_by_client(self, org_id: str, client_id: str) -> Row | None:
        rows = self.db.query_dicts(
            f"SELECT {_INSPECTION_COLUMNS} FROM inspections i WHERE i.org_id = ? AND i.client_id = ?",
            [org_id, client_id],
        )
        return rows[0] if rows else None

    def inspections_by_client(self, org_id: str, client_ids: Sequence[str]) -> dict[str, str]:
        """Inspection ids by the ``client_id`` they were created with, for those of ``client_ids`` that exist."""
        if not client_ids:
            return {}
        marks = ", ".join("?" * len(client_ids))
        rows = self.db.query(
            f"SELECT client_id, id FROM inspections WHERE org_id = ? AND client_id IN ({marks})", [org_id, *client_ids]
        )
        return {str(c): str(i) for c, i in rows}

    def inspection(self, org_id: str, inspection_id: str) -> Row | None:
        rows = self.db.query_dicts(
            f"SELECT {_INSPECTION_COLUMNS} FROM inspections i WHERE i.id = ? AND i.org_id = ?",
            [inspection_id, org_id],
        )
        return rows[0] if rows else None

    def list_inspections(
        self,
        org_id: str,
        limit: int,
        offset: int,
        *,
        q: str | None = None,
        inspector_id: str | None = None,
        finished: bool | None = None,
    ) -> tuple[list[Row], int]:
        """The organisation's inspections, newest first, and how many match: ``q`` in the unit's name or address
        (literally), by ``inspector_id``, finished (完成检查) or not."""
        where, params = ["i.org_id = ?"], list[Any]([org_id])
        if q:
            where.append("(i.unit_name LIKE ? ESCAPE '!' OR i.unit_address LIKE ? ESCAPE '!')")
            params += [f"%{like_escaped(q)}%"] * 2
        if inspector_id is not None:
            where.append("i.inspector_id = ?")
            params.append(inspector_id)
        if finished is not None:
            where.append("i.finished_at IS NOT NULL" if finished else "i.finished_at IS NULL")
        cond = " AND ".join(where)
        # the page first, then its counts: the rows an offset skips are never counted
        rows = self.db.query_dicts(
            f"SELECT {_INSPECTION_COLUMNS} FROM (SELECT * FROM inspections i WHERE {cond} "
            "ORDER BY i.created_at DESC, i.id LIMIT ? OFFSET ?) i ORDER BY i.created_at DESC, i.id",
            [*params, int(limit), int(offset)],
        )
        total = int(self.db.query(f"SELECT COUNT(*) FROM inspections i WHERE {cond}", params)[0][0])
        return rows, total

    def finish(self, org_id: str, inspection_id: str, user_id: str, *, force: bool = False) -> Row | None:
        """Mark the inspection finished (完成检查); None when it is not this organisation's. Raises
        :class:`PendingFindings` while findings await a decision, unless ``force``. Finishing again changes nothing."""
        with self.db.tx() as cur:
            rows = cur.execute(
                "SELECT finished_at FROM inspections WHERE id = ? AND org_id = ?", [inspection_id, org_id]
            ).fetchall()
            if not rows:
                return None
            if rows[0][0] is None:
                pending = cur.execute(
                    "SELECT COUNT(*) FROM findings WHERE inspection_id = ? AND status = 'pending'", [inspection_id]
                ).fetchone()
                if pending and int(pending[0]) and not force:
                    raise PendingFindings(int(pending[0]))
                cur.execute(
                    "UPDATE inspections SET finished_at = ?, finished_by = ? WHERE id = ?",
                    [self.clock(), user_id, inspection_id],
                )
        return self.inspection(org_id, inspection_id)

    def reopen(self, org_id: str, inspection_id: str) -> Row | None:
        """Undo :meth:`finish` (a photo arrived after it, or the inspector goes on); None when not this org's."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE inspections SET finished_at = NULL, finished_by = NULL WHERE id = ? AND org_id = ?",
                [inspection_id, org_id],
            )
        return self.inspection(org_id, inspection_id)

    # ---- photos ------------------------------------------------------------------------------------

    def photo(self, org_id: str, photo_id: str) -> Row | None:
        rows = self.db.query_dicts("SELECT * FROM photos WHERE id = ? AND org_id = ?", [photo_id, org_id])
        return _photo_row(rows[0]) if rows else None

    def photo_by_key(self, org_id: str, key: str) -> Row | None:
        rows = self.db.query_dicts("SELECT * FROM photos WHERE org_id = ? AND idempotency_key = ?", [org_id, key])
        return _photo_row(rows[0]) if rows else None

    def photos_of(self, inspection_id: str, kind: str = "inspection") -> list[Row]:
        """The inspection's photos of ``kind``, oldest first; voided ones left out."""
        rows = self.db.query_dicts(
            "SELECT * FROM photos WHERE inspection_id = ? AND kind = ? AND voided_at IS NULL ORDER BY created_at, id",
            [inspection_id, kind],
        )
        return [_photo_row(r) for r in rows]

    def void_photo(
        self,
        org_id: str,
        photo_id: str,
        user_id: str,
        reason: str,
        *,
        ledger_status: Callable[[Cursor, str], str | None],
        on_withdraw: Callable[[Cursor, str], None],
    ) -> Row | None:
        """Void an inspection photo taken by mistake (作废): it stays stored for the audit, but the inspection, its
        documents, statistics and training data leave it out. Its findings become ``voided`` (a decision ``void``
        each, with the reason) and their ledger items still 待整改 are withdrawn. None when the photo is not this
        organisation's; :class:`RecordConflict` when one of its hazards is already being rectified, or for a
        rectification photo. Voiding again changes nothing."""
        now = self.clock()
        with self.db.tx() as cur:
            lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
            rows = cur.execute(f"SELECT * FROM photos WHERE id = ? AND org_id = ?{lock}", [photo_id, org_id])
            photo = rows.fetch_dicts()
            if not photo:
                return None
            if photo[0]["kind"] != "inspection":
                raise RecordConflict("only an inspection photo can be voided")
            if photo[0]["voided_at"] is not None:
                return self.photo(org_id, photo_id)
            findings = cur.execute("SELECT * FROM findings WHERE photo_id = ?", [photo_id]).fetch_dicts()
            for f in findings:
                item = f["ledger_item_id"]
                status = ledger_status(cur, item) if item is not None else None
                if status not in (None, "open"):
                    raise RecordConflict(
                        f"a hazard of this photo ({f['hazard_id']}) is already {status} in the ledger; "
                        "a photo can be voided only while its hazards are 待整改 at most"
                    )
            changes: list[tuple[str, str | None]] = []
            for f in findings:
                if f["ledger_item_id"] is not None:
                    on_withdraw(cur, f["ledger_item_id"])
                cur.execute(
                    "UPDATE findings SET status = 'voided', ledger_item_id = NULL, updated_at = ? WHERE id = ?",
                    [now, f["id"]],
                )
                self._decision(cur, org_id, f["id"], user_id, "void", None, reason, now)
                changes.append((f["id"], f["status"]))
            cur.execute(
                "UPDATE photos SET voided_at = ?, voided_by = ?, void_reason = ? WHERE id = ?",
                [now, user_id, reason, photo_id],
            )
            if self.listener is not None and changes:
                self.listener.findings_changed(cur, changes)
        return self.photo(org_id, photo_id)

    def add_photo(
        self,
        org_id: str,
        inspection_id: str,
        user_id: str,
        photo: NewPhoto,
        findings: Sequence[NewFinding],
        then: Callable[[Cursor, str], None] | None = None,
    ) -> tuple[Row, bool]:
        """Photo row and its findings in one transaction (``then(cur, photo_id)`` joins it).

        Returns ``(photo, True)``; or, when ``idempotency_key`` was used before in this organisation,
        ``(that photo, False)`` and nothing is written."""
        found = self.photo_by_key(org_id, photo.idempotency_key)
        if found:
            return found, False
        self.blobs.path(photo.sha256)  # validates; the bytes were put by the caller
        pid, now = uuid.uuid4().hex, self.clock()
        try:
            with self.db.tx() as cur:
                cur.execute(
                    "INSERT INTO photos (id, org_id, inspection_id, kind, idempotency_key, sha256, content_type, "
                    "size_bytes, width, height, taken_at, model_id, model_version, warnings, detections, "
                    "uploaded_by, created_at, scene, taken_at_source, client_taken_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [pid, org_id, inspection_id, photo.kind, photo.idempotency_key, photo.sha256, photo.content_type,
                     photo.size_bytes, photo.width, photo.height, photo.taken_at, photo.model_id, photo.model_version,
                     json.dumps(photo.warnings, ensure_ascii=False), json.dumps(photo.detections), user_id, now,
                     photo.scene, photo.taken_at_source, photo.client_taken_at],
                )  # fmt: skip
                fids = [self._insert_finding(cur, org_id, inspection_id, pid, f, seq, now)
                        for seq, f in enumerate(findings)]  # fmt: skip
                if self.listener is not None:
                    self.listener.findings_changed(cur, [(fid, None) for fid in fids])
                if photo.model_classes:
                    cur.execute(
                        "INSERT INTO model_versions (model_id, model_version, classes, first_seen) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (model_id, model_version) DO NOTHING",
                        [photo.model_id, photo.model_version, json.dumps(list(photo.model_classes)), now],
                    )
                if then is not None:
                    then(cur, pid)
        except Exception as exc:
            if is_unique_violation(exc):
                found = self.photo_by_key(org_id, photo.idempotency_key)
                if found:
                    return found, False
            raise
        row = self.photo(org_id, pid)
        assert row is not None
        return row, True

    # ---- findings and decisions ------------------------------------------------------------------

    @staticmethod
    def _insert_finding(
        cur: Cursor, org_id: str, inspection_id: str, photo_id: str, f: NewFinding, seq: int, now: float
    ) -> str:
        fid = uuid.uuid4().hex
        x1, y1, x2, y2 = f.box
        cur.execute(
            "INSERT INTO findings (id, org_id, photo_id, inspection_id, hazard_id, detector_class, confidence, "
            "x1, y1, x2, y2, source, status, note, seq, created_at, updated_at, suspected, unconfirmed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [fid, org_id, photo_id, inspection_id, f.hazard_id, f.detector_class, f.confidence, x1, y1, x2, y2,
             f.source, f.status, f.note, seq, now, now, int(f.suspected), int(f.unconfirmed)],
        )  # fmt: skip
        return fid

    def findings_of(self, photo_ids: Sequence[str]) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {pid: [] for pid in photo_ids}
        if not photo_ids:
            return out
        marks = ", ".join("?" * len(photo_ids))
        rows = self.db.query_dicts(
            f"SELECT * FROM findings WHERE photo_id IN ({marks}) ORDER BY photo_id, seq", list(photo_ids)
        )
        for r in rows:
            out[r["photo_id"]].append(r)
        return out

    def findings_by_id(self, org_id: str, finding_ids: Sequence[str]) -> dict[str, Row]:
        """The organisation's findings of these ids (one query), by id."""
        if not finding_ids:
            return {}
        marks = ", ".join("?" * len(finding_ids))
        rows = self.db.query_dicts(
            f"SELECT * FROM findings WHERE org_id = ? AND id IN ({marks})", [org_id, *finding_ids]
        )
        return {r["id"]: r for r in rows}

    def finding(self, org_id: str, finding_id: str) -> Row | None:
        rows = self.db.query_dicts("SELECT * FROM findings WHERE id = ? AND org_id = ?", [finding_id, org_id])
        return rows[0] if rows else None

    def add_finding(
        self,
        org_id: str,
        photo: Row,
        user_id: str,
        finding: NewFinding,
        on_confirm: Callable[[Cursor, Row], str],
    ) -> Row:
        """An inspector's own finding (confirmed at once): row, decision and ledger item in one transaction."""
        now = self.clock()
        with self.db.tx() as cur:
            seq_row = cur.execute("SELECT COUNT(*) FROM findings WHERE photo_id = ?", [photo["id"]]).fetchone()
            seq = int(seq_row[0]) if seq_row else 0
            fid = self._insert_finding(cur, org_id, photo["inspection_id"], photo["id"], finding, seq, now)
            self._decision(cur, org_id, fid, user_id, "add", finding.box, finding.note, now)
            row = cur.execute("SELECT * FROM findings WHERE id = ?", [fid]).fetch_dicts()[0]
            item_id = on_confirm(cur, row)
            cur.execute("UPDATE findings SET ledger_item_id = ? WHERE id = ?", [item_id, fid])
            if self.listener is not None:
                self.listener.findings_changed(cur, [(fid, None)])
        out = self.finding(org_id, fid)
        assert out is not None
        return out

    def decide(
        self,
        org_id: str,
        finding_id: str,
        user_id: str,
        decision: str,
        box: Box | None,
        note: str | None,
        *,
        ledger_status: Callable[[Cursor, str], str | None],
        on_confirm: Callable[[Cursor, Row], str],
        on_withdraw: Callable[[Cursor, str], None],
    ) -> Row | None:
        """Confirm or reject; None when the finding is not this organisation's.

        Raises :class:`RecordConflict` once the finding's ledger item has left 待整改 (``open``)."""
        now = self.clock()
        for attempt in range(2):
            try:
                with self.db.tx() as cur:
                    lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""  # SQLite: BEGIN IMMEDIATE
                    rows = cur.execute(
                        f"SELECT * FROM findings WHERE id = ? AND org_id = ?{lock}", [finding_id, org_id]
                    ).fetch_dicts()
                    if not rows:
                        return None
                    f = rows[0]
                    if f["status"] == "voided":
                        raise RecordConflict("the finding's photo was voided; it takes no more decisions")
                    item = f["ledger_item_id"]
                    if item is not None:
                        status = ledger_status(cur, item)
                        if status not in (None, "open"):
                            raise RecordConflict(
                                f"the hazard's ledger item is {status}; decisions can change only while it is open"
                            )
                    sets, params = (
                        ["status = ?", "updated_at = ?"],
                        [
                            "confirmed" if decision == "confirm" else "rejected",
                            now,
                        ],
                    )
                    if box is not None:
                        sets.append("x1 = ?, y1 = ?, x2 = ?, y2 = ?")
                        params.extend(box)
                    if note is not None:
                        sets.append("note = ?")
                        params.append(note)
                    cur.execute(f"UPDATE findings SET {', '.join(sets)} WHERE id = ?", [*params, finding_id])
                    self._decision(cur, org_id, finding_id, user_id, decision, box, note or "", now)
                    updated = cur.execute("SELECT * FROM findings WHERE id = ?", [finding_id]).fetch_dicts()[0]
                    if decision == "confirm" and item is None:
                        item = on_confirm(cur, updated)
                        cur.execute("UPDATE findings SET ledger_item_id = ? WHERE id = ?", [item, finding_id])
                    elif decision == "reject" and item is not None:
                        on_withdraw(cur, item)
                        cur.execute("UPDATE findings SET ledger_item_id = NULL WHERE id = ?", [finding_id])
                    if self.listener is not None:
                        self.listener.findings_changed(cur, [(finding_id, f["status"])])
                break
            except Exception as exc:  # two confirms raced to make the ledger item: the loser re-reads
                if attempt == 0 and is_unique_violation(exc):
                    continue
                raise
        return self.finding(org_id, finding_id)

    @staticmethod
    def _decision(
        cur: Cursor, org_id: str, finding_id: str, user_id: str, decision: str, box: Box | None, note: str, now: float
    ) -> None:
        cur.execute(
            "INSERT INTO decisions (org_id, finding_id, user_id, decision, box, note, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [org_id, finding_id, user_id, decision, json.dumps(list(box)) if box else None, note, now],
        )

    def decisions(self, finding_id: str) -> list[Row]:
        return self.db.query_dicts("SELECT * FROM decisions WHERE finding_id = ? ORDER BY id", [finding_id])


def _photo_row(row: Row) -> Row:
    row = dict(row)
    row["warnings"] = json.loads(row["warnings"])
    row["detections"] = json.loads(row["detections"])
    return row
