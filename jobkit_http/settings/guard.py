"""The variables that bound what users and documents may cost: quotas, CORS, document limits."""

from __future__ import annotations

from jobkit_http.settings import readers
from jobkit_http.settings.readers import Setting

GUARD: tuple[Setting, ...] = (
    # -- hardening (quotas, CORS, document limits)
    Setting(
        name="JOBKIT_DOCUMENT_WORKERS",
        field="document_workers",
        parse=readers.integer,
        default="2",
        meaning="child processes that parse uploaded documents, each one document at a time: "
        "how many the offline analyzer works on at once",
    ),
    Setting(
        name="JOBKIT_DOCUMENT_CPU_SECONDS",
        field="document_cpu_seconds",
        parse=readers.number,
        default="60",
        meaning="CPU time parsing one document may take; past it the job fails as "
        "`document_too_complex`",
    ),
    Setting(
        name="JOBKIT_DOCUMENT_MEMORY_MB",
        field="document_memory_mb",
        parse=readers.integer,
        default="512",
        meaning="address space of a process parsing a document; past it the job fails as "
        "`document_too_complex`",
    ),
    Setting(
        name="JOBKIT_USER_SUBMITS_PER_MINUTE",
        field="user_submits_per_minute",
        parse=readers.off_or(readers.number),
        default="(off)",
        meaning="submissions one user may make per minute (a burst of as many), per API "
        "process; `429` with `Retry-After` past it",
    ),
    Setting(
        name="JOBKIT_USER_MAX_PENDING",
        field="user_max_pending",
        parse=readers.off_or(readers.integer),
        default="(off)",
        meaning="jobs one user may have pending or running at once, counted in the store; "
        "`429` with `Retry-After` past it",
    ),
    Setting(
        name="JOBKIT_CORS_ORIGINS",
        field="cors_origins",
        parse=readers.origins,
        default="(none)",
        meaning="comma-separated origins of web pages that may call the API from a browser "
        "(`https://app.example.com`); none: no cross-origin access",
    ),
    Setting(
        name="JOBKIT_ORPHAN_AGE_SECONDS",
        field="orphan_age_seconds",
        parse=readers.off_or(readers.number),
        default="(the longest upload: max size at 16 KiB/s, at least 10 min)",
        meaning="how old an uploaded file with no job must be before the sweep deletes it",
    ),
    Setting(
        name="JOBKIT_ORPHAN_SWEEP_SECONDS",
        field="orphan_sweep_seconds",
        parse=readers.number,
        default="3600",
        meaning="how often `serve` sweeps orphaned uploads (also once at start-up)",
    ),
)
