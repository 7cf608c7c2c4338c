"""jobkit: asynchronous job processing on a pure functional core.

Import the modules, not their members: `from jobkit import jobs, machine`, then
`jobs.status(job)`, `machine.step(job, event, now)`.
"""

from jobkit import (
    breaker,
    changes,
    documents,
    effects,
    errors,
    events,
    instants,
    jobs,
    listing,
    machine,
    pipeline,
    quotas,
    ratelimit,
    records,
    registry,
    retry,
    schedule,
    status,
    submission,
)

__version__ = "0.1.0"

__all__ = [
    "breaker",
    "changes",
    "documents",
    "effects",
    "errors",
    "events",
    "instants",
    "jobs",
    "listing",
    "machine",
    "pipeline",
    "quotas",
    "ratelimit",
    "records",
    "registry",
    "retry",
    "schedule",
    "status",
    "submission",
]
