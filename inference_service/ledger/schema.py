"""Schema of the ``ledger`` component: hazard ledger items (隐患台账) and their history."""

from inference_service.storage import Migration

MIGRATIONS = (
    Migration(
        1,
        "ledger items and history",
        (
            """CREATE TABLE ledger_items (
                id TEXT PRIMARY KEY,
                org_id TEXT NOT NULL,
                finding_id TEXT NOT NULL UNIQUE,
                inspection_id TEXT NOT NULL,
                photo_id TEXT NOT NULL,
                inspector_id TEXT NOT NULL,
                unit_name TEXT NOT NULL,
                unit_address TEXT NOT NULL,
                hazard_id TEXT NOT NULL,
                severity TEXT NOT NULL,
                status TEXT NOT NULL,
                deadline DOUBLE PRECISION NOT NULL,
                responsible_person TEXT NOT NULL DEFAULT '',
                assigned_to TEXT,
                ai_recheck TEXT,
                rectification_photo_id TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                closed_at DOUBLE PRECISION,
                version INTEGER NOT NULL)""",
            "CREATE INDEX ledger_org ON ledger_items (org_id, created_at)",
            "CREATE INDEX ledger_status ON ledger_items (org_id, status, deadline)",
            """CREATE TABLE ledger_history (
                id {serial},
                item_id TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                by_user TEXT NOT NULL,
                from_status TEXT,
                to_status TEXT NOT NULL,
                note TEXT NOT NULL)""",
            "CREATE INDEX ledger_history_item ON ledger_history (item_id, id)",
        ),
    ),
    Migration(
        2,
        "the inspection's scene (unit type) on each item: the statistics read one scene's items by an index",
        (
            "ALTER TABLE ledger_items ADD COLUMN scene TEXT",
            "UPDATE ledger_items SET scene = "
            "(SELECT i.scene FROM inspections i WHERE i.id = ledger_items.inspection_id)",
            "CREATE INDEX ledger_scene_created ON ledger_items (org_id, scene, created_at, status, deadline, "
            "closed_at, rectification_photo_id, ai_recheck)",
            "CREATE INDEX ledger_scene_close_time ON ledger_items (org_id, scene, status, (closed_at - created_at), "
            "created_at)",
        ),
    ),
)
