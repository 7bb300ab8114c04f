"""The hazard ledger (隐患台账) through a real server: lifecycle, AI re-check of rectification photos, roles,
optimistic versions under a race, filters, CSV/XLSX export; and its pure rules."""

from __future__ import annotations

import csv
import io
import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote

import app_fixtures
import numpy as np
import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import AppServer, clean_photo, fire_photo, open_item, start_app_server
from openpyxl import load_workbook
from PIL import Image

from inference_service.ledger import DeadlinePolicy, is_overdue, recheck

app_server = app_fixtures.app_server  # the fixture


def move(c, item: dict, to: str, **extra):
    return c.post(f"/app/api/ledger/{item['id']}/transition", json={"to": to, "version": item["version"], **extra})


def rectify(c, item: dict, data: bytes, key: str):
    return c.post(
        f"/app/api/ledger/{item['id']}/rectification",
        files={"photo": ("fixed.jpg", data, "image/jpeg")},
        data={"idempotency_key": key, "note": "已整改"},
    )


def test_an_item_goes_through_to_closed_with_an_ai_recheck(app_server: AppServer):
    lifecycle(app_server)


def test_the_lifecycle_on_postgresql(tiny_model_dir: Path, tmp_path: Path, pg_url: str):  # noqa: F811
    with start_app_server(tiny_model_dir, tmp_path / "data", pg_url) as server:
        lifecycle(server)


