"""The hazard ledger (隐患台账): lifecycle 待整改 → 整改中 → 待复查 → 已销号, deadlines, AI re-check, export."""

from inference_service.ledger.rules import (
    DEFAULT_DEADLINE_DAYS,
    SEVERITY_ZH,
    STATUS_ZH,
    DeadlinePolicy,
    is_overdue,
    iso,
    recheck,
)
from inference_service.ledger.store import Ledger, LedgerConflict, LedgerFilter, LedgerForbidden, LedgerListener

__all__ = [
    "DEFAULT_DEADLINE_DAYS",
    "SEVERITY_ZH",
    "STATUS_ZH",
    "DeadlinePolicy",
    "Ledger",
    "LedgerConflict",
    "LedgerFilter",
    "LedgerForbidden",
    "LedgerListener",
    "is_overdue",
    "iso",
    "recheck",
]
