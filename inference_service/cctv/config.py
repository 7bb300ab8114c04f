"""Camera configuration: a YAML file that names each camera, where its frames come from and which
hazards count where and when.

Example (``cams.yaml``)::

    defaults:
      events: {persistence_s: 2, close_after_s: 5, cooldown_s: 60}
    cameras:
      - id: gate-1
        url: rtsp://10.0.0.5:554/stream1      # rtsp(s)://, http(s)://, a video file or an image folder
        sample_fps: 2                         # frames looked at per second; every frame when unset
        hazards: [FIRE-001, FIRE-002]         # taxonomy hazard ids of interest; all when unset
        scene: corridor                       # the kind of place (taxonomy scenes); its scene rules apply
        site:                                 # optional: its events shown in the inspector app
          org: 示例安监站                      #   to the users of this organisation,
          unit: 阳泉某化工厂                   #   to be booked to this inspected unit (被检查单位)
          address: 桃北路 1 号
        zones:                                # bottom-centre of a box decides its zone
          - {name: yard, mode: include, polygon: [[0, 0], [1920, 0], [1920, 1080], [0, 1080]]}
          - {name: stove, mode: exclude, units: relative, polygon: [[0.1, 0.1], [0.3, 0.1], [0.3, 0.3]]}
        schedule:                             # armed only inside these windows; always when unset
          timezone: Asia/Shanghai
          windows: [{days: [mon, tue, wed, thu, fri], start: "18:00", end: "08:00"}]

Relative file and folder paths are resolved against the YAML file's folder. Everything here is pure
data plus small pure predicates (``Schedule.armed``); nothing opens a stream.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt"})
CAMERA_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class CameraConfigError(ValueError):
    """The camera file is unreadable or invalid; the message names the camera and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimeWindow(_Strict):
    days: tuple[Weekday, ...] = WEEKDAYS
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(0, 0)  # end <= start runs past midnight; start == end is the whole day

    def contains(self, local: dt.datetime) -> bool:
        day = WEEKDAYS[local.weekday()]
        previous = WEEKDAYS[(local.weekday() - 1) % 7]
        t = local.time().replace(tzinfo=None)
        if self.start == self.end:
            return day in self.days
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        return (day in self.days and t >= self.start) or (previous in self.days and t < self.end)


