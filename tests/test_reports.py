"""Public hazard reports (随手拍 / 举报) against a real server: links made and revoked by an admin, reports sent
without an account, followed by receipt, checked by a supervisor into an inspection or closed as 不属实."""

from __future__ import annotations

import uuid

import app_fixtures
import httpx
import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import AppServer, clean_photo, fire_photo

app_server = app_fixtures.app_server


def new_link(app_server: AppServer, name: str = "东风三路工地公示牌") -> dict:
    r = app_server.client("admin").post("/app/api/report-links", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


def token_of(link: dict) -> str:
    path, _, token = link["path"].partition("#")
    assert path == "/app/report/" and len(token) >= 20
    return token


def send(app_server: AppServer, token: str, photo: bytes, key: str | None = None, *, client: httpx.Client | None = None,
         place: str = "东风三路 88 号 2 号楼楼道", **fields: str) -> httpx.Response:  # fmt: skip
    c = client or httpx.Client(base_url=app_server.base_url, timeout=60)  # no login, no cookie
    return c.post(f"/app/api/report/{token}", files={"photo": ("r.jpg", photo, "image/jpeg")},
                  data={"idempotency_key": key or str(uuid.uuid4()), "place": place, **fields})  # fmt: skip


def test_anyone_with_a_link_reports_and_follows_it_by_receipt(app_server: AppServer):
    token = token_of(new_link(app_server))
    anon = httpx.Client(base_url=app_server.base_url, timeout=60)
    page = anon.get(f"/app/api/report/{token}")
    assert page.status_code == 200 and page.json()["org_name"] == "A 市应急管理局"
    assert page.json()["link_name"] == "东风三路工地公示牌"
    key = str(uuid.uuid4())
    r = send(app_server, token, fire_photo(seed=40), key, description="楼道里有人在烧东西", contact="13800000000")
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["status"] == "new" and len(receipt["receipt"]) == 12
    assert [h["hazard_id"] for h in receipt["hazards"]] == ["FIRE-001"]  # the model's first guess, to the sender
    assert receipt["hazards"][0]["name_zh"] == "现场明火"
    again = send(app_server, token, fire_photo(seed=40), key)  # a retry of the same report
    assert again.status_code == 200 and again.json()["receipt"] == receipt["receipt"]
    status = anon.get(f"/app/api/report-receipt/{receipt['receipt'].lower()}")
    assert status.status_code == 200, status.text
    place = "东风三路 88 号 2 号楼楼道"
    org = "A 市应急管理局"
    assert status.json() == {"receipt": receipt["receipt"], "org_name": org, "place": place, "status": "new",
                             "created_at": receipt["created_at"], "decided_at": None, "note": ""}  # fmt: skip
    assert anon.get("/app/api/report-receipt/NOSUCHRECEIPT").status_code == 404


def test_a_supervisor_verifies_a_report_into_an_inspection_with_its_photo(app_server: AppServer):
    token = token_of(new_link(app_server))
    receipt = send(app_server, token, fire_photo(seed=41), place="桃园路 6 号仓库").json()
    boss = app_server.client("supervisor")
    listed = boss.get("/app/api/reports", params={"status": "new"}).json()
    report = next(r for r in listed["items"] if r["place"] == "桃园路 6 号仓库")
    assert listed["counts"]["new"] >= 1 and report["hazards"][0]["hazard_id"] == "FIRE-001"
    photo = boss.get(report["photo_url"], params={"max_side": 320})
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    made = boss.post(f"/app/api/reports/{report['id']}/verify", json={"scene": "industry", "unit_name": "桃园物流仓库"})
    assert made.status_code == 201, made.text
    inspection = made.json()
    assert inspection["unit"]["name"] == "桃园物流仓库" and inspection["unit"]["address"] == "桃园路 6 号仓库"
    assert inspection["photo_count"] == 1 and inspection["report_id"] == report["id"]
    finding = inspection["photos"][0]["findings"][0]
    assert finding["hazard_id"] == "FIRE-001" and finding["status"] == "pending"  # confirmed as any other finding
    assert inspection["photos"][0]["taken_at_source"] == "report"
    again = boss.post(f"/app/api/reports/{report['id']}/verify", json={"scene": "industry"})
    assert again.status_code == 200 and again.json()["id"] == inspection["id"]
    confirmed = boss.post(f"/app/api/findings/{finding['id']}/decision", json={"decision": "confirm"})
    assert confirmed.status_code == 200 and confirmed.json()["ledger_item_id"]
    anon = httpx.Client(base_url=app_server.base_url)
    status = anon.get(f"/app/api/report-receipt/{receipt['receipt']}").json()
    assert status["status"] == "verified" and status["decided_at"] is not None
    rejected = boss.post(f"/app/api/reports/{report['id']}/reject", json={"note": "不是"})
    assert rejected.status_code == 409


def test_a_report_found_false_tells_the_sender_why(app_server: AppServer):
    token = token_of(new_link(app_server))
    receipt = send(app_server, token, clean_photo(seed=42), place="北大街菜市场").json()
    assert receipt["hazards"] == []
    boss = app_server.client("supervisor")
    report = next(r for r in boss.get("/app/api/reports").json()["items"] if r["place"] == "北大街菜市场")
    assert boss.post(f"/app/api/reports/{report['id']}/reject", json={"note": ""}).status_code == 422  # a reason
    r = boss.post(f"/app/api/reports/{report['id']}/reject", json={"note": "现场核查为正常施工，已有动火审批"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["decided_by"] == "李主管"
    status = httpx.get(f"{app_server.base_url}/app/api/report-receipt/{receipt['receipt']}").json()
    assert status["status"] == "rejected" and status["note"] == "现场核查为正常施工，已有动火审批"
    assert boss.post(f"/app/api/reports/{report['id']}/verify", json={"scene": "industry"}).status_code == 409


def test_a_revoked_or_unknown_link_takes_nothing_and_reads_no_upload(app_server: AppServer):
    link = new_link(app_server, "撤回测试")
    token = token_of(link)
    send(app_server, token, clean_photo(seed=44))
    admin = app_server.client("admin")
    revoked = admin.post(f"/app/api/report-links/{link['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (revoked.json()["reports"], revoked.json()["new_reports"]) == (1, 1)  # its reports stay
    for bad in (token, "no-such-token-" + "x" * 20):
        assert httpx.get(f"{app_server.base_url}/app/api/report/{bad}").status_code == 404
        r = send(app_server, bad, fire_photo(seed=43))
        assert r.status_code == 404 and r.json()["error"]["message"] == "该举报链接不存在或已停用"
    # refused before the body is read: a 20 MB upload to a dead link is answered and the connection closed
    r = httpx.post(f"{app_server.base_url}/app/api/report/{token}", content=b"\0" * (20 << 20),
                   headers={"Content-Type": "multipart/form-data; boundary=x"}, timeout=60)  # fmt: skip
    assert r.status_code == 404 and r.headers.get("connection") == "close"


def test_one_sender_is_held_to_the_hourly_limit(tiny_model_dir, tmp_path):
    with app_fixtures.start_app_server(tiny_model_dir, tmp_path / "d", HAZARDSCAN_REPORTS_PER_HOUR="2") as server:
        token = token_of(new_link(server))
        answers = [send(server, token, clean_photo(seed=50 + i)).status_code for i in range(3)]
        assert answers == [201, 201, 429]
        last = send(server, token, clean_photo(seed=60))
        assert last.headers["Retry-After"] == "600" and "每小时最多" in last.json()["error"]["message"]
        other = token_of(new_link(server, "另一块公示牌"))  # the limit is per link
        assert send(server, other, clean_photo(seed=61)).status_code == 201


@pytest.mark.parametrize("who", ["inspector", "inspector_b"])
def test_only_the_organisations_supervisors_see_reports_and_only_admins_manage_links(app_server: AppServer, who: str):
    c = app_server.client(who)
    assert c.get("/app/api/reports").status_code == 403
    assert c.post("/app/api/report-links", json={"name": "x"}).status_code == 403
    token = token_of(new_link(app_server, "组织隔离"))
    send(app_server, token, clean_photo(seed=70), place="只属于 A 的举报")
    a_sees = app_server.client("supervisor").get("/app/api/reports").json()["items"]
    assert any(r["place"] == "只属于 A 的举报" for r in a_sees)


def test_bad_reports_get_clear_errors(app_server: AppServer):
    token = token_of(new_link(app_server, "坏输入"))
    assert send(app_server, token, b"").status_code == 400
    not_photo = send(app_server, token, b"%PDF-1.4 not a photo")
    assert not_photo.status_code == 415
    blank = send(app_server, token, clean_photo(seed=71), place="   ")
    assert blank.status_code == 422 and "位置" in blank.json()["error"]["message"]
    long_contact = send(app_server, token, clean_photo(seed=72), contact="1" * 51)
    assert long_contact.status_code == 422
    boss = app_server.client("supervisor")
    assert boss.post("/app/api/reports/nope/verify", json={"scene": "industry"}).status_code == 404
    listed = boss.get("/app/api/reports").json()["items"]
    assert all(r["place"] != "   " for r in listed)


def test_a_link_prints_as_a_notice_for_admins_while_it_lives(app_server: AppServer):
    """The notice's QR code is read back in tests/browser/test_report_page.py."""
    link = new_link(app_server, "东门公示栏")
    admin = app_server.client("admin")
    pdf = admin.get(f"/app/api/report-links/{link['id']}/poster.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 5_000
    assert app_server.client("supervisor").get(f"/app/api/report-links/{link['id']}/poster.pdf").status_code == 403
    admin.post(f"/app/api/report-links/{link['id']}/revoke")
    assert admin.get(f"/app/api/report-links/{link['id']}/poster.pdf").status_code == 409


def test_verified_reports_export_with_the_senders_numbers_for_the_reward(app_server: AppServer):
    import csv
    import io

    import openpyxl

    token = token_of(new_link(app_server, "奖励核对"))
    sent = send(app_server, token, fire_photo(seed=80), place="奖励测试地点", contact="13700000001")
    receipt = sent.json()["receipt"]
    boss = app_server.client("supervisor")
    report = next(r for r in boss.get("/app/api/reports").json()["items"] if r["place"] == "奖励测试地点")
    boss.post(f"/app/api/reports/{report['id']}/verify", json={"scene": "industry"})
    table = boss.get("/app/api/reports/export.csv", params={"status": "verified"})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    mine = next(r for r in rows if r["回执号"] == receipt)
    assert (mine["位置"], mine["联系电话"], mine["AI 初判"], mine["状态"], mine["核查人"]) == (
        "奖励测试地点", "13700000001", "现场明火", "查证属实", "李主管")  # fmt: skip
    assert all(r["状态"] == "查证属实" for r in rows)
    book = openpyxl.load_workbook(io.BytesIO(boss.get("/app/api/reports/export.xlsx").content))
    assert [c.value for c in next(book.active.iter_rows(max_row=1))][:3] == ["回执号", "提交时间", "举报链接"]
    assert app_server.client("inspector").get("/app/api/reports/export.csv").status_code == 403


def test_the_statistics_count_the_period_s_reports_by_what_became_of_them(app_server: AppServer):
    import datetime as dt

    token = token_of(new_link(app_server, "统计"))
    send(app_server, token, clean_photo(seed=90), place="统计测试")
    boss = app_server.client("supervisor")
    now = boss.get("/app/api/stats").json()["reports"]
    assert set(now) == {"new", "verified", "rejected"} and now["new"] >= 1
    assert sum(now.values()) == boss.get("/app/api/reports", params={"limit": 1}).json()["total"]
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    assert boss.get("/app/api/stats", params={"from": tomorrow}).json()["reports"] == {
        "new": 0, "verified": 0, "rejected": 0}  # fmt: skip


def test_reports_on_postgresql(tiny_model_dir, tmp_path, pg_url):  # noqa: F811
    """The same store on PostgreSQL: a report sent, limited, verified into an inspection, counted, exported."""
    with app_fixtures.start_app_server(tiny_model_dir, tmp_path / "d", database_url=pg_url,
                                       HAZARDSCAN_REPORTS_PER_HOUR="2") as server:  # fmt: skip
        link = new_link(server, "PG 公示牌")
        token = token_of(link)
        assert [send(server, token, fire_photo(seed=95 + i)).status_code for i in range(3)] == [201, 201, 429]
        boss = server.client("supervisor")
        listed = boss.get("/app/api/reports").json()
        assert listed["total"] == 2 and listed["counts"] == {"new": 2, "verified": 0, "rejected": 0}
        first, second = listed["items"]
        made = boss.post(f"/app/api/reports/{first['id']}/verify", json={"scene": "industry"})
        assert made.status_code == 201 and made.json()["report_id"] == first["id"]
        assert (
            boss.post(f"/app/api/reports/{second['id']}/reject", json={"note": "重复举报"}).json()["status"]
            == "rejected"
        )
        assert boss.get("/app/api/stats").json()["reports"] == {"new": 0, "verified": 1, "rejected": 1}
        assert "重复举报" in boss.get("/app/api/reports/export.csv").content.decode("utf-8-sig")
        revoked = server.client("admin").post(f"/app/api/report-links/{link['id']}/revoke").json()
        assert (revoked["reports"], revoked["new_reports"]) == (2, 0)
