"""Accounts on the storage layer: users log in with a password (argon2id), get a server-side session
(only the token's SHA-256 is stored) and a per-session CSRF token. Failed logins are counted in the
database, so the throttle holds across service processes."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from inference_service.accounts.schema import MIGRATIONS
from inference_service.storage import Cursor, Database, is_unique_violation, migrate

logger = logging.getLogger(__name__)

Role = Literal["inspector", "supervisor", "admin"]
ROLES: tuple[str, ...] = ("inspector", "supervisor", "admin")
SESSION_DAYS = 14
MAX_FAILURES = 5  # per username, in the window below
MAX_FAILURES_PER_ADDRESS = 20  # per client address (several users behind one NAT)
FAILURE_WINDOW_S = 15 * 60
LOGIN_LOCK_KEY = 0x6C6F6769  # "logi": the advisory lock (PostgreSQL) under which a login is counted and booked
MIN_PASSWORD = 8


class AccountsError(ValueError):
    """A request the accounts cannot satisfy (duplicate username, bad role …); the message says why."""


class LoginThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many wrong passwords; try again in {retry_after_s} s")


@dataclass(frozen=True)
class User:
    id: str
    username: str
    display_name: str
    role: Role
    org_id: str
    org_name: str
    active: bool = True  # a disabled user cannot log in and has no sessions

    def can(self, role: Role) -> bool:
        """At least ``role``: admin ⊇ supervisor ⊇ inspector."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Session:
    token: str  # the cookie value; only its SHA-256 is stored
    csrf_token: str
    user: User


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_USER_SELECT = (
    "SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.name, u.active FROM users u "
    "JOIN orgs o ON o.id = u.org_id"
)