class Schedule(_Strict):
    timezone: str = "UTC"
    windows: tuple[TimeWindow, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {v!r}; use an IANA name such as 'Asia/Shanghai'") from exc
        return v

    def armed(self, ts: float) -> bool:
        """Whether the camera is armed at epoch seconds ``ts``."""
        local = dt.datetime.fromtimestamp(ts, ZoneInfo(self.timezone))
        return any(w.contains(local) for w in self.windows)


class Zone(_Strict):
    name: str = Field(min_length=1)
    mode: Literal["include", "exclude"] = "include"
    units: Literal["px", "relative"] = "px"
    polygon: tuple[tuple[float, float], ...] = Field(min_length=3)

    def points(self, width: int, height: int) -> tuple[tuple[float, float], ...]:
        """The polygon in frame pixels."""
        if self.units == "px":
            return self.polygon
        return tuple((x * width, y * height) for x, y in self.polygon)


class EventPolicy(_Strict):
    persistence_s: float = Field(
        default=2.0, ge=0, description="a hazard must be tracked this long before an event opens"
    )
    close_after_s: float = Field(
        default=5.0, gt=0, description="the event closes once the hazard is absent longer than this"
    )
    cooldown_s: float = Field(
        default=30.0, ge=0, description="no new event for the same camera+hazard this soon after one"
    )
    track_iou: float = Field(
        default=0.2, ge=0, le=1, description="IoU that continues a track from one frame to the next"
    )
    min_confidence: float | None = Field(default=None, ge=0, le=1, description="on top of the model card's thresholds")


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Site(_Strict):
    """Where a camera hangs, for the inspector app: whose users see its events and which unit they concern.
    Lengths as the app's inspections allow them."""

    org: Annotated[Text, StringConstraints(max_length=200)] = Field(
        description="the app organisation whose users see the camera's events (its name as in the app)"
    )
    unit: Annotated[Text, StringConstraints(max_length=200)] = Field(
        description="the inspected unit (被检查单位) the camera's hazards are booked to"
    )
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""


class Camera(_Strict):
    id: str = Field(pattern=CAMERA_ID_PATTERN)
    url: str = Field(min_length=1)
    sample_fps: float | None = Field(default=None, gt=0)
    live: bool | None = Field(default=None, description="drop frames when behind; default: true for stream URLs")
    start_time: dt.datetime | None = Field(default=None, description="wall time of a recording's first frame")
    hazards: tuple[str, ...] | None = None
    scene: str | None = Field(default=None, description="the kind of place it watches (a taxonomy scene id)")
    site: Site | None = Field(default=None, description="shows its events in the inspector app; none: API only")
    zones: tuple[Zone, ...] = ()
    schedule: Schedule | None = None
    events: EventPolicy | None = None
    ffmpeg_options: dict[str, str] = Field(default_factory=dict, description="FFmpeg demuxer options")
    max_backoff_s: float = Field(default=30.0, gt=0, description="longest wait between reconnect attempts")

    @field_validator("zones")
    @classmethod
    def _unique_zone_names(cls, v: tuple[Zone, ...]) -> tuple[Zone, ...]:
        names = [z.name for z in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"zone names must be unique per camera; repeated: {dup}")
        return v

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme.lower()

    @property
    def is_stream(self) -> bool:
        return self.scheme in STREAM_SCHEMES

    @property
    def is_live(self) -> bool:
        return self.live if self.live is not None else self.is_stream


class Defaults(_Strict):
    events: EventPolicy = Field(default_factory=EventPolicy)


class CameraFile(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    cameras: tuple[Camera, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> CameraFile:
        ids = [c.id for c in self.cameras]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"camera ids must be unique; repeated: {dup}")
        return self

    def policy(self, camera: Camera) -> EventPolicy:
        return camera.events or self.defaults.events

    def check_hazards(self, known: set[str], scenes: set[str] | None = None) -> None:
        """Raise :class:`CameraConfigError` if a camera names a hazard id (or, given ``scenes``, a scene) the
        taxonomy lacks."""
        for cam in self.cameras:
            unknown = sorted(set(cam.hazards or ()) - known)
            if unknown:
                raise CameraConfigError(f"camera {cam.id}: unknown hazards {unknown}; known: {sorted(known)}")
            if scenes is not None and cam.scene is not None and cam.scene not in scenes:
                raise CameraConfigError(f"camera {cam.id}: unknown scene {cam.scene!r}; known: {sorted(scenes)}")


def _describe(exc: ValidationError, data: Any) -> str:
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] == "cameras" and isinstance(loc[1], int):
            try:
                cam = data["cameras"][loc[1]].get("id", f"#{loc[1]}")
            except (KeyError, IndexError, TypeError, AttributeError):
                cam = f"#{loc[1]}"
            where = f"camera {cam}: " + ".".join(map(str, loc[2:]))
        else:
            where = ".".join(map(str, loc)) or "file"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_cameras(data: Any, base_dir: Path | None = None) -> CameraFile:
    """Validate a parsed camera document; file paths are made absolute against ``base_dir``."""
    try:
        parsed = CameraFile.model_validate(data)
    except ValidationError as exc:
        raise CameraConfigError(f"invalid camera config: {_describe(exc, data)}") from exc
    if base_dir is None:
        return parsed
    cameras = []
    for cam in parsed.cameras:
        if not cam.is_stream and not cam.scheme and not Path(cam.url).is_absolute():
            cam = cam.model_copy(update={"url": str((base_dir / cam.url).resolve())})
        cameras.append(cam)
    return parsed.model_copy(update={"cameras": tuple(cameras)})


def load_cameras(path: Path | str) -> CameraFile:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CameraConfigError(f"cannot read camera config {p}: {exc}") from exc
    return parse_cameras(data, p.resolve().parent)
