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
from inference_service.storage import Database, is_unique_violation, migrate

logger = logging.getLogger(__name__)

Role = Literal["inspector", "supervisor", "admin"]
ROLES: tuple[str, ...] = ("inspector", "supervisor", "admin")
SESSION_DAYS = 14
MAX_FAILURES = 5  # per username, in the window below
MAX_FAILURES_PER_ADDRESS = 20  # per client address (several users behind one NAT)
FAILURE_WINDOW_S = 15 * 60
MIN_PASSWORD = 8


class AccountsError(ValueError):
    """A request the accounts cannot satisfy (duplicate username, bad role …); the message says why."""


class LoginThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")


@dataclass(frozen=True)
class User:
    id: str
    username: str
    display_name: str
    role: Role
    org_id: str
    org_name: str

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
    "SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.name FROM users u JOIN orgs o ON o.id = u.org_id"
)


class Accounts:
    def __init__(self, db: Database, hasher: PasswordHasher | None = None) -> None:
        self.db = db
        self.hasher = hasher or PasswordHasher()
        migrate(db, "accounts", MIGRATIONS)
        # a hash to verify against when the username is unknown, so both cases take the same time
        self._dummy = self.hasher.hash(secrets.token_hex(8))

    # ---- orgs and users ----------------------------------------------------------------------------

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
            if is_unique_violation(exc):
                raise AccountsError(f"username {username!r} is taken") from exc
            raise
        user = self.get_user(user_id)
        assert user is not None
        return user

    def get_user(self, user_id: str) -> User | None:
        rows = self.db.query(f"{_USER_SELECT} WHERE u.id = ? AND u.active = 1", [user_id])
        return self._user(rows[0]) if rows else None

    def list_users(self, org_id: str) -> list[User]:
        rows = self.db.query(f"{_USER_SELECT} WHERE u.org_id = ? ORDER BY u.username", [org_id])
        return [self._user(r) for r in rows]

    @staticmethod
    def _user(row: tuple[object, ...]) -> User:
        uid, username, display, role, org_id, org_name = (str(v) for v in row)
        return User(uid, username, display, role, org_id, org_name)  # type: ignore[arg-type]

    # ---- login, sessions ---------------------------------------------------------------------------

    def _throttle(self, keys: list[str], now: float) -> None:
        since = now - FAILURE_WINDOW_S
        for key in keys:
            rows = self.db.query("SELECT COUNT(*), MIN(at) FROM login_failures WHERE key = ? AND at >= ?", [key, since])
            count, first = rows[0]
            limit = MAX_FAILURES_PER_ADDRESS if key.startswith("ip:") else MAX_FAILURES
            if int(count) >= limit:
                raise LoginThrottled(max(1, int(float(first) + FAILURE_WINDOW_S - now) + 1))

    def login(self, username: str, password: str, client: str = "") -> Session | None:
        """A new session, or None for bad credentials; raises :class:`LoginThrottled` after too many failures."""
        now = time.time()
        keys = [f"user:{username.strip().lower()}"] + ([f"ip:{client}"] if client else [])
        self._throttle(keys, now)
        rows = self.db.query(
            "SELECT id, password_hash FROM users WHERE username = ? AND active = 1", [username.strip()]
        )
        stored = str(rows[0][1]) if rows else self._dummy
        try:
            self.hasher.verify(stored, password)
            ok = bool(rows)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            with self.db.tx() as cur:
                for key in keys:
                    cur.execute("INSERT INTO login_failures (key, at) VALUES (?, ?)", [key, now])
            logger.info("failed login for %r from %s", username, client or "?")
            return None
        user_id = str(rows[0][0])
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.db.tx() as cur:
            cur.execute("DELETE FROM login_failures WHERE key = ?", [keys[0]])
            cur.execute("DELETE FROM sessions WHERE expires_at < ?", [now])
            cur.execute(
                "INSERT INTO sessions (token_sha256, user_id, csrf_token, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [_sha(token), user_id, csrf, now, now + SESSION_DAYS * 86400],
            )
            if self.hasher.check_needs_rehash(str(rows[0][1])):
                cur.execute("UPDATE users SET password_hash = ? WHERE id = ?", [self.hasher.hash(password), user_id])
        user = self.get_user(user_id)
        assert user is not None
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
