"""HTTP routes. The model routes read the upload in the event loop, then, in worker threads: decode it (in a
decode slot), run the model (in a model slot, the session alone) and finish (hazards, evidence) in neither."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import Match
from starlette.types import Scope

from inference_service.api.admission import DecodeRates, ModelGate
from inference_service.api.deps import MetricsDep, OptionsDep, ScannerDep, StateDep, body_query, ready_scanner
from inference_service.api.errors import (
    RETRY_AFTER_BUSY_S,
    ApiError,
    PayloadTooLargeError,
    ServerBusyError,
    TooManyFilesError,
    UnsupportedBodyTypeError,
    describe,
    error_body,
    refusal,
)
from inference_service.api.negotiation import Format, wants_jpeg
from inference_service.api.schemas import (
    BatchItem,
    BatchResponse,
    ComponentState,
    DetectResponse,
    ErrorInfo,
    ErrorResponse,
    Health,
    ModelInfo,
    ModelView,
    Readiness,
)
from inference_service.api.state import ServiceState
from inference_service.api.uploads import RAW_PHOTO_TYPES, is_raw_photo_type, media_type, sends_form
from inference_service.budget import BudgetBusyError
from inference_service.imaging import SUPPORTED_HUMAN, ImageError, photo_header
from inference_service.scan import CHUNK, Pending, Scanner, ScanOptions, ScanResult

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 408, 413, 415, 422, 429, 503)
}


def check_size(upload: UploadFile, limit: int) -> None:
    """Refuse an upload over ``limit`` bytes from its recorded size, without reading it."""
    if upload.size is not None and upload.size > limit:
        name = upload.filename or "photo"
        raise PayloadTooLargeError(f"{name} is {upload.size:,} bytes; the limit is {limit:,} bytes")


def read_file(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes (a copy of the in-memory part), refusing more than ``limit``. Blocking: in a worker
    thread, a 20 MB copy never holds up the event loop."""
    check_size(upload, limit)
    upload.file.seek(0)
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"{upload.filename or 'photo'} is larger than the {limit:,}-byte limit")
    return data


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes, refusing more than ``limit`` without reading them all."""
    check_size(upload, limit)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"{upload.filename or 'photo'} is larger than the {limit:,}-byte limit")
    return data


_FORMAT = "json (default) or jpeg: the evidence JPEG itself, as `Accept: image/jpeg` also asks"
DETECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {
        "description": "the hazards as JSON; or, for `?format=jpeg` or `Accept: image/jpeg`, the evidence JPEG "
        "(boxes and labels drawn) with the hazard ids in the `X-Hazardscan-Hazards` header (those raised as alarms, "
        "not suspected and not on a doubtful photo, in `X-Hazardscan-Alarms`)",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    },
}


def evidence_headers(scan: ScanResult, model: ModelInfo) -> dict[str, str]:
    """What the JSON would have said, in brief, for a client that asked for the evidence JPEG."""
    return {
        "X-Hazardscan-Hazards": ",".join(f.hazard_id for f in scan.findings),
        "X-Hazardscan-Alarms": ",".join(f.hazard_id for f in scan.findings if not (scan.unconfirmed or f.suspected)),
        "X-Hazardscan-Warnings": ",".join(w.code for w in scan.warnings),
        "X-Hazardscan-Model": f"{model.id} {model.version}",
    }


class PhotoBodyRoute(APIRoute):
    """``POST /v1/detect`` for a request that is not a multipart form: the photo as the body itself (or a body of
    a type the route does not take: 415). Forms, and requests without a ``Content-Type``, go on to the form route.

    Its endpoint takes the request alone and answers a ``Response``: the form route documents both ways of sending
    a photo, and this one reads its few query parameters itself (``deps.body_query``), sparing the event loop
    FastAPI's dependency solving and response validation on every photo."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and sends_form(scope):
            return Match.NONE, {}
        return match, child


_RAW_TYPES_HUMAN = ", ".join(RAW_PHOTO_TYPES[:-1]) + " or " + RAW_PHOTO_TYPES[-1]
_PHOTO_BODY: dict[str, Any] = {"type": "string", "format": "binary", "description": "the photo's bytes"}
# The one operation in the schema documents both ways of sending a photo.
DETECT_OPENAPI: dict[str, Any] = {
    "requestBody": {"content": {media: {"schema": _PHOTO_BODY} for media in RAW_PHOTO_TYPES}}
}


