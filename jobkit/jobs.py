"""The job: a frozen persistent map keyed by the API's JSON names, its readers and updaters.

This is the only module that touches a job's raw keys. The same map is
stored, served and logged; `to_document`/`from_document` convert it to and
from plain JSON values (ISO 8601 instants, lists, dicts) at the storage edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pyrsistent import freeze, pmap, pvector, thaw
from pyrsistent.typing import PMap, PVector

from jobkit import _frozen, errors, instants
from jobkit.status import Status

Job = PMap[str, Any]
Entry = PMap[str, Any]

FIELDS: tuple[str, ...] = (
    "id",
    "userId",
    "type",
    "status",
    "priority",
    "queue",
    "runAt",
    "params",
    "input",
    "result",
    "resultUrl",
    "error",
    "attempts",
    "maxAttempts",
    "history",
    "progress",
    "leaseOwner",
    "leaseExpiresAt",
    "version",
    "createdAt",
    "updatedAt",
    "metadata",
)

# Outcomes of one attempt, as recorded in its history entry.
SUCCEEDED, FAILED, STALLED, RELEASED = "succeeded", "failed", "stalled", "released"


# -- readers ---------------------------------------------------------------


def id(job: Job) -> str:  # noqa: A001 - read as jobs.id(job)
    return str(job["id"])


def user_id(job: Job) -> str:
    return str(job["userId"])


def type_name(job: Job) -> str:
    return str(job["type"])


def status(job: Job) -> Status:
    """The job's status; a draft (not yet submitted) has none and is a caller bug here."""
    value = job["status"]
    if value is None:
        raise errors.JobkitError(f"job {job['id']} is a draft and has no status yet")
    return Status(value)


def status_or_none(job: Job) -> Status | None:
    value = job["status"]
    return None if value is None else Status(value)


def priority(job: Job) -> int:
    return int(job["priority"])


def queue(job: Job) -> str:
    return str(job["queue"])


def run_at(job: Job) -> datetime:
    value: datetime = job["runAt"]
    return value


