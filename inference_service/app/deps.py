"""Typed dependencies of the app's routes: the context, the logged-in session (cookie), CSRF, roles.

Plain ``def``: they read the database, so FastAPI runs them in its thread pool."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from inference_service.accounts import Session, User
from inference_service.api.state import ServiceState
from inference_service.app.context import AppContext
from inference_service.app.errors import AppError
from inference_service.scan import Scanner
from inference_service.taxonomy import Taxonomy, load_taxonomy

COOKIE = "hazardscan_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext | None = getattr(request.app.state, "app_ctx", None)
    if ctx is None:
        reason = request.app.state.service.app_storage_reason or "the app's storage is not open"
        raise AppError(503, "storage_unavailable", reason, f"记录库不可用：{reason}")
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(request: Request, ctx: CtxDep) -> Session:
    """The logged-in session; on writes also the matching ``X-CSRF-Token`` header."""
    session = ctx.accounts.session(request.cookies.get(COOKIE, ""))
    if session is None:
        raise AppError(401, "not_logged_in", "log in first", "请先登录")
    if request.method in UNSAFE:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, session.csrf_token):
            raise AppError(
                403,
                "csrf_failed",
                f"missing or stale {CSRF_HEADER} header; reload the page (GET /app/api/me gives the token)",
                "安全校验失败（CSRF 令牌缺失或已过期），请刷新页面后重试",
            )
    return session


SessionDep = Annotated[Session, Depends(get_session)]


def get_user(session: SessionDep) -> User:
    return session.user


UserDep = Annotated[User, Depends(get_user)]


def require(user: User, role: str, what: str) -> None:
    if not user.can(role):  # type: ignore[arg-type]
        raise AppError(403, "forbidden", f"{what} needs the {role} role", f"需要{_ROLE_ZH[role]}权限：{what}")


_ROLE_ZH = {"inspector": "检查员", "supervisor": "主管", "admin": "管理员"}


def get_scanner(request: Request) -> Scanner:
    state: ServiceState = request.app.state.service
    if state.scanner is None:
        raise AppError(
            503, "model_not_ready", f"the model is not ready: {state.reason}", f"模型尚未就绪：{state.reason}"
        )
    return state.scanner


ScannerDep = Annotated[Scanner, Depends(get_scanner)]


def get_taxonomy(request: Request) -> Taxonomy:
    state: ServiceState = request.app.state.service
    if state.scanner is not None:
        return state.scanner.taxonomy
    return load_taxonomy(state.settings.taxonomy_path)


TaxonomyDep = Annotated[Taxonomy, Depends(get_taxonomy)]
