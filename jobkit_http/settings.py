"""Settings: one frozen value read from `JOBKIT_*` environment variables once, at start-up."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from jobkit import errors
from jobkit.local import blobs

T = TypeVar("T")
MIN_DOCUMENT_MEMORY_MB = 64
AuthMode = Literal["local", "entra"]
LogFormat = Literal["auto", "json", "text"]
AnalyzerKind = Literal["offline", "gemini"]
Backend = Literal["sqlite", "gcp"]


@attrs.frozen(kw_only=True)
class Setting:
    """One environment variable: its name, the `Settings` field it sets and how its text is
    read, and its default and meaning as the README's table shows them."""

    name: str
    field: str
    parse: Callable[[str], Any]
    default: str
    meaning: str
    fallbacks: tuple[str, ...] = ()
    """Other variables read, in order, when `name` is unset (Google's own conventions)."""


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
    concurrency: int = 4
    lease_seconds: float = 30.0
    grace_seconds: float = 8.0
    queues: frozenset[str] | None = None
    worker: bool = True
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
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


def _text(value: str) -> str:
    return value


def _integer(value: str) -> int:
    return int(value)


def _number(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def _queues(value: str) -> frozenset[str] | None:
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    return names or None


def _optional(value: str) -> str | None:
    return value or None


def _names(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _matching(pattern: str, expected: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def parse(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"expected {expected}")
        return value

    return parse


def _bucket(value: str) -> str | None:
    if not value:
        return None
    longest = 222 if "." in value else 63
    if not (3 <= len(value) <= longest and _BUCKET.fullmatch(value)):
        raise ValueError(
            "expected a bucket name: 3-63 of a-z 0-9 - _ . (a letter or digit at each end)"
        )
    return value


def _prefix(value: str) -> str:
    stripped = value.strip("/")
    if stripped:
        blobs.check_key(stripped)  # ValueError says what is wrong
    return stripped


_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")


def _off_or(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """Empty, `off` or `0` turn a limit off; anything else is parsed."""

    def parsed(value: str) -> T | None:
        if value.strip().lower() in {"", "off", "0"}:
            return None
        return parse(value)

    return parsed


_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


def _origins(value: str) -> tuple[str, ...]:
    """Comma-separated origins, each `scheme://host[:port]` exactly as a browser sends it."""
    origins = tuple(part.strip() for part in value.split(",") if part.strip())
    for origin in origins:
        if origin == "*":
            raise ValueError("list the origins one by one; '*' is not accepted")
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(f"{origin!r} is not an origin like https://app.example.com[:port]")
    return origins


SETTINGS: tuple[Setting, ...] = (
    # -- where things are and who may call
    Setting(
        name="JOBKIT_DATA",
        field="data",
        parse=Path,
        default="./jobkit-data",
        meaning="folder of the embedded default: `jobs.db`, `blobs/`, the local signing key",
    ),
    Setting(
        name="JOBKIT_HOST",
        field="host",
        parse=_text,
        default="127.0.0.1",
        meaning="address `jobkit serve` listens on",
    ),
    Setting(
        name="JOBKIT_PORT",
        field="port",
        parse=_integer,
        default="8000",
        meaning="port `jobkit serve` listens on",
    ),
    Setting(
        name="JOBKIT_URL",
        field="url",
        parse=_text,
        default="http://127.0.0.1:8000",
        meaning="the service the CLI's `submit`, `status` and `jobs` talk to",
    ),
    Setting(
        name="JOBKIT_TOKEN",
        field="token",
        parse=_optional,
        default="(none)",
        meaning="bearer token the CLI sends; `jobkit token` prints one in local mode",
    ),
    Setting(
        name="JOBKIT_AUTH",
        field="auth",
        parse=_choice("local", "entra"),
        default="local",
        meaning="`local` (a key pair in the data folder) or `entra` (Entra ID tokens)",
    ),
    Setting(
        name="JOBKIT_ENTRA_TENANT_ID",
        field="entra_tenant_id",
        parse=_optional,
        default="(none)",
        meaning="Entra tenant id; required with `JOBKIT_AUTH=entra`",
    ),
    Setting(
        name="JOBKIT_ENTRA_AUDIENCE",
        field="entra_audience",
        parse=_optional,
        default="(none)",
        meaning="the API's application id URI or client id (`aud`); required with `entra`",
    ),
    Setting(
        name="JOBKIT_ENTRA_SCOPE",
        field="entra_scope",
        parse=_optional,
        default="Jobs.ReadWrite",
        meaning="delegated scope (`scp`) a user token must carry; empty to require a role instead",
    ),
    Setting(
        name="JOBKIT_ENTRA_ROLE",
        field="entra_role",
        parse=_optional,
        default="(none)",
        meaning="app role (`roles`) accepted instead of the scope, for daemon clients",
    ),
    Setting(
        name="JOBKIT_ENTRA_ALLOW_V1",
        field="entra_allow_v1",
        parse=_boolean,
        default="false",
        meaning="also accept v1.0 tokens (`sts.windows.net` issuer)",
    ),
    Setting(
        name="JOBKIT_ENTRA_METADATA_URL",
        field="entra_metadata_url",
        parse=_optional,
        default="(tenant's v2.0 OpenID metadata)",
        meaning="OpenID metadata URL override (tests, sovereign clouds)",
    ),
    # -- limits and the worker
    Setting(
        name="JOBKIT_MAX_UPLOAD_BYTES",
        field="max_upload_bytes",
        parse=_integer,
        default="52428800",
        meaning="largest PDF upload accepted (`413` above)",
    ),
    Setting(
        name="JOBKIT_CONCURRENCY",
        field="concurrency",
        parse=_integer,
        default="4",
        meaning="jobs one worker process runs at once",
    ),
    Setting(
        name="JOBKIT_LEASE_SECONDS",
        field="lease_seconds",
        parse=_number,
        default="30",
        meaning="a claim's lease; heartbeats renew it every third of it",
    ),
    Setting(
        name="JOBKIT_GRACE_SECONDS",
        field="grace_seconds",
        parse=_number,
        default="8",
        meaning="on SIGTERM, how long running jobs may finish before their leases are released",
    ),
    Setting(
        name="JOBKIT_QUEUES",
        field="queues",
        parse=_queues,
        default="(all)",
        meaning="comma-separated queues this worker takes jobs from",
    ),
    Setting(
        name="JOBKIT_WORKER",
        field="worker",
        parse=_boolean,
        default="true",
        meaning="`serve` also runs a worker in the API process",
    ),
    # -- the embedded default (SQLite, files)
    Setting(
        name="JOBKIT_SQLITE_SYNCHRONOUS",
        field="sqlite_synchronous",
        parse=_choice("NORMAL", "FULL"),
        default="NORMAL",
        meaning="SQLite durability: `NORMAL` (may lose the last commits on power loss) or `FULL`",
    ),
    # -- the API
    Setting(
        name="JOBKIT_LONG_POLL_MAX_SECONDS",
        field="long_poll_max_seconds",
        parse=_number,
        default="30",
        meaning="longest `?wait=` on the status endpoint",
    ),
    # -- logs and metrics
    Setting(
        name="JOBKIT_LOG_LEVEL",
        field="log_level",
        parse=_choice("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        meaning="`DEBUG`, `INFO`, `WARNING` or `ERROR`",
    ),
    Setting(
        name="JOBKIT_LOG_FORMAT",
        field="log_format",
        parse=_choice("auto", "json", "text"),
        default="auto",
        meaning="`json` (one object per line, as Cloud Logging reads it), `text` (for people), "
        "or `auto`: text on a terminal, JSON otherwise",
    ),
    Setting(
        name="JOBKIT_ACCESS_LOG",
        field="access_log",
        parse=_boolean,
        default="true",
        meaning="one INFO line per API request (method, route, status, duration, user)",
    ),
    Setting(
        name="JOBKIT_SLOW_CALL_SECONDS",
        field="slow_call_seconds",
        parse=_number,
        default="1",
        meaning="a store or blob call slower than this is logged at WARNING",
    ),
    Setting(
        name="JOBKIT_SLOW_ANALYZE_SECONDS",
        field="slow_analyze_seconds",
        parse=_number,
        default="120",
        meaning="an analyzer call slower than this is logged at WARNING",
    ),
    Setting(
        name="JOBKIT_METRICS_HOST",
        field="metrics_host",
        parse=_text,
        default="127.0.0.1",
        meaning="address `jobkit worker` serves `/metrics` on (`serve` has it on its own port)",
    ),
    Setting(
        name="JOBKIT_METRICS_PORT",
        field="metrics_port",
        parse=_integer,
        default="9464",
        meaning="port `jobkit worker` serves `/metrics` on; `0` serves none",
    ),
    Setting(
        name="JOBKIT_GAUGE_SECONDS",
        field="gauge_seconds",
        parse=_number,
        default="15",
        meaning="how often the queue gauges (jobs by queue and status, oldest due job) are "
        "read from the store",
    ),
    # -- the GCP backend (Firestore, Cloud Storage): add below
    Setting(
        name="JOBKIT_GCP_PROJECT",
        field="gcp_project",
        parse=_optional,
        default="(GOOGLE_CLOUD_PROJECT, else the credentials')",
        meaning="Google Cloud project of Firestore, Cloud Storage and Vertex AI",
        fallbacks=("GOOGLE_CLOUD_PROJECT",),
    ),
    Setting(
        name="JOBKIT_BACKEND",
        field="backend",
        parse=_choice("sqlite", "gcp"),
        default="sqlite",
        meaning="where jobs and files live: `sqlite` (the embedded default, in `JOBKIT_DATA`)"
        " or `gcp` (Firestore and Cloud Storage)",
    ),
    Setting(
        name="JOBKIT_FIRESTORE_DATABASE",
        field="firestore_database",
        parse=_matching(r"\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9]", "a Firestore database id"),
        default="(default)",
        meaning="the Firestore database holding the jobs",
    ),
    Setting(
        name="JOBKIT_FIRESTORE_COLLECTION",
        field="firestore_collection",
        parse=_matching(r"(?!__.*__$)[^/]{1,1500}", "a collection id: no `/`, not `__...__`"),
        default="jobs",
        meaning="the collection holding one document per job (`deploy/firestore.indexes.json`"
        " names it)",
    ),
    Setting(
        name="JOBKIT_GCS_BUCKET",
        field="gcs_bucket",
        parse=_bucket,
        default="(none)",
        meaning="the Cloud Storage bucket for uploads and results; required with `gcp`",
    ),
    Setting(
        name="JOBKIT_GCS_PREFIX",
        field="gcs_prefix",
        parse=_prefix,
        default="(none)",
        meaning="folder of the bucket every object goes under (`team/jobkit`)",
    ),
    # -- Gemini: add below
    Setting(
        name="JOBKIT_ANALYZER",
        field="analyzer",
        parse=_choice("offline", "gemini"),
        default="offline",
        meaning="`offline` (pypdf text extraction, no network) or `gemini`",
    ),
    Setting(
        name="JOBKIT_GEMINI_API_KEY",
        field="gemini_api_key",
        parse=_optional,
        default="(GOOGLE_API_KEY, else GEMINI_API_KEY)",
        meaning="a Gemini Developer API key: set, Gemini is called there instead of on Vertex AI",
        fallbacks=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    ),
    Setting(
        name="JOBKIT_VERTEX_LOCATION",
        field="vertex_location",
        parse=_text,
        default="us-central1",
        meaning="Vertex AI location (region, or `global`) Gemini is called in",
    ),
    Setting(
        name="JOBKIT_GEMINI_MODEL",
        field="gemini_model",
        parse=_text,
        default="gemini-3.1-pro-preview",
        meaning="the model a job gets unless it names one (`model` parameter)",
    ),
    Setting(
        name="JOBKIT_GEMINI_MODELS",
        field="gemini_models",
        parse=_names,
        default="(the default model only)",
        meaning="comma-separated models a job may also ask for; others are refused with `422`",
    ),
    Setting(
        name="JOBKIT_GEMINI_TIMEOUT_SECONDS",
        field="gemini_timeout_seconds",
        parse=_number,
        default="300",
        meaning="longest wait for one Gemini answer (a timeout is retried)",
    ),
    Setting(
        name="JOBKIT_GEMINI_MAX_OUTPUT_TOKENS",
        field="gemini_max_output_tokens",
        parse=_integer,
        default="16384",
        meaning="longest answer, thinking included; an answer cut there fails `output_truncated`",
    ),
    Setting(
        name="JOBKIT_GEMINI_MAX_PAGES",
        field="gemini_max_pages",
        parse=_integer,
        default="1000",
        meaning="most pages in a PDF sent to Gemini (`too_many_pages` above, before any call)",
    ),
    Setting(
        name="JOBKIT_GEMINI_MAX_BYTES",
        field="gemini_max_bytes",
        parse=_integer,
        default="52428800",
        meaning="largest PDF sent to Gemini (`document_too_large` above, before any call)",
    ),
    Setting(
        name="JOBKIT_GEMINI_INLINE_MAX_BYTES",
        field="gemini_inline_max_bytes",
        parse=_integer,
        default="20971520",
        meaning="largest PDF sent inline; above it, the Files API (developer) or Cloud Storage",
    ),
    Setting(
        name="JOBKIT_GEMINI_TOKENS_PER_PAGE",
        field="gemini_tokens_per_page",
        parse=_integer,
        default="560",
        meaning="input tokens a PDF page is expected to cost, for the tokens-per-minute limiter",
    ),
    Setting(
        name="JOBKIT_GEMINI_INPUT_PRICE",
        field="gemini_input_price",
        parse=_number,
        default="2.0",
        meaning="USD per million input tokens, for each job's estimated cost",
    ),
    Setting(
        name="JOBKIT_GEMINI_OUTPUT_PRICE",
        field="gemini_output_price",
        parse=_number,
        default="12.0",
        meaning="USD per million output tokens (the answer and the model's thinking)",
    ),
    Setting(
        name="JOBKIT_GEMINI_REQUESTS_PER_MINUTE",
        field="gemini_requests_per_minute",
        parse=_number,
        default="60",
        meaning="Gemini calls per minute, per process (token bucket; a minute's worth may burst)",
    ),
    Setting(
        name="JOBKIT_GEMINI_TOKENS_PER_MINUTE",
        field="gemini_tokens_per_minute",
        parse=_number,
        default="1000000",
        meaning="Gemini input tokens per minute, per process: estimated before, settled after",
    ),
    Setting(
        name="JOBKIT_GEMINI_BREAKER_FAILURES",
        field="gemini_breaker_failures",
        parse=_integer,
        default="5",
        meaning="consecutive transient Gemini failures that open the circuit breaker",
    ),
    Setting(
        name="JOBKIT_GEMINI_BREAKER_COOLDOWN_SECONDS",
        field="gemini_breaker_cooldown_seconds",
        parse=_number,
        default="30",
        meaning="how long an open breaker waits before a trial call",
    ),
    #
    # -- push dispatch (Cloud Run, Cloud Tasks): add below
    #
    # -- hardening (quotas, CORS, document limits): add below
    Setting(
        name="JOBKIT_DOCUMENT_WORKERS",
        field="document_workers",
        parse=_integer,
        default="2",
        meaning="child processes that parse uploaded documents, each one document at a time: "
        "how many the offline analyzer works on at once",
    ),
    Setting(
        name="JOBKIT_DOCUMENT_CPU_SECONDS",
        field="document_cpu_seconds",
        parse=_number,
        default="60",
        meaning="CPU time parsing one document may take; past it the job fails as "
        "`document_too_complex`",
    ),
    Setting(
        name="JOBKIT_DOCUMENT_MEMORY_MB",
        field="document_memory_mb",
        parse=_integer,
        default="512",
        meaning="address space of a process parsing a document; past it the job fails as "
        "`document_too_complex`",
    ),
    Setting(
        name="JOBKIT_USER_SUBMITS_PER_MINUTE",
        field="user_submits_per_minute",
        parse=_off_or(_number),
        default="(off)",
        meaning="submissions one user may make per minute (a burst of as many), per API "
        "process; `429` with `Retry-After` past it",
    ),
    Setting(
        name="JOBKIT_USER_MAX_PENDING",
        field="user_max_pending",
        parse=_off_or(_integer),
        default="(off)",
        meaning="jobs one user may have pending or running at once, counted in the store; "
        "`429` with `Retry-After` past it",
    ),
    Setting(
        name="JOBKIT_CORS_ORIGINS",
        field="cors_origins",
        parse=_origins,
        default="(none)",
        meaning="comma-separated origins of web pages that may call the API from a browser "
        "(`https://app.example.com`); none: no cross-origin access",
    ),
    Setting(
        name="JOBKIT_ORPHAN_AGE_SECONDS",
        field="orphan_age_seconds",
        parse=_off_or(_number),
        default="(the longest upload: max size at 16 KiB/s, at least 10 min)",
        meaning="how old an uploaded file with no job must be before the sweep deletes it",
    ),
    Setting(
        name="JOBKIT_ORPHAN_SWEEP_SECONDS",
        field="orphan_sweep_seconds",
        parse=_number,
        default="3600",
        meaning="how often `serve` sweeps orphaned uploads (also once at start-up)",
    ),
    # -- wake-ups: add below
    Setting(
        name="JOBKIT_POLL_SECONDS",
        field="poll_seconds",
        parse=_number,
        default="5",
        meaning="longest an idle worker sleeps between rings of the doorbell (a safety net)",
    ),
    # -- the web page: add below
    #
)


SLOW_UPLOAD_BYTES_PER_SECOND = 16 * 1024
MIN_ORPHAN_AGE_SECONDS = 600.0


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
    values.update({key: value for key, value in overrides.items() if value is not None})
    settings = Settings(**values)
    problems += _check(settings)
    if problems:
        raise errors.ConfigurationError("bad settings: " + "; ".join(problems))
    return settings


def _check(settings: Settings) -> list[str]:
    problems = []
    if settings.auth == "entra" and not (settings.entra_tenant_id and settings.entra_audience):
        problems.append("JOBKIT_AUTH=entra needs JOBKIT_ENTRA_TENANT_ID and JOBKIT_ENTRA_AUDIENCE")
    if settings.auth == "entra" and not (settings.entra_scope or settings.entra_role):
        problems.append("JOBKIT_AUTH=entra needs JOBKIT_ENTRA_SCOPE or JOBKIT_ENTRA_ROLE")
    if settings.backend == "gcp" and settings.gcs_bucket is None:
        problems.append("JOBKIT_BACKEND=gcp needs JOBKIT_GCS_BUCKET")
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
    ):
        if getattr(settings, name) <= 0:
            problems.append(f"JOBKIT_{name.upper()} must be > 0")
    for name in ("gemini_input_price", "gemini_output_price"):
        if getattr(settings, name) < 0:
            problems.append(f"JOBKIT_{name.upper()} must be >= 0")
    if not settings.gemini_model.strip():
        problems.append("JOBKIT_GEMINI_MODEL must name a model")
    if settings.document_memory_mb < MIN_DOCUMENT_MEMORY_MB:
        problems.append(f"JOBKIT_DOCUMENT_MEMORY_MB must be >= {MIN_DOCUMENT_MEMORY_MB}")
    for name in ("user_submits_per_minute", "user_max_pending", "orphan_age_seconds"):
        value = getattr(settings, name)
        if value is not None and value <= 0:
            problems.append(f"JOBKIT_{name.upper()} must be > 0, or off")
    return problems
