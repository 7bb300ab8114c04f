"""我的: 修改密码 for every user, 用户管理 for admins (list, add, 停用 / 启用, 重置密码).

Each test makes its own users (the admin adds them through the API), so that no other test's login changes and the
login throttle (5 wrong passwords per username) is never shared. Debian's chromium at 360×640 against a real server
(tests/app_fixtures.py).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from app_fixtures import PASSWORD, AppServer
from browser_helpers import expect
from test_app_a11y import CHECK
from test_app_ux_fixes import shot


def new_user(app_server: AppServer, display: str, role: str = "inspector", password: str = PASSWORD) -> str:
    """A fresh user of org A (the admin adds it); its username."""
    username = f"u_{uuid.uuid4().hex[:10]}"
    r = app_server.client("admin").post(
        "/app/api/users", json={"username": username, "password": password, "role": role, "display_name": display}
    )
    r.raise_for_status()
    return username


def log_in(page: Any, app_server: AppServer, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{app_server.base_url}/app/#/login")
    page.fill("#u", username)
    page.fill("#p", password)
    page.click("form button[type=submit]")
    expect(page.locator("#nav")).to_be_visible()


def change(page: Any, current: str, new: str, again: str) -> None:
    page.fill("#pw-cur", current)
    page.fill("#pw-new", new)
    page.fill("#pw-rep", again)
    page.locator("#password").get_by_role("button", name="修改密码").click()


def test_a_user_changes_the_password_with_clear_errors(app_server: AppServer, phone: Any) -> None:
    """我的 → 修改密码: a wrong current password, a short or mismatched new one and the throttle each say so; success
    says so, the other phone is logged out, and the new password logs in."""
    username = new_user(app_server, "孙改密")
    other = phone()
    log_in(other, app_server, username)
    page = phone()
    log_in(page, app_server, username)
    page.click("#nav a[href='#/me']")
    page.locator("#password > summary").click()
    form = page.locator("#password")
    expect(form).to_contain_text("修改后，你在其他手机上的登录会退出")
    err = form.locator(".err")
    change(page, PASSWORD, "short", "short")
    expect(err).to_have_text("新密码至少要 8 个字符")
    expect(page.locator("#pw-new")).to_have_attribute("aria-invalid", "true")
    change(page, PASSWORD, "new-password-1", "new-password-2")
    expect(err).to_have_text("两次输入的新密码不一致")
    expect(page.locator("#pw-rep")).to_have_attribute("aria-invalid", "true")
    change(page, "not-my-password", "new-password-1", "new-password-1")
    expect(err).to_have_text("当前密码不正确")
    expect(page.locator("#pw-cur")).to_be_focused()
    shot(page, "acct-password-wrong")

    page.route(  # the server's throttle after too many wrong passwords (tested against the API elsewhere)
        "**/app/api/me/password",
        lambda r: r.fulfill(
            status=429,
            headers={"Retry-After": "840"},
            content_type="application/json",
            body=json.dumps({"error": {"code": "too_many_attempts", "message": "密码错误次数过多，请 14 分钟后再试"}}),
        ),
    )
    change(page, "not-my-password", "new-password-1", "new-password-1")
    expect(err).to_have_text("密码错误次数过多，请约 14 分钟后再试")
    page.unroute("**/app/api/me/password")

    change(page, PASSWORD, "new-password-1", "new-password-1")
    expect(form.locator(".ok-msg")).to_have_text("密码已修改。其他手机上的登录已退出，请在那里用新密码重新登录。")
    expect(err).to_have_text("")
    expect(page.locator("#pw-cur")).to_have_value("")
    shot(page, "acct-password-done")
    other.click("#nav a[href='#/ledger']")  # the other phone's session has ended
    expect(other.locator("#p")).to_be_visible()
    page.click("#nav a[href='#/ledger']")  # this one stays
    expect(page.locator("h1")).to_have_text("隐患台账")
    log_in(other, app_server, username, "new-password-1")
    assert page.errors == [] and other.errors == []


def test_an_admin_manages_the_users_of_the_organisation(app_server: AppServer, phone: Any) -> None:
    """用户管理: the users listed (the admin's own row without 停用), a user added, disabled after a confirmation
    (cancel changes nothing; the user's phone is logged out, login refused), enabled again, a password reset."""
    worker = new_user(app_server, "周停用")
    phone_of_worker = phone()
    log_in(phone_of_worker, app_server, worker)
    admin = phone()
    log_in(admin, app_server, "admin_a")
    admin.click("#nav a[href='#/me']")
    users = admin.locator("#users")
    expect(users.locator("[data-user=insp_a]")).to_contain_text("张检查")
    expect(users.locator("[data-user=insp_a]")).to_contain_text("检查员")
    me = users.locator("[data-user=admin_a]")
    expect(me).to_contain_text("王管理（我）")
    expect(me.locator("[data-act=disable]")).to_have_count(0)
    expect(users.locator("[data-user=insp_b]")).to_have_count(0)  # another organisation's

    added = f"u_{uuid.uuid4().hex[:10]}"
    admin.fill("#nu", added)
    admin.fill("#nd", "吴新人")
    admin.fill("#np", "a-long-password-1")
    admin.select_option("#nr", "supervisor")
    admin.get_by_role("button", name="添加用户").click()
    expect(users.locator(f"[data-user={added}]")).to_contain_text("吴新人")
    expect(users.locator(f"[data-user={added}]")).to_contain_text("主管")

    row = users.locator(f"[data-user={worker}]")
    admin.once("dialog", lambda d: d.dismiss())
    row.get_by_role("button", name="停用").click()
    expect(row).to_have_attribute("data-active", "true")
    prompts: list[str] = []

    def accept(d: Any) -> None:
        prompts.append(d.message)
        d.accept()

    admin.once("dialog", accept)
    row.get_by_role("button", name="停用").click()
    expect(row).to_have_attribute("data-active", "false")
    expect(row).to_contain_text("已停用")
    expect(row.locator(".ok-msg")).to_have_text("已停用“周停用”")
    assert prompts == ["停用“周停用”？停用后此人不能登录，已登录的手机会立即退出。"]
    row.scroll_into_view_if_needed()
    shot(admin, "acct-users-disabled")
    phone_of_worker.click("#nav a[href='#/ledger']")
    expect(phone_of_worker.locator("#p")).to_be_visible()
    phone_of_worker.fill("#u", worker)
    phone_of_worker.fill("#p", PASSWORD)
    phone_of_worker.click("form button[type=submit]")
    expect(phone_of_worker.locator("form .err")).not_to_be_empty()
    expect(phone_of_worker.locator("#nav")).to_be_hidden()

    admin.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="启用").click()
    expect(row).to_have_attribute("data-active", "true")
    expect(row).not_to_contain_text("已停用")
    row.locator("details.reset > summary").click()
    row.locator("input[type=password]").fill("short")
    row.get_by_role("button", name="保存").click()
    expect(row.locator(".err")).to_have_text("新密码至少要 8 个字符")
    row.locator("input[type=password]").fill("reset-password-9")
    row.get_by_role("button", name="保存").click()
    expect(row.locator(".ok-msg")).to_have_text("已为“周停用”设置新密码，此人所有手机上的登录已退出。")
    shot(admin, "acct-users-reset")
    log_in(phone_of_worker, app_server, worker, "reset-password-9")
    admin.reload()
    expect(users.locator(f"[data-user={worker}]")).to_be_visible()
    users.locator("h2").scroll_into_view_if_needed()
    shot(admin, "acct-users-list")
    admin.locator("#password > summary").click()  # labelled fields, 44 px targets, contrast, no sideways scroll
    users.locator(f"[data-user={worker}] details.reset > summary").click()
    assert admin.evaluate(CHECK) == []
    assert admin.errors == [] and phone_of_worker.errors == []
