"""Camera config: parsing, validation messages, schedule windows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from inference_service.cctv import config as config_module
from inference_service.cctv.config import CameraConfigError, load_cameras, parse_cameras


def _docstring_example() -> str:
    doc = config_module.__doc__ or ""
    block = doc.split("Example (``cams.yaml``)::", 1)[1].split("\n\n", 2)[1]
    return "\n".join(line[4:] for line in block.splitlines())


def test_the_documented_example_parses(tmp_path: Path):
    path = tmp_path / "cams.yaml"
    path.write_text(_docstring_example(), encoding="utf-8")
    cfg = load_cameras(path)
    (cam,) = cfg.cameras
    assert cam.id == "gate-1" and cam.is_stream and cam.is_live and cam.sample_fps == 2
    assert cam.hazards == ("FIRE-001", "FIRE-002")
    assert [(z.name, z.mode) for z in cam.zones] == [("yard", "include"), ("stove", "exclude")]
    assert cam.zones[1].points(1000, 500)[1] == pytest.approx((300.0, 50.0))
    assert cfg.policy(cam).persistence_s == 2 and cfg.policy(cam).cooldown_s == 60
    assert cam.schedule is not None and cam.schedule.timezone == "Asia/Shanghai"


def test_relative_paths_resolve_against_the_yaml_folder(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "cams.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "cameras": [
                    {"id": "rec", "url": "videos/a.mp4"},
                    {"id": "abs", "url": "/data/b.mp4"},
                    {"id": "net", "url": "http://127.0.0.1:1/x.mjpg"},
                ]
            }
        ),
        encoding="utf-8",
    )
    urls = {c.id: c.url for c in load_cameras(path).cameras}
    assert urls == {
        "rec": str(tmp_path / "sub" / "videos" / "a.mp4"),
        "abs": "/data/b.mp4",
        "net": "http://127.0.0.1:1/x.mjpg",
    }


@pytest.mark.parametrize(
    ("url", "live", "expected"),
    [
        ("rtsp://10.0.0.1/stream", None, True),  # streams are live by default
        ("https://cam.local/video.mjpg", None, True),
        ("/data/recording.mp4", None, False),  # files are not
        ("https://archive.local/day1.mp4", False, False),  # a recording over HTTP: told so
        ("/data/loop.mp4", True, True),  # a file replayed as if live
    ],
)
def test_live_follows_the_url_scheme_unless_told(url: str, live: bool | None, expected: bool):
    cam = parse_cameras({"cameras": [{"id": "c", "url": url, "live": live}]}).cameras[0]
    assert cam.is_live is expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cameras": []}, "cameras: Tuple should have at least 1 item"),
        ({"cameras": [{"id": "a", "url": "x"}, {"id": "a", "url": "y"}]}, "camera ids must be unique; repeated: ['a']"),
        ({"cameras": [{"id": "bad id!", "url": "x"}]}, "camera bad id!: id: String should match pattern"),
        (
            {"cameras": [{"id": "a", "url": "x", "sample_fps": 0}]},
            "camera a: sample_fps: Input should be greater than 0",
        ),
        (
            {"cameras": [{"id": "a", "url": "x", "zones": [{"name": "z", "polygon": [[0, 0], [1, 1]]}]}]},
            "camera a: zones.0.polygon: Tuple should have at least 3 items",
        ),
        (
            {"cameras": [{"id": "a", "url": "x", "schedule": {"timezone": "Mars/Olympus", "windows": [{}]}}]},
            "unknown timezone 'Mars/Olympus'",
        ),
        (
            {"cameras": [{"id": "a", "url": "x", "schedule": {"windows": [{"start": "25:00"}]}}]},
            "camera a: schedule.windows.0.start",
        ),
        ({"cameras": [{"id": "a", "url": "x", "colour": "red"}]}, "camera a: colour: Extra inputs are not permitted"),
        (
            {"cameras": [{"id": "a", "url": "x", "events": {"close_after_s": 0}}]},
            "camera a: events.close_after_s: Input should be greater than 0",
        ),
    ],
)
def test_invalid_configs_name_the_camera_and_field(data: dict, message: str):
    with pytest.raises(CameraConfigError, match=None) as err:
        parse_cameras(data)
    assert message in str(err.value)


def test_unknown_hazards_are_reported_with_the_known_ones():
    cfg = parse_cameras({"cameras": [{"id": "a", "url": "x", "hazards": ["FIRE-001", "NOPE-9"]}]})
    with pytest.raises(CameraConfigError, match=r"camera a: unknown hazards \['NOPE-9'\]"):
        cfg.check_hazards({"FIRE-001", "FIRE-002"})


def test_unreadable_file_is_a_config_error(tmp_path: Path):
    bad = tmp_path / "cams.yaml"
    bad.write_text("cameras: [unclosed", encoding="utf-8")
    with pytest.raises(CameraConfigError, match="cannot read camera config"):
        load_cameras(bad)


SHANGHAI = ZoneInfo("Asia/Shanghai")


def _ts(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds of 2026-11-{day} hour:minute in Shanghai (2026-11-30 is a Monday)."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp()


@pytest.mark.parametrize(
    ("windows", "when", "armed"),
    [
        # weekday office hours
        ([{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}], _ts(30, 9), True),
        ([{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}], _ts(30, 18), False),
        ([{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}], _ts(29, 9), False),  # Sun
        # overnight: Friday 22:00 → Saturday 06:00 belongs to Friday's window
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], _ts(28, 5, 59), True),  # Saturday early
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], _ts(28, 22, 30), False),  # Saturday night
        ([{"days": ["fri"], "start": "22:00", "end": "06:00"}], _ts(27, 23), True),  # Friday night
        # start == end: the whole day
        ([{"days": ["sun"]}], _ts(29, 23, 59), True),
        ([{"days": ["sun"]}], _ts(30, 0, 1), False),
        # several windows: any one arms
        (
            [{"days": ["mon"], "start": "01:00", "end": "02:00"}, {"days": ["mon"], "start": "12:00", "end": "13:00"}],
            _ts(30, 12, 30),
            True,
        ),
    ],
)
def test_schedule_windows(windows: list[dict], when: float, armed: bool):
    cam = parse_cameras(
        {"cameras": [{"id": "a", "url": "x", "schedule": {"timezone": "Asia/Shanghai", "windows": windows}}]}
    ).cameras[0]
    assert cam.schedule is not None
    assert cam.schedule.armed(when) is armed


def test_schedule_uses_its_own_timezone():
    # 02:00 UTC is 10:00 in Shanghai: armed for a Shanghai 08:00–18:00 window, not for a UTC one
    ts = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC).timestamp()
    window = [{"start": "08:00", "end": "18:00"}]
    cams = parse_cameras(
        {
            "cameras": [
                {"id": "sh", "url": "x", "schedule": {"timezone": "Asia/Shanghai", "windows": window}},
                {"id": "utc", "url": "y", "schedule": {"windows": window}},
            ]
        }
    ).cameras
    assert [c.schedule.armed(ts) for c in cams if c.schedule] == [True, False]