def params(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = job["params"]
    return value


def input(job: Job) -> PMap[str, Any] | None:  # noqa: A001 - read as jobs.input(job)
    value: PMap[str, Any] | None = job["input"]
    return value


def result(job: Job) -> PMap[str, Any] | None:
    value: PMap[str, Any] | None = job["result"]
    return value


def result_url(job: Job) -> str | None:
    value: str | None = job["resultUrl"]
    return value


def error(job: Job) -> errors.Error | None:
    value = job["error"]
    return None if value is None else errors.from_map(value)


def attempts(job: Job) -> int:
    """Finished attempts: succeeded, failed or stalled. A released attempt does not count."""
    return int(job["attempts"])


def max_attempts(job: Job) -> int:
    return int(job["maxAttempts"])


def history(job: Job) -> PVector[Entry]:
    value: PVector[Entry] = job["history"]
    return value


def claim(job: Job) -> int:
    """The number of the latest claim (1-based); a worker's events must name it."""
    return len(job["history"])


def progress(job: Job) -> PMap[str, Any] | None:
    value: PMap[str, Any] | None = job["progress"]
    return value


def lease_owner(job: Job) -> str | None:
    value: str | None = job["leaseOwner"]
    return value


def lease_expires_at(job: Job) -> datetime | None:
    value: datetime | None = job["leaseExpiresAt"]
    return value


def version(job: Job) -> int:
    return int(job["version"])


def created_at(job: Job) -> datetime:
    value: datetime = job["createdAt"]
    return value


def updated_at(job: Job) -> datetime:
    value: datetime = job["updatedAt"]
    return value


def metadata(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = job["metadata"]
    return value


def next_run_at(job: Job) -> datetime | None:
    """When a pending job will next be tried; None once it is running or finished."""
    return run_at(job) if job["status"] == Status.PENDING else None


def blob_keys(job: Job) -> tuple[str, ...]:
    """Every blob the job owns: its input document and each attempt's result."""
    keys: list[str] = []
    source = input(job)
    if source is not None and isinstance(source.get("blob"), str):
        keys.append(source["blob"])
    for entry in history(job):
        key = entry.get("resultKey")
        if isinstance(key, str):
            keys.append(key)
    outcome = result(job)
    if outcome is not None and isinstance(outcome.get("resultKey"), str):
        keys.append(outcome["resultKey"])
    return tuple(dict.fromkeys(keys))


# -- updaters: each returns a new map; the machine bumps version once per write ----


def with_status(job: Job, value: Status) -> Job:
    return job.set("status", value.value)


def with_lease(job: Job, owner: str, expires_at: datetime) -> Job:
    return job.set("leaseOwner", owner).set("leaseExpiresAt", expires_at)


def without_lease(job: Job) -> Job:
    return job.set("leaseOwner", None).set("leaseExpiresAt", None)


def with_run_at(job: Job, at: datetime) -> Job:
    return job.set("runAt", at)


def with_attempts(job: Job, value: int) -> Job:
    return job.set("attempts", value)


def with_error(job: Job, value: errors.Error | None) -> Job:
    return job.set("error", None if value is None else errors.to_map(value))


def with_result(job: Job, value: Mapping[str, Any] | None, url: str | None) -> Job:
    frozen = None if value is None else _frozen.mapping(value)
    return job.set("result", frozen).set("resultUrl", url)


def with_progress(job: Job, current: int, total: int, message: str) -> Job:
    return job.set("progress", pmap({"current": current, "total": total, "message": message}))


def without_progress(job: Job) -> Job:
    return job.set("progress", None)


def with_attempt_started(job: Job, worker: str, at: datetime) -> Job:
    entry = pmap(
        {
            "attempt": claim(job) + 1,
            "worker": worker,
            "startedAt": at,
            "endedAt": None,
            "outcome": None,
            "error": None,
            "nextRunAt": None,
            "delaySeconds": None,
        }
    )
    return job.set("history", history(job).append(entry))


def with_attempt_ended(
    job: Job,
    *,
    at: datetime,
    outcome: str,
    error: errors.Error | None = None,
    next_run_at: datetime | None = None,
    delay_seconds: float | None = None,
    result_key: str | None = None,
) -> Job:
    """Close the latest history entry with how and when the attempt ended."""
    entries = history(job)
    changes: dict[str, Any] = {
        "endedAt": at,
        "outcome": outcome,
        "error": None if error is None else errors.to_map(error),
        "nextRunAt": next_run_at,
        "delaySeconds": delay_seconds,
    }
    if result_key is not None:
        changes["resultKey"] = result_key
    return job.set("history", entries.set(len(entries) - 1, entries[-1].update(changes)))


def touched(job: Job, now: datetime) -> Job:
    """One write: the version fence grows by one and `updatedAt` moves to `now`."""
    return job.set("version", version(job) + 1).set("updatedAt", now)


# -- documents: the JSON form at the storage and API edge ---------------------

_INSTANT_FIELDS = ("runAt", "leaseExpiresAt", "createdAt", "updatedAt")
_ENTRY_INSTANTS = ("startedAt", "endedAt", "nextRunAt")


def _entry_to_document(entry: Entry) -> dict[str, Any]:
    doc: dict[str, Any] = dict(thaw(entry))
    for name in _ENTRY_INSTANTS:
        doc[name] = instants.format_or_none(entry[name])
    if entry["error"] is not None:
        doc["error"] = errors.to_document(errors.from_map(entry["error"]))
    return doc


def _entry_from_document(doc: Mapping[str, Any]) -> Entry:
    values = dict(doc)
    for name in _ENTRY_INSTANTS:
        values[name] = instants.parse_or_none(doc.get(name))
    if doc.get("error") is not None:
        values["error"] = errors.to_map(errors.from_document(doc["error"]))
    return _frozen.mapping(values)


def to_document(job: Job) -> dict[str, Any]:
    """The job as plain JSON values: what the API serves and the stores keep."""
    doc: dict[str, Any] = {name: thaw(job[name]) for name in FIELDS}
    for name in _INSTANT_FIELDS:
        doc[name] = instants.format_or_none(job[name])
    if job["error"] is not None:
        doc["error"] = errors.to_document(errors.from_map(job["error"]))
    doc["history"] = [_entry_to_document(entry) for entry in history(job)]
    return doc


def from_document(doc: Mapping[str, Any]) -> Job:
    """Inverse of `to_document`; a document missing a field is a store bug and raises."""
    missing = [name for name in FIELDS if name not in doc]
    if missing:
        raise errors.JobkitError(f"job document lacks fields {missing}")
    values = {name: doc[name] for name in FIELDS}
    for name in _INSTANT_FIELDS:
        values[name] = instants.parse_or_none(doc[name])
    values["error"] = (
        None if doc["error"] is None else errors.to_map(errors.from_document(doc["error"]))
    )
    frozen: Job = freeze({k: v for k, v in values.items() if k != "history"})
    return frozen.set("history", pvector(_entry_from_document(e) for e in doc["history"]))


def draft(
    *,
    job_id: str,
    user_id: str,
    type_name: str,
    params: Mapping[str, Any],
    priority: int,
    queue: str,
    run_at: datetime,
    max_attempts: int,
    metadata: Mapping[str, Any],
    input: Mapping[str, Any] | None,  # noqa: A002 - the JSON name
    now: datetime,
) -> Job:
    """A job not yet submitted (no status, version 0); `Submitted` makes it pending."""
    job: Job = freeze(
        {
            "id": job_id,
            "userId": user_id,
            "type": type_name,
            "status": None,
            "priority": priority,
            "queue": queue,
            "runAt": run_at,
            "params": params,
            "input": input,
            "result": None,
            "resultUrl": None,
            "error": None,
            "attempts": 0,
            "maxAttempts": max_attempts,
            "progress": None,
            "leaseOwner": None,
            "leaseExpiresAt": None,
            "version": 0,
            "createdAt": now,
            "updatedAt": now,
            "metadata": metadata,
        }
    )
    return job.set("history", pvector())
