"""Uploads to the app from someone not logged in are refused before their body is read.

The app's routes check the session in a dependency, which FastAPI solves only after it has read and parsed the
whole multipart form: anyone who could reach the port could make the server take in a full-size upload per request
without logging in. The /v1 API refuses a request without a key the same way (``ApiKeyMiddleware``). A public
report (``POST /app/api/report/{token}``) needs no login; its link is its key, and an unknown or revoked one is
refused the same way (404).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from inference_service.api.errors import declares_body, error_body
from inference_service.api.messages import language
from inference_service.app.deps import COOKIE, SESSION_STATE
from inference_service.app.errors import AppError
from inference_service.app.report_path import LINK_GONE, report_token

_NOT_LOGGED_IN = AppError(401, "not_logged_in", "log in first", "请先登录")


class LoginFirstMiddleware:
    def __init__(self, app: ASGIApp, is_upload: Callable[[str], bool]) -> None:
        self.app = app
        self.is_upload = is_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not self.is_upload(scope["path"]):
            await self.app(scope, receive, send)
            return
        ctx = getattr(scope["app"].state, "app_ctx", None)
        if ctx is None:  # the route answers 503 with the reason
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        link_token = report_token(scope["path"])
        if link_token is not None:  # a public report: the link is the key, checked before the photo is read
            if await anyio.to_thread.run_sync(ctx.reports.active_link, link_token) is not None:
                await self.app(scope, receive, send)
                return
            refused, status = AppError(404, "not_found", *LINK_GONE), 404
        else:
            token = cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
            session = await anyio.to_thread.run_sync(ctx.accounts.session, token) if token else None
            if session is not None:
                scope.setdefault("state", {})[SESSION_STATE] = session  # the route's dependency takes it from here
                await self.app(scope, receive, send)
                return
            refused, status = _NOT_LOGGED_IN, 401
        zh = language(headers.get("accept-language"), default="zh") != "en"
        body = error_body(refused.code, refused.zh if zh else refused.en)
        response = JSONResponse(body, status_code=status)
        if declares_body(scope):  # the kernel drops the rest of the upload (see api.errors.refusal)
            response.headers["Connection"] = "close"
        await response(scope, receive, send)
