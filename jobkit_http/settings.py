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


@attrs.frozen(kw_only=True)
class Setting:
    """One environment variable: its name, the `Settings` field it sets and how its text is
    read, and its default and meaning as the README's table shows them."""

    name: str
    field: str
    parse: Callable[[str], Any]
    default: str
    meaning: str


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
    analyze_per_minute: float = 60.0
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0
    long_poll_max_seconds: float = 30.0
    poll_seconds: float = 5.0
    log_level: str = "INFO"
    log_format: LogFormat = "json"


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
    # -- the analyzer, its rate limit and breaker
    Setting(
        name="JOBKIT_ANALYZE_PER_MINUTE",
        field="analyze_per_minute",
        parse=_number,
        default="60",
        meaning="rate limit on analyzer calls per process (token bucket)",
    ),
    Setting(
        name="JOBKIT_BREAKER_FAILURES",
        field="breaker_failures",
        parse=_integer,
        default="5",
        meaning="consecutive transient analyzer failures that open the circuit breaker",
    ),
    Setting(
        name="JOBKIT_BREAKER_COOLDOWN_SECONDS",
        field="breaker_cooldown_seconds",
        parse=_number,
        default="30",
        meaning="how long an open breaker waits before a trial call",
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
    #
    # -- Gemini: add below
    #
    # -- push dispatch (Cloud Run, Cloud Tasks): add below
    #
    # -- hardening (quotas, CORS, document limits): add below
    #
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


def from_env(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Read every `JOBKIT_*` variable; `overrides` (command-line flags) win. A bad value raises
    `errors.ConfigurationError` naming the variable and what it expected."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw is None:
            continue
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as exc:
            problems.append(f"{setting.name}={raw!r}: {exc}")
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
    for name in ("max_upload_bytes", "concurrency", "breaker_failures"):
        if getattr(settings, name) < 1:
            problems.append(f"JOBKIT_{name.upper()} must be >= 1")
    for name in (
        "lease_seconds",
        "grace_seconds",
        "analyze_per_minute",
        "breaker_cooldown_seconds",
        "long_poll_max_seconds",
        "poll_seconds",
    ):
        if getattr(settings, name) <= 0:
            problems.append(f"JOBKIT_{name.upper()} must be > 0")
    return problems
