"""Request and response models of /app/api (see docs/app-api.md). Separate from the storage rows."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, field_validator

Role = Literal["inspector", "supervisor", "admin"]
Severity = Literal["critical", "high", "medium", "low"]
LedgerStatus = Literal["open", "in_progress", "pending_review", "closed"]
InspectionStatus = Literal["in_progress", "finished"]  # 进行中 | 已完成 (完成检查)
BoxList = list[float]
# an optional note: left out, empty or null all mean none
Note = Annotated[str, BeforeValidator(lambda v: "" if v is None else v), Field(max_length=2000)]


def _check_box(box: list[float] | None) -> list[float] | None:
    if box is None:
        return None
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]) or min(box) < 0:
        raise ValueError("box must be [x1, y1, x2, y2] with x1 < x2, y1 < y2, all >= 0 (pixels)")
    return box


class Org(BaseModel):
    id: str
    name: str


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    role: Role
    org: Org
    active: bool = True


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    role: Role
    display_name: str | None = Field(default=None, max_length=100)


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class UserChange(BaseModel):
    """What an admin changes of a user of the organisation; what is left out stays."""

    active: bool | None = Field(default=None, description="false: the user cannot log in, their sessions end")
    password: str | None = Field(default=None, min_length=8, max_length=1024, description="a new password; "
                                 "the user's sessions end")  # fmt: skip


class UserList(BaseModel):
    items: list[UserOut]


class SceneOut(BaseModel):
    id: str
    name_zh: str
    name_en: str
    photo_scene: str | None = None  # inspection scenes: the taxonomy scene their photos are judged in by default


class HazardOut(BaseModel):
    id: str
    name_zh: str
    name_en: str
    domain: str
    severity: Severity
    legal_basis: str
    advice_zh: str
    advice_en: str = ""
    detectable: bool


class SeverityOut(BaseModel):
    id: Severity
    name_zh: str
    deadline_days: int


class TaxonomyOut(BaseModel):
    version: str
    scenes: list[SceneOut]
    photo_scenes: list[SceneOut]
    hazards: list[HazardOut]
    severities: list[SeverityOut]


class Unit(BaseModel):
    """The inspected unit; each text trimmed before its length is checked (a name of spaces is no name)."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    credit_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=18)] | None = None


class Location(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)


class InspectionIn(BaseModel):
    unit: Unit
    scene: str = Field(min_length=1, max_length=100)
    location: Location | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=100)


class Inspector(BaseModel):
    id: str
    display_name: str


class ModelRef(BaseModel):
    id: str
    version: str


class WarningOut(BaseModel):
    code: str
    message_zh: str
    message_en: str


class FindingOut(BaseModel):
    id: str
    photo_id: str
    hazard_id: str
    name_zh: str
    name_en: str
    severity: str
    domain: str
    legal_basis: str
    advice_zh: str
    advice_en: str = ""
    detector_class: str | None
    confidence: float | None
    box: BoxList
    source: Literal["model", "inspector"]
    status: Literal["pending", "confirmed", "rejected", "voided"]
    suspected: bool = Field(
        description="疑似: a rule that only suspects the hazard raised it, or the model is under 0.5 sure"
    )
    unconfirmed: bool = Field(
        False, description="found on a photo with a warning (washed out, too dark, featureless, damaged data)"
    )
    awaiting_confirmation: bool = Field(
        False,
        description="pending and doubtful (suspected or unconfirmed): only the inspector's confirmation makes it a "
        "hazard, and only then does it enter the ledger",
    )
    note: str
    ledger_item_id: str | None


class PhotoOut(BaseModel):
    id: str
    inspection_id: str
    sha256: str
    width: int
    height: int
    scene: str | None
    taken_at: str | None
    # the photo's EXIF time, the upload form's, or the CCTV frame's (a photo made from a camera event)
    taken_at_source: Literal["exif", "client", "camera", "report"] | None = None
    original_url: str
    evidence_url: str
    model: ModelRef
    warnings: list[WarningOut]
    findings: list[FindingOut]
    voided: bool = False
    void_reason: str | None = None


