"""Settings: one frozen value read from `JOBKIT_*` environment variables once, at start-up."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import attrs

from jobkit import errors

T = TypeVar("T")
AuthMode = Literal["local", "entra"]
LogFormat = Literal["json", "text"]
AnalyzerKind = Literal["offline", "gemini"]


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
    long_poll_max_seconds: float = 30.0
    log_level: str = "INFO"
    log_format: LogFormat = "json"
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


def _seconds_or_off(value: str) -> float | None:
    seconds = _number(value)
    if seconds < 0:
        raise ValueError("expected seconds >= 0 (0 turns it off)")
    return seconds or None


def _names(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


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
        parse=_choice("json", "text"),
        default="json",
        meaning="`json` (one object per line) or `text`",
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
    #
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
    #
    # -- wake-ups: add below
    #
    # -- the web page: add below
    Setting(
        name="JOBKIT_WEB",
        field="web",
        parse=_boolean,
        default="true",
        meaning="`serve` serves the web page at `/` (the API stays under `/api/v1`)",
    ),
    Setting(
        name="JOBKIT_EVENTS_HEARTBEAT_SECONDS",
        field="events_heartbeat_seconds",
        parse=_number,
        default="15",
        meaning="an event stream sends a comment after this long without an event, for proxies",
    ),
    Setting(
        name="JOBKIT_EVENTS_MAX_PER_USER",
        field="events_max_per_user",
        parse=_integer,
        default="8",
        meaning="event streams one user may hold open in one process (`429` above)",
    ),
    Setting(
        name="JOBKIT_CHANGES_POLL_SECONDS",
        field="changes_poll_seconds",
        parse=_seconds_or_off,
        default="1",
        meaning="while a reader waits, how often other processes' writes are looked for"
        " (0: this process is the only writer)",
    ),
    Setting(
        name="JOBKIT_SIGNIN_SECONDS",
        field="signin_seconds",
        parse=_number,
        default="600",
        meaning="lifetime of a one-time local sign-in link (`jobkit signin`, printed by `serve`)",
    ),
    Setting(
        name="JOBKIT_WEB_SESSION_SECONDS",
        field="web_session_seconds",
        parse=_integer,
        default="28800",
        meaning="lifetime of the local token the page gets for a sign-in link",
    ),
    Setting(
        name="JOBKIT_WEB_CLIENT_ID",
        field="web_client_id",
        parse=_optional,
        default="(none)",
        meaning="with `entra`: the web page's app registration (a single-page application)",
    ),
    Setting(
        name="JOBKIT_WEB_AUTHORITY",
        field="web_authority",
        parse=_optional,
        default="(https://login.microsoftonline.com/TENANT)",
        meaning="with `entra`: where the page signs users in",
    ),
    Setting(
        name="JOBKIT_WEB_API_SCOPE",
        field="web_api_scope",
        parse=_optional,
        default="(AUDIENCE/SCOPE, e.g. api://…/Jobs.ReadWrite)",
        meaning="with `entra`: the scope the page asks tokens for",
    ),
    Setting(
        name="JOBKIT_WEB_REDIRECT_URI",
        field="web_redirect_uri",
        parse=_optional,
        default="(the page's origin + /signin)",
        meaning="with `entra`: the redirect URI registered for the page (SPA platform)",
    ),
)


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
    if not 0 < settings.port < 65536:
        problems.append(f"JOBKIT_PORT must be within 1..65535, got {settings.port}")
    for name in (
        "max_upload_bytes",
        "concurrency",
        "gemini_breaker_failures",
        "gemini_max_output_tokens",
        "gemini_max_pages",
        "gemini_max_bytes",
        "gemini_inline_max_bytes",
        "gemini_tokens_per_page",
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
        "events_heartbeat_seconds",
        "signin_seconds",
    ):
        if getattr(settings, name) <= 0:
            problems.append(f"JOBKIT_{name.upper()} must be > 0")
    for name in ("gemini_input_price", "gemini_output_price"):
        if getattr(settings, name) < 0:
            problems.append(f"JOBKIT_{name.upper()} must be >= 0")
    if not settings.gemini_model.strip():
        problems.append("JOBKIT_GEMINI_MODEL must name a model")
    return problems
