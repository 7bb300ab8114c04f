"""Pure ledger rules: deadlines by severity, allowed transitions, the AI re-check of a rectification photo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

STATUSES = ("open", "in_progress", "pending_review", "closed")
STATUS_ZH = {"open": "待整改", "in_progress": "整改中", "pending_review": "待复查", "closed": "已销号"}
SEVERITY_ZH = {"critical": "重大", "high": "较大", "medium": "一般", "low": "较小"}
DEFAULT_DEADLINE_DAYS = {"critical": 0, "high": 3, "medium": 7, "low": 15}

# (from, to) -> the least role allowed to make it
TRANSITIONS: dict[tuple[str, str], str] = {
    ("open", "in_progress"): "inspector",
    ("in_progress", "pending_review"): "inspector",
    ("pending_review", "closed"): "supervisor",
    ("pending_review", "in_progress"): "supervisor",
}


@dataclass(frozen=True)
class DeadlinePolicy:
    days: Mapping[str, int]  # severity -> days; 0 = the same day
    utc_offset_hours: float = 8.0

    def deadline(self, severity: str, created_at: float) -> float:
        """End of the local day ``days`` after ``created_at`` (epoch seconds)."""
        tz = timezone(timedelta(hours=self.utc_offset_hours))
        local = datetime.fromtimestamp(created_at, tz)
        day_end = datetime(local.year, local.month, local.day, 23, 59, 59, tzinfo=tz)
        return (day_end + timedelta(days=int(self.days.get(severity, 7)))).timestamp()


def is_overdue(status: str, deadline: float, closed_at: float | None, now: float) -> bool:
    if status == "closed":
        return closed_at is not None and closed_at > deadline
    return now > deadline


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def recheck(
    hazard_id: str,
    detector_class: str | None,
    detectable: bool,
    model_classes: Sequence[str],
    found: Sequence[tuple[str, str | None]],
) -> tuple[str | None, str]:
    """AI re-check of a rectification photo: ``(result, reason)``.

    ``found`` holds ``(hazard_id, detector_class)`` of what the model sees in the new photo (hazards, and
    plain detections with hazard id ``""``). The same hazard, or a detection of the hazard's detector class,
    anywhere in the photo (overlapping the old box or not) fails the re-check. When the model can raise
    neither, it cannot judge: ``None``."""
    known_class = detector_class is not None and detector_class in model_classes
    if not detectable and not known_class:
        cannot = "the model cannot detect this hazard; a person must judge"
        return None, both("模型无法识别此类隐患，须人工判断", cannot)
    for hid, cls in found:
        if hid == hazard_id or (detector_class is not None and cls == detector_class):
            what = hid or cls
            seen = f"the model still sees {what} in the rectification photo"
            return "failed", both(f"整改照片中仍识别到该隐患（{what}）", seen)
    if detector_class is None:
        return "passed", both("整改照片中未识别到该隐患", "the model raises no such hazard in the rectification photo")
    return "passed", both("整改照片中未识别到该隐患", f"no {detector_class} seen in the rectification photo")


def both(zh: str, en: str) -> str:
    """A note the system writes into a ledger item's history, read in either language: 中文 (English)."""
    return f"{zh} ({en})"
