"""API keys for machine clients of ``/v1/*`` (front ends calling ``/v1/detect``, CCTV integrations).

A key is ``hsk_<id>_<secret>``: ``<id>`` (8 hex digits) names it in lists and logs, the secret is 32 random
bytes. Only the key's SHA-256 is stored (a key is high-entropy, so a plain hash suffices); the key itself is
shown once, when created. Each key has scopes (``detect``, ``events:read``, ``admin`` = all) and may have a
rate limit (``60/min``), enforced per process by a token bucket. Stored in the service database
(``HAZARDSCAN_DATABASE_URL``) through the shared storage layer; managed with ``hazardscan keys``.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from inference_service.storage import Database, Migration, StorageError, is_unique_violation, migrate

SCOPES = ("detect", "events:read", "admin")
PREFIX = "hsk_"
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}

MIGRATIONS = (
    Migration(
        1,
        "api keys",
        (
            """CREATE TABLE api_keys (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                key_hash TEXT NOT NULL UNIQUE,
                scopes TEXT NOT NULL,
                rate TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)""",
        ),
    ),
)


class ApiKeyError(ValueError):
    """A bad key request (unknown scope, bad rate, duplicate name); the message says what to fix."""


@dataclass(frozen=True)
class Rate:
    count: int
    per_s: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        m = _RATE.match(text)
        if not m or int(m.group(1)) < 1:
            raise ApiKeyError(f"rate {text!r}: write N/s, N/min or N/hour with N >= 1, e.g. 60/min")
        return cls(int(m.group(1)), _UNITS[m.group(2)])

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "hour"}[self.per_s]
        return f"{self.count}/{unit}"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    rate: Rate | None
    created_at: float
    revoked_at: float | None = None

    def allows(self, scope: str | None) -> bool:
        return scope is None or "admin" in self.scopes or scope in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def parse_scopes(text: str | Iterable[str]) -> frozenset[str]:
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = sorted(set(items) - set(SCOPES))
    if unknown or not items:
        raise ApiKeyError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(items) or 'none'}")
    return frozenset(items)


class KeyStore:
    """Keys in the service database. Thread-safe (the database gives each thread its connection)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db, "apikeys", MIGRATIONS)

    def create(self, name: str, scopes: str | Iterable[str], rate: str | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret text (shown once; only its hash is kept)."""
        if not name.strip():
            raise ApiKeyError("a key needs a name (who or what uses it)")
        key = ApiKey(
            secrets.token_hex(4), name.strip(), parse_scopes(scopes), Rate.parse(rate) if rate else None, time.time()
        )
        text = f"{PREFIX}{key.id}_{secrets.token_urlsafe(32)}"
        try:
            with self.db.tx() as cur:
                cur.execute(
                    "INSERT INTO api_keys (id, name, key_hash, scopes, rate, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        key.id,
                        key.name,
                        hash_key(text),
                        ",".join(sorted(key.scopes)),
                        rate and str(key.rate),
                        key.created_at,
                    ],
                )
        except Exception as exc:
            if is_unique_violation(exc):
                raise ApiKeyError(f"a key named {key.name!r} exists; revoke it or choose another name") from exc
            raise
        return key, text

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        rows = self.db.query(
            "SELECT id, name, scopes, rate, created_at, revoked_at FROM api_keys ORDER BY created_at, id"
        )
        keys = [
            ApiKey(r[0], r[1], frozenset(r[2].split(",")), Rate.parse(r[3]) if r[3] else None, r[4], r[5]) for r in rows
        ]
        return [k for k in keys if include_revoked or k.revoked_at is None]

    def revoke(self, id_or_name: str) -> ApiKey | None:
        """Revoke the key with this id or name; None when there is no such active key."""
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
                [time.time(), id_or_name, id_or_name],
            )
            changed = cur.rowcount
        if not changed:
            return None
        return next(k for k in self.list() if id_or_name in (k.id, k.name) and k.revoked_at is not None)

    def active_by_hash(self) -> dict[str, ApiKey]:
        rows = self.db.query(
            "SELECT key_hash, id, name, scopes, rate, created_at FROM api_keys WHERE revoked_at IS NULL"
        )
        return {
            r[0]: ApiKey(r[1], r[2], frozenset(r[3].split(",")), Rate.parse(r[4]) if r[4] else None, r[5]) for r in rows
        }


class KeyCache:
    """The active keys by hash, re-read from the database at most every ``refresh_s`` (a key revoked by
    ``hazardscan keys revoke`` in another process stops working within that time)."""

    def __init__(self, store: KeyStore, refresh_s: float = 5.0) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._keys: dict[str, ApiKey] = {}
        self._loaded = -math.inf
        self._lock = threading.Lock()

    def lookup(self, key: str) -> ApiKey | None:
        """The active key for this text; blocking (reads the database when stale): call from a thread."""
        with self._lock:
            if time.monotonic() - self._loaded > self.refresh_s:
                self._keys = self.store.active_by_hash()
                self._loaded = time.monotonic()
            return self._keys.get(hash_key(key))

    @property
    def fresh(self) -> bool:
        return time.monotonic() - self._loaded <= self.refresh_s


class RateLimiter:
    """A token bucket per key: ``count`` requests, refilled evenly over ``per_s``. Event-loop only."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)

    def take(self, key: ApiKey, now: float | None = None) -> float:
        """0 when the request may go; else the seconds until it could."""
        if key.rate is None:
            return 0.0
        now = time.monotonic() if now is None else now
        capacity, per_token = float(key.rate.count), key.rate.per_s / key.rate.count
        tokens, at = self._buckets.get(key.id, (capacity, now))
        tokens = min(capacity, tokens + (now - at) / per_token)
        if tokens >= 1.0:
            self._buckets[key.id] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key.id] = (tokens, now)
        return (1.0 - tokens) * per_token


def open_key_store(url: str) -> KeyStore:
    try:
        return KeyStore(Database(url))
    except StorageError:
        raise
    except Exception as exc:  # a driver error while migrating
        raise StorageError(f"cannot prepare the api_keys table: {exc}") from exc
