"""Hypothesis strategies for property-testing a job type: jobs, effect outcomes and faults.

Jobs are only ever made the way production makes them: `submission.new_job`
gives a draft and `machine.step` moves it by legal events, so every job drawn
here is one the system can actually hold. Needs hypothesis
(`pip install 'jobkit[testing]'`); `import jobkit.testing` alone does not load it.
"""

from jobkit.testing.strategies._answers import (
    DEFAULT_VALUES,
    FALLIBLE,
    Responder,
    Values,
    analyses,
    fault_schedules,
    faults,
    outcomes,
    responders,
    successes,
)
from jobkit.testing.strategies._drafts import (
    Types,
    documents,
    drafts,
    job_ids,
    queues,
    submissions,
    user_ids,
)
from jobkit.testing.strategies._values import (
    ERROR_CODES,
    SCALARS,
    error_values,
    failures,
    json_objects,
    json_values,
    later,
    permanent_errors,
    transient_errors,
    utc_datetimes,
)
from jobkit.testing.strategies._walks import (
    WORKERS,
    accepted,
    events_of,
    histories,
    jobs_of,
    lease_seconds,
    results,
)

__all__ = [
    "DEFAULT_VALUES",
    "ERROR_CODES",
    "FALLIBLE",
    "SCALARS",
    "WORKERS",
    "Responder",
    "Types",
    "Values",
    "accepted",
    "analyses",
    "documents",
    "drafts",
    "error_values",
    "events_of",
    "failures",
    "fault_schedules",
    "faults",
    "histories",
    "job_ids",
    "jobs_of",
    "json_objects",
    "json_values",
    "later",
    "lease_seconds",
    "outcomes",
    "permanent_errors",
    "queues",
    "responders",
    "results",
    "submissions",
    "successes",
    "transient_errors",
    "user_ids",
    "utc_datetimes",
]
