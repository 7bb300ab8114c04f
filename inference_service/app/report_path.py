"""The public report routes' paths, for the middleware that runs before any route (no imports of the routes)."""

from __future__ import annotations

REPORT_UPLOAD = "/app/api/report"
PUBLIC_PAGE = "/app/report/"
LINK_GONE = ("this report link does not exist or was withdrawn", "该举报链接不存在或已停用")  # 404


def report_token(path: str) -> str | None:
    """The token of ``POST /app/api/report/{token}`` (a photo from someone without an account); None for any
    other path."""
    head, _, token = path.rpartition("/")
    return token if head == REPORT_UPLOAD and token else None


def is_report_upload(path: str) -> bool:
    return report_token(path) is not None


def report_link_path(token: str) -> str:
    """The public reporting page of a link: the token after ``#`` never reaches a server's access log."""
    return f"{PUBLIC_PAGE}#{token}"
