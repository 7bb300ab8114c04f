"""The inspector app under /app: JSON API (/app/api/*), printable documents, and the static SPA.

``create_app`` calls :func:`install` to add the routes and :func:`open_storage` / :func:`close_storage`
in its lifespan. The app's routes use cookie sessions with CSRF tokens, never the /v1 API keys.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from inference_service.api.settings import Settings
from inference_service.app.errors import AppError, handle_app_error
from inference_service.app.report_path import is_report_upload
from inference_service.app.static_files import CompressedStaticFiles

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
UPLOAD_SUFFIXES = ("/photos", "/rectification")


def install(app: FastAPI) -> None:
    from inference_service.app import (
        api_auth,
        api_documents,
        api_events,
        api_ledger,
        api_records,
        api_reports,
        api_stats,
    )

    app.add_exception_handler(AppError, handle_app_error)
    for module in (api_auth, api_records, api_ledger, api_documents, api_stats, api_events, api_reports):
        app.include_router(module.router)

    @app.get("/app", include_in_schema=False)
    async def app_root() -> RedirectResponse:
        return RedirectResponse("/app/")

    app.mount("/app", CompressedStaticFiles(directory=STATIC, html=True, check_dir=False), name="app-static")


def upload_limit(path: str, settings: Settings) -> int | None:
    """The photo limit for the app's upload routes (None: not an upload route)."""
    if (path.startswith("/app/api/") and path.endswith(UPLOAD_SUFFIXES)) or is_report_upload(path):
        return settings.max_upload_bytes
    return None


def open_storage(app: FastAPI, settings: Settings) -> None:
    """Open the database once at start-up; on failure the app's routes answer 503 with the reason."""
    from inference_service.app.context import open_context

    service = app.state.service
    try:
        app.state.app_ctx = open_context(settings)
        service.app_storage_reason = None
    except Exception:
        app.state.app_ctx = None
        # shown to clients and in /readyz: no paths, no library internals (the log has them)
        service.app_storage_reason = (
            "the inspector app's database cannot be opened or brought to this version's schema; see the server log"
        )
        logger.exception("the inspector app's storage could not be opened")


def close_storage(app: FastAPI) -> None:
    ctx = getattr(app.state, "app_ctx", None)
    if ctx is not None:
        ctx.close()
