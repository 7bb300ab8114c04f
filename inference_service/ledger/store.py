"""The hazard ledger on the storage layer. Every change is one conditional UPDATE on ``(id, version,
status)``, so a transition is applied once even when two service processes race on one database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from inference_service.ledger.rules import STATUS_ZH, TRANSITIONS, DeadlinePolicy, both
from inference_service.ledger.schema import MIGRATIONS
from inference_service.storage import Cursor, Database, like_escaped, migrate

Row = dict[str, Any]
ROLE_RANK = {"inspector": 0, "supervisor": 1, "admin": 2}


class LedgerConflict(Exception):
    """409: wrong transition, stale version, or the item is closed."""


class LedgerForbidden(Exception):
    """403: the user's role may not make this change."""


@dataclass(frozen=True)
class LedgerFilter:
    unit: str | None = None
    hazard: str | None = None
    severity: str | None = None
    status: str | None = None
    inspector: str | None = None
    since: float | None = None
    until: float | None = None
    overdue: bool | None = None
    closed: bool | None = None  # True: 已销号 only; False: not yet closed
    due_within_days: int | None = None  # not closed, deadline from now to this many days on (即将到期)


STATE_COLUMNS = (
    "id, org_id, created_at, scene, status, deadline, closed_at, rectification_photo_id, ai_recheck, sent_back"
)


class LedgerListener(Protocol):
    """Told of every change to an item, inside the write's transaction (derived tables follow it)."""

    def ledger_changed(self, cur: Cursor, item_id: str, before: Row | None) -> None:
        """``before``: the item's :data:`STATE_COLUMNS` before the write (None: a new item)."""


