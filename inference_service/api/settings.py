"""Service settings from ``HAZARDSCAN_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from inference_service.evidence import DEFAULT_FONT
from inference_service.storage import DiskReserve

REPO_ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HAZARDSCAN_", env_file=".env", extra="ignore")

    model_path: Annotated[Path, Field(description="model folder or .onnx file")] = REPO_ROOT / "models" / "default"
    taxonomy_path: Annotated[Path | None, Field(description="taxonomy YAML; the packaged one when unset")] = None
    max_upload_bytes: Annotated[int, Field(gt=0, description="largest single photo")] = 25 * MB
    max_batch_bytes: Annotated[int, Field(gt=0, description="largest whole batch request body")] = 100 * MB
    max_batch_images: Annotated[int, Field(gt=0)] = 16
    max_pixels: Annotated[int, Field(gt=0, description="decompression-bomb guard, in pixels")] = 50_000_000
    # bounded memory, timeouts and backpressure (hardening)
    min_image_side: Annotated[int, Field(ge=1, description="photos with a shorter side are refused (422)")] = 32
    decode_memory_mb: Annotated[
        int, Field(gt=0, description="memory for decoded pixels of all requests at once; decodes wait for room")
    ] = 400
    request_decode_memory_mb: Annotated[
        int,
        Field(
            gt=0,
            description="decode memory one request may use, a batch's photos together (a 7000×7000 PNG needs "
            "~390 MB, a 12 MP JPEG 1 MB); a photo beyond it, or a batch whose photos together are, is refused "
            "at once with 413 (estimated from the headers, before anything is decoded)",
        ),
    ] = 400
    decode_wait_s: Annotated[float, Field(gt=0, description="wait for decode memory before answering 503")] = 2.0
    upload_memory_mb: Annotated[
        int,
        Field(
            gt=0,
            description="memory for request bodies in flight (uploads stay in memory, never on disk); a request "
            "that does not fit: 503 with Retry-After before its body is read. At least the largest batch body",
        ),
    ] = 256
    model_concurrency: Annotated[
        int, Field(gt=0, description="requests running the model (the ONNX Runtime session alone) at once")
    ] = 2
    decode_concurrency: Annotated[
        int | None,
        Field(gt=0, description="requests decoding at once, beside those running the model; all cores if unset"),
    ] = None
    worker_nice: Annotated[
        int,
        Field(
            ge=0,
            le=19,
            description="niceness the decode and model threads add to their own (Linux, per thread), so that the "
            "event loop, which reads uploads and answers /healthz, gets the CPU first; 0: off. Only on a machine "
            "the service has to itself: where other sessions or cgroups are busy, niced threads lose their core to "
            "them (see inference_service/api/workers.py)",
        ),
    ] = 0
    gil_switch_ms: Annotated[
        float,
        Field(
            gt=0,
            le=100,
            description="longest a thread holds Python's GIL while another waits for it (sys.setswitchinterval); "
            "shorter lets the event loop answer /healthz and read uploads sooner under load (Python's default: 5)",
        ),
    ] = 1.0
    max_queue: Annotated[
        int, Field(ge=0, description="requests admitted to wait for the model; beyond: 503 with Retry-After at once")
    ] = 16
    max_queue_wait_s: Annotated[
        float,
        Field(
            gt=0,
            description="admit a model request only while its expected wait for a slot (queue ahead x recent "
            "time per request) is within this, and, once its photo's header is read while others decode, only while "
            "the decoding admitted ahead plus its own (estimated per format and megapixel) ends within it; one long "
            "photo at a time (its own decode over half this, such as a 12 MP HEIC) is admitted when the decoding ahead "
            "is within half this; beyond: 503 with Retry-After at once",
        ),
    ] = 1.5
    header_timeout_s: Annotated[float, Field(gt=0, description="close connections whose headers take longer")] = 10.0
    body_timeout_s: Annotated[float, Field(gt=0, description="408 when the request body stalls this long")] = 15.0
    keepalive_timeout_s: Annotated[float, Field(gt=0, description="close idle keep-alive connections")] = 5.0
    max_connections: Annotated[int, Field(gt=0, description="open connections; more are closed at once")] = 512
    # API keys and CORS (hardening)
    public_routes: Annotated[
        str,
        Field(
            description="comma-separated routes open without an API key: /v1 routes (`/v1/detect`, or `/v1/*` "
            "for all) and `/docs` (the API reference, /docs and /openapi.json); empty: every /v1 route needs a key "
            "and the reference a key (/healthz and /readyz are always open; /metrics and "
            "the reference to the machine itself)"
        ),
    ] = ""
    cors_origins: Annotated[
        str, Field(description="comma-separated origins allowed to call the API from a browser; empty: none")
    ] = ""
    precision: Annotated[
        Literal["auto", "fp32", "int8"],
        Field(
            description="auto: serve the folder's model.int8.onnx only where a start-up check measures it at least "
            "10 % faster than fp32 on this CPU; fp32 / int8: as set"
        ),
    ] = "auto"
    threads: Annotated[int | None, Field(gt=0, description="ONNX Runtime intra-op threads; all cores if unset")] = None
    ort_spinning: Annotated[
        bool,
        Field(
            description="let ONNX Runtime threads spin-wait between ops: a little faster on idle dedicated cores, "
            "several times slower when anything else wants them (other processes, or this service's own decoding "
            "under load); see docs/performance.md"
        ),
    ] = False
    ort_spin_alone: Annotated[
        bool,
        Field(
            description="a second ONNX Runtime session whose threads spin between the ops of a run, for a photo that "
            "has the model and the cores to itself (no other photo decoding or running): such a photo is answered "
            "sooner, at the cost of a second copy of the model in memory; see docs/performance.md"
        ),
    ] = True
    rect: Annotated[
        bool | None,
        Field(
            description="pad photos only to the next stride multiple (needs a dynamic-size model; a 4:3 photo runs "
            "at 416×320); unset: as the model card says"
        ),
    ] = None
    font_path: Annotated[Path, Field(description="CJK font for evidence labels")] = DEFAULT_FONT
    evidence_max_side: Annotated[int, Field(gt=0)] = 1600
    evidence_quality: Annotated[int, Field(ge=1, le=95)] = 85
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
        Field(
            description="the service's own log lines and uvicorn's, this level and above: DEBUG, INFO, WARNING, "
            "ERROR or CRITICAL (any case)"
        ),
    ] = "INFO"
    # inspector app (/app): records, ledger, accounts
    app_enabled: Annotated[bool, Field(description="serve the inspector app under /app")] = True
    data_dir: Annotated[Path, Field(description="photos and the default SQLite database; made at start-up")] = (
        REPO_ROOT / "data"
    )
    database_url: Annotated[
        str | None, Field(description="sqlite:///path or postgresql://…; default <data_dir>/hazardscan.db")
    ] = None
    reports_per_hour: Annotated[
        int,
        Field(
            gt=0, description="public hazard reports (随手拍) one sender may send through one report link in an hour"
        ),
    ] = 10
    min_free_disk_mb: Annotated[
        int,
        Field(
            ge=0,
            description="space the data folder's disk keeps free: a photo that would leave less is refused (507, "
            "nothing stored; the app keeps it on the phone and sends it later) while records, decisions and the "
            "ledger still work; 0: refused only when the disk is full",
        ),
    ] = 1024
    deadline_days_critical: Annotated[int, Field(ge=0, description="重大隐患: 0 = the same day")] = 0
    deadline_days_high: Annotated[int, Field(ge=0)] = 3
    deadline_days_medium: Annotated[int, Field(ge=0)] = 7
    deadline_days_low: Annotated[int, Field(ge=0)] = 15
    deadline_utc_offset_hours: Annotated[float, Field(description="local time zone of deadlines (China: 8)")] = 8.0
    app_secure_cookie: Annotated[
        bool | None, Field(description="Secure session cookie; unset: when the request came over https")
    ] = None

    def resolved_database_url(self) -> str:
        return self.database_url or str(self.data_dir / "hazardscan.db")

    def data_disk(self) -> DiskReserve:
        """The data folder's disk and the room photos must leave on it."""
        return DiskReserve(self.data_dir, self.min_free_disk_mb * MB)


@lru_cache
def get_settings() -> Settings:
    return Settings()