class Accounts:
    def __init__(self, db: Database, hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.hasher = hasher or PasswordHasher()
        migrate(db, "accounts", MIGRATIONS)
        # a hash to verify against when the username is unknown, so both cases take the same time
        self._dummy = self.hasher.hash(secrets.token_hex(8))

    # ---- orgs and users ----------------------------------------------------------------------------

    def org_name(self, org_id: str) -> str | None:
        rows = self.db.query("SELECT name FROM orgs WHERE id = ?", [org_id])
        return str(rows[0][0]) if rows else None

    def ensure_org(self, name: str) -> str:
        name = name.strip()
        if not name:
            raise AccountsError("organisation name is empty")
        for _ in range(2):
            rows = self.db.query("SELECT id FROM orgs WHERE name = ?", [name])
            if rows:
                return str(rows[0][0])
            try:
                with self.db.tx() as cur:
                    org_id = uuid.uuid4().hex
                    cur.execute("INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)", [org_id, name, time.time()])
                return org_id
            except Exception as exc:
                if not is_unique_violation(exc):
                    raise
        raise AccountsError(f"cannot create organisation {name!r}")

    def add_user(self, username: str, password: str, role: str, org_id: str, display_name: str | None = None) -> User:
        username = username.strip()
        if not username or len(username) > 64:
            raise AccountsError("username must be 1 to 64 characters")
        if role not in ROLES:
            raise AccountsError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountsError(f"password must have at least {MIN_PASSWORD} characters")
        user_id, now = uuid.uuid4().hex, time.time()
        try:
            with self.db.tx() as cur:
                cur.execute(
                    "INSERT INTO users (id, org_id, username, display_name, role, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [user_id, org_id, username, display_name or username, role, self.hasher.hash(password), now],
                )
        except Exception as exc:
            if is_unique_violation(exc):  # usernames are unique across organisations: say no more than that
                raise AccountsError(f"username {username!r} is not available; choose another") from exc
            raise
        user = self.get_user(user_id)
        assert user is not None
        return user

    def get_user(self, user_id: str) -> User | None:
        """The active user ``user_id``, or None."""
        rows = self.db.query(f"{_USER_SELECT} WHERE u.id = ? AND u.active = 1", [user_id])
        return self._user(rows[0]) if rows else None

    def find_user(self, username: str) -> User | None:
        """The user called ``username``, active or not."""
        rows = self.db.query(f"{_USER_SELECT} WHERE u.username = ?", [username.strip()])
        return self._user(rows[0]) if rows else None

    def org_id(self, name: str) -> str | None:
        """The id of the organisation called ``name``; None when there is none (nothing is created)."""
        rows = self.db.query("SELECT id FROM orgs WHERE name = ?", [name.strip()])
        return str(rows[0][0]) if rows else None

    def list_users(self, org_id: str, *, inactive: bool = False) -> list[User]:
        """The organisation's active users; with ``inactive``, the disabled ones too."""
        where = "" if inactive else " AND u.active = 1"
        rows = self.db.query(f"{_USER_SELECT} WHERE u.org_id = ?{where} ORDER BY u.username", [org_id])
        return [self._user(r) for r in rows]

    @staticmethod
    def _user(row: tuple[object, ...]) -> User:
        uid, username, display, role, org_id, org_name = (str(v) for v in row[:6])
        return User(uid, username, display, role, org_id, org_name, bool(row[6]))  # type: ignore[arg-type]

    def set_password(self, user_id: str, password: str, *, keep_session: str | None = None) -> None:
        """A new password for ``user_id``; every session of the user ends but ``keep_session`` (a token)."""
        if len(password) < MIN_PASSWORD:
            raise AccountsError(f"password must have at least {MIN_PASSWORD} characters")
        with self.db.tx() as cur:
            cur.execute("UPDATE users SET password_hash = ? WHERE id = ?", [self.hasher.hash(password), user_id])
            if cur.rowcount != 1:
                raise AccountsError("no such user")
            self._end_sessions(cur, user_id, keep_session)

    def set_active(self, user_id: str, active: bool) -> None:
        """Enable or disable ``user_id``; disabling ends every session of the user at once."""
        with self.db.tx() as cur:
            cur.execute("UPDATE users SET active = ? WHERE id = ?", [1 if active else 0, user_id])
            if cur.rowcount != 1:
                raise AccountsError("no such user")
            if not active:
                self._end_sessions(cur, user_id, None)

    @staticmethod
    def _end_sessions(cur: Cursor, user_id: str, keep: str | None) -> None:
        if keep is None:
            cur.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])
        else:
            cur.execute("DELETE FROM sessions WHERE user_id = ? AND token_sha256 <> ?", [user_id, _sha(keep)])

    # ---- login, sessions ---------------------------------------------------------------------------

    def _charge(self, keys: list[str], now: float) -> None:
        """Count each key's failures in the window; raise :class:`LoginThrottled` if one is at its limit, else book
        this attempt as a failure for every key now, before its password is checked. The count and the booking are
        one transaction under one lock, so attempts sent all at once cannot all pass the count."""
        since = now - FAILURE_WINDOW_S
        with self.db.tx() as cur:  # SQLite: BEGIN IMMEDIATE serialises writers
            if self.db.dialect == "postgresql":
                cur.execute("SELECT pg_advisory_xact_lock(?)", [LOGIN_LOCK_KEY])
            for key in keys:
                cur.execute("SELECT COUNT(*), MIN(at) FROM login_failures WHERE key = ? AND at >= ?", [key, since])
                count, first = cur.fetchone() or (0, None)
                limit = MAX_FAILURES_PER_ADDRESS if key.startswith("ip:") else MAX_FAILURES
                if int(count) >= limit:
                    raise LoginThrottled(max(1, int(float(first) + FAILURE_WINDOW_S - now) + 1))
            for key in keys:
                cur.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", [key, now])

    def verify(self, username: str, password: str, client: str = "") -> str | None:
        """The id of the active user ``username`` if ``password`` is theirs, else None; every try counts against the
        throttle (raises :class:`LoginThrottled` past it), a right one clears the username's failures."""
        now = time.time()
        keys = [f"user:{username.strip().lower()}"] + ([f"ip:{client}"] if client else [])
        self._charge(keys, now)
        rows = self.db.query(
            "SELECT id, password_hash FROM users WHERE username = ? AND active = 1", [username.strip()]
        )
        stored = str(rows[0][1]) if rows else self._dummy
        try:
            self.hasher.verify(stored, password)
            ok = bool(rows)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:  # the failure is booked already
            logger.info("failed password for %r from %s", username, client or "?")
            return None
        user_id = str(rows[0][0])
        with self.db.tx() as cur:
            cur.execute("DELETE FROM login_failures WHERE key = ?", [keys[0]])
            for key in keys[1:]:  # this attempt's booking; the address keeps its other failures
                cur.execute("DELETE FROM login_failures WHERE key = ? AND at = ?", [key, now])
            if self.hasher.check_needs_rehash(stored):
                cur.execute("UPDATE users SET password_hash = ? WHERE id = ?", [self.hasher.hash(password), user_id])
        return user_id

    def login(self, username: str, password: str, client: str = "") -> Session | None:
        """A new session, or None for bad credentials; raises :class:`LoginThrottled` after too many failures."""
        user_id = self.verify(username, password, client)
        if user_id is None:
            return None
        now = time.time()
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.db.tx() as cur:
            cur.execute("DELETE FROM sessions WHERE expires_at < ?", [now])
            cur.execute(
                "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [_sha(token), user_id, csrf, now, now + SESSION_DAYS * 86400],
            )
        user = self.get_user(user_id)
        if user is None:  # disabled between the check and now
            self.logout(token)
            return None
        return Session(token, csrf, user)

    def session(self, token: str) -> Session | None:
        if not token:
            return None
        rows = self.db.query(
            "SELECT user_id, csrf_token FROM sessions WHERE token_sha256 = ? AND expires_at > ?",
            [_sha(token), time.time()],
        )
        if not rows:
            return None
        user = self.get_user(str(rows[0][0]))
        return Session(token, str(rows[0][1]), user) if user else None

    def logout(self, token: str) -> None:
        with self.db.tx() as cur:
            cur.execute("DELETE FROM sessions WHERE token_sha256 = ?", [_sha(token)])
