"""Typed dependencies of the app's routes: the context, the logged-in session (cookie), CSRF, roles.

Plain ``def``: they read the database, so FastAPI runs them in its thread pool."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

import anyio.from_thread
from fastapi import Depends, Request

from inference_service.accounts import Session, User
from inference_service.api.routes import admitted_scan
from inference_service.api.state import ServiceState
from inference_service.app.context import AppContext
from inference_service.app.errors import AppError
from inference_service.scan import Scanner, ScanOptions, ScanResult
from inference_service.taxonomy import Taxonomy, load_taxonomy

COOKIE = "hazardscan_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_STATE = "app_session"  # request.state key of a session already looked up (by LoginFirstMiddleware)


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext | None = getattr(request.app.state, "app_ctx", None)
    if ctx is None:
        reason = request.app.state.service.app_storage_reason or "the app's storage is not open"
        raise AppError(503, "storage_unavailable", reason, f"记录库不可用：{reason}")
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


def get_session(request: Request, ctx: CtxDep) -> Session:
    """The logged-in session; on writes also the matching ``X-CSRF-Token`` header."""
    session = getattr(request.state, SESSION_STATE, None) or ctx.accounts.session(request.cookies.get(COOKIE, ""))
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


@dataclass(frozen=True)
class GatedScanner:
    """The model through the service's gate, for the app's photo uploads: they wait in the same queue and slots as
    the API's photos, and a crowd of them is refused with 503 and ``Retry-After`` (the app's upload queue tries
    again), instead of running side by side with no bound and slowing every other route."""

    scanner: Scanner
    request: Request

    def scan(self, data: bytes, options: ScanOptions) -> ScanResult:
        """Called in one of FastAPI's worker threads (the routes are plain ``def``); the gate lives in the loop."""
        state: ServiceState = self.request.app.state.service
        return anyio.from_thread.run(admitted_scan, self.request, state, self.scanner, options, data)


def get_gated_scanner(request: Request, scanner: ScannerDep) -> GatedScanner:
    return GatedScanner(scanner, request)


GatedScannerDep = Annotated[GatedScanner, Depends(get_gated_scanner)]


def get_taxonomy(request: Request) -> Taxonomy:
    state: ServiceState = request.app.state.service
    if state.scanner is not None:
        return state.scanner.taxonomy
    return load_taxonomy(state.settings.taxonomy_path)


TaxonomyDep = Annotated[Taxonomy, Depends(get_taxonomy)]