async def detect_body(request: Request) -> Response:
    """The photo as the request body (``Content-Type: image/jpeg`` and the like), options in the query string."""
    state: ServiceState = request.app.state.service
    scanner = ready_scanner(state)
    options, fmt = body_query(request.query_params)
    kind = request.headers.get("content-type")
    if not is_raw_photo_type(kind):
        state.metrics.observe_rejected()
        wrong = UnsupportedBodyTypeError(
            f"Content-Type {media_type(kind)!r} is not a photo; send the photo as the request body with "
            f"Content-Type {_RAW_TYPES_HUMAN}, or as the multipart/form-data field 'photo'"
        )
        return refusal(wrong, request.scope)  # the body is never read: the connection closes
    chunks = [chunk async for chunk in request.stream() if chunk]  # the body limit is counted as it streams
    answer = await run_detect(request, scanner, options, state, fmt, functools.partial(b"".join, chunks))
    if isinstance(answer, DetectResponse):
        return Response(answer.model_dump_json(by_alias=True), media_type="application/json")
    return answer


router.add_api_route(
    "/v1/detect",
    detect_body,
    methods=["POST"],
    response_model=None,
    include_in_schema=False,
    route_class_override=PhotoBodyRoute,
)


@router.post(
    "/v1/detect",
    response_model=DetectResponse,
    responses=DETECT_RESPONSES,
    tags=["detect"],
    openapi_extra=DETECT_OPENAPI,
)
async def detect(
    request: Request,
    photo: Annotated[UploadFile, File(description=f"the photo: {SUPPORTED_HUMAN}")],
    scanner: ScannerDep,
    options: OptionsDep,
    state: StateDep,
    fmt: Annotated[Format | None, Query(alias="format", description=_FORMAT)] = None,
) -> DetectResponse | Response:
    """Detect hazards in one photo: the multipart field ``photo``, or the photo itself as the request body with
    ``Content-Type: image/jpeg`` (``image/png``, ``image/webp``, ``image/heic``, ``application/octet-stream``) and
    the options in the query string. JSON by default; the evidence JPEG itself for ``?format=jpeg`` or
    ``Accept: image/jpeg``."""
    limit = state.settings.max_upload_bytes
    try:
        check_size(photo, limit)
    except PayloadTooLargeError:
        state.metrics.observe_rejected()
        raise
    return await run_detect(request, scanner, options, state, fmt, functools.partial(read_file, photo, limit))


async def run_detect(
    request: Request,
    scanner: Scanner,
    options: ScanOptions,
    state: ServiceState,
    fmt: Format | None,
    read: Callable[[], bytes],
) -> DetectResponse | Response:
    """One photo through the gate; ``read`` gives its bytes (called in a worker thread)."""
    jpeg = wants_jpeg(request.headers.get("accept"), fmt)
    if jpeg:
        options = dataclasses.replace(options, evidence=True)
    metrics = state.metrics
    try:
        scan = await gated_scan(request, state, scanner, options, read)
    except (ImageError, ApiError, BudgetBusyError):
        metrics.observe_rejected()
        raise
    metrics.observe_scan(scan)
    if jpeg and scan.evidence_jpeg is not None:
        headers = evidence_headers(scan, ModelInfo.of(scanner.detector.card))
        return Response(scan.evidence_jpeg, media_type="image/jpeg", headers=headers)
    return DetectResponse.from_scan(scan, scanner.detector.card)


async def gated_scan(
    request: Request, state: ServiceState, scanner: Scanner, options: ScanOptions, read: Callable[[], bytes]
) -> ScanResult:
    """One photo through the model gate, already admitted (:meth:`ModelGate.admit`); ``read`` gives its bytes
    (called in a worker thread). Raises for a photo it cannot use, and when the gate refuses it."""
    gate, workers = state.gate, state.workers
    if gate.idle():  # nobody to overlap with: decode, run and finish in one worker call
        async with gate.whole(request) as record:
            (scan,) = await workers.run(scan_photo, scanner, read, options)
            if isinstance(scan, ScanResult):
                t = scan.timings_ms
                record((t["decode"] + t["preprocess"]) / 1000, t["infer"] / 1000)
    else:  # others are decoding or waiting: admitted by its decode cost, then a stage at a time
        data, header = await workers.run(read_header, read)
        estimate = gate.rates.estimate_s(header)
        with gate.decode_work(estimate, lambda: busy_decoding(header, estimate)):
            async with gate.decoding(request):
                pending = await workers.run(stage_photo, scanner, lambda: data, options)
        async with gate.slot(request):
            outputs = await workers.run(scanner.infer, pending)
        (scan,) = await workers.run(scanner.finish, pending, outputs, options)
    assert isinstance(scan, ScanResult)  # stage raised for a photo it could not use
    learn_decode_rate(gate, scan)
    return scan


