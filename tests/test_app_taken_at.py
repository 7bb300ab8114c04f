"""The upload form's ``taken_at``: parsed (ISO 8601, epoch seconds or milliseconds), refused with a clear 422 when
it is not a time or lies in the future, stored on the photo record beside EXIF (which wins), shown in the photo's
JSON and in the inspection record document."""

from __future__ import annotations

import io
from datetime import datetime

import app_fixtures
import pytest
from app_fixtures import AppServer, clean_photo
from PIL import Image

from inference_service.app.photo_time import TakenAtError, parse_taken_at, shown

app_server = app_fixtures.app_server  # the fixture

NOW = datetime.fromisoformat("2026-03-02T12:00:00+08:00").timestamp()
T = datetime.fromisoformat("2026-03-02T10:00:00+08:00").timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02T02:00:00Z", T),  # what the browser's toISOString() sends
        ("2026-03-02T02:00:00.000Z", T),
        ("2026-03-02T10:00:00+08:00", T),
        ("2026-03-02T10:00:00", T),  # no zone: local time (UTC+8)
        ("2026-03-02 10:00", T),
        (f"{T:.0f}", T),  # epoch seconds
        (f"{T * 1000:.0f}", T),  # epoch milliseconds (File.lastModified)
        (f" {T:.3f} ", T),
        (f"{NOW + 299:.0f}", NOW + 299),  # a phone clock a little ahead: allowed
    ],
)
def test_parse_taken_at(text: str, expected: float):
    assert parse_taken_at(text, now=NOW, offset_hours=8.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("yesterday", "neither ISO 8601"),
        ("2026-13-01T00:00:00Z", "neither ISO 8601"),
        ("-5", "neither ISO 8601"),
        (f"{NOW + 301:.0f}", "in the future"),  # beyond the allowed skew
        ("2026-03-03T10:00:00+08:00", "79,200 s in the future"),  # 22 hours ahead
        ("0", "before 2000"),  # a File with no time
        ("1980-01-01T00:00:00", "before 2000"),  # a camera whose clock was never set
    ],
)
def test_parse_taken_at_refuses(text: str, says: str):
    with pytest.raises(TakenAtError, match=says):
        parse_taken_at(text, now=NOW, offset_hours=8.0)


def test_exif_wins_over_the_forms_time():
    assert shown("2025-12-31T23:59:58", T, 8.0) == ("2025-12-31T23:59:58", "exif")
    assert shown(None, T, 8.0) == ("2026-03-02T10:00:00", "client")
    assert shown(None, T, 0.0) == ("2026-03-02T02:00:00", "client")
    assert shown(None, None, 8.0) == (None, None)


def exif_photo(original: str) -> bytes:
    img = Image.open(io.BytesIO(clean_photo(seed=77)))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = original  # DateTimeOriginal
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_upload_keeps_taken_at_and_refuses_an_impossible_one(app_server: AppServer):
    c = app_server.client("inspector")
    insp = c.post("/app/api/inspections", json={"unit": {"name": "拍摄时间单位"}, "scene": "construction"}).json()
    url = f"/app/api/inspections/{insp['id']}/photos"

    def upload(key: str, data: bytes, taken_at: str | None):
        form = {"idempotency_key": key} | ({"taken_at": taken_at} if taken_at is not None else {})
        return c.post(url, files={"photo": ("p.jpg", data, "image/jpeg")}, data=form)

    iso = upload("t1", clean_photo(seed=71), "2026-03-02T02:00:00.000Z")
    assert iso.status_code == 201, iso.text
    assert (iso.json()["taken_at"], iso.json()["taken_at_source"]) == ("2026-03-02T10:00:00", "client")
    epoch = upload("t2", clean_photo(seed=72), f"{T * 1000:.0f}")
    assert (epoch.json()["taken_at"], epoch.json()["taken_at_source"]) == ("2026-03-02T10:00:00", "client")
    exif = upload("t3", exif_photo("2025:12:31 23:59:58"), "2026-03-02T02:00:00Z")
    assert (exif.json()["taken_at"], exif.json()["taken_at_source"]) == ("2025-12-31T23:59:58", "exif")
    none = upload("t4", clean_photo(seed=74), None)
    assert (none.json()["taken_at"], none.json()["taken_at_source"]) == (None, None)

    for key, bad, says in (("t5", "2999-01-01T00:00:00Z", "in the future"), ("t6", "last tuesday", "ISO 8601")):
        r = upload(key, clean_photo(seed=75), bad)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_taken_at" and says in err["message"]
    zh = c.post(url, files={"photo": ("p.jpg", clean_photo(seed=76), "image/jpeg")},
                data={"idempotency_key": "t7", "taken_at": "2999-01-01"},
                headers={"Accept-Language": "zh"})  # fmt: skip
    assert zh.status_code == 422 and "拍摄时间" in zh.json()["error"]["message"]
    got = c.get(f"/app/api/inspections/{insp['id']}").json()
    assert [p["taken_at"] for p in got["photos"]] == [
        "2026-03-02T10:00:00",
        "2026-03-02T10:00:00",
        "2025-12-31T23:59:58",
        None,
    ]  # nothing stored of t5, t6, t7

    record = c.get(f"/app/inspections/{insp['id']}/record").text
    assert "拍摄 2026-03-02 10:00" in record and "拍摄 2025-12-31 23:59" in record
