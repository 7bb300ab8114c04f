"""Report links and public hazard reports in the service database; the photos in the records' blob store.

A report link is a capability: whoever holds its URL may send reports to its organisation, until an admin revokes
it. A report keeps no address of its sender, only a salted hash of it per link (``sender``), enough to hold each
sender to a number of reports an hour; the receipt, shown once to the sender, is how they follow it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inference_service.records.blobs import BlobStore
from inference_service.reports.schema import MIGRATIONS
from inference_service.storage import Database, is_unique_violation, migrate

Row = dict[str, Any]
REPORT_STATUSES = ("new", "verified", "rejected")  # 待核查, 查证属实, 不属实


class ReportConflict(Exception):
    """The report was already decided."""


@dataclass(frozen=True)
class NewReport:
    key: str  # the sender's idempotency key
    sha256: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    place: str
    description: str
    contact: str | None
    hazards: list[dict[str, Any]]  # what the model found: hazard_id, confidence, box, suspected, unconfirmed
    warnings: list[dict[str, Any]]
    model_id: str
    model_version: str


def sender_of(link_id: str, address: str) -> str:
    """The sender as a hash of their address, different per link (no address is stored)."""
    return hashlib.sha256(f"{link_id}\0{address}".encode()).hexdigest()[:32]


class Reports:
    def __init__(self, db: Database, blobs: BlobStore, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.blobs = blobs
        self.clock = clock
        migrate(db, "reports", MIGRATIONS)

    # ---- links ------------------------------------------------------------------------------------------------

    def create_link(self, org_id: str, user_id: str, name: str) -> Row:
        link = {"id": uuid.uuid4().hex, "org_id": org_id, "token": secrets.token_urlsafe(18), "name": name,
                "created_by": user_id, "created_at": self.clock(), "revoked_at": None}  # fmt: skip
        with self.db.tx() as cur:
            cur.execute(
                "INSERT INTO report_links (id, org_id, token, name, created_by, created_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                list(link.values()),
            )
        return link

    def links(self, org_id: str, link_id: str | None = None) -> list[Row]:
        """The organisation's links (or its one ``link_id``), newest first, each with its count of reports and of
        those not yet checked."""
        where, params = "l.org_id = ?", [org_id]
        if link_id is not None:
            where, params = where + " AND l.id = ?", [*params, link_id]
        return self.db.query_dicts(
            "SELECT l.*, (SELECT COUNT(*) FROM reports r WHERE r.link_id = l.id) AS reports, "
            "(SELECT COUNT(*) FROM reports r WHERE r.link_id = l.id AND r.status = 'new') AS new_reports "
            f"FROM report_links l WHERE {where} ORDER BY l.created_at DESC, l.id",
            params,
        )

    def link(self, org_id: str, link_id: str) -> Row | None:
        found = self.links(org_id, link_id)
        return found[0] if found else None

    def revoke_link(self, org_id: str, link_id: str) -> Row | None:
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE report_links SET revoked_at = ? WHERE id = ? AND org_id = ? AND revoked_at IS NULL",
                [self.clock(), link_id, org_id],
            )
        return self.link(org_id, link_id)

    def active_link(self, token: str) -> Row | None:
        """The link of ``token`` with its organisation's name, unless revoked."""
        if not token or len(token) > 64:
            return None
        rows = self.db.query_dicts(
            "SELECT l.*, o.name AS org_name FROM report_links l JOIN orgs o ON o.id = l.org_id "
            "WHERE l.token = ? AND l.revoked_at IS NULL",
            [token],
        )
        return rows[0] if rows else None

    # ---- reports ----------------------------------------------------------------------------------------------

    def sent_since(self, link_id: str, sender: str, since: float) -> int:
        rows = self.db.query(
            "SELECT COUNT(*) FROM reports WHERE link_id = ? AND sender = ? AND created_at >= ?",
            [link_id, sender, since],
        )
        return int(rows[0][0])

    def by_key(self, link_id: str, key: str) -> Row | None:
        rows = self.db.query_dicts("SELECT * FROM reports WHERE link_id = ? AND idempotency_key = ?", [link_id, key])
        return _decoded(rows[0]) if rows else None

    def add(self, link: Row, sender: str, new: NewReport) -> tuple[Row, bool]:
        """The stored report and True; for a key seen before on this link, that report and False."""
        seen = self.by_key(link["id"], new.key)
        if seen is not None:
            return seen, False
        rid, receipt = uuid.uuid4().hex, _receipt()
        try:
            with self.db.tx() as cur:
                cur.execute(
                    "INSERT INTO reports (id, org_id, link_id, receipt, idempotency_key, sender, sha256, content_type, "
                    "size_bytes, width, height, place, description, contact, hazards, warnings, model_id, "
                    "model_version, status, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', ?)",
                    [rid, link["org_id"], link["id"], receipt, new.key, sender, new.sha256, new.content_type,
                     new.size_bytes, new.width, new.height, new.place, new.description, new.contact,
                     json.dumps(new.hazards), json.dumps(new.warnings, ensure_ascii=False), new.model_id,
                     new.model_version, self.clock()],
                )  # fmt: skip
        except Exception as exc:
            if is_unique_violation(exc):  # the same key at the same moment from a retry
                again = self.by_key(link["id"], new.key)
                if again is not None:
                    return again, False
            raise
        got = self.get(link["org_id"], rid)
        assert got is not None
        return got, True

    def get(self, org_id: str, report_id: str) -> Row | None:
        rows = self.db.query_dicts(_SELECT + " WHERE r.id = ? AND r.org_id = ?", [report_id, org_id])
        return _decoded(rows[0]) if rows else None

    def by_receipt(self, receipt: str) -> Row | None:
        if not receipt or len(receipt) > 64:
            return None
        rows = self.db.query_dicts(_SELECT + " WHERE r.receipt = ?", [receipt])
        return _decoded(rows[0]) if rows else None

    def page(self, org_id: str, status: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
        where, params = _of(org_id, status)
        total = int(self.db.query(f"SELECT COUNT(*) FROM reports r WHERE {where}", params)[0][0])
        rows = self.db.query_dicts(
            f"{_SELECT} WHERE {where} ORDER BY r.created_at DESC, r.id LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [_decoded(r) for r in rows], total

    def every(self, org_id: str, status: str | None) -> list[Row]:
        """Every report of the organisation (of ``status``), oldest first: for an export."""
        where, params = _of(org_id, status)
        return [
            _decoded(r) for r in self.db.query_dicts(f"{_SELECT} WHERE {where} ORDER BY r.created_at, r.id", params)
        ]

    def sent_between(self, org_id: str, since: float | None, until: float | None) -> dict[str, int]:
        """Reports sent in [since, until) by their status now, as ``counts`` (the statistics page's period)."""
        sql, params = "SELECT status, COUNT(*) FROM reports WHERE org_id = ?", list[Any]([org_id])
        if since is not None:
            sql, params = sql + " AND created_at >= ?", [*params, since]
        if until is not None:
            sql, params = sql + " AND created_at < ?", [*params, until]
        rows = self.db.query(sql + " GROUP BY status", params)
        return {s: 0 for s in REPORT_STATUSES} | {str(s): int(n) for s, n in rows}

    def counts(self, org_id: str) -> dict[str, int]:
        return self.sent_between(org_id, None, None)

    def decide(
        self, org_id: str, report_id: str, user_id: str, status: str, note: str, inspection_id: str | None = None
    ) -> Row:
        """Mark a new report ``verified`` (with the inspection made of it) or ``rejected``; ReportConflict when it
        was decided before (the same decision again is answered with the report as it is)."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE reports SET status = ?, note = ?, decided_by = ?, decided_at = ?, inspection_id = ? "
                "WHERE id = ? AND org_id = ? AND status = 'new'",
                [status, note, user_id, self.clock(), inspection_id, report_id, org_id],
            )
            changed = cur.raw.rowcount
        row = self.get(org_id, report_id)
        if row is None:
            raise KeyError(report_id)
        if changed == 0 and row["status"] != status:
            raise ReportConflict(f"the report was already marked {row['status']}")
        return row


_SELECT = "SELECT r.*, l.name AS link_name FROM reports r JOIN report_links l ON l.id = r.link_id"


def _of(org_id: str, status: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause (over ``reports r``) and its parameters: the organisation's reports, of ``status``."""
    if status:
        return "r.org_id = ? AND r.status = ?", [org_id, status]
    return "r.org_id = ?", [org_id]


def _receipt() -> str:
    """12 characters a person can read out on the phone (no 0/O, 1/I/L)."""
    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def _decoded(row: Row) -> Row:
    return {**row, "hazards": json.loads(row["hazards"]), "warnings": json.loads(row["warnings"])}
