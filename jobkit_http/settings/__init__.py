"""Settings: one frozen value read from `JOBKIT_*` environment variables once, at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from jobkit import errors
from jobkit_http.settings.cloud import CLOUD
from jobkit_http.settings.guard import GUARD
from jobkit_http.settings.readers import Setting
from jobkit_http.settings.service import SERVICE

MIN_DOCUMENT_MEMORY_MB = 64
AuthMode = Literal["local", "entra"]
LogFormat = Literal["auto", "json", "text"]
AnalyzerKind = Literal["offline", "gemini"]
Backend = Literal["sqlite", "gcp"]
Dispatch = Literal["pull", "push"]


@attrs.frozen(kw_only=True)
class Settings:
    data: Path = Path("jobkit-data")
    host: str = "127.0.0.1"
    port: int = 8000
    url: str = "http://127.0.0.1:8000"
    token: str | None = None
    auth: AuthMode = "local"
    entra_tenant_id: str | None = None
    entra_audience: str | None = None
    entra_scope: str | None = "Jobs.ReadWrite"
    entra_role: str | None = None
    entra_allow_v1: bool = False
    entra_metadata_url: str | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    upload_url_seconds: int = 900
    direct_upload_above: int = 30 * 1024 * 1024
    concurrency: int = 4
    lease_seconds: float = 30.0
    grace_seconds: float = 8.0
    queues: frozenset[str] | None = None
    worker: bool = True
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    fair_claiming: bool = True
    backend: Backend = "sqlite"
    firestore_database: str = "(default)"
    firestore_collection: str = "jobs"
    gcs_bucket: str | None = None
    gcs_prefix: str = ""
    long_poll_max_seconds: float = 30.0
    poll_seconds: float = 5.0
    log_level: str = "INFO"
    log_format: LogFormat = "auto"
    # the GCP backend
    gcp_project: str | None = None
    firestore_listen: bool = True
    # push dispatch
    dispatch: Dispatch = "pull"
    tasks_queue: str | None = None
    dispatch_url: str | None = None
    dispatch_service_account: str | None = None
    dispatch_audience: str | None = None
    dispatch_secret: str | None = attrs.field(default=None, repr=False)
    dispatch_metadata_url: str | None = None
    tasks_emulator_host: str | None = None
    # Gemini
    analyzer: AnalyzerKind = "offline"
    gemini_api_key: str | None = attrs.field(default=None, repr=False)
    vertex_location: str = "us-central1"
    gemini_model: str = "gemini-3.1-pro-preview"
    gemini_models: frozenset[str] = frozenset()
    gemini_timeout_seconds: float = 300.0
    gemini_max_output_tokens: int = 16_384
    gemini_max_pages: int = 1000
    gemini_max_bytes: int = 50 * 1024 * 1024
    gemini_inline_max_bytes: int = 20 * 1024 * 1024
    gemini_tokens_per_page: int = 560
    gemini_input_price: float = 2.0
    gemini_output_price: float = 12.0
    gemini_requests_per_minute: float = 60.0
    gemini_tokens_per_minute: float = 1_000_000.0
    gemini_breaker_failures: int = 5
    gemini_breaker_cooldown_seconds: float = 30.0
    document_workers: int = 2
    document_cpu_seconds: float = 60.0
    document_memory_mb: int = 512
    user_submits_per_minute: float | None = None
    user_max_pending: int | None = None
    cors_origins: tuple[str, ...] = ()
    orphan_age_seconds: float | None = None
    orphan_sweep_seconds: float = 3600.0
    access_log: bool = True
    slow_call_seconds: float = 1.0
    slow_analyze_seconds: float = 120.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    gauge_seconds: float = 15.0
    # the web page and live updates
    web: bool = True
    events_heartbeat_seconds: float = 15.0
    events_max_per_user: int = 8
    changes_poll_seconds: float | None = 1.0
    signin_seconds: float = 600.0
    web_session_seconds: int = 8 * 3600
    web_client_id: str | None = None
    web_authority: str | None = None
    web_api_scope: str | None = None
    web_redirect_uri: str | None = None


SETTINGS: tuple[Setting, ...] = (*SERVICE, *CLOUD, *GUARD)
"""Every variable, in the order the README's table lists them."""


SLOW_UPLOAD_BYTES_PER_SECOND = 16 * 1024
MIN_ORPHAN_AGE_SECONDS = 600.0
MIN_UPLOAD_URL_SECONDS = 60
MAX_UPLOAD_URL_SECONDS = 7 * 24 * 3600  # the longest a V4 signed URL may live


def orphan_age(settings: Settings) -> float:
    """How old an upload with no job must be to be swept: the setting, or the longest an
    upload of the largest size allowed takes from a slow client, and at least 10 minutes."""
    if settings.orphan_age_seconds is not None:
        return settings.orphan_age_seconds
    longest = settings.max_upload_bytes / SLOW_UPLOAD_BYTES_PER_SECOND
    return max(MIN_ORPHAN_AGE_SECONDS, longest)