async def admitted_scan(
    request: Request, state: ServiceState, scanner: Scanner, options: ScanOptions, data: bytes
) -> ScanResult:
    """:func:`gated_scan` for a route outside :class:`AdmissionMiddleware` (the app's photo uploads, whose login is
    checked inside the route): admitted here, or refused with :class:`ServerBusyError` (503, ``Retry-After``)."""
    gate = state.gate
    if not gate.admit():
        raise ServerBusyError(gate.busy_message())
    try:
        return await gated_scan(request, state, scanner, options, lambda: data)
    finally:
        gate.leave()


def read_header(read: Callable[[], bytes]) -> tuple[bytes, tuple[str, int] | None]:
    """The photo's bytes and its header's format and stored pixels (None: unreadable)."""
    data = read()
    return data, photo_header(data)


def busy_decoding(header: tuple[str, int] | None, estimate_s: float) -> str:
    what = f"this {header[0]} photo of {header[1] / 1e6:.0f} megapixels" if header else "this request"
    return (
        f"the server is busy decoding other photos and {what} needs about {estimate_s:.1f} s to decode; "
        f"retry in {RETRY_AFTER_BUSY_S} s"
    )


def learn_decode_rate(gate: ModelGate, scan: ScanResult) -> None:
    """What this photo's decode took, per stored pixel of its format, for the next estimates."""
    image = scan.detect.image
    gate.rates.observe(image.format, image.width * image.height, scan.timings_ms.get("decode", 0.0) / 1000)


def stage_photo(scanner: Scanner, read: Callable[[], bytes], options: ScanOptions) -> Pending:
    return scanner.stage([read()], options)


def scan_photo(
    scanner: Scanner, read: Callable[[], bytes], options: ScanOptions
) -> list[ScanResult | ImageError | BudgetBusyError]:
    """A photo that found the gate idle: decoded, run and finished in one worker call, the model to itself."""
    pending = stage_photo(scanner, read, options)
    return scanner.finish(pending, scanner.infer(pending, alone=True), options)


async def scan_in_chunks(
    request: Request, state: ServiceState, scanner: Scanner, photos: list[bytes], options: ScanOptions
) -> list[ScanResult | ImageError | BudgetBusyError]:
    """:meth:`Scanner.scan_each` through the gate's two stages, one chunk at a time (photos of other requests
    get their turn between the chunks of a long batch)."""
    gate, workers = state.gate, state.workers
    scanner.check(options)
    out: list[ScanResult | ImageError | BudgetBusyError] = []
    spent = [0]
    for start in range(0, len(photos), CHUNK):
        async with gate.decoding(request, ask=start > 0):
            pending = await workers.run(scanner.stage_each, photos[start : start + CHUNK], options, spent)
        outputs = []
        if pending.staged.images:
            async with gate.slot(request, ask=True):  # a chunk's decoding is long enough for a client to leave
                outputs = await workers.run(scanner.infer, pending)
        out.extend(await workers.run(scanner.finish, pending, outputs, options))
    return out


def check_batch(scanner: Scanner, rates: DecodeRates, photos: list[bytes]) -> float:
    """:meth:`Scanner.check_batch`, then the seconds the photos are expected to take to decode together."""
    scanner.check_batch(photos)
    return sum(rates.estimate_s(photo_header(data)) for data in photos)


