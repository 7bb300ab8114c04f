"""Schema of the ``reports`` component: report links and the reports sent through them."""

from inference_service.storage import Migration

MIGRATIONS = (
    Migration(
        1,
        "report links and public hazard reports",
        (
            """CREATE TABLE report_links (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                token TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                created_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)""",
            "CREATE INDEX report_links_org ON report_links (org_id, created_at)",
            """CREATE TABLE reports (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                link_id TEXT NOT NULL REFERENCES report_links (id),
                receipt TEXT NOT NULL UNIQUE,
                idempotency_key TEXT NOT NULL,
                sender TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                content_type TEXT NOT NULL,
                size_bytes INTEGER NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                place TEXT NOT NULL,
                description TEXT NOT NULL,
                contact TEXT,
                hazards TEXT NOT NULL,
                warnings TEXT NOT NULL,
                model_id TEXT NOT NULL,
                model_version TEXT NOT NULL,
                status TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                decided_by TEXT,
                decided_at DOUBLE PRECISION,
                inspection_id TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (link_id, idempotency_key))""",
            "CREATE INDEX reports_org ON reports (org_id, status, created_at)",
            "CREATE INDEX reports_sender ON reports (link_id, sender, created_at)",
        ),
    ),
)