def lifecycle(server: AppServer) -> None:
    insp, sup = server.client("inspector"), server.client("supervisor")
    item = open_item(insp, seed=1)
    assert (item["status"], item["status_zh"], item["severity"], item["ai_recheck"]) == ("open", "待整改", "critical",
                                                                                          None)  # fmt: skip
    deadline = datetime.fromisoformat(item["deadline"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
    assert deadline > created and (deadline - created).total_seconds() <= 86400  # 重大隐患: the same (local) day
    assert item["history"][0]["to"] == "open" and item["history"][0]["by"] == "张检查"
    assert item["history"][0]["note"] == "确认隐患，登记入账 (confirmed)"
    # stale version, wrong transition, no photo yet
    assert move(insp, {**item, "version": 99}, "in_progress").status_code == 409
    assert move(insp, item, "closed").status_code == 409
    started = move(insp, item, "in_progress", responsible_person="车间主任 刘某")
    assert started.status_code == 200, started.text
    item = started.json()
    assert item["status_zh"] == "整改中" and item["responsible_person"] == "车间主任 刘某" and item["version"] == 2
    no_photo = move(insp, item, "pending_review")
    assert no_photo.status_code == 409 and "rectification photo" in no_photo.json()["error"]["message"]
    # the fix photo still shows the fire: AI 复查未通过
    failed = rectify(insp, item, fire_photo(seed=11), "fix-1")
    assert failed.status_code == 200, failed.text
    item = failed.json()
    assert (item["status"], item["ai_recheck"]) == ("pending_review", "failed")
    assert item["rectification_photo_url"] and insp.get(item["rectification_photo_url"]).content == fire_photo(seed=11)
    small = insp.get(item["rectification_evidence_url"], params={"max_side": 160})
    assert small.status_code == 200 and max(Image.open(io.BytesIO(small.content)).size) == 160  # the card's picture
    assert move(insp, item, "closed").status_code == 403  # closing is the supervisor's
    refused = move(sup, item, "closed")
    assert refused.status_code == 409 and "AI" in refused.json()["error"]["message"]
    item = move(sup, item, "in_progress", note="仍有明火，退回").json()
    assert item["status"] == "in_progress"
    passed = rectify(insp, item, clean_photo(seed=12), "fix-2").json()
    assert (passed["status"], passed["ai_recheck"]) == ("pending_review", "passed")
    retried = rectify(insp, passed, clean_photo(seed=12), "fix-2").json()  # a retried upload changes nothing
    assert retried["version"] == passed["version"] and retried["history"] == passed["history"]
    closed = move(sup, passed, "closed", note="复查合格").json()
    assert closed["status_zh"] == "已销号" and closed["closed_at"] and not closed["overdue"]
    assert [h["to"] for h in closed["history"]] == ["open", "in_progress", "pending_review", "in_progress",
                                                   "pending_review", "closed"]  # fmt: skip
    # a closed item is final
    again = move(sup, closed, "in_progress")
    assert again.status_code == 409 and "closed" in again.json()["error"]["message"]
    assert rectify(insp, closed, clean_photo(seed=13), "fix-3").status_code == 409
    decide = insp.post(f"/app/api/findings/{closed['finding_id']}/decision", json={"decision": "reject"})
    assert decide.status_code == 409


def test_a_failed_recheck_can_be_overridden_with_a_note(app_server: AppServer):
    insp, sup = app_server.client("inspector"), app_server.client("supervisor")
    item = move(insp, open_item(insp, seed=2), "in_progress").json()
    item = rectify(insp, item, fire_photo(seed=21), "fix-ov").json()
    assert move(sup, item, "closed", override=True).status_code == 409  # no note
    closed = move(sup, item, "closed", override=True, note="红色为新刷油漆，非明火")
    assert closed.status_code == 200 and "override" in closed.json()["history"][-1]["note"]


def test_decisions_freeze_once_rectification_starts(app_server: AppServer):
    insp = app_server.client("inspector")
    item = open_item(insp, seed=3)
    move(insp, item, "in_progress")
    r = insp.post(f"/app/api/findings/{item['finding_id']}/decision", json={"decision": "reject"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


def test_racing_transitions_apply_once(app_server: AppServer):
    item = open_item(app_server.client("inspector"), seed=4)
    clients = [app_server.client("inspector") for _ in range(6)]
    codes: list[int] = []

    def go(c) -> None:
        codes.append(move(c, item, "in_progress").status_code)

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * 5
    final = clients[0].get(f"/app/api/ledger/{item['id']}").json()
    assert final["version"] == 2 and [h["to"] for h in final["history"]] == ["open", "in_progress"]


def late_by(sup, item: dict, deadline: str = "2020-01-31") -> dict:
    r = sup.post(f"/app/api/ledger/{item['id']}/assign", json={"version": item["version"], "deadline": deadline})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_summary_counts_each_status_and_what_is_late_and_not_closed(app_server: AppServer):
    summary_and_closed_filter(app_server)


def test_the_summary_on_postgresql(tiny_model_dir: Path, tmp_path: Path, pg_url: str):  # noqa: F811
    with start_app_server(tiny_model_dir, tmp_path / "data", pg_url) as server:
        summary_and_closed_filter(server)


def summary_and_closed_filter(server: AppServer) -> None:
    """整改跟踪: GET /app/api/ledger/summary counts the organisation's items per status and ``overdue``: past the
    deadline and not closed (an item closed late is no longer a to-do). ``closed=false`` lists those not closed."""
    insp, sup = server.client("inspector"), server.client("supervisor")
    before = insp.get("/app/api/ledger/summary").json()
    org_b = server.client("inspector_b").get("/app/api/ledger/summary").json()
    assert set(before) == {"open", "in_progress", "pending_review", "closed", "overdue"}
    on_time = open_item(insp, unit="汇总检查点", seed=31)
    late_open = late_by(sup, open_item(insp, unit="汇总检查点", seed=32))
    late_fixing = move(insp, late_by(sup, open_item(insp, unit="汇总检查点", seed=33)), "in_progress").json()
    closed_late = move(insp, late_by(sup, open_item(insp, unit="汇总检查点", seed=34)), "in_progress").json()
    closed_late = rectify(insp, closed_late, clean_photo(seed=35), "summary-fix").json()
    assert closed_late["status"] == "pending_review"
    waiting = insp.get("/app/api/ledger/summary").json()
    assert waiting["pending_review"] - before["pending_review"] == 1
    assert waiting["overdue"] - before["overdue"] == 3  # a rectification waiting for review is not closed yet
    closed_late = move(sup, closed_late, "closed", note="已复查").json()
    after = insp.get("/app/api/ledger/summary").json()
    assert {k: after[k] - before[k] for k in after} == {
        "open": 2, "in_progress": 1, "pending_review": 0, "closed": 1, "overdue": 2
    }  # fmt: skip
    assert server.client("inspector_b").get("/app/api/ledger/summary").json() == org_b  # org B's own, unchanged

    def ids(**params: str) -> set[str]:
        return {i["id"] for i in insp.get("/app/api/ledger", params={"unit": "汇总检查点", **params}).json()["items"]}

    assert ids(overdue="true", closed="false") == {late_open["id"], late_fixing["id"]}
    assert ids(overdue="true") == {late_open["id"], late_fixing["id"], closed_late["id"]}  # closed late too
    assert ids(closed="true") == {closed_late["id"]}
    assert on_time["id"] in ids(closed="false") and closed_late["id"] not in ids(closed="false")
    assert insp.get("/app/api/ledger", params={"closed": "maybe"}).status_code == 422


def test_supervisors_assign_and_overdue_items_are_flagged_filtered_and_exported(app_server: AppServer):
    insp, sup = app_server.client("inspector"), app_server.client("supervisor")
    late = open_item(insp, unit="逾期测试单位", seed=5)
    users = app_server.client("admin").get("/app/api/users").json()["items"]
    inspector_id = next(u["id"] for u in users if u["username"] == "insp_a")
    body = {
        "version": late["version"],
        "assigned_to": inspector_id,
        "deadline": "2020-01-31",
        "responsible_person": "王某",
    }
    assert insp.post(f"/app/api/ledger/{late['id']}/assign", json=body).status_code == 403
    assigned = sup.post(f"/app/api/ledger/{late['id']}/assign", json=body)
    assert assigned.status_code == 200, assigned.text
    late = assigned.json()
    assert late["overdue"] and late["assigned_to"] == inspector_id and late["deadline"] == "2020-01-31T15:59:59Z"
    fresh = open_item(insp, unit="按期单位", seed=6)
    listed = insp.get("/app/api/ledger", params={"overdue": "true"}).json()
    ids = [i["id"] for i in listed["items"]]
    assert late["id"] in ids and fresh["id"] not in ids
    assert [i["id"] for i in insp.get("/app/api/ledger", params={"unit": "逾期"}).json()["items"]] == [late["id"]]
    for params, expected in (
        ({"severity": "critical"}, True),
        ({"severity": "low"}, False),
        ({"status": "open"}, True),
        ({"status": "closed"}, False),
        ({"hazard": "FIRE-001"}, True),
        ({"inspector": inspector_id}, True),
        ({"from": "2000-01-01", "to": "2999-12-31"}, True),
        ({"to": "2001-01-01"}, False),
    ):
        got = [i["id"] for i in insp.get("/app/api/ledger", params=params).json()["items"]]
        assert (fresh["id"] in got) is expected, params
    assert insp.get("/app/api/ledger", params={"from": "yesterday"}).status_code == 422
    text = insp.get("/app/api/ledger/export.csv", params={"unit": "逾期"}).content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][0] == "编号 ID" and len(rows) == 2
    assert rows[1][0] == late["id"] and "逾期测试单位" in rows[1] and "是 yes" in rows[1] and "现场明火" in rows[1]
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["整改期限 Deadline"] == "2020-01-31"  # the local day it ends, as it was set
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells["登记时间 Created"])  # local time, to the minute
    assert cells["登记人 Entered by"] == "张检查"
    xlsx = insp.get("/app/api/ledger/export.xlsx", params={"unit": "单位"})
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    sheet = {r[0].value: r for r in ws.iter_rows(min_row=2)}
    assert set(sheet) == {late["id"], fresh["id"]}
    assert sheet[late["id"]][0].fill.fgColor.rgb.endswith("FFD7D7")  # overdue rows are highlighted
    assert sheet[fresh["id"]][0].fill.fgColor.rgb in (None, "00000000")
    header = [c.value for c in ws[1]]
    created, deadline = header.index("登记时间 Created"), header.index("整改期限 Deadline")
    row = sheet[fresh["id"]]
    assert isinstance(row[created].value, datetime) and row[created].is_date  # a date cell Excel sorts and filters
    assert row[header.index("逾期 Overdue")].value == "否 no"
    local = datetime.fromisoformat(fresh["created_at"].replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=8)))
    assert row[created].value == local.replace(tzinfo=None, second=0, microsecond=0)
    assert row[deadline].number_format == "yyyy-mm-dd"
    disposition = xlsx.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="ledger-') and "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("''", 1)[1]).startswith(f"隐患台账-{app_fixtures.ORG_A}-")


