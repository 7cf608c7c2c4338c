"""The job: a frozen persistent map keyed by the API's JSON names, its readers and updaters.

This is the only module that touches a job's raw keys. The same map is
stored, served and logged; `to_document`/`from_document` convert it to and
from plain JSON values (ISO 8601 instants, lists, dicts) at the storage edge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pyrsistent import pmap, pvector
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
    "idempotency",
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


# -- history entries: one per claim, oldest first -------------------------------


def entry_attempt(entry: Entry) -> int:
    """The claim number (1-based) this entry records."""
    return int(entry["attempt"])


def entry_worker(entry: Entry) -> str:
    return str(entry["worker"])


def entry_started_at(entry: Entry) -> datetime:
    value: datetime = entry["startedAt"]
    return value


def entry_ended_at(entry: Entry) -> datetime | None:
    value: datetime | None = entry.get("endedAt")
    return value


def entry_outcome(entry: Entry) -> str | None:
    """`succeeded`, `failed`, `stalled` or `released`; None while the attempt runs."""
    value: str | None = entry.get("outcome")
    return value


def entry_error(entry: Entry) -> errors.Error | None:
    value = entry.get("error")
    return None if value is None else errors.from_map(value)


def entry_next_run_at(entry: Entry) -> datetime | None:
    value: datetime | None = entry.get("nextRunAt")
    return value


def entry_result_key(entry: Entry) -> str | None:
    value: str | None = entry.get("resultKey")
    return value


def idempotency(job: Job) -> PMap[str, Any] | None:
    """`{"key", "fingerprint"}` when submitted with an `Idempotency-Key`, else None."""
    value: PMap[str, Any] | None = job["idempotency"]
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


# -- updaters ----------------------------------------------------------------


class Change:
    """Changes to one job, applied in one structural copy by `done()`.

    pyrsistent copies on every `set`; a lifecycle step changes several keys, so
    the machine collects them here and pays for one copy.
    """

    __slots__ = ("_job", "_values")

    def __init__(self, job: Job) -> None:
        self._job = job
        self._values: dict[str, Any] = {}

    def status(self, value: Status) -> Change:
        self._values["status"] = value.value
        return self

    def lease(self, owner: str, expires_at: datetime) -> Change:
        self._values["leaseOwner"] = owner
        self._values["leaseExpiresAt"] = expires_at
        return self

    def no_lease(self) -> Change:
        self._values["leaseOwner"] = None
        self._values["leaseExpiresAt"] = None
        return self

    def run_at(self, at: datetime) -> Change:
        self._values["runAt"] = at
        return self

    def attempts(self, value: int) -> Change:
        self._values["attempts"] = value
        return self

    def error(self, value: errors.Error | None) -> Change:
        self._values["error"] = None if value is None else errors.to_map(value)
        return self

    def result(self, value: Mapping[str, Any] | None, url: str | None) -> Change:
        self._values["result"] = None if value is None else _frozen.mapping(value)
        self._values["resultUrl"] = url
        return self

    def progress(self, current: int, total: int, message: str) -> Change:
        self._values["progress"] = pmap({"current": current, "total": total, "message": message})
        return self

    def no_progress(self) -> Change:
        self._values["progress"] = None
        return self

    def attempt_started(self, worker: str, at: datetime) -> Change:
        """Open a history entry for claim number `claim(job) + 1`."""
        entries = self._values.get("history", history(self._job))
        entry = pmap({"attempt": len(entries) + 1, "worker": worker, "startedAt": at})
        self._values["history"] = entries.append(entry)
        return self

    def attempt_ended(
        self,
        *,
        at: datetime,
        outcome: str,
        error: errors.Error | None = None,
        next_run_at: datetime | None = None,
        delay_seconds: float | None = None,
        result_key: str | None = None,
    ) -> Change:
        """Close the latest history entry with how and when the attempt ended."""
        ended: dict[str, Any] = {"endedAt": at, "outcome": outcome}
        if error is not None:
            ended["error"] = errors.to_map(error)
        if next_run_at is not None:
            ended["nextRunAt"] = next_run_at
            ended["delaySeconds"] = delay_seconds
        if result_key is not None:
            ended["resultKey"] = result_key
        entries = self._values.get("history", history(self._job))
        self._values["history"] = entries.set(len(entries) - 1, entries[-1].update(ended))
        return self

    def touched(self, now: datetime) -> Change:
        """One write: the version fence grows by one and `updatedAt` moves to `now`."""
        self._values["version"] = version(self._job) + 1
        self._values["updatedAt"] = now
        return self

    def done(self) -> Job:
        if not self._values:
            return self._job
        evolver = self._job.evolver()
        for key, value in self._values.items():
            evolver[key] = value
        return evolver.persistent()


def with_status(job: Job, value: Status) -> Job:
    return Change(job).status(value).done()


def with_lease(job: Job, owner: str, expires_at: datetime) -> Job:
    return Change(job).lease(owner, expires_at).done()


def with_run_at(job: Job, at: datetime) -> Job:
    return Change(job).run_at(at).done()


def with_error(job: Job, value: errors.Error | None) -> Job:
    return Change(job).error(value).done()


def with_result(job: Job, value: Mapping[str, Any] | None, url: str | None) -> Job:
    return Change(job).result(value, url).done()


def with_progress(job: Job, current: int, total: int, message: str) -> Job:
    return Change(job).progress(current, total, message).done()


def touched(job: Job, now: datetime) -> Job:
    return Change(job).touched(now).done()


# -- documents: the JSON form at the storage and API edge ---------------------

_INSTANT_FIELDS = ("runAt", "leaseExpiresAt", "createdAt", "updatedAt")
_ENTRY_INSTANTS = ("startedAt", "endedAt", "nextRunAt")
_ENTRY_OPTIONAL = ("endedAt", "outcome", "error", "nextRunAt", "delaySeconds", "resultKey")


def _entry_to_document(entry: Entry) -> dict[str, Any]:
    """Every key present (null when unset), so API users see one shape."""
    doc: dict[str, Any] = dict.fromkeys(_ENTRY_OPTIONAL)
    doc.update(_frozen.thaw(entry))
    for name in _ENTRY_INSTANTS:
        doc[name] = instants.format_or_none(entry.get(name))
    if entry.get("error") is not None:
        doc["error"] = errors.to_document(errors.from_map(entry["error"]))
    return doc


def _entry_from_document(doc: Mapping[str, Any]) -> Entry:
    values = {k: v for k, v in doc.items() if v is not None or k not in _ENTRY_OPTIONAL}
    for name in _ENTRY_INSTANTS:
        if name in values:
            values[name] = instants.parse(values[name])
    if doc.get("error") is not None:
        values["error"] = errors.to_map(errors.from_document(doc["error"]))
    return _frozen.mapping(values)


def to_document(job: Job) -> dict[str, Any]:
    """The job as plain JSON values: what the API serves and the stores keep."""
    doc: dict[str, Any] = {name: _frozen.thaw(job[name]) for name in FIELDS}
    for name in _INSTANT_FIELDS:
        doc[name] = instants.format_or_none(job[name])
    if job["error"] is not None:
        doc["error"] = errors.to_document(errors.from_map(job["error"]))
    doc["history"] = [_entry_to_document(entry) for entry in history(job)]
    return doc


_NESTED = ("params", "input", "result", "metadata", "progress", "idempotency")


def from_document(doc: Mapping[str, Any]) -> Job:
    """Inverse of `to_document` (and of `to_json`, parsed); a missing field is a store bug."""
    try:
        values = {name: doc[name] for name in FIELDS}
    except KeyError:
        missing = [name for name in FIELDS if name not in doc]
        raise errors.JobkitError(f"job document lacks fields {missing}") from None
    for name in _INSTANT_FIELDS:
        values[name] = instants.parse_or_none(values[name])
    for name in _NESTED:
        values[name] = _frozen.freeze(values[name])
    if values["error"] is not None:
        values["error"] = errors.to_map(errors.from_document(values["error"]))
    values["history"] = pvector([_entry_from_document(e) for e in values["history"]])
    return pmap(values)


def _json_default(value: Any) -> Any:
    kind = type(value)
    if kind is _frozen.PMAP_TYPE:
        return dict(value.items())
    if kind is _frozen.PVECTOR_TYPE:
        return list(value)
    if kind is datetime:
        return instants.format(value)
    raise TypeError(f"{kind.__name__} is not JSON: {value!r}")


_ENCODER = json.JSONEncoder(
    default=_json_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def to_json(job: Job) -> str:
    """The job as compact JSON for storage: `from_json` reads it back; faster than
    `to_document` (the C encoder walks the maps), but history entries omit unset keys."""
    return _ENCODER.encode(job)


def from_json(text: str | bytes) -> Job:
    return from_document(json.loads(text))


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
    idempotency: Mapping[str, str] | None = None,
) -> Job:
    """A job not yet submitted (no status, version 0); `Submitted` makes it pending."""
    job: Job = _frozen.freeze(
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
            "idempotency": idempotency,
        }
    )
    return job.set("history", pvector())
