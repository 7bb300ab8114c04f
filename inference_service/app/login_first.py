"""Uploads to the app from someone not logged in are refused before their body is read.

The app's routes check the session in a dependency, which FastAPI solves only after it has read and parsed the
whole multipart form: anyone who could reach the port could make the server take in a full-size upload per request
without logging in. The /v1 API refuses a request without a key the same way (``ApiKeyMiddleware``).
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
        token = cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
        session = await anyio.to_thread.run_sync(ctx.accounts.session, token) if token else None
        if session is not None:
            scope.setdefault("state", {})[SESSION_STATE] = session  # the route's dependency takes it from here
            await self.app(scope, receive, send)
            return
        zh = language(headers.get("accept-language"), default="zh") != "en"
        body = error_body(_NOT_LOGGED_IN.code, _NOT_LOGGED_IN.zh if zh else _NOT_LOGGED_IN.en)
        response = JSONResponse(body, status_code=401)
        if declares_body(scope):  # the kernel drops the rest of the upload (see api.errors.refusal)
            response.headers["Connection"] = "close"
        await response(scope, receive, send)
