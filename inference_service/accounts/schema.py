"""Schema of the ``accounts`` component."""

from inference_service.storage import Migration

MIGRATIONS = (
    Migration(
        1,
        "orgs, users, sessions, login failures",
        (
            """CREATE TABLE orgs (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE users (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL REFERENCES orgs (id),
                username TEXT NOT NULL UNIQUE,
                display_name TEXT NOT NULL,
                role TEXT NOT NULL CHECK (role IN ('inspector', 'supervisor', 'admin')),
                password_hash TEXT NOT NULL,
                active INTEGER NOT NULL DEFAULT 1,
                created_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX users_org ON users (org_id)",
            """CREATE TABLE sessions (
                token_sha256 TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users (id),
                csrf_token TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX sessions_user ON sessions (user_id)",
            """CREATE TABLE login_failures (
                id {serial},
                key TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX login_failures_key ON login_failures (key, at)",
        ),
    ),
)
