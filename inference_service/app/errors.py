"""The app's 4xx errors: ``{"error": {"code", "message"}}`` in 中文 or English per ``Accept-Language``."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from inference_service.api.errors import error_body
from inference_service.api.messages import language


class AppError(Exception):
    def __init__(
        self, status: int, code: str, en: str, zh: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status, self.code, self.en, self.zh, self.headers = status, code, en, zh or en, headers
        super().__init__(en)


def not_found(what: str, what_zh: str) -> AppError:
    return AppError(404, "not_found", f"no such {what} in your organisation", f"本单位没有该{what_zh}")


def conflict(en: str, zh: str | None = None) -> AppError:
    return AppError(409, "conflict", en, zh)


def wants_english(request: Request) -> bool:
    """English when the client ranks it above Chinese (q-values count); 中文 otherwise, the app's default."""
    return language(request.headers.get("accept-language"), default="zh") == "en"


async def handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    message = exc.en if wants_english(request) else exc.zh
    return JSONResponse(error_body(exc.code, message), status_code=exc.status, headers=exc.headers)
