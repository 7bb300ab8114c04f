"""Schema of the ``records`` component: inspections, photos, findings, decisions (append-only)."""

from inference_service.storage import Migration

MIGRATIONS = (
    Migration(
        1,
        "inspections, photos, findings, decisions",
        (
            """CREATE TABLE inspections (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                inspector_id TEXT NOT NULL,
                unit_name TEXT NOT NULL,
                unit_address TEXT NOT NULL,
                unit_credit_code TEXT,
                scene TEXT NOT NULL,
                lat DOUBLE PRECISION,
                lon DOUBLE PRECISION,
                accuracy_m DOUBLE PRECISION,
                client_id TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (org_id, client_id))""",
            "CREATE INDEX inspections_org ON inspections (org_id, created_at)",
            """CREATE TABLE photos (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                inspection_id TEXT NOT NULL REFERENCES inspections (id),
                kind TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                content_type TEXT NOT NULL,
                size_bytes INTEGER NOT NULL,
                width INTEGER NOT NULL,
                height INTEGER NOT NULL,
                taken_at TEXT,
                model_id TEXT NOT NULL,
                model_version TEXT NOT NULL,
                warnings TEXT NOT NULL,
                detections TEXT NOT NULL,
                uploaded_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                UNIQUE (org_id, idempotency_key))""",
            "CREATE INDEX photos_inspection ON photos (inspection_id, created_at)",
            """CREATE TABLE findings (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                photo_id TEXT NOT NULL REFERENCES photos (id),
                inspection_id TEXT NOT NULL,
                hazard_id TEXT NOT NULL,
                detector_class TEXT,
                confidence DOUBLE PRECISION,
                x1 DOUBLE PRECISION NOT NULL,
                y1 DOUBLE PRECISION NOT NULL,
                x2 DOUBLE PRECISION NOT NULL,
                y2 DOUBLE PRECISION NOT NULL,
                source TEXT NOT NULL,
                status TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                ledger_item_id TEXT,
                seq INTEGER NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX findings_photo ON findings (photo_id, seq)",
            "CREATE INDEX findings_org ON findings (org_id, created_at)",
            """CREATE TABLE decisions (
                id {serial},
                org_id TEXT NOT NULL,
                finding_id TEXT NOT NULL REFERENCES findings (id),
                user_id TEXT NOT NULL,
                decision TEXT NOT NULL,
                box TEXT,
                note TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX decisions_finding ON decisions (finding_id, id)",
        ),
    ),
    Migration(
        2,
        "photo scene (taxonomy scene id the rules ran with), finding suspected (a suspicion, never an alarm)",
        (
            "ALTER TABLE photos ADD COLUMN scene TEXT",
            "ALTER TABLE findings ADD COLUMN suspected INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        3,
        "model versions with the classes they detect (the statistics tell misses from classes a version lacks)",
        (
            """CREATE TABLE model_versions (
                model_id TEXT NOT NULL,
                model_version TEXT NOT NULL,
                classes TEXT NOT NULL,
                first_seen DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (model_id, model_version))""",
        ),
    ),
    Migration(
        4,
        "finding unconfirmed (found on a photo with a warning: doubtful until the inspector confirms it)",
        ("ALTER TABLE findings ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        5,
        "photo taken_at_source (exif | client) and client_taken_at (the upload form's taken_at, epoch seconds)",
        (
            "ALTER TABLE photos ADD COLUMN taken_at_source TEXT",
            "ALTER TABLE photos ADD COLUMN client_taken_at DOUBLE PRECISION",
            "UPDATE photos SET taken_at_source = 'exif' WHERE taken_at IS NOT NULL",
        ),
    ),
    Migration(
        6,
        "inspection finished_at / finished_by (完成检查: the inspector declares the on-site check over)",
        (
            "ALTER TABLE inspections ADD COLUMN finished_at DOUBLE PRECISION",
            "ALTER TABLE inspections ADD COLUMN finished_by TEXT",
        ),
    ),
    Migration(
        7,
        "photo voided_at / voided_by / void_reason (a photo taken by mistake is voided, never deleted: the audit keeps "
        "it, the inspection, its documents and the statistics leave it out; its findings become 'voided')",
        (
            "ALTER TABLE photos ADD COLUMN voided_at DOUBLE PRECISION",
            "ALTER TABLE photos ADD COLUMN voided_by TEXT",
            "ALTER TABLE photos ADD COLUMN void_reason TEXT",
        ),
    ),
    Migration(
        8,
        "findings by inspection: the list's hazard and pending counts and 完成检查's pending check looked at every "
        "finding of the database for each inspection (benchmarks/lists_bench.py)",
        ("CREATE INDEX findings_inspection ON findings (inspection_id, status)",),
    ),
)
