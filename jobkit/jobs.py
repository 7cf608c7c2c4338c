"""The job: its fields, and a typed reader for each. The one module that reads a job's raw values.

A job is an immutable mapping keyed by the API's JSON names (`FIELDS`); its document,
the same keys as plain JSON values, is what stores keep and the API serves
(`jobkit.documents`). Read a job through these functions (`jobs.status(job)`); build its
next version with `jobkit.changes`; write it as a store does with `jobkit.records`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pyrsistent.typing import PMap, PVector

from jobkit import _frozen, _values, errors
from jobkit._values import (
    ATTEMPTS,
    CREATED_AT,
    E_ATTEMPT,
    E_ENDED_AT,
    E_ERROR,
    E_OUTCOME,
    E_RESULT_KEY,
    E_STARTED_AT,
    E_WORKER,
    ERROR,
    HISTORY,
    ID,
    IDEMPOTENCY,
    INPUT,
    LEASE_EXPIRES_AT,
    LEASE_OWNER,
    MAX_ATTEMPTS,
    METADATA,
    PARAMS,
    PRIORITY,
    PROGRESS,
    QUEUE,
    RESULT,
    RUN_AT,
    STATUS,
    TURN,
    TYPE,
    UPDATED_AT,
    USER_ID,
    VERSION,
)
from jobkit.status import Status

Job = _values.Job
Entry = _values.Entry
Input = _values.Input
FIELDS = _values.FIELDS
ENTRY_KEYS = _values.ENTRY_KEYS

# Outcomes of one attempt, as recorded in its history entry. A released or deferred attempt
# does not count against the job's attempts: it was handed back (the worker stopped) or
# never reached the service it needs (whose circuit breaker was open).
SUCCEEDED, FAILED, STALLED, RELEASED, DEFERRED = (
    "succeeded",
    "failed",
    "stalled",
    "released",
    "deferred",
)

# The enum members by their stored text: a dict lookup is several times cheaper than
# the enum's own `Status(value)` call, which stays the way to refuse an unknown value.
STATUSES: dict[str, Status] = {member.value: member for member in Status}
STATUS_TEXTS: dict[Status, str] = {member: member.value for member in Status}  # `.value`: slow


def as_status(value: Any) -> Status:
    found = STATUSES.get(value) if type(value) is str else None
    return Status(value) if found is None else found


# -- the job's fields ---------------------------------------------------------------


def id(job: Job) -> str:  # noqa: A001 - read as jobs.id(job)
    value: str = job._values[ID]
    return value


def user_id(job: Job) -> str:
    value: str = job._values[USER_ID]
    return value


def type_name(job: Job) -> str:
    value: str = job._values[TYPE]
    return value


def status(job: Job) -> Status:
    """The job's status; a draft (not yet submitted) has none and is a caller bug here."""
    value = job._values[STATUS]
    if value is None:
        raise errors.JobkitError(f"job {job['id']} is a draft and has no status yet")
    return as_status(value)


def status_or_none(job: Job) -> Status | None:
    value = job._values[STATUS]
    return None if value is None else as_status(value)


def priority(job: Job) -> int:
    value: int = job._values[PRIORITY]
    return value


def queue(job: Job) -> str:
    value: str = job._values[QUEUE]
    return value


def turn(job: Job) -> int:
    """The job's place in its band's round of claims (`schedule`): within a (queue, priority),
    lower turns are claimed first. Given when it is stored (`JobStore.insert_in_turn`) and
    again when its owner retries it by hand; kept through automatic retries and releases."""
    value: int = job._values[TURN]
    return value


def with_turn(job: Job, turn: int) -> Job:
    """The job holding `turn` and otherwise the same: what a store keeps of a submitted job
    once it has given it its turn (`JobStore.insert_in_turn`). Not a new version."""
    values = list(job._values)
    values[TURN] = turn
    return _values.make_job(tuple(values))


def run_at(job: Job) -> datetime:
    value: datetime = job._values[RUN_AT]
    return value


