"""What the API shows of a job: its document less what belongs to operators, plus links.

The API serves the job's own document (`documents.to_document`: the map every store keeps
and the logs show), with two changes, made here and nowhere else:

- what belongs to operators is left out: which worker process held it (`leaseOwner`,
  each history entry's `worker`: a host name and a process id), where its files are
  stored (`input.blob`, `input.uri`, each history entry's `resultKey`), and the
  fingerprint of an idempotent request, and the job's `turn` (its round in its band's fair
  claims, `jobkit.schedule`: a scheduling detail that may change with the policy, not a
  promise). Operators read those in logs and metrics.
- links the client can follow are added: `resultUrl` (the API's result endpoint, once
  the job has a result document; `jobs.result_key` decides that, for every view) and
  `links`.

The status endpoint serves a projection of the same view, for pollers.
"""

from __future__ import annotations

from typing import Any, Final

from jobkit import documents, errors, instants, jobs

PREFIX = "/api/v1"

# Keys of the document that belong to operators, by where they are.
PRIVATE: Final = frozenset({"leaseOwner", "turn"})
PRIVATE_IN_ENTRIES: Final = frozenset({"worker", "resultKey"})
PRIVATE_IN_INPUT: Final = frozenset({"blob", "uri"})
PRIVATE_IN_IDEMPOTENCY: Final = frozenset({"fingerprint"})
ENTRY_KEYS: Final = tuple(key for key in jobs.ENTRY_KEYS if key not in PRIVATE_IN_ENTRIES)
FIELDS: Final = (*(key for key in jobs.FIELDS if key not in PRIVATE), "resultUrl", "links")
STATUS_FIELDS: Final = (
    "id",
    "status",
    "progress",
    "attempts",
    "maxAttempts",
    "nextRunAt",
    "resultUrl",
    "error",
    "updatedAt",
    "version",
)


def links(job_id: str) -> dict[str, str]:
    return {
        "jobUrl": f"{PREFIX}/jobs/{job_id}",
        "statusUrl": f"{PREFIX}/jobs/{job_id}/status",
        "resultUrl": f"{PREFIX}/jobs/{job_id}/result",
    }


def result_url(job: jobs.Job) -> str | None:
    """The API's link to the job's result document, once it has one; the only place the
    API decides it. Clients fetch through the API, which checks who asks."""
    if jobs.result_key(job) is None:
        return None
    return f"{PREFIX}/jobs/{jobs.id(job)}/result"


def _without(doc: dict[str, Any] | None, private: frozenset[str]) -> dict[str, Any] | None:
    return None if doc is None else {k: v for k, v in doc.items() if k not in private}


def job_view(job: jobs.Job) -> dict[str, Any]:
    """The job as the API serves it (`GET /jobs/{id}`, the list, cancel and retry)."""
    doc = documents.to_document(job)
    view = {key: value for key, value in doc.items() if key not in PRIVATE}
    view["input"] = _without(doc["input"], PRIVATE_IN_INPUT)
    view["idempotency"] = _without(doc["idempotency"], PRIVATE_IN_IDEMPOTENCY)
    view["history"] = [_without(entry, PRIVATE_IN_ENTRIES) for entry in doc["history"]]
    view["resultUrl"] = result_url(job)
    view["links"] = links(jobs.id(job))
    return view


def status_view(job: jobs.Job) -> dict[str, Any]:
    """What a poller needs (`GET /jobs/{id}/status`): a projection of `job_view`, with
    `nextRunAt` (when a pending job will next be tried) instead of the whole history."""
    error = jobs.error(job)
    progress = jobs.progress(job)
    return {
        "id": jobs.id(job),
        "status": jobs.status(job).value,
        "progress": None if progress is None else dict(progress),
        "attempts": jobs.attempts(job),
        "maxAttempts": jobs.max_attempts(job),
        "nextRunAt": instants.format_or_none(jobs.next_run_at(job)),
        "resultUrl": result_url(job),
        "error": None if error is None else errors.to_document(error),
        "updatedAt": instants.format(jobs.updated_at(job)),
        "version": jobs.version(job),
    }


def accepted_view(job: jobs.Job) -> dict[str, Any]:
    """The answer to a submission (`202`): the job's id and status, and where to look."""
    job_id = jobs.id(job)
    return {"id": job_id, "status": jobs.status(job).value, **links(job_id)}