class VoidIn(BaseModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = Field(
        description="why the photo is voided (kept in the audit), e.g. 误拍 / 重复 / 模糊"
    )


class InspectionOut(BaseModel):
    id: str
    unit: Unit
    scene: str
    inspector: Inspector
    created_at: str
    location: Location | None
    photo_count: int
    hazard_count: int
    pending_count: int = Field(default=0, description="hazards found by the AI that await the inspector's decision")
    status: InspectionStatus = "in_progress"
    finished_at: str | None = None
    camera_event_id: str | None = Field(default=None, description="the CCTV event it was made from, if any")
    report_id: str | None = Field(default=None, description="the public report it was made from (查证属实), if any")
    photos: list[PhotoOut] | None = None


class FinishIn(BaseModel):
    force: bool = Field(default=False, description="finish although findings still await a decision")


class InspectionList(BaseModel):
    items: list[InspectionOut]
    total: int


class DecisionIn(BaseModel):
    decision: Literal["confirm", "reject"]
    box: BoxList | None = None
    note: str | None = Field(default=None, max_length=2000)

    _box = field_validator("box")(_check_box)


class FindingIn(BaseModel):
    hazard_id: str
    box: BoxList
    note: Note = ""

    _box = field_validator("box")(_check_box)


class HistoryOut(BaseModel):
    at: str
    by: str
    by_id: str
    from_: LedgerStatus | None = Field(alias="from")
    to: LedgerStatus
    note: str

    model_config = {"populate_by_name": True}


class LedgerUnit(BaseModel):
    name: str
    address: str


class LedgerItemOut(BaseModel):
    id: str
    finding_id: str
    inspection_id: str
    photo_id: str
    unit: LedgerUnit
    hazard_id: str
    name_zh: str
    name_en: str
    severity: str
    status: LedgerStatus
    status_zh: str
    deadline: str
    overdue: bool
    responsible_person: str
    assigned_to: str | None
    ai_recheck: Literal["passed", "failed"] | None
    rectification_photo_url: str | None
    rectification_evidence_url: str | None = Field(default=None, description="the rectification photo, downscaled "
                                                   "(?max_side=)")  # fmt: skip
    evidence_url: str = Field(description="the photo that found it, with only this hazard's box drawn (?max_side=)")
    box: list[float] | None = Field(default=None, description="where the hazard is on that photo, pixels")
    note: str = Field(default="", description="the inspector's note on the hazard (e.g. where it is)")
    created_at: str
    closed_at: str | None
    history: list[HistoryOut]
    version: int


class LedgerList(BaseModel):
    items: list[LedgerItemOut]
    total: int


class LedgerSummary(BaseModel):
    open: int = Field(description="待整改")
    in_progress: int = Field(description="整改中")
    pending_review: int = Field(description="待复查: a rectification photo waits for a supervisor")
    closed: int = Field(description="已销号")
    overdue: int = Field(description="not closed and past the deadline (逾期未改)")


class TransitionIn(BaseModel):
    to: LedgerStatus
    version: int
    note: Note = ""
    responsible_person: str | None = Field(default=None, max_length=100)
    override: bool = False


class AssignIn(BaseModel):
    version: int
    assigned_to: str | None = Field(default=None, description="a user id of your organisation")
    responsible_person: str | None = Field(default=None, max_length=100)
    deadline: str | None = Field(default=None, description="ISO date or date-time")
    note: Note = ""


class HazardCount(BaseModel):
    hazard_id: str
    name_zh: str
    name_en: str
    severity: str
    domain: str
    count: int


class DomainCount(BaseModel):
    domain: str
    count: int


class SceneCount(BaseModel):
    scene: str
    name_zh: str
    name_en: str
    count: int


class MonthCount(BaseModel):
    month: str
    count: int


class CriticalRate(BaseModel):
    scene: str
    name_zh: str
    inspections: int
    critical: int
    per_1000: float | None


class FieldByVersion(BaseModel):
    model_id: str
    model_version: str
    detector_class: str | None
    name_zh: str
    model_has_class: bool
    confirmed: int
    rejected: int
    pending: int
    misses: int
    added_new: int
    precision: float | None


class FieldByScene(FieldByVersion):
    scene: str  # the inspection's scene (unit type)


class TeachNext(BaseModel):
    detector_class: str
    name_zh: str
    added: int
    model_versions: list[str]


class SeverityCount(BaseModel):
    severity: str
    name_zh: str
    count: int


class UnitCount(BaseModel):
    unit: str
    count: int


class InspectorCount(BaseModel):
    inspector_id: str
    display_name: str
    count: int


class WeekCount(BaseModel):
    week: str
    count: int


class Rectification(BaseModel):
    total: int
    open: int
    overdue: int
    closed: int
    closed_in_time: int
    rate: float | None
    median_days_to_close: float | None
    submitted: int
    ai_recheck_failed: int
    sent_back: int
    reopened: int
    reopen_rate: float | None


class ModelField(BaseModel):
    detector_class: str | None
    hazard_id: str
    name_zh: str
    confirmed: int
    rejected: int
    pending: int
    added: int
    precision: float | None


class StatsOut(BaseModel):
    by_hazard: list[HazardCount]
    by_severity: list[SeverityCount]
    by_domain: list[DomainCount]
    by_unit: list[UnitCount]
    by_inspector: list[InspectorCount]
    by_scene: list[SceneCount]
    by_week: list[WeekCount]
    by_month: list[MonthCount]
    rectification: Rectification
    critical_per_1000: list[CriticalRate]
    model_field: list[ModelField]
    field_by_version: list[FieldByVersion]
    field_by_scene: list[FieldByScene]
    teach_next: list[TeachNext]
    reports: dict[str, int] = Field(
        default_factory=dict,
        description="public reports (群众举报) sent in the period, by status now: new, verified, rejected",
    )


DismissReason = Literal["false_alarm", "duplicate", "handled", "other"]


class DismissIn(BaseModel):
    """Why an event needs no inspection: 误报 false_alarm, 重复 duplicate (of another event), 已现场处置 handled
    (dealt with on the spot), 其他 other (then a note says what)."""

    reason: DismissReason
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""


class CameraEventOut(BaseModel):
    """A CCTV event of one of the organisation's cameras (``site.org`` in the camera file)."""

    id: str
    camera_id: str
    hazard_id: str
    name_zh: str
    name_en: str
    severity: str
    status: Literal["open", "closed"]
    started_at: str
    last_seen: str
    ended_at: str | None
    peak_confidence: float
    frames: int
    zone: str | None
    suspected: bool
    unconfirmed: bool
    alarm: bool
    unit: str
    address: str
    scene: str | None = Field(description="the camera's taxonomy scene")
    evidence_url: str
    has_frame: bool = Field(description="its frame was kept, so it can become an inspection")
    inspection_id: str | None = Field(description="the inspection made from it, once made")
    review: Literal["inspection", "dismissed"] | None = Field(
        default=None, description="what the organisation made of it: an inspection, dismissed, or nothing yet"
    )
    review_reason: DismissReason | None = None
    review_note: str = ""
    reviewed_by: str | None = Field(default=None, description="who made the inspection or dismissed it")
    reviewed_at: str | None = None


class CameraEventList(BaseModel):
    items: list[CameraEventOut]
    total: int
    cameras: bool = Field(
        description="whether any camera of the organisation has raised an event (false too when the service "
        "cannot read its events)"
    )


class EventInspectionIn(BaseModel):
    scene: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the inspection's scene (GET /app/api/taxonomy); default: the one the camera's scene implies",
    )