def test_a_unit_named_like_a_formula_exports_as_text(app_server: AppServer):
    """A unit name an attacker typed as a spreadsheet formula opens as text in the supervisor's Excel."""
    insp = app_server.client("inspector")
    name = '=HYPERLINK("http://evil.example","点此查看")'
    item = open_item(insp, unit=name, seed=9)
    text = insp.get("/app/api/ledger/export.csv", params={"unit": "evil.example"}).content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert len(rows) == 2 and rows[1][0] == item["id"] and rows[1][1] == "'" + name
    xlsx = insp.get("/app/api/ledger/export.xlsx", params={"unit": "evil.example"})
    assert xlsx.status_code == 200, xlsx.text
    cell = load_workbook(io.BytesIO(xlsx.content)).active.cell(2, 2)
    assert (cell.value, cell.data_type) == (name, "s")


def test_a_ledger_item_shows_which_hazard_it_is(app_server: AppServer):
    """Where on which photo, and the inspector's note: two items of one kind at one unit can be told apart."""
    c = app_server.client("inspector")
    finding = open_item(c, unit="两处明火", seed=21, confirm=False)
    decided = c.post(f"/app/api/findings/{finding['id']}/decision", json={"decision": "confirm", "note": "二楼东侧"})
    item = c.get(f"/app/api/ledger/{decided.json()['ledger_item_id']}").json()
    assert item["note"] == "二楼东侧" and item["box"] == finding["box"]
    assert item["evidence_url"] == f"/app/api/findings/{finding['id']}/evidence.jpg"
    listed = c.get("/app/api/ledger", params={"unit": "两处明火"}).json()["items"]
    assert [(i["note"], i["box"]) for i in listed] == [("二楼东侧", finding["box"])]
    thumb = c.get(item["evidence_url"], params={"max_side": 200})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 200
    assert c.get(item["evidence_url"], params={"max_side": 10}).status_code == 422
    assert app_server.client("inspector_b").get(item["evidence_url"]).status_code == 404


