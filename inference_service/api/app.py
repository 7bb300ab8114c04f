"""The FastAPI application factory.

Run it with ``hazardscan serve`` or ``uvicorn --factory inference_service.api.app:create_app``.
The model loads in the lifespan; if it cannot, the app still starts, ``/healthz`` answers 200 and
``/readyz`` and ``/v1/detect`` answer 503 with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.formparsers import MultiPartParser
from starlette.types import Scope

from inference_service.api.admission import AdmissionMiddleware, BodyBudget
from inference_service.api.auth import ApiKeyMiddleware, parse_routes
from inference_service.api.docs import install_docs
from inference_service.api.errors import install_error_handlers
from inference_service.api.middleware import BodyLimitMiddleware, BodyTimeoutMiddleware, MetricsMiddleware
from inference_service.api.routes import router
from inference_service.api.server import (
    freeze_startup_heap,
    prompt_gil_handoff,
    single_thread_opencv,
    thaw_heap,
    tune_malloc,
)
from inference_service.api.settings import MB, Settings, get_settings
from inference_service.api.state import ServiceState
from inference_service.api.uploads import install as install_part_buffers
from inference_service.api.uploads import sends_form
from inference_service.app import close_storage, install, open_storage, upload_limit
from inference_service.app.login_first import LoginFirstMiddleware
from inference_service.cctv.api import router as events_router

logger = logging.getLogger(__name__)
FORM_OVERHEAD = 1024 * 1024  # multipart boundaries and option fields on top of the photo itself


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    tune_malloc()  # before the thread pool makes its arenas
    single_thread_opencv()  # its spinning workers would take cores from the session
    prompt_gil_handoff(settings.gil_switch_ms)  # the event loop gets the GIL back sooner from the workers
    # Keep uploads up to the photo limit in memory: a disk-backed spool file costs a thread-pool hop per
    # 64 KiB chunk, and the handler reads the photo into memory anyway.
    # Uploads never touch the disk (a part over the limit was written to /tmp before being refused): the
    # admission middleware bounds the memory of all bodies in flight instead (upload_memory_mb).
    MultiPartParser.spool_max_size = max(
        MultiPartParser.spool_max_size, settings.max_upload_bytes + 1, settings.max_batch_bytes + FORM_OVERHEAD
    )
    install_part_buffers()  # file parts as a list of chunks, joined once: not a BytesIO regrown 30 times
    state = ServiceState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.gate.bind()
        await anyio.to_thread.run_sync(state.load)
        if settings.app_enabled:  # the inspector app's database and photo folder, opened once
            await anyio.to_thread.run_sync(open_storage, app, settings)
        logger.info("%d start-up objects left out of full garbage collections", freeze_startup_heap())
        yield
        thaw_heap()
        if settings.app_enabled:
            close_storage(app)
        state.close()

    app = FastAPI(
        title="hazardscan",
        summary="Photo hazard detection (拍图识隐患) for workplace safety inspection",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from the installed package (no CDN)
        redoc_url=None,
    )
    app.state.service = state
    install_error_handlers(app)
    install_docs(app)
    app.include_router(router)
    app.include_router(events_router)  # CCTV events written by `hazardscan scan` (HAZARDSCAN_EVENTS_DB)
    if settings.app_enabled:
        install(app)  # the inspector app: /app (static SPA), /app/api/* (cookie sessions + CSRF)

    def body_limit(scope: Scope) -> int:
        path = scope["path"]
        if path == "/v1/detect":  # the photo as the body itself, or in a form
            return settings.max_upload_bytes + (FORM_OVERHEAD if sends_form(scope) else 0)
        if path == "/v1/detect/batch":
            return settings.max_batch_bytes + FORM_OVERHEAD
        photo_limit = upload_limit(path, settings)
        if photo_limit is not None:
            return photo_limit + FORM_OVERHEAD
        return FORM_OVERHEAD

    known = frozenset(getattr(r, "path", "") for r in app.routes)
    # Outermost last: metrics see everything; admission refuses before any body is read or timed.
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.body_timeout_s)
    app.add_middleware(
        AdmissionMiddleware,
        gate=state.gate,
        gated=lambda path: path.startswith("/v1/detect"),
        bodies=BodyBudget(max(settings.upload_memory_mb * MB, settings.max_batch_bytes + FORM_OVERHEAD), state.metrics),
        limit_for=body_limit,
    )
    if settings.app_enabled:  # the app's uploads from no one are refused before their body is read or charged
        app.add_middleware(LoginFirstMiddleware, is_upload=lambda path: upload_limit(path, settings) is not None)
    app.add_middleware(ApiKeyMiddleware, state=state, public=parse_routes(settings.public_routes))
    if settings.cors_origins:  # closed by default: no CORS headers, browsers keep other origins out
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(parse_routes(settings.cors_origins)),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept-Language"],
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, known_paths=known)
    return app
