"""Input that once broke the app for a whole organisation, or was lost: each is refused with a 422/409 that says why,
or now works, and what the organisation sees stays whole (found by a security audit, 2026-12-02)."""

from __future__ import annotations

import csv
import io
import socket

import app_fixtures
import pytest
from app_fixtures import AppServer, clean_photo, fire_photo, open_item

app_server = app_fixtures.app_server  # the fixture


def inspection(c, name: str = "单位", **extra) -> dict:
    r = c.post("/app/api/inspections", json={"unit": {"name": name, "address": "桃北路"}, "scene": "industry", **extra})
    return {"status": r.status_code, **r.json()}


@pytest.mark.parametrize("name", ["   ", "\u3000 ", "\t\n"])
def test_a_unit_name_of_spaces_is_refused_and_the_list_stays_whole(app_server: AppServer, name: str):
    c = app_server.client("inspector")
    got = inspection(c, name)
    assert got["status"] == 422 and got["error"]["code"] == "validation_error", got
    assert c.get("/app/api/inspections").status_code == 200


def test_unit_texts_are_stored_trimmed(app_server: AppServer):
    c = app_server.client("inspector")
    unit = {"name": "  某厂 ", "address": " 桃北路\u3000", "credit_code": " "}
    r = c.post("/app/api/inspections", json={"unit": unit, "scene": "industry"})
    assert r.status_code == 201, r.text
    assert r.json()["unit"] == {"name": "某厂", "address": "桃北路", "credit_code": None}


@pytest.mark.parametrize("accuracy", [1e999, -1, 1e7])
def test_an_impossible_location_accuracy_is_refused(app_server: AppServer, accuracy: float):
    c = app_server.client("inspector")
    body = '{"unit": {"name": "x"}, "scene": "industry", "location": {"lat": 38, "lon": 113, "accuracy_m": %r}}'
    r = c.post("/app/api/inspections", content=body % accuracy, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "box",
    [
        [640.5, 0, 641, 10],  # starts past the right edge (640 wide), ends in the 1 px of slack
        [10, 480.5, 20, 481],  # starts below the bottom edge (480 high)
        [640, 0, 641, 10],  # starts on the edge: nothing of it on the photo
    ],
)
def test_a_box_off_the_photo_is_refused_and_the_evidence_stays_whole(app_server: AppServer, box: list[float]):
    c = app_server.client("inspector")
    finding = open_item(c, unit=f"框-{box}", seed=11, confirm=False)
    added = c.post(f"/app/api/photos/{finding['photo_id']}/findings", json={"hazard_id": "FIRE-006", "box": box})
    assert added.status_code == 422 and "outside" in added.json()["error"]["message"], added.text
    moved = c.post(f"/app/api/findings/{finding['id']}/decision", json={"decision": "confirm", "box": box})
    assert moved.status_code == 422, moved.text
    evidence = c.get(f"/app/api/photos/{finding['photo_id']}/evidence.jpg")
    assert evidence.status_code == 200 and evidence.content[:2] == b"\xff\xd8"


def test_a_box_reaching_into_the_slack_is_clipped(app_server: AppServer):
    c = app_server.client("inspector")
    finding = open_item(c, unit="框-slack", seed=12, confirm=False)
    added = c.post(f"/app/api/photos/{finding['photo_id']}/findings",
                   json={"hazard_id": "FIRE-006", "box": [600, 400, 640.7, 480.9]})  # fmt: skip
    assert added.status_code == 201, added.text
    assert added.json()["box"] == [600, 400, 640, 480]


def test_an_added_hazard_needs_no_note(app_server: AppServer):
    """The app's form says the note is optional; a client sending null (as the app once did) is not refused."""
    c = app_server.client("inspector")
    finding = open_item(c, unit="无备注", seed=13, confirm=False)
    for note in (None, ""):
        r = c.post(f"/app/api/photos/{finding['photo_id']}/findings",
                   json={"hazard_id": "FIRE-006", "box": [10, 10, 50, 50], "note": note})  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["note"] == ""


@pytest.mark.parametrize(
    "deadline", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-14:00", "9999-12-31", "1900-01-01"]
)
def test_a_deadline_off_the_calendar_is_refused_and_the_ledger_stays_whole(app_server: AppServer, deadline: str):
    sup = app_server.client("supervisor")
    item = open_item(app_server.client("inspector"), unit=f"期限-{deadline}", seed=14)
    r = sup.post(f"/app/api/ledger/{item['id']}/assign", json={"version": item["version"], "deadline": deadline})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text
    assert sup.get(f"/app/api/ledger/{item['id']}").json()["deadline"] == item["deadline"]
    assert sup.get("/app/api/ledger").status_code == 200
    assert sup.get("/app/api/ledger/export.xlsx").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/app/api/ledger?to=9999-12-31",
        "/app/api/ledger/export.csv?to=9999-12-31",
        "/app/api/stats?to=9999-12-31",
        "/app/api/stats?from=9999-12-31",
        "/app/api/stats/by_week.csv?from=9999-12-31",
        "/app/api/inspections?offset=99999999999999999999",
        "/app/api/ledger?offset=99999999999999999999",
    ],
)
def test_dates_at_the_calendar_edge_and_huge_offsets_are_refused(app_server: AppServer, path: str):
    r = app_server.client("supervisor").get(path)
    assert r.status_code == 422, r.text
    assert "Traceback" not in r.text


def test_the_unit_filter_matches_literally(app_server: AppServer):
    c = app_server.client("inspector")
    one = open_item(c, unit="Alpha_1 厂", seed=15)
    other = open_item(c, unit="Alpha-1 厂", seed=16)
    for unit, expected in (("Alpha_1", {one["id"]}), ("Alpha-1", {other["id"]}), ("%", set()), ("_1 厂", {one["id"]})):
        got = {i["id"] for i in c.get("/app/api/ledger", params={"unit": unit}).json()["items"]}
        assert got & {one["id"], other["id"]} == expected, unit
    text = c.get("/app/api/ledger/export.csv", params={"unit": "Alpha_"}).content.decode("utf-8")
    assert len(list(csv.reader(io.StringIO(text[1:])))) == 2  # the header and one item


def test_a_rectification_key_of_another_inspection_is_a_conflict(app_server: AppServer):
    c = app_server.client("inspector")
    one, two = open_item(c, unit="整改一", seed=17), open_item(c, unit="整改二", seed=18)

    def rectify(item: dict, data: bytes):
        files = {"photo": ("f.jpg", data, "image/jpeg")}
        return c.post(f"/app/api/ledger/{item['id']}/rectification", files=files, data={"idempotency_key": "k1"})

    first = rectify(one, clean_photo(seed=1))
    assert first.status_code == 200 and first.json()["status"] == "pending_review", first.text
    assert rectify(one, clean_photo(seed=1)).status_code == 200  # a retry of the same upload
    again = rectify(two, fire_photo(seed=2))
    assert again.status_code == 409, again.text
    assert c.get(f"/app/api/ledger/{two['id']}").json()["status"] == "open"


@pytest.mark.parametrize("cookie", ["", "hazardscan_session=forged-token"])
@pytest.mark.parametrize("path", ["/app/api/inspections/x/photos", "/app/api/ledger/x/rectification"])
def test_an_upload_from_no_one_is_refused_before_its_body(app_server: AppServer, path: str, cookie: str):
    """The head of a 20 MB upload, without a login: the 401 comes before a byte of the body is sent."""
    port = int(app_server.base_url.rsplit(":", 1)[1])
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 20000000\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\n" + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 401"), answer
    assert b"connection: close" in rest.lower() and b"not_logged_in" in rest