def label_width(jpeg: bytes, box_top: int) -> int:
    """How far the label drawn above a box at ``box_top`` runs: the red pixels of the row just above it."""
    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
    row = pixels[box_top - 4]
    return int(((row[:, 0] > 150) & (row[:, 1] < 90) & (row[:, 2] < 90)).sum())


def test_evidence_labels_follow_the_language_asked_for(app_server: AppServer):
    """An English screen asks for English labels (?lang=en): the drawn label is the English name, longer than
    现场明火; Chinese stays the default."""
    c = app_server.client("inspector")
    finding = open_item(c, unit="英文标签", seed=23, confirm=False)
    url = f"/app/api/findings/{finding['id']}/evidence.jpg"
    zh = c.get(url, params={"max_side": 640}).content
    en = c.get(url, params={"max_side": 640, "lang": "en"})
    assert en.status_code == 200 and en.content != zh
    top = round(finding["box"][1])
    assert label_width(en.content, top) > 1.3 * label_width(zh, top) > 0
    assert c.get(url, params={"lang": "fr"}).status_code == 422
    photo = c.get(f"/app/api/photos/{finding['photo_id']}/evidence.jpg", params={"lang": "en"})
    base = c.get(f"/app/api/photos/{finding['photo_id']}/evidence.jpg").content
    assert photo.status_code == 200 and photo.content != base


def test_another_organisation_cannot_touch_the_ledger(app_server: AppServer):
    a, b = app_server.client("inspector"), app_server.client("inspector_b")
    item = open_item(a, seed=7)
    assert b.get(f"/app/api/ledger/{item['id']}").status_code == 404
    assert move(b, item, "in_progress").status_code == 404
    assert rectify(b, item, clean_photo(seed=71), "b-fix").status_code == 404
    assert item["id"] not in [i["id"] for i in b.get("/app/api/ledger").json()["items"]]
    assert a.get(f"/app/api/ledger/{item['id']}").json()["version"] == 1