def from_env(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Read every `JOBKIT_*` variable; `overrides` (command-line flags) win. A bad value raises
    `errors.ConfigurationError` naming the variable and what it expected."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        name = next(
            (n for n in (setting.name, *setting.fallbacks) if environ.get(n) is not None), None
        )
        if name is None:
            continue
        raw = environ[name]
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as exc:
            problems.append(f"{name}={raw!r}: {exc}")
    if environ.get("PORT") and environ.get("JOBKIT_HOST") is None:
        values["host"] = "0.0.0.0"  # a container platform (Cloud Run) names the port to serve
    values.update({key: value for key, value in overrides.items() if value is not None})
    settings = Settings(**values)
    problems += _check(settings)
    if problems:
        raise errors.ConfigurationError("bad settings: " + "; ".join(problems))
    return settings


def _check_push(settings: Settings) -> list[str]:
    if settings.dispatch != "push":
        return []
    problems = []
    if settings.backend != "gcp":
        problems.append("JOBKIT_DISPATCH=push needs JOBKIT_BACKEND=gcp")
    if settings.tasks_queue is None:
        problems.append("JOBKIT_DISPATCH=push needs JOBKIT_TASKS_QUEUE")
    if settings.dispatch_url is None:
        problems.append("JOBKIT_DISPATCH=push needs JOBKIT_DISPATCH_URL")
    if not (settings.dispatch_service_account or settings.dispatch_secret):
        problems.append(
            "JOBKIT_DISPATCH=push needs JOBKIT_DISPATCH_SERVICE_ACCOUNT (Cloud Tasks' OIDC"
            " tokens) or JOBKIT_DISPATCH_SECRET: the internal endpoints accept nothing else"
        )
    return problems


def _check(settings: Settings) -> list[str]:
    problems = []
    if settings.auth == "entra" and not (settings.entra_tenant_id and settings.entra_audience):
        problems.append("JOBKIT_AUTH=entra needs JOBKIT_ENTRA_TENANT_ID and JOBKIT_ENTRA_AUDIENCE")
    if settings.auth == "entra" and not (settings.entra_scope or settings.entra_role):
        problems.append("JOBKIT_AUTH=entra needs JOBKIT_ENTRA_SCOPE or JOBKIT_ENTRA_ROLE")
    if settings.backend == "gcp" and settings.gcs_bucket is None:
        problems.append("JOBKIT_BACKEND=gcp needs JOBKIT_GCS_BUCKET")
    problems += _check_push(settings)
    if not 0 < settings.port < 65536:
        problems.append(f"JOBKIT_PORT must be within 1..65535, got {settings.port}")
    if not 0 <= settings.metrics_port < 65536:
        problems.append(f"JOBKIT_METRICS_PORT must be within 0..65535, got {settings.metrics_port}")
    for name in (
        "max_upload_bytes",
        "concurrency",
        "gemini_breaker_failures",
        "gemini_max_output_tokens",
        "gemini_max_pages",
        "gemini_max_bytes",
        "gemini_inline_max_bytes",
        "gemini_tokens_per_page",
        "document_workers",
        "document_cpu_seconds",
        "events_max_per_user",
        "web_session_seconds",
    ):
        if getattr(settings, name) < 1:
            problems.append(f"JOBKIT_{name.upper()} must be >= 1")
    for name in (
        "lease_seconds",
        "grace_seconds",
        "gemini_requests_per_minute",
        "gemini_tokens_per_minute",
        "gemini_timeout_seconds",
        "gemini_breaker_cooldown_seconds",
        "long_poll_max_seconds",
        "orphan_sweep_seconds",
        "slow_call_seconds",
        "slow_analyze_seconds",
        "gauge_seconds",
        "poll_seconds",
        "events_heartbeat_seconds",
        "signin_seconds",
    ):
        if getattr(settings, name) <= 0:
            problems.append(f"JOBKIT_{name.upper()} must be > 0")
    for name in ("gemini_input_price", "gemini_output_price", "direct_upload_above"):
        if getattr(settings, name) < 0:
            problems.append(f"JOBKIT_{name.upper()} must be >= 0")
    if not MIN_UPLOAD_URL_SECONDS <= settings.upload_url_seconds <= MAX_UPLOAD_URL_SECONDS:
        problems.append(
            f"JOBKIT_UPLOAD_URL_SECONDS must be within"
            f" {MIN_UPLOAD_URL_SECONDS}..{MAX_UPLOAD_URL_SECONDS}"
        )
    if not settings.gemini_model.strip():
        problems.append("JOBKIT_GEMINI_MODEL must name a model")
    if settings.document_memory_mb < MIN_DOCUMENT_MEMORY_MB:
        problems.append(f"JOBKIT_DOCUMENT_MEMORY_MB must be >= {MIN_DOCUMENT_MEMORY_MB}")
    for name in ("user_submits_per_minute", "user_max_pending", "orphan_age_seconds"):
        value = getattr(settings, name)
        if value is not None and value <= 0:
            problems.append(f"JOBKIT_{name.upper()} must be > 0, or off")
    return problems
