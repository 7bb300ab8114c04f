"""Accounts: passwords (argon2), sessions, CSRF, roles, login throttling, the `users` CLI; on SQLite and
PostgreSQL, and through a real server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import app_fixtures
import httpx
import pytest
from _pg import pg_server, pg_url  # noqa: F401  (fixtures)
from app_fixtures import PASSWORD, AppServer

from inference_service.accounts import Accounts, AccountsError, LoginThrottled
from inference_service.accounts import service as accounts_service
from inference_service.storage import Database

app_server = app_fixtures.app_server  # the fixture


@pytest.fixture(params=["sqlite", "postgresql"])
def accounts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Accounts]:
    url = str(tmp_path / "a.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    db = Database(url)
    yield Accounts(db)
    db.close()


def test_passwords_are_hashed_and_sessions_are_server_side(accounts: Accounts):
    org = accounts.ensure_org("Org")
    assert accounts.ensure_org(" Org ") == org
    user = accounts.add_user("alice", "correct horse", "supervisor", org, "Alice")
    stored = accounts.db.query("SELECT password_hash FROM users WHERE id = ?", [user.id])[0][0]
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert accounts.login("alice", "wrong password") is None
    session = accounts.login("alice", "correct horse", "10.0.0.1")
    assert session is not None and session.user.role == "supervisor" and session.user.org_name == "Org"
    assert user.can("inspector") and user.can("supervisor") and not user.can("admin")
    tokens = accounts.db.query("SELECT token_sha256 FROM sessions")
    assert tokens and session.token not in str(tokens)  # only the hash is kept
    assert accounts.session(session.token) == session
    accounts.logout(session.token)
    assert accounts.session(session.token) is None and accounts.session("") is None


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("alice", "long enough", "supervisor", "not available"),
        ("bob", "short", "inspector", "at least 8"),
        ("bob", "long enough", "king", "role must be one of"),
        ("", "long enough", "inspector", "1 to 64"),
    ],
)
def test_bad_users_are_refused(tmp_path: Path, username: str, password: str, role: str, message: str):
    accounts = Accounts(Database(tmp_path / "a.db"))
    org = accounts.ensure_org("Org")
    accounts.add_user("alice", "long enough", "inspector", org)
    with pytest.raises(AccountsError, match=message):
        accounts.add_user(username, password, role, org)


def test_failed_logins_are_throttled_per_username(accounts: Accounts):
    org = accounts.ensure_org("Org")
    accounts.add_user("carol", "right password", "inspector", org)
    for _ in range(accounts_service.MAX_FAILURES):
        assert accounts.login("carol", "wrong", "1.2.3.4") is None
    with pytest.raises(LoginThrottled) as err:
        accounts.login("carol", "right password", "1.2.3.5")  # even the right password, from elsewhere
    assert 0 < err.value.retry_after_s <= accounts_service.FAILURE_WINDOW_S + 1
    accounts.add_user("dave", "right password", "inspector", org)
    assert accounts.login("dave", "right password", "1.2.3.4") is not None  # other users are not locked out


def test_wrong_passwords_sent_all_at_once_are_counted_one_by_one(accounts: Accounts):
    """A burst of wrong passwords gets no more checked than the throttle allows (the count and the booking of a try
    are one step)."""
    org = accounts.ensure_org("Org")
    accounts.add_user("erin", "right password", "inspector", org)
    start = threading.Barrier(24)

    def attempt(_: int) -> str:
        start.wait()
        try:
            return "checked" if accounts.login("erin", "wrong password", "5.6.7.8") is None else "in"
        except LoginThrottled:
            return "throttled"

    with ThreadPoolExecutor(24) as pool:
        got = list(pool.map(attempt, range(24)))
    assert got.count("checked") == accounts_service.MAX_FAILURES and got.count("throttled") == 24 - got.count("checked")
    with pytest.raises(LoginThrottled):
        accounts.login("erin", "right password", "5.6.7.9")


def test_a_new_password_or_a_disabled_user_ends_their_sessions(accounts: Accounts):
    org = accounts.ensure_org("Org")
    frank = accounts.add_user("frank", "first password", "inspector", org)
    phone, laptop = accounts.login("frank", "first password"), accounts.login("frank", "first password")
    assert phone is not None and laptop is not None
    accounts.set_password(frank.id, "second password", keep_session=phone.token)
    assert accounts.session(phone.token) is not None and accounts.session(laptop.token) is None
    assert accounts.login("frank", "first password") is None
    assert accounts.login("frank", "second password") is not None
    with pytest.raises(AccountsError, match="at least 8"):
        accounts.set_password(frank.id, "short")
    accounts.set_active(frank.id, False)
    assert accounts.session(phone.token) is None and accounts.login("frank", "second password") is None
    assert [u.active for u in accounts.list_users(org, inactive=True)] == [False] and accounts.list_users(org) == []
    accounts.set_active(frank.id, True)
    assert accounts.login("frank", "second password") is not None


def test_users_cli_manages_passwords_and_access(tmp_path: Path):
    db = tmp_path / "cli.db"

    def users(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "inference_service.cli", "users", *args, "--database-url", str(db)]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False)

    assert users("add", "--username", "gina", "--role", "inspector", "--org", "站", "--password-stdin",
                 stdin="old password\n").returncode == 0  # fmt: skip
    missing = users("list", "--org", "没有这个单位")
    assert missing.returncode == 2 and "no organisation called" in missing.stderr
    accounts = Accounts(Database(db))
    assert accounts.org_id("没有这个单位") is None  # a read-only command made nothing
    session = accounts.login("gina", "old password")
    assert session is not None
    done = users("passwd", "--username", "gina", "--password-stdin", stdin="new password\n")
    assert done.returncode == 0, done.stderr
    assert accounts.session(session.token) is None and accounts.login("gina", "new password") is not None
    assert users("disable", "--username", "gina").returncode == 0
    assert accounts.login("gina", "new password") is None
    assert users("list", "--org", "站").stdout.split() == ["gina", "inspector", "gina", "disabled"]
    assert users("enable", "--username", "gina").returncode == 0
    assert accounts.login("gina", "new password") is not None
    nobody = users("disable", "--username", "nobody")
    assert nobody.returncode == 2 and "no user called 'nobody'" in nobody.stderr


def test_users_cli_creates_the_first_admin(tmp_path: Path):
    db = tmp_path / "cli.db"
    cmd = [sys.executable, "-m", "inference_service.cli", "users", "add", "--username", "root", "--role", "admin",
           "--org", "市应急局", "--password-stdin", "--database-url", str(db)]  # fmt: skip
    done = subprocess.run(cmd, input="s3cret-pass\n", capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "created admin 'root' in '市应急局'" in done.stdout
    again = subprocess.run(cmd, input="s3cret-pass\n", capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 2 and "not available" in again.stderr
    session = Accounts(Database(db)).login("root", "s3cret-pass")
    assert session is not None and session.user.role == "admin"


# ---- through the real server -------------------------------------------------------------------------------


def test_login_sets_a_strict_httponly_cookie_and_me_needs_it(app_server: AppServer):
    with httpx.Client(base_url=app_server.base_url, headers={"Accept-Language": "en"}) as c:
        assert c.get("/app/api/me").json()["error"]["code"] == "not_logged_in"
        bad = c.post("/app/api/login", json={"username": "insp_a", "password": "nope"})
        assert bad.status_code == 401 and bad.json()["error"]["message"] == "wrong username or password"
        r = c.post("/app/api/login", json=app_server.login("inspector"))
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "hazardscan_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/app" in cookie and "Secure" not in cookie  # plain http on 127.0.0.1
        body = r.json()
        assert body["user"]["role"] == "inspector" and body["user"]["org"]["name"] == "A 市应急管理局"
        me = c.get("/app/api/me").json()
        assert me["user"]["display_name"] == "张检查" and me["csrf_token"] == body["csrf_token"]
        assert c.post("/app/api/logout").status_code == 403  # no CSRF header
        assert c.post("/app/api/logout", headers={"X-CSRF-Token": body["csrf_token"]}).status_code == 204
        assert c.get("/app/api/me").status_code == 401


def test_writes_need_the_sessions_csrf_token(app_server: AppServer):
    c = app_server.client("inspector")
    body = {"unit": {"name": "U", "address": "A"}, "scene": "construction"}
    stale = c.post("/app/api/inspections", json=body, headers={"X-CSRF-Token": "stale-token"})
    assert stale.status_code == 403 and stale.json()["error"]["code"] == "csrf_failed"
    zh = c.post("/app/api/inspections", json=body, headers={"X-CSRF-Token": "x", "Accept-Language": "zh-CN"})
    assert "CSRF" in zh.json()["error"]["message"] and "刷新" in zh.json()["error"]["message"]
    # a token of another session is stale too
    other = app_server.client("supervisor")
    crossed = c.post("/app/api/inspections", json=body, headers={"X-CSRF-Token": other.headers["X-CSRF-Token"]})
    assert crossed.status_code == 403
    assert c.get("/app/api/inspections").json()["total"] == 0  # nothing was stored
    assert c.post("/app/api/inspections", json=body).status_code == 201


def test_only_admins_add_users_and_only_in_their_org(app_server: AppServer):
    admin, inspector = app_server.client("admin"), app_server.client("inspector")
    assert inspector.get("/app/api/users").status_code == 403
    names = {u["username"] for u in admin.get("/app/api/users").json()["items"]}
    assert names == {"insp_a", "sup_a", "admin_a"}  # not org B's inspector
    supervisor = app_server.client("supervisor")  # lists the org's people to assign ledger items, adds none
    assert {u["username"] for u in supervisor.get("/app/api/users").json()["items"]} == names
    assert supervisor.post("/app/api/users", json={"username": "x", "password": "long-enough-pass", "role": "admin",
                                                    "display_name": "X"}).status_code == 403  # fmt: skip
    new = {"username": "insp_a2", "password": "another-pass", "role": "inspector", "display_name": "钱检查"}
    assert inspector.post("/app/api/users", json=new).status_code == 403
    r = admin.post("/app/api/users", json=new)
    assert r.status_code == 201 and r.json()["org"]["name"] == "A 市应急管理局"
    assert admin.post("/app/api/users", json=new).status_code == 409
    with httpx.Client(base_url=app_server.base_url) as c:
        assert c.post("/app/api/login", json={"username": "insp_a2", "password": "another-pass"}).status_code == 200


def test_taxonomy_lists_scenes_hazards_and_deadlines(app_server: AppServer):
    tax = app_server.client("inspector").get("/app/api/taxonomy").json()
    assert {"建筑工地", "高处作业", "动火作业", "商住楼/电动自行车", "工贸企业", "燃气场所"} <= {
        s["name_zh"] for s in tax["scenes"]
    }
    hazards = {h["id"]: h for h in tax["hazards"]}
    assert hazards["FIRE-001"]["detectable"] is True  # the tiny model has a fire class
    assert any(not h["detectable"] for h in hazards.values())  # e.g. blocked exits: no class in the tiny model
    first = tax["severities"][0]
    assert (first["id"], first["name_zh"], first["deadline_days"]) == ("critical", "重大", 0)


def test_the_login_throttle_answers_429_with_retry_after(app_server: AppServer):
    with httpx.Client(base_url=app_server.base_url) as c:
        codes = [c.post("/app/api/login", json={"username": "insp_b", "password": "x"}).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        r = c.post("/app/api/login", json={"username": "insp_b", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "密码错误次数过多" in r.text


def test_a_user_changes_their_password_and_an_admin_disables_a_user(app_server: AppServer):
    admin = app_server.client("admin")
    made = admin.post("/app/api/users", json={"username": "hana", "password": "first password", "role": "inspector"})
    assert made.status_code == 201 and made.json()["active"] is True, made.text
    hana_id = made.json()["id"]

    def login(password: str) -> httpx.Client:
        c = httpx.Client(base_url=app_server.base_url)
        r = c.post("/app/api/login", json={"username": "hana", "password": password})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c

    phone, laptop = login("first password"), login("first password")
    wrong = phone.post("/app/api/me/password", json={"current_password": "nope", "new_password": "second password"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_password"
    short = phone.post("/app/api/me/password", json={"current_password": "first password", "new_password": "short"})
    assert short.status_code == 422
    done = phone.post("/app/api/me/password", json={"current_password": "first password", "new_password": "2nd pass"})
    assert done.status_code == 204, done.text
    assert phone.get("/app/api/me").status_code == 200  # this phone stays logged in
    assert laptop.get("/app/api/me").status_code == 401  # the other session ended
    fresh = login("2nd pass")

    insp = app_server.client("inspector")
    assert insp.patch(f"/app/api/users/{hana_id}", json={"active": False}).status_code == 403
    accounts = Accounts(Database(app_server.database_url))
    accounts.add_user("admin_b2", PASSWORD, "admin", accounts.ensure_org(app_fixtures.ORG_B))
    other_org = httpx.Client(base_url=app_server.base_url)
    token = other_org.post("/app/api/login", json={"username": "admin_b2", "password": PASSWORD}).json()["csrf_token"]
    other_org.headers["X-CSRF-Token"] = token
    assert other_org.patch(f"/app/api/users/{hana_id}", json={"active": False}).status_code == 404
    me = admin.get("/app/api/me").json()["user"]["id"]
    assert admin.patch(f"/app/api/users/{me}", json={"active": False}).status_code == 422
    assert admin.patch("/app/api/users/nobody", json={"active": False}).status_code == 404
    off = admin.patch(f"/app/api/users/{hana_id}", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False, off.text
    assert phone.get("/app/api/me").status_code == 401 and fresh.get("/app/api/me").status_code == 401
    assert hana_id not in {u["id"] for u in admin.get("/app/api/users").json()["items"]}  # not offered to assign
    listed = admin.get("/app/api/users", params={"inactive": "true"}).json()["items"]
    assert {u["id"]: u["active"] for u in listed}[hana_id] is False
    assert app_server.client("supervisor").get("/app/api/users", params={"inactive": "true"}).status_code == 403
    back = admin.patch(f"/app/api/users/{hana_id}", json={"active": True, "password": "third password"})
    assert back.status_code == 200 and back.json()["active"] is True
    login("third password")
