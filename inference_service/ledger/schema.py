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
    Migration(
        3,
        "close_s (seconds from made to closed) and sent_back (待复查 -> 整改中 once) on each item: the statistics read "
        "their figures in one covering scan and the median time to close from a plain index",
        (
            "ALTER TABLE ledger_items ADD COLUMN close_s DOUBLE PRECISION",
            "ALTER TABLE ledger_items ADD COLUMN sent_back INTEGER NOT NULL DEFAULT 0",
            "UPDATE ledger_items SET close_s = closed_at - created_at WHERE closed_at IS NOT NULL",
            "UPDATE ledger_items SET sent_back = 1 WHERE id IN (SELECT item_id FROM ledger_history "
            "WHERE from_status = 'pending_review' AND to_status = 'in_progress')",
            "DROP INDEX ledger_scene_created",
            "DROP INDEX ledger_scene_close_time",
            "CREATE INDEX ledger_figures ON ledger_items (org_id, created_at, status, deadline, closed_at, "
            "rectification_photo_id, ai_recheck, sent_back)",
            "CREATE INDEX ledger_scene_figures ON ledger_items (org_id, scene, created_at, status, deadline, "
            "closed_at, rectification_photo_id, ai_recheck, sent_back)",
            "CREATE INDEX ledger_close_s ON ledger_items (org_id, status, close_s, created_at)",
            "CREATE INDEX ledger_scene_close_s ON ledger_items (org_id, scene, status, close_s, created_at)",
        ),
    ),
    Migration(
        4,
        "indexes for the overdue count (not closed, deadline passed), and the planner's statistics of every ledger "
        "index (a new index without them can win over the one that needs no sort)",
        (
            "CREATE INDEX ledger_overdue ON ledger_items (org_id, status, deadline, created_at)",
            "CREATE INDEX ledger_scene_overdue ON ledger_items (org_id, scene, status, deadline, created_at)",
            "ANALYZE ledger_items",
        ),
    ),
    Migration(
        5,
        "the ledger list in its order (deadline, created_at, id) without sorting every item of the organisation "
        "for each page of 20; with the unit's name, so that a unit search that matches few items reads the index "
        "alone instead of every item in deadline order (benchmarks/lists_bench.py)",
        (
            "CREATE INDEX ledger_deadline ON ledger_items (org_id, deadline, created_at, id, unit_name)",
            "ANALYZE ledger_items",
        ),
    ),
)
