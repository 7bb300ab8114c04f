"""The one table from exceptions to HTTP errors. Every error body is
``{"error": {"code": "...", "message": "..."}}``."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from inference_service.api.messages import localize
from inference_service.budget import BudgetBusyError
from inference_service.imaging import ImageTooLargeError, ImageTooSmallError, InvalidImageError, UnsupportedImageError
from inference_service.runtime import UnknownClassError
from inference_service.scan import BatchTooLargeError
from inference_service.storage import DiskFullError, StorageError, is_disk_full
from inference_service.taxonomy import UnknownSceneError

logger = logging.getLogger(__name__)

RETRY_AFTER_BUSY_S = 1  # a full queue drains in about a second at the service's photo rate
RETRY_AFTER_DISK_FULL_S = 60  # someone has to free space first


class ApiError(Exception):
    """An error the API raises itself; the message is shown to the client."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class PayloadTooLargeError(ApiError):
    pass


class TooManyFilesError(ApiError):
    pass


class UnsupportedBodyTypeError(ApiError):
    """A request body whose ``Content-Type`` is neither a photo nor a multipart form."""


class ModelNotReadyError(ApiError):
    pass


class ServiceUnavailableError(ApiError):
    """A part the route needs (e.g. the events store) is not available; the client may retry later."""


class ServerBusyError(ApiError):
    """Every model slot and queue place is taken; refused before the body was read."""


class ClientGoneError(ApiError):
    """The client disconnected while its request waited; nothing was run for it."""


class BodyTimeoutError(ApiError):
    """The request body stalled."""


class UnauthorizedError(ApiError):
    """No API key, or one that is unknown or revoked."""


class ForbiddenError(ApiError):
    """The API key lacks the scope the route needs."""


class RateLimitedError(ApiError):
    """The API key's rate limit is spent; ``retry_after`` seconds until the next request may go."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidQueryError(ApiError):
    """A query value that parses but is out of range (a time before 1970, an offset past any table)."""


# Most specific first: the first row whose type matches wins.
ERROR_TABLE: tuple[tuple[type[Exception], int, str], ...] = (
    (DiskFullError, 507, "insufficient_storage"),
    (UnsupportedImageError, 415, "unsupported_media_type"),
    (BatchTooLargeError, 413, "batch_too_large"),
    (InvalidImageError, 400, "invalid_image"),
    (ImageTooLargeError, 413, "image_too_large"),
    (ImageTooSmallError, 422, "image_too_small"),
    (BudgetBusyError, 503, "server_busy"),
    (ServerBusyError, 503, "server_busy"),
    (ClientGoneError, 499, "client_closed_request"),
    (BodyTimeoutError, 408, "request_timeout"),
    (PayloadTooLargeError, 413, "payload_too_large"),
    (UnsupportedBodyTypeError, 415, "unsupported_media_type"),
    (TooManyFilesError, 413, "too_many_files"),
    (ModelNotReadyError, 503, "model_not_ready"),
    (ServiceUnavailableError, 503, "service_unavailable"),
    (StorageError, 503, "storage_unavailable"),
    (sqlite3.Error, 503, "storage_unavailable"),
    (InvalidQueryError, 422, "validation_error"),
    (UnauthorizedError, 401, "unauthorized"),
    (ForbiddenError, 403, "forbidden"),
    (RateLimitedError, 429, "rate_limited"),
    (UnknownClassError, 422, "unknown_class"),
    (UnknownSceneError, 422, "unknown_scene"),
    (RequestValidationError, 422, "validation_error"),
)

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        name = loc[-1] if loc else "request"
        if err.get("type") == "missing" and loc[:1] == ["body"]:
            parts.append(f"missing multipart/form-data field '{name}'")
        else:
            parts.append(f"{'.'.join(loc[1:]) or name}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def describe(exc: Exception) -> tuple[int, str, str]:
    """``(status, code, message)`` for any exception; unknown ones are a 500 without internals."""
    if is_disk_full(exc):  # a write failed for want of room, whichever layer raised it: nothing was stored
        return 507, DiskFullError.code, DiskFullError.message
    for exc_type, status, code in ERROR_TABLE:
        if isinstance(exc, exc_type):
            if isinstance(exc, RequestValidationError):
                return status, code, _validation_message(exc)
            if isinstance(exc, StorageError | sqlite3.Error):  # its text names files and drivers: logged, not shown
                return status, code, "the database is not available; retry later"
            return status, code, getattr(exc, "message", None) or str(exc)
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail)
    return 500, "internal_error", "internal error; the incident was logged"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(exc: Exception, accept_language: str | None = None) -> JSONResponse:
    """The JSON error for ``exc``; its message in Chinese when ``accept_language`` prefers it."""
    status, code, message = describe(exc)
    message = localize(code, message, accept_language)
    if status == 507:
        logger.warning("refused a write, the disk is full: %s", exc.__cause__ or exc)
    elif status >= 500 and status != 503:
        logger.error("unhandled error", exc_info=exc)
    elif status == 503 and not isinstance(exc, ApiError):
        logger.warning("503 %s: %s", code, exc)
    headers = {"Retry-After": str(RETRY_AFTER_BUSY_S if code == "server_busy" else 5)} if status == 503 else {}
    if status == 507:
        headers["Retry-After"] = str(RETRY_AFTER_DISK_FULL_S)
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, UnauthorizedError):
        headers["WWW-Authenticate"] = 'Bearer realm="hazardscan"'
    return JSONResponse(error_body(code, message), status_code=status, headers=headers or None)


def declares_body(scope: Scope) -> bool:
    """Whether the request announces a body still to come (``Content-Length`` above 0, or chunked)."""
    headers = Headers(scope=scope)
    length = headers.get("content-length")
    return (length is not None and length.strip() not in ("", "0")) or "transfer-encoding" in headers


def refusal(exc: Exception, scope: Scope) -> JSONResponse:
    """The error for a request refused before its body was read (busy, too large, no key).

    When a body is on its way the answer also closes the connection. Kept alive, the server would have to
    read and throw away the whole body to find the next request, in the event loop: a crowd retrying 20 MB
    uploads that are each refused at once kept the loop busy reading them, and ``/healthz`` waited behind.
    Closed, the kernel drops the rest; the client still reads the answer (httpx and curl do: the answer
    comes before the reset).
    """
    response = error_response(exc, Headers(scope=scope).get("accept-language"))
    if declares_body(scope):
        response.headers["Connection"] = "close"
    return response


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc, request.headers.get("accept-language"))


def install_error_handlers(app: FastAPI) -> None:
    for exc_type, _, _ in ERROR_TABLE:
        app.add_exception_handler(exc_type, _handle)
    app.add_exception_handler(StarletteHTTPException, _handle)
    app.add_exception_handler(Exception, _handle)
