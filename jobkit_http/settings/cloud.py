"""The variables of the Google Cloud parts: Firestore and Cloud Storage, Gemini, push dispatch."""

from __future__ import annotations

from jobkit_http.settings import readers
from jobkit_http.settings.readers import Setting

CLOUD: tuple[Setting, ...] = (
    # -- the GCP backend (Firestore, Cloud Storage)
    Setting(
        name="JOBKIT_GCP_PROJECT",
        field="gcp_project",
        parse=readers.optional,
        default="(GOOGLE_CLOUD_PROJECT, else the credentials')",
        meaning="Google Cloud project of Firestore, Cloud Storage and Vertex AI",
        fallbacks=("GOOGLE_CLOUD_PROJECT",),
    ),
    Setting(
        name="JOBKIT_BACKEND",
        field="backend",
        parse=readers.choice("sqlite", "gcp"),
        default="sqlite",
        meaning="where jobs and files live: `sqlite` (the embedded default, in `JOBKIT_DATA`)"
        " or `gcp` (Firestore and Cloud Storage)",
    ),
    Setting(
        name="JOBKIT_FIRESTORE_DATABASE",
        field="firestore_database",
        parse=readers.matching(
            r"\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9]", "a Firestore database id"
        ),
        default="(default)",
        meaning="the Firestore database holding the jobs",
    ),
    Setting(
        name="JOBKIT_FIRESTORE_COLLECTION",
        field="firestore_collection",
        parse=readers.matching(
            r"(?!__.*__$)[^/]{1,1500}", "a collection id: no `/`, not `__...__`"
        ),
        default="jobs",
        meaning="the collection holding one document per job (`deploy/firestore.indexes.json`"
        " names it)",
    ),
    Setting(
        name="JOBKIT_GCS_BUCKET",
        field="gcs_bucket",
        parse=readers.bucket,
        default="(none)",
        meaning="the Cloud Storage bucket for uploads and results; required with `gcp`",
    ),
    Setting(
        name="JOBKIT_GCS_PREFIX",
        field="gcs_prefix",
        parse=readers.prefix,
        default="(none)",
        meaning="folder of the bucket every object goes under (`team/jobkit`)",
    ),
    Setting(
        name="JOBKIT_FIRESTORE_LISTEN",
        field="firestore_listen",
        parse=readers.boolean,
        default="true",
        meaning="wake idle workers and answer status polls from Firestore snapshot listeners"
        " (false: poll the store, as the embedded default does)",
    ),
    # -- Gemini
    Setting(
        name="JOBKIT_ANALYZER",
        field="analyzer",
        parse=readers.choice("offline", "gemini"),
        default="offline",
        meaning="`offline` (pypdf text extraction, no network) or `gemini`",
    ),
    Setting(
        name="JOBKIT_GEMINI_API_KEY",
        field="gemini_api_key",
        parse=readers.optional,
        default="(GOOGLE_API_KEY, else GEMINI_API_KEY)",
        meaning="a Gemini Developer API key: set, Gemini is called there instead of on Vertex AI",
        fallbacks=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    ),
    Setting(
        name="JOBKIT_VERTEX_LOCATION",
        field="vertex_location",
        parse=readers.text,
        default="us-central1",
        meaning="Vertex AI location (region, or `global`) Gemini is called in",
    ),
    Setting(
        name="JOBKIT_GEMINI_MODEL",
        field="gemini_model",
        parse=readers.text,
        default="gemini-3.1-pro-preview",
        meaning="the model a job gets unless it names one (`model` parameter)",
    ),
    Setting(
        name="JOBKIT_GEMINI_MODELS",
        field="gemini_models",
        parse=readers.names,
        default="(the default model only)",
        meaning="comma-separated models a job may also ask for; others are refused with `422`",
    ),
    Setting(
        name="JOBKIT_GEMINI_TIMEOUT_SECONDS",
        field="gemini_timeout_seconds",
        parse=readers.number,
        default="300",
        meaning="longest wait for one Gemini answer (a timeout is retried)",
    ),
    Setting(
        name="JOBKIT_GEMINI_MAX_OUTPUT_TOKENS",
        field="gemini_max_output_tokens",
        parse=readers.integer,
        default="16384",
        meaning="longest answer, thinking included; an answer cut there fails `output_truncated`",
    ),
    Setting(
        name="JOBKIT_GEMINI_MAX_PAGES",
        field="gemini_max_pages",
        parse=readers.integer,
        default="1000",
        meaning="most pages in a PDF sent to Gemini (`too_many_pages` above, before any call)",
    ),
    Setting(
        name="JOBKIT_GEMINI_MAX_BYTES",
        field="gemini_max_bytes",
        parse=readers.integer,
        default="52428800",
        meaning="largest PDF sent to Gemini (`document_too_large` above, before any call)",
    ),
    Setting(
        name="JOBKIT_GEMINI_INLINE_MAX_BYTES",
        field="gemini_inline_max_bytes",
        parse=readers.integer,
        default="20971520",
        meaning="largest PDF sent inline; above it, the Files API (developer) or Cloud Storage",
    ),
    Setting(
        name="JOBKIT_GEMINI_TOKENS_PER_PAGE",
        field="gemini_tokens_per_page",
        parse=readers.integer,
        default="560",
        meaning="input tokens a PDF page is expected to cost, for the tokens-per-minute limiter",
    ),
    Setting(
        name="JOBKIT_GEMINI_INPUT_PRICE",
        field="gemini_input_price",
        parse=readers.number,
        default="2.0",
        meaning="USD per million input tokens, for each job's estimated cost",
    ),
    Setting(
        name="JOBKIT_GEMINI_OUTPUT_PRICE",
        field="gemini_output_price",
        parse=readers.number,
        default="12.0",
        meaning="USD per million output tokens (the answer and the model's thinking)",
    ),
    Setting(
        name="JOBKIT_GEMINI_REQUESTS_PER_MINUTE",
        field="gemini_requests_per_minute",
        parse=readers.number,
        default="60",
        meaning="Gemini calls per minute, per process (token bucket; a minute's worth may burst)",
    ),
    Setting(
        name="JOBKIT_GEMINI_TOKENS_PER_MINUTE",
        field="gemini_tokens_per_minute",
        parse=readers.number,
        default="1000000",
        meaning="Gemini input tokens per minute, per process: estimated before, settled after",
    ),
    Setting(
        name="JOBKIT_GEMINI_BREAKER_FAILURES",
        field="gemini_breaker_failures",
        parse=readers.integer,
        default="5",
        meaning="consecutive transient Gemini failures that open the circuit breaker",
    ),
    Setting(
        name="JOBKIT_GEMINI_BREAKER_COOLDOWN_SECONDS",
        field="gemini_breaker_cooldown_seconds",
        parse=readers.number,
        default="30",
        meaning="how long an open breaker waits before a trial call",
    ),
    #
    # -- push dispatch (Cloud Run, Cloud Tasks)
    #
    Setting(
        name="JOBKIT_DISPATCH",
        field="dispatch",
        parse=readers.choice("pull", "push"),
        default="pull",
        meaning="`pull` (workers claim in a loop) or `push` (Cloud Tasks rings"
        " `POST /internal/dispatch` once per due job; needs `gcp`)",
    ),
    Setting(
        name="JOBKIT_TASKS_QUEUE",
        field="tasks_queue",
        parse=readers.matching(
            r"projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100}",
            "a queue's full name: projects/P/locations/L/queues/Q",
        ),
        default="(none)",
        meaning="the Cloud Tasks queue of the doorbells; required with `push`",
    ),
    Setting(
        name="JOBKIT_DISPATCH_URL",
        field="dispatch_url",
        parse=readers.base_url,
        default="(none)",
        meaning="the service's own base URL as Cloud Tasks reaches it (doorbells call"
        " `POST /internal/dispatch` under it); required with `push`",
    ),
    Setting(
        name="JOBKIT_DISPATCH_SERVICE_ACCOUNT",
        field="dispatch_service_account",
        parse=readers.optional,
        default="(none)",
        meaning="the service account in the OIDC token Cloud Tasks and Cloud Scheduler attach;"
        " the internal endpoints accept only its tokens",
    ),
    Setting(
        name="JOBKIT_DISPATCH_AUDIENCE",
        field="dispatch_audience",
        parse=readers.optional,
        default="(JOBKIT_DISPATCH_URL)",
        meaning="the audience of those OIDC tokens",
    ),
    Setting(
        name="JOBKIT_DISPATCH_SECRET",
        field="dispatch_secret",
        parse=readers.secret,
        default="(none)",
        meaning="a shared secret each doorbell carries in `X-Jobkit-Dispatch-Secret`, where no"
        " OIDC token can be had (the emulator); push needs it or the service account",
    ),
    Setting(
        name="JOBKIT_DISPATCH_METADATA_URL",
        field="dispatch_metadata_url",
        parse=readers.optional,
        default="(Google's OpenID metadata)",
        meaning="where the OIDC tokens' signing keys are found (tests)",
    ),
    Setting(
        name="CLOUD_TASKS_EMULATOR_HOST",
        field="tasks_emulator_host",
        parse=readers.optional,
        default="(none)",
        meaning="`host:port` of a Cloud Tasks emulator: doorbells go there, over an insecure"
        " channel",
    ),
)