def test_a_hazard_the_model_cannot_see_is_left_to_a_person(app_server: AppServer):
    c = app_server.client("inspector")
    finding = open_item(c, seed=8, confirm=False)
    added = c.post(
        f"/app/api/photos/{finding['photo_id']}/findings", json={"hazard_id": "FIRE-006", "box": [0, 0, 50, 50]}
    )
    item = c.get(f"/app/api/ledger/{added.json()['ledger_item_id']}").json()
    item = move(c, item, "in_progress").json()
    checked = rectify(c, item, fire_photo(seed=81), "fix-person").json()
    assert checked["status"] == "pending_review" and checked["ai_recheck"] is None


# ---- pure rules ----------------------------------------------------------------------------------------------


def test_deadlines_end_the_local_day_after_the_severitys_days():
    policy = DeadlinePolicy({"critical": 0, "high": 3}, utc_offset_hours=8)
    created = datetime(2026, 12, 1, 17, 30, tzinfo=UTC).timestamp()  # 01:30 on 2 Dec in China
    assert datetime.fromtimestamp(policy.deadline("critical", created), UTC) == datetime(
        2026, 12, 2, 15, 59, 59, tzinfo=UTC
    )
    assert datetime.fromtimestamp(policy.deadline("high", created), UTC) == datetime(
        2026, 12, 5, 15, 59, 59, tzinfo=UTC
    )
    assert is_overdue("open", 100.0, None, 101.0) and not is_overdue("open", 100.0, None, 99.0)
    assert is_overdue("closed", 100.0, 150.0, 0.0) and not is_overdue("closed", 100.0, 90.0, 1e12)


@pytest.mark.parametrize(
    ("hazard", "cls", "detectable", "found", "expected"),
    [
        ("FIRE-001", "fire", True, [], "passed"),  # nothing seen
        ("FIRE-001", "fire", True, [("FIRE-001", None)], "failed"),  # the same hazard raised again
        ("FIRE-001", "fire", True, [("", "fire")], "failed"),  # a fire detection anywhere, hazard or not
        ("FIRE-001", "fire", True, [("FIRE-002", None), ("", "smoke")], "passed"),  # another hazard only
        ("FIRE-006", "exit_obstruction", False, [("FIRE-001", None)], None),  # the model cannot see it
        ("FIRE-001", None, True, [("FIRE-001", None)], "failed"),  # an added hazard the model can raise
    ],
)
def test_recheck(hazard, cls, detectable, found, expected):
    result, reason = recheck(hazard, cls, detectable, ["fire", "smoke", "no_helmet"], found)
    assert result == expected
    assert re.match(r"[\u4e00-\u9fff]", reason) and re.search(r"\([a-z].+\)$", reason)  # 中文 (English)
    assert "None" not in reason
    if result == "failed":  # names what it still sees, in both halves
        what = next(h or c for h, c in found if h == hazard or c == cls)
        assert reason.count(what) == 2, reason


def test_items_due_within_days_are_the_open_ones_whose_deadline_is_near(app_server: AppServer):
    """即将到期: not closed, the deadline from now to N days on; past deadlines are 已逾期, not "due"."""
    insp, sup = app_server.client("inspector"), app_server.client("supervisor")
    today = datetime.now(timezone(timedelta(hours=8))).date()  # deadlines are local days (UTC+8)
    made = {}
    for name, days in (("两天后到期单位", 2), ("十天后到期单位", 10), ("早已逾期单位", -400)):
        item = open_item(insp, unit=name, seed=700 + days)
        body = {"version": item["version"], "deadline": (today + timedelta(days=days)).isoformat()}
        made[name] = sup.post(f"/app/api/ledger/{item['id']}/assign", json=body).json()["id"]
    due = {i["id"] for i in insp.get("/app/api/ledger", params={"due_within": 3, "limit": 200}).json()["items"]}
    assert made["两天后到期单位"] in due
    assert made["十天后到期单位"] not in due and made["早已逾期单位"] not in due
    assert made["十天后到期单位"] in {
        i["id"] for i in insp.get("/app/api/ledger", params={"due_within": 11, "limit": 200}).json()["items"]
    }
    assert insp.get("/app/api/ledger", params={"due_within": 0}).status_code == 422