class Ledger:
    def __init__(self, db: Database, policy: DeadlinePolicy, listener: LedgerListener | None = None) -> None:
        self.db = db
        self.policy = policy
        self.listener = listener
        migrate(db, "ledger", MIGRATIONS)

    # ---- inside the records' transactions --------------------------------------------------------

    def open_item(self, cur: Cursor, finding: Row, inspection: Row, severity: str, user_id: str) -> str:
        """A new 待整改 item for a confirmed finding (in the caller's transaction); ``inspection``: its
        ``inspector_id, unit_name, unit_address, scene``."""
        item_id, now = uuid.uuid4().hex, time.time()
        cur.execute(
            "INSERT INTO ledger_items (id, org_id, finding_id, inspection_id, photo_id, inspector_id, unit_name, "
            "unit_address, hazard_id, severity, status, deadline, created_at, version, scene) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, 1, ?)",
            [item_id, finding["org_id"], finding["id"], finding["inspection_id"], finding["photo_id"],
             inspection["inspector_id"], inspection["unit_name"], inspection["unit_address"], finding["hazard_id"],
             severity, self.policy.deadline(severity, now), now, inspection.get("scene")],
        )  # fmt: skip
        self._history(cur, item_id, user_id, None, "open", both("确认隐患，登记入账", "confirmed"), now)
        self._changed(cur, item_id, None)
        return item_id

    def withdraw(self, cur: Cursor, item_id: str) -> None:
        """Remove a still-open item whose finding was rejected after all (the decisions keep the audit)."""
        before = self._state(cur, item_id)
        cur.execute("DELETE FROM ledger_history WHERE item_id = ?", [item_id])
        cur.execute("DELETE FROM ledger_items WHERE id = ? AND status = 'open'", [item_id])
        self._changed(cur, item_id, before)

    @staticmethod
    def status_in(cur: Cursor, item_id: str) -> str | None:
        row = cur.execute("SELECT status FROM ledger_items WHERE id = ?", [item_id]).fetchone()
        return str(row[0]) if row else None

    def rectify(
        self, cur: Cursor, org_id: str, item_id: str, user_id: str, photo_id: str, ai_recheck: str | None, note: str
    ) -> None:
        """Attach a rectification photo and its AI re-check; the item moves to 待复查 (caller's transaction)."""
        row = cur.execute(
            "SELECT status, version FROM ledger_items WHERE id = ? AND org_id = ?", [item_id, org_id]
        ).fetchone()
        if row is None:
            raise LedgerConflict("the ledger item is gone")
        status, version = str(row[0]), int(row[1])
        if status == "closed":
            raise LedgerConflict("the ledger item is closed (已销号); it cannot take another rectification photo")
        before = self._state(cur, item_id)
        updated = cur.execute(
            "UPDATE ledger_items SET rectification_photo_id = ?, ai_recheck = ?, status = 'pending_review', "
            "version = version + 1 WHERE id = ? AND version = ?",
            [photo_id, ai_recheck, item_id, version],
        ).rowcount
        if updated != 1:
            raise LedgerConflict("the ledger item was changed meanwhile; reload it")
        self._history(cur, item_id, user_id, status, "pending_review", note, time.time())
        self._changed(cur, item_id, before)

    # ---- reads ------------------------------------------------------------------------------------

    def get(self, org_id: str, item_id: str) -> Row | None:
        rows = self.db.query_dicts("SELECT * FROM ledger_items WHERE id = ? AND org_id = ?", [item_id, org_id])
        if not rows:
            return None
        return self._with_history(rows)[0]

    def by_finding(self, org_id: str, finding_ids: Sequence[str]) -> dict[str, Row]:
        if not finding_ids:
            return {}
        marks = ", ".join("?" * len(finding_ids))
        rows = self.db.query_dicts(
            f"SELECT * FROM ledger_items WHERE org_id = ? AND finding_id IN ({marks})", [org_id, *finding_ids]
        )
        return {r["finding_id"]: r for r in rows}

    def search(
        self, org_id: str, flt: LedgerFilter, limit: int | None = 100, offset: int = 0, now: float | None = None
    ) -> tuple[list[Row], int]:
        now = time.time() if now is None else now
        where, params = ["org_id = ?"], list[Any]([org_id])
        for clause, value in (
            ("unit_name LIKE ? ESCAPE '!'", f"%{like_escaped(flt.unit)}%" if flt.unit else None),
            ("hazard_id = ?", flt.hazard),
            ("severity = ?", flt.severity),
            ("status = ?", flt.status),
            ("inspector_id = ?", flt.inspector),
            ("created_at >= ?", flt.since),
            ("created_at < ?", flt.until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if flt.closed is not None:
            where.append("status = 'closed'" if flt.closed else "status <> 'closed'")
        if flt.overdue is True:
            where.append("((status <> 'closed' AND deadline < ?) OR (status = 'closed' AND closed_at > deadline))")
            params.append(now)
        elif flt.overdue is False:
            where.append("NOT ((status <> 'closed' AND deadline < ?) OR (status = 'closed' AND closed_at > deadline))")
            params.append(now)
        if flt.due_within_days is not None:
            where.append("status <> 'closed' AND deadline >= ? AND deadline < ?")
            params += [now, now + flt.due_within_days * 86400.0]
        cond = " AND ".join(where)
        total = int(self.db.query(f"SELECT COUNT(*) FROM ledger_items WHERE {cond}", params)[0][0])
        sql = f"SELECT * FROM ledger_items WHERE {cond} ORDER BY deadline, created_at, id"
        page: list[Any] = []
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            page = [int(limit), int(offset)]
        return self._with_history(self.db.query_dicts(sql, [*params, *page])), total

    def summary(self, org_id: str, now: float | None = None) -> dict[str, int]:
        """How many of the organisation's items are in each status, and how many not closed are past their
        deadline (``overdue``): the app's 整改跟踪 line."""
        now = time.time() if now is None else now
        counts = dict.fromkeys(("open", "in_progress", "pending_review", "closed", "overdue"), 0)
        rows = self.db.query(
            "SELECT status, COUNT(*), SUM(CASE WHEN status <> 'closed' AND deadline < ? THEN 1 ELSE 0 END) "
            "FROM ledger_items WHERE org_id = ? GROUP BY status",
            [now, org_id],
        )
        for status, n, late in rows:
            counts[str(status)] = int(n)
            counts["overdue"] += int(late or 0)
        return counts

    def _with_history(self, items: list[Row]) -> list[Row]:
        if not items:
            return items
        marks = ", ".join("?" * len(items))
        rows = self.db.query_dicts(
            "SELECT h.item_id, h.at, h.from_status, h.to_status, h.note, h.by_user, u.display_name "
            f"FROM ledger_history h LEFT JOIN users u ON u.id = h.by_user WHERE h.item_id IN ({marks}) "
            "ORDER BY h.id",
            [i["id"] for i in items],
        )
        by_item: dict[str, list[Row]] = {i["id"]: [] for i in items}
        for r in rows:
            by_item[r["item_id"]].append(r)
        return [{**i, "history": by_item[i["id"]]} for i in items]

    # ---- changes ----------------------------------------------------------------------------------

    def transition(
        self,
        org_id: str,
        item_id: str,
        user_id: str,
        role: str,
        to: str,
        version: int,
        *,
        note: str = "",
        responsible_person: str | None = None,
        override: bool = False,
    ) -> Row | None:
        """Apply ``status -> to`` if ``version`` is current; None when the item is not this organisation's."""
        item = self.get(org_id, item_id)
        if item is None:
            return None
        status = item["status"]
        if status == "closed":
            raise LedgerConflict("the ledger item is closed (已销号); it cannot change any more")
        needed = TRANSITIONS.get((status, to))
        if needed is None:
            allowed = [b for (a, b) in TRANSITIONS if a == status]
            raise LedgerConflict(
                f"cannot go from {status} ({STATUS_ZH[status]}) to {to}; allowed: {', '.join(allowed) or 'none'}"
            )
        if ROLE_RANK[role] < ROLE_RANK[needed]:
            raise LedgerForbidden(f"{status} -> {to} needs the {needed} role")
        if to == "pending_review" and not item["rectification_photo_id"]:
            raise LedgerConflict("a rectification photo is needed first (POST …/rectification)")
        if to == "closed" and item["ai_recheck"] == "failed" and not (override and note.strip()):
            raise LedgerConflict("AI 复查未通过 (AI re-check failed): close with override=true and a note saying why")
        if int(version) != int(item["version"]):
            raise LedgerConflict(f"stale version {version}: the item is at version {item['version']}; reload it")
        now = time.time()
        sets, params = ["status = ?", "version = version + 1"], list[Any]([to])
        if to == "closed":
            sets.append("closed_at = ?, close_s = ? - created_at")
            params.extend([now, now])
        if (status, to) == ("pending_review", "in_progress"):
            sets.append("sent_back = 1")  # a reviewer sent the rectification back
        if responsible_person is not None:
            sets.append("responsible_person = ?")
            params.append(responsible_person.strip())
        with self.db.tx() as cur:
            before = self._state(cur, item_id)
            updated = cur.execute(
                f"UPDATE ledger_items SET {', '.join(sets)} WHERE id = ? AND version = ? AND status = ?",
                [*params, item_id, int(version), status],
            ).rowcount
            if updated != 1:
                raise LedgerConflict("the ledger item was changed meanwhile (stale version); reload it")
            overridden = both("不采纳 AI 复查结果", "override AI re-check")
            history_note = note if not (to == "closed" and override) else f"[{overridden}] {note}"
            self._history(cur, item_id, user_id, status, to, history_note, now)
            self._changed(cur, item_id, before)
        return self.get(org_id, item_id)

    def assign(
        self,
        org_id: str,
        item_id: str,
        user_id: str,
        version: int,
        *,
        assigned_to: str | None,
        responsible_person: str | None,
        deadline: float | None,
        note: str = "",
    ) -> Row | None:
        item = self.get(org_id, item_id)
        if item is None:
            return None
        if item["status"] == "closed":
            raise LedgerConflict("the ledger item is closed (已销号); it cannot change any more")
        if int(version) != int(item["version"]):
            raise LedgerConflict(f"stale version {version}: the item is at version {item['version']}; reload it")
        sets, params = ["version = version + 1"], list[Any]()
        for column, value in (("assigned_to", assigned_to), ("responsible_person", responsible_person)):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)
        if deadline is not None:
            sets.append("deadline = ?")
            params.append(deadline)
        with self.db.tx() as cur:
            updated = cur.execute(
                f"UPDATE ledger_items SET {', '.join(sets)} WHERE id = ? AND version = ? AND status <> 'closed'",
                [*params, item_id, int(version)],
            ).rowcount
            if updated != 1:
                raise LedgerConflict("the ledger item was changed meanwhile (stale version); reload it")
            said = note or both("指派 / 调整期限", "assigned")
            self._history(cur, item_id, user_id, item["status"], item["status"], said, time.time())
        return self.get(org_id, item_id)

    @staticmethod
    def _state(cur: Cursor, item_id: str) -> Row | None:
        rows = cur.execute(f"SELECT {STATE_COLUMNS} FROM ledger_items WHERE id = ?", [item_id]).fetch_dicts()
        return rows[0] if rows else None

    def _changed(self, cur: Cursor, item_id: str, before: Row | None) -> None:
        if self.listener is not None:
            self.listener.ledger_changed(cur, item_id, before)

    @staticmethod
    def _history(cur: Cursor, item_id: str, user_id: str, frm: str | None, to: str, note: str, now: float) -> None:
        cur.execute(
            "INSERT INTO ledger_history (item_id, at, by_user, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)",
            [item_id, now, user_id, frm, to, note],
        )