@router.post("/v1/detect/batch", response_model=BatchResponse, responses=ERRORS, tags=["detect"])
async def detect_batch(
    request: Request,
    photos: Annotated[list[UploadFile], File(description="repeat the field once per photo", min_length=1)],
    scanner: ScannerDep,
    options: OptionsDep,
    state: StateDep,
) -> BatchResponse:
    """Detect hazards in several photos (field ``photos``, repeated). A bad photo fails alone."""
    settings, metrics = state.settings, state.metrics
    if len(photos) > settings.max_batch_images:
        raise TooManyFilesError(f"{len(photos)} photos sent; at most {settings.max_batch_images} per batch")
    card = scanner.detector.card
    outcomes: list[ScanResult | Exception | None] = [None] * len(photos)
    payloads: dict[int, bytes] = {}
    for i, upload in enumerate(photos):
        try:
            payloads[i] = await read_upload(upload, settings.max_upload_bytes)
        except PayloadTooLargeError as exc:
            outcomes[i] = exc
    # refused at once, before any photo waits for the queue or decodes, when together they need too much memory,
    # or, while others decode, too much time
    gate = state.gate
    estimate = await state.workers.run(check_batch, scanner, gate.rates, list(payloads.values()))
    with gate.decode_work(estimate, lambda: busy_decoding(None, estimate)):
        scanned = await scan_in_chunks(request, state, scanner, list(payloads.values()), options)
    for i, result in zip(payloads, scanned, strict=True):
        outcomes[i] = result
        if isinstance(result, ScanResult):
            learn_decode_rate(gate, result)
    items = []
    for i, (upload, outcome) in enumerate(zip(photos, outcomes, strict=True)):
        if isinstance(outcome, ScanResult):
            metrics.observe_scan(outcome)
            items.append(BatchItem(index=i, filename=upload.filename, result=DetectResponse.from_scan(outcome, card)))
        else:
            metrics.observe_rejected()
            _, code, message = describe(outcome or RuntimeError("not scanned"))
            items.append(BatchItem(index=i, filename=upload.filename, error=ErrorInfo(code=code, message=message)))
    ok = sum(item.error is None for item in items)
    return BatchResponse(model=ModelInfo.of(card), succeeded=ok, failed=len(items) - ok, items=items)


STALE_COVERAGE_KEYS = frozenset({"hazards_raised", "hazards_not_raised", "hazard_coverage"})


@router.get("/v1/model", response_model=ModelView, responses=ERRORS, tags=["info"])
async def model_card(scanner: ScannerDep, state: StateDep) -> dict[str, Any]:
    """The model card (classes, input size, thresholds, metrics), how this process serves it, and which hazards
    it raises as detections, as suspicions, only in a declared scene, or not yet (from the taxonomy)."""
    card = scanner.detector.card
    public = state.public_card(card)
    # what the card said it raised was worked out with the taxonomy it was trained for; ``hazards`` is the truth
    # under the taxonomy served now (scenes and suspicions may have come since)
    public["extra"] = {k: v for k, v in public["extra"].items() if k not in STALE_COVERAGE_KEYS}
    tax = scanner.taxonomy
    return {**public, "hazards": {**tax.coverage(card.classes), "taxonomy_version": tax.version}}


@router.get("/v1/hazards", responses=ERRORS, tags=["info"])
def hazards(scanner: ScannerDep) -> dict[str, Any]:
    """The hazard taxonomy: detector classes and the rules that raise each hazard."""
    return scanner.taxonomy.as_dict()


@router.get("/", include_in_schema=False)
async def root(request: Request) -> RedirectResponse:
    """A browser that opens the bare address lands in the inspector app, or in the API docs where the app is off."""
    app_on = any(getattr(r, "path", "").startswith("/app") for r in request.app.routes)
    return RedirectResponse("/app/" if app_on else "/docs", status_code=307)


@router.get("/healthz", response_model=Health, tags=["ops"])
async def healthz() -> Health:
    """The process is up (it may still be unable to scan; see /readyz)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["ops"])
async def readyz(state: StateDep) -> Readiness | JSONResponse:
    """Ready to scan: the model and the taxonomy are loaded (otherwise 503 with the reason). ``components``
    tells each part's state; a broken events database or inspector-app database, or a data folder whose disk is
    down to its reserve (new photos refused), makes it ``degraded`` (detection still works)."""
    components = {
        "model": ComponentState(ready=state.scanner is not None, reason=state.reason),
        "events": ComponentState(ready=state.events is not None, reason=state.events_reason),
        "api_keys": ComponentState(ready=state.keys is not None, reason=state.keys_reason),
    }
    app_broken = False
    if state.settings.app_enabled:
        components["app"] = ComponentState(ready=state.app_storage_reason is None, reason=state.app_storage_reason)
        short = state.settings.data_disk().shortfall()
        components["disk"] = ComponentState(ready=short is None, reason=short)
        app_broken = state.app_storage_reason is not None or short is not None
    if state.scanner is None:
        body = Readiness(status="not_ready", reason=state.reason, components=components).model_dump()
        return JSONResponse({**body, **error_body("model_not_ready", f"{state.reason}")}, status_code=503)
    return Readiness(
        status="degraded" if (state.events is None and state.events_configured) or app_broken else "ready",
        model=ModelInfo.of(state.scanner.detector.card),
        taxonomy_version=state.scanner.taxonomy.version,
        components=components,
    )


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