class CameraCount(BaseModel):
    """One camera's events of one hazard, by what the organisation made of them."""

    camera_id: str
    hazard_id: str
    name_zh: str
    name_en: str
    events: int
    waiting: int = Field(description="nobody has looked at them yet (待处理)")
    inspections: int = Field(description="made inspections (转为检查)")
    false_alarm: int = Field(description="dismissed as 误报")
    duplicate: int
    handled: int = Field(description="dismissed as 已现场处置: real, dealt with on the spot")
    other: int
    false_alarm_share: float | None = Field(
        description="误报 among those looked at (events − waiting); null while none was looked at"
    )


# ---- public hazard reports (随手拍 / 举报) ----------------------------------------------------------------------

ReportStatus = Literal["new", "verified", "rejected"]  # 待核查 | 查证属实 | 不属实


class ReportLinkIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="where the link is published, e.g. 东风三路工地公示牌"
    )


class ReportLinkOut(BaseModel):
    id: str
    name: str
    path: str = Field(description="the reporting page's address on this server: /app/report/#<token>")
    created_at: str
    revoked_at: str | None
    reports: int
    new_reports: int


class ReportLinkList(BaseModel):
    items: list[ReportLinkOut]


class ReportPageOut(BaseModel):
    """What the public reporting page shows before anything is sent."""

    org_name: str
    link_name: str
    max_upload_bytes: int


class ReportHazard(BaseModel):
    hazard_id: str
    name_zh: str
    name_en: str
    severity: str
    confidence: float | None
    box: BoxList | None
    unconfirmed: bool = False


class ReportReceipt(BaseModel):
    """The sender's answer: the receipt to follow the report with, and what the AI saw (a first guess)."""

    receipt: str
    status: ReportStatus
    created_at: str
    hazards: list[ReportHazard]
    warnings: list[str] = Field(description="photo warnings, in Chinese")


class ReportStatusOut(BaseModel):
    """What a sender may see of their report: its state, never who handled it."""

    receipt: str
    org_name: str
    place: str
    status: ReportStatus
    created_at: str
    decided_at: str | None
    note: str


class ReportOut(BaseModel):
    id: str
    link_name: str
    place: str
    description: str
    contact: str | None
    status: ReportStatus
    hazards: list[ReportHazard]
    warnings: list[str]
    width: int
    height: int
    photo_url: str
    created_at: str
    decided_at: str | None
    decided_by: str | None
    note: str
    inspection_id: str | None


class ReportList(BaseModel):
    items: list[ReportOut]
    total: int
    counts: dict[str, int]


class ReportVerifyIn(BaseModel):
    scene: str = Field(min_length=1, max_length=100, description="the inspection's scene (GET /app/api/taxonomy)")
    unit_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        default=None, description="the unit found at the place; default: the place the sender gave"
    )
    note: Note = ""


class ReportRejectIn(BaseModel):
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="why it is not a hazard (the sender sees it)"
    )
