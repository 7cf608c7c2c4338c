"""The service's own variables: where things are, who may call, the worker, the API, logs and
metrics, wake-ups and the web page."""

from __future__ import annotations

from pathlib import Path

from jobkit_http.settings import readers
from jobkit_http.settings.readers import Setting

SERVICE: tuple[Setting, ...] = (
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
        parse=readers.text,
        default="127.0.0.1 (0.0.0.0 when PORT is set)",
        meaning="address `jobkit serve` listens on",
    ),
    Setting(
        name="JOBKIT_PORT",
        field="port",
        parse=readers.integer,
        default="(PORT, as Cloud Run sets it, else 8000)",
        meaning="port `jobkit serve` listens on",
        fallbacks=("PORT",),
    ),
    Setting(
        name="JOBKIT_URL",
        field="url",
        parse=readers.text,
        default="http://127.0.0.1:8000",
        meaning="the service the CLI's `submit`, `status` and `jobs` talk to",
    ),
    Setting(
        name="JOBKIT_TOKEN",
        field="token",
        parse=readers.optional,
        default="(none)",
        meaning="bearer token the CLI sends; `jobkit token` prints one in local mode",
    ),
    Setting(
        name="JOBKIT_AUTH",
        field="auth",
        parse=readers.choice("local", "entra"),
        default="local",
        meaning="`local` (a key pair in the data folder) or `entra` (Entra ID tokens)",
    ),
    Setting(
        name="JOBKIT_ENTRA_TENANT_ID",
        field="entra_tenant_id",
        parse=readers.optional,
        default="(none)",
        meaning="Entra tenant id; required with `JOBKIT_AUTH=entra`",
    ),
    Setting(
        name="JOBKIT_ENTRA_AUDIENCE",
        field="entra_audience",
        parse=readers.optional,
        default="(none)",
        meaning="the API's application id URI or client id (`aud`); required with `entra`",
    ),
    Setting(
        name="JOBKIT_ENTRA_SCOPE",
        field="entra_scope",
        parse=readers.optional,
        default="Jobs.ReadWrite",
        meaning="delegated scope (`scp`) a user token must carry; empty to require a role instead",
    ),
    Setting(
        name="JOBKIT_ENTRA_ROLE",
        field="entra_role",
        parse=readers.optional,
        default="(none)",
        meaning="app role (`roles`) accepted instead of the scope, for daemon clients",
    ),
    Setting(
        name="JOBKIT_ENTRA_ALLOW_V1",
        field="entra_allow_v1",
        parse=readers.boolean,
        default="false",
        meaning="also accept v1.0 tokens (`sts.windows.net` issuer)",
    ),
    Setting(
        name="JOBKIT_ENTRA_METADATA_URL",
        field="entra_metadata_url",
        parse=readers.optional,
        default="(tenant's v2.0 OpenID metadata)",
        meaning="OpenID metadata URL override (tests, sovereign clouds)",
    ),
    # -- limits and the worker
    Setting(
        name="JOBKIT_MAX_UPLOAD_BYTES",
        field="max_upload_bytes",
        parse=readers.integer,
        default="52428800",
        meaning="largest PDF upload accepted (`413` above), through the API or a direct upload",
    ),
    Setting(
        name="JOBKIT_UPLOAD_URL_SECONDS",
        field="upload_url_seconds",
        parse=readers.integer,
        default="900",
        meaning="how long a direct-upload URL (`POST /api/v1/uploads`) may be used; 60..604800",
    ),
    Setting(
        name="JOBKIT_DIRECT_UPLOAD_ABOVE",
        field="direct_upload_above",
        parse=readers.integer,
        default="31457280",
        meaning="files larger than this many bytes go to a direct-upload URL from the web page"
        " and `jobkit submit` (under Cloud Run's 32 MiB request limit); 0: always",
    ),
    Setting(
        name="JOBKIT_CONCURRENCY",
        field="concurrency",
        parse=readers.integer,
        default="4",
        meaning="jobs one worker process runs at once",
    ),
    Setting(
        name="JOBKIT_LEASE_SECONDS",
        field="lease_seconds",
        parse=readers.number,
        default="30",
        meaning="a claim's lease; heartbeats renew it every third of it",
    ),
    Setting(
        name="JOBKIT_GRACE_SECONDS",
        field="grace_seconds",
        parse=readers.number,
        default="8",
        meaning="on SIGTERM, how long running jobs may finish before their leases are released",
    ),
    Setting(
        name="JOBKIT_QUEUES",
        field="queues",
        parse=readers.queues,
        default="(all)",
        meaning="comma-separated queues this worker takes jobs from",
    ),
    Setting(
        name="JOBKIT_WORKER",
        field="worker",
        parse=readers.boolean,
        default="true",
        meaning="`serve` also runs a worker in the API process",
    ),
    Setting(
        name="JOBKIT_FAIR_CLAIMING",
        field="fair_claiming",
        parse=readers.boolean,
        default="true",
        meaning="claim fairly across users within a priority (turns); `false`: first come,"
        " first served, and submissions about a fifth cheaper on SQLite, no turn reads on"
        " Firestore",
    ),
    # -- the embedded default (SQLite, files)
    Setting(
        name="JOBKIT_SQLITE_SYNCHRONOUS",
        field="sqlite_synchronous",
        parse=readers.choice("NORMAL", "FULL"),
        default="NORMAL",
        meaning="SQLite durability: `NORMAL` (may lose the last commits on power loss) or `FULL`",
    ),
    # -- the API
    Setting(
        name="JOBKIT_LONG_POLL_MAX_SECONDS",
        field="long_poll_max_seconds",
        parse=readers.number,
        default="30",
        meaning="longest `?wait=` on the status endpoint",
    ),
    # -- logs and metrics
    Setting(
        name="JOBKIT_LOG_LEVEL",
        field="log_level",
        parse=readers.choice("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
        meaning="`DEBUG`, `INFO`, `WARNING` or `ERROR`",
    ),
    Setting(
        name="JOBKIT_LOG_FORMAT",
        field="log_format",
        parse=readers.choice("auto", "json", "text"),
        default="auto",
        meaning="`json` (one object per line, as Cloud Logging reads it), `text` (for people), "
        "or `auto`: text on a terminal, JSON otherwise",
    ),
    Setting(
        name="JOBKIT_ACCESS_LOG",
        field="access_log",
        parse=readers.boolean,
        default="true",
        meaning="one INFO line per API request (method, route, status, duration, user)",
    ),
    Setting(
        name="JOBKIT_SLOW_CALL_SECONDS",
        field="slow_call_seconds",
        parse=readers.number,
        default="1",
        meaning="a store or blob call slower than this is logged at WARNING",
    ),
    Setting(
        name="JOBKIT_SLOW_ANALYZE_SECONDS",
        field="slow_analyze_seconds",
        parse=readers.number,
        default="120",
        meaning="an analyzer call slower than this is logged at WARNING",
    ),
    Setting(
        name="JOBKIT_METRICS_HOST",
        field="metrics_host",
        parse=readers.text,
        default="127.0.0.1",
        meaning="address `jobkit worker` serves `/metrics` on (`serve` has it on its own port)",
    ),
    Setting(
        name="JOBKIT_METRICS_PORT",
        field="metrics_port",
        parse=readers.integer,
        default="9464",
        meaning="port `jobkit worker` serves `/metrics` on; `0` serves none",
    ),
    Setting(
        name="JOBKIT_GAUGE_SECONDS",
        field="gauge_seconds",
        parse=readers.number,
        default="15",
        meaning="how often the queue gauges (jobs by queue and status, oldest due job) are "
        "read from the store",
    ),
    # -- wake-ups
    Setting(
        name="JOBKIT_POLL_SECONDS",
        field="poll_seconds",
        parse=readers.number,
        default="5",
        meaning="longest an idle worker sleeps between rings of the doorbell (a safety net)",
    ),
    # -- the web page
    Setting(
        name="JOBKIT_WEB",
        field="web",
        parse=readers.boolean,
        default="true",
        meaning="`serve` serves the web page at `/` (the API stays under `/api/v1`)",
    ),
    Setting(
        name="JOBKIT_EVENTS_HEARTBEAT_SECONDS",
        field="events_heartbeat_seconds",
        parse=readers.number,
        default="15",
        meaning="an event stream sends a comment after this long without an event, for proxies",
    ),
    Setting(
        name="JOBKIT_EVENTS_MAX_PER_USER",
        field="events_max_per_user",
        parse=readers.integer,
        default="8",
        meaning="event streams one user may hold open in one process (`429` above)",
    ),
    Setting(
        name="JOBKIT_CHANGES_POLL_SECONDS",
        field="changes_poll_seconds",
        parse=readers.seconds_or_off,
        default="1",
        meaning="while a reader waits, how often other processes' writes are looked for"
        " (0: this process is the only writer)",
    ),
    Setting(
        name="JOBKIT_SIGNIN_SECONDS",
        field="signin_seconds",
        parse=readers.number,
        default="600",
        meaning="lifetime of a one-time local sign-in link (`jobkit signin`, printed by `serve`)",
    ),
    Setting(
        name="JOBKIT_WEB_SESSION_SECONDS",
        field="web_session_seconds",
        parse=readers.integer,
        default="28800",
        meaning="lifetime of the local token the page gets for a sign-in link",
    ),
    Setting(
        name="JOBKIT_WEB_CLIENT_ID",
        field="web_client_id",
        parse=readers.optional,
        default="(none)",
        meaning="with `entra`: the web page's app registration (a single-page application)",
    ),
    Setting(
        name="JOBKIT_WEB_AUTHORITY",
        field="web_authority",
        parse=readers.optional,
        default="(https://login.microsoftonline.com/TENANT)",
        meaning="with `entra`: where the page signs users in",
    ),
    Setting(
        name="JOBKIT_WEB_API_SCOPE",
        field="web_api_scope",
        parse=readers.optional,
        default="(AUDIENCE/SCOPE, e.g. api://…/Jobs.ReadWrite)",
        meaning="with `entra`: the scope the page asks tokens for",
    ),
    Setting(
        name="JOBKIT_WEB_REDIRECT_URI",
        field="web_redirect_uri",
        parse=readers.optional,
        default="(the page's origin + /signin)",
        meaning="with `entra`: the redirect URI registered for the page (SPA platform)",
    ),
)