def params(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = job._values[PARAMS]
    return value


def input(job: Job) -> Input | None:  # noqa: A001 - read as jobs.input(job)
    value: Input | None = job._values[INPUT]
    return value


def result(job: Job) -> PMap[str, Any] | None:
    """The succeeded attempt's summary (the job type's own small map); None until then."""
    value: PMap[str, Any] | None = job._values[RESULT]
    return value


def error(job: Job) -> errors.Error | None:
    """The latest failed attempt's error; None once the job completes or is retried by hand."""
    value: errors.Error | None = job._values[ERROR]
    return value


def attempts(job: Job) -> int:
    """Finished attempts: succeeded, failed or stalled. A released attempt does not count."""
    value: int = job._values[ATTEMPTS]
    return value


def max_attempts(job: Job) -> int:
    value: int = job._values[MAX_ATTEMPTS]
    return value


def history(job: Job) -> PVector[Entry]:
    value: PVector[Entry] = job._values[HISTORY]
    return value


def claim(job: Job) -> int:
    """The number of the latest claim (1-based); a worker's events must name it."""
    return len(job._values[HISTORY])


def progress(job: Job) -> PMap[str, Any] | None:
    value: PMap[str, Any] | None = job._values[PROGRESS]
    return value


def lease_owner(job: Job) -> str | None:
    value: str | None = job._values[LEASE_OWNER]
    return value


def lease_expires_at(job: Job) -> datetime | None:
    value: datetime | None = job._values[LEASE_EXPIRES_AT]
    return value


def version(job: Job) -> int:
    value: int = job._values[VERSION]
    return value


def created_at(job: Job) -> datetime:
    value: datetime = job._values[CREATED_AT]
    return value


def updated_at(job: Job) -> datetime:
    value: datetime = job._values[UPDATED_AT]
    return value


def metadata(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = job._values[METADATA]
    return value


def idempotency(job: Job) -> PMap[str, Any] | None:
    """`{"key", "fingerprint"}` when submitted with an `Idempotency-Key`, else None."""
    value: PMap[str, Any] | None = job._values[IDEMPOTENCY]
    return value


# -- derived from the fields ----------------------------------------------------------


def next_run_at(job: Job) -> datetime | None:
    """When a pending job will next be tried; None once it is running or finished."""
    return run_at(job) if job._values[STATUS] == Status.PENDING else None


def result_key(job: Job) -> str | None:
    """Where a completed job's result document is: the blob its succeeded attempt wrote.

    The one place a job says where its result is (a history entry's `resultKey`); None
    before it completes, and for a job type that writes no document."""
    if job._values[STATUS] != Status.COMPLETED:
        return None
    entries = job._values[HISTORY]
    if not entries:
        return None
    key: str | None = entries[-1]._values[E_RESULT_KEY]
    return key


def blob_keys(job: Job) -> tuple[str, ...]:
    """Every blob the job owns: its input document and each attempt's result."""
    keys: list[str] = []
    source = input(job)
    if source is not None:
        keys.append(source.blob)
    for entry in history(job):
        key = entry._values[E_RESULT_KEY]
        if key is not None:
            keys.append(key)
    return tuple(dict.fromkeys(keys))


# -- history entries: one per claim, oldest first -------------------------------------


def entry_attempt(entry: Entry) -> int:
    """The claim number (1-based) this entry records."""
    value: int = entry._values[E_ATTEMPT]
    return value


def entry_worker(entry: Entry) -> str:
    value: str = entry._values[E_WORKER]
    return value


def entry_started_at(entry: Entry) -> datetime:
    value: datetime = entry._values[E_STARTED_AT]
    return value


def entry_ended_at(entry: Entry) -> datetime | None:
    """When the attempt ended; None while it runs."""
    value: datetime | None = entry._values[E_ENDED_AT]
    return value


def entry_outcome(entry: Entry) -> str | None:
    """`succeeded`, `failed`, `stalled` or `released`; None while the attempt runs."""
    value: str | None = entry._values[E_OUTCOME]
    return value


def entry_error(entry: Entry) -> errors.Error | None:
    value: errors.Error | None = entry._values[E_ERROR]
    return value


def entry_result_key(entry: Entry) -> str | None:
    value: str | None = entry._values[E_RESULT_KEY]
    return value


# -- a new job -------------------------------------------------------------------------


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
    input: Input | None,  # noqa: A002 - the JSON name
    now: datetime,
    idempotency: Mapping[str, str] | None = None,
) -> Job:
    """A job not yet submitted (no status, version 0); `Submitted` makes it pending."""
    freeze = _frozen.freeze  # only the maps need it: the other arguments are scalars
    return _values.make_job(
        _values.IN_ORDER(
            {
                "id": job_id,
                "userId": user_id,
                "type": type_name,
                "status": None,
                "priority": priority,
                "queue": queue,
                "turn": 0,
                "runAt": run_at,
                "params": freeze(params),
                "input": input,
                "result": None,
                "error": None,
                "attempts": 0,
                "maxAttempts": max_attempts,
                "progress": None,
                "leaseOwner": None,
                "leaseExpiresAt": None,
                "version": 0,
                "createdAt": now,
                "updatedAt": now,
                "metadata": freeze(metadata),
                "idempotency": freeze(idempotency),
                "history": _frozen.EMPTY_VECTOR,
            }
        )
    )
