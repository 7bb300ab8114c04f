"""What the inspector app holds between requests: one database, the accounts, records and ledger on it.

Opened once in the service's lifespan (:func:`open_context`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from inference_service.accounts import Accounts
from inference_service.api.settings import Settings
from inference_service.app import stats_rollup
from inference_service.ledger import DeadlinePolicy, Ledger
from inference_service.records import BlobStore, Records
from inference_service.reports import Reports
from inference_service.storage import Database

logger = logging.getLogger(__name__)


def deadline_policy(settings: Settings) -> DeadlinePolicy:
    days = {
        "critical": settings.deadline_days_critical,
        "high": settings.deadline_days_high,
        "medium": settings.deadline_days_medium,
        "low": settings.deadline_days_low,
    }
    return DeadlinePolicy(days, settings.deadline_utc_offset_hours)


@dataclass
class AppContext:
    settings: Settings
    db: Database
    accounts: Accounts
    records: Records
    ledger: Ledger
    reports: Reports

    def close(self) -> None:
        self.db.close()


def open_context(settings: Settings) -> AppContext:
    """Make the data folder, open the database and bring every component's schema (and the statistics
    rollups) up to date."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url())
    blobs = BlobStore(settings.data_dir / "photos", settings.data_disk().reserve)
    ctx = AppContext(settings, db, Accounts(db), Records(db, blobs), Ledger(db, deadline_policy(settings)),
                     Reports(db, blobs))  # fmt: skip
    # the statistics rollups: built here once (a migration, or another local offset), then kept by every write
    stats_rollup.ensure(db, settings.deadline_utc_offset_hours)
    ctx.records.listener = ctx.ledger.listener = stats_rollup.RollupWriter()
    logger.info("inspector app storage: %s (%s), photos in %s", db.dialect, _redacted(db.url), blobs.root)
    return ctx


def _redacted(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    return f"{head.split('://')[0]}://…@{tail}" if sep else url
