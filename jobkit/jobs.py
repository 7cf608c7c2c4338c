"""The job: a frozen persistent map keyed by the API's JSON names, its readers and updaters.

This is the only module that touches a job's raw keys. The same map is
stored, served and logged; `to_document`/`from_document` convert it to and
from plain JSON values (ISO 8601 instants, lists, dicts) at the storage edge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

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

_field = _frozen.lookup  # `job[name]`, at a third of PMap's own cost: the hot path reads a lot
_get = _frozen.get  # `map.get(key)`, without the KeyError inside
_JOB = _frozen.Layout(FIELDS)  # every job has these keys: their places are known

# History entries come in a handful of shapes (open; succeeded; failed and retried...):
# each is laid out once, on first use. Bounded, should entries ever vary more than that.
_ENTRY_SHAPES: dict[tuple[str, ...], _frozen.Layout] = {}


def _entry(values: dict[str, Any]) -> Entry:
    shape = tuple(values)
    layout = _ENTRY_SHAPES.get(shape)
    if layout is None:
        if len(_ENTRY_SHAPES) >= 64:
            return pmap(values)
        layout = _ENTRY_SHAPES[shape] = _frozen.Layout(shape)
    return layout.build(values)


def id(job: Job) -> str:  # noqa: A001 - read as jobs.id(job)
    return str(_field(job, "id"))


def user_id(job: Job) -> str:
    return str(_field(job, "userId"))


def type_name(job: Job) -> str:
    return str(_field(job, "type"))


# The enum members by their stored text: a dict lookup is several times cheaper than
# the enum's own `Status(value)` call, which stays the way to refuse an unknown value.
_STATUSES: dict[str, Status] = {member.value: member for member in Status}
_STATUS_TEXTS: dict[Status, str] = {member: member.value for member in Status}  # `.value`: slow


def status(job: Job) -> Status:
    """The job's status; a draft (not yet submitted) has none and is a caller bug here."""
    value = _field(job, "status")
    if value is None:
        raise errors.JobkitError(f"job {job['id']} is a draft and has no status yet")
    return _as_status(value)


def status_or_none(job: Job) -> Status | None:
    value = _field(job, "status")
    return None if value is None else _as_status(value)


def _as_status(value: Any) -> Status:
    found = _STATUSES.get(value) if type(value) is str else None
    return Status(value) if found is None else found


def priority(job: Job) -> int:
    return int(_field(job, "priority"))


def queue(job: Job) -> str:
    return str(_field(job, "queue"))


def run_at(job: Job) -> datetime:
    value: datetime = _field(job, "runAt")
    return value


def params(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = _field(job, "params")
    return value


def input(job: Job) -> PMap[str, Any] | None:  # noqa: A001 - read as jobs.input(job)
    value: PMap[str, Any] | None = _field(job, "input")
    return value


def result(job: Job) -> PMap[str, Any] | None:
    value: PMap[str, Any] | None = _field(job, "result")
    return value


def result_url(job: Job) -> str | None:
    value: str | None = _field(job, "resultUrl")
    return value


def error(job: Job) -> errors.Error | None:
    value = _field(job, "error")
    return None if value is None else errors.from_map(value)


def attempts(job: Job) -> int:
    """Finished attempts: succeeded, failed or stalled. A released attempt does not count."""
    return int(_field(job, "attempts"))


def max_attempts(job: Job) -> int:
    return int(_field(job, "maxAttempts"))


def history(job: Job) -> PVector[Entry]:
    value: PVector[Entry] = _field(job, "history")
    return value


def claim(job: Job) -> int:
    """The number of the latest claim (1-based); a worker's events must name it."""
    return len(_field(job, "history"))


def progress(job: Job) -> PMap[str, Any] | None:
    value: PMap[str, Any] | None = _field(job, "progress")
    return value


def lease_owner(job: Job) -> str | None:
    value: str | None = _field(job, "leaseOwner")
    return value


def lease_expires_at(job: Job) -> datetime | None:
    value: datetime | None = _field(job, "leaseExpiresAt")
    return value


def version(job: Job) -> int:
    return int(_field(job, "version"))


def created_at(job: Job) -> datetime:
    value: datetime = _field(job, "createdAt")
    return value


def updated_at(job: Job) -> datetime:
    value: datetime = _field(job, "updatedAt")
    return value


def metadata(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = _field(job, "metadata")
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
    value: datetime | None = _get(entry, "endedAt")
    return value


def entry_outcome(entry: Entry) -> str | None:
    """`succeeded`, `failed`, `stalled` or `released`; None while the attempt runs."""
    value: str | None = _get(entry, "outcome")
    return value


def entry_error(entry: Entry) -> errors.Error | None:
    value = _get(entry, "error")
    return None if value is None else errors.from_map(value)


def entry_next_run_at(entry: Entry) -> datetime | None:
    value: datetime | None = _get(entry, "nextRunAt")
    return value


def entry_result_key(entry: Entry) -> str | None:
    value: str | None = _get(entry, "resultKey")
    return value


def idempotency(job: Job) -> PMap[str, Any] | None:
    """`{"key", "fingerprint"}` when submitted with an `Idempotency-Key`, else None."""
    value: PMap[str, Any] | None = _field(job, "idempotency")
    return value


def next_run_at(job: Job) -> datetime | None:
    """When a pending job will next be tried; None once it is running or finished."""
    return run_at(job) if _field(job, "status") == Status.PENDING else None


def blob_keys(job: Job) -> tuple[str, ...]:
    """Every blob the job owns: its input document and each attempt's result."""
    keys: list[str] = []
    source = input(job)
    if source is not None and isinstance(_get(source, "blob"), str):
        keys.append(source["blob"])
    for entry in history(job):
        key = _get(entry, "resultKey")
        if isinstance(key, str):
            keys.append(key)
    outcome = result(job)
    if outcome is not None and isinstance(_get(outcome, "resultKey"), str):
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
        self._values["status"] = _STATUS_TEXTS[value]
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
        entry = _entry({"attempt": len(entries) + 1, "worker": worker, "startedAt": at})
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
        closed = _entry({**dict(_frozen.pairs(entries[-1])), **ended})
        self._values["history"] = entries.set(len(entries) - 1, closed)
        return self

    def touched(self, now: datetime) -> Change:
        """One write: the version fence grows by one and `updatedAt` moves to `now`."""
        self._values["version"] = version(self._job) + 1
        self._values["updatedAt"] = now
        return self

    def done(self) -> Job:
        if not self._values:
            return self._job
        return _JOB.updated(self._job, self._values)


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
        doc[name] = instants.format_or_none(_get(entry, name))
    if _get(entry, "error") is not None:
        doc["error"] = errors.to_document(errors.from_map(entry["error"]))
    return doc


def _entry_from_document(doc: Mapping[str, Any]) -> Entry:
    entry: dict[str, Any] = {}
    for key, value in doc.items():
        if value is None and key in _ENTRY_OPTIONAL:
            continue  # unset: absent from the map
        if key in _ENTRY_INSTANTS:
            entry[key] = instants.parse(value)
        elif key == "error":
            entry[key] = errors.to_map(errors.from_document(value))
        else:
            entry[key] = _frozen.freeze(value)
    return _entry(entry)


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


_FIELD_NAMES = frozenset(FIELDS)


def from_document(doc: Mapping[str, Any]) -> Job:
    """Inverse of `to_document` (and of `to_json`, parsed); a missing field is a store bug."""
    try:
        values = {name: doc[name] for name in FIELDS}
    except KeyError:
        missing = [name for name in FIELDS if name not in doc]
        raise errors.JobkitError(f"job document lacks fields {missing}") from None
    return _from_fields(values)


def _from_fields(values: dict[str, Any]) -> Job:
    """The job from its document's fields, converted in place (`values` is ours)."""
    parse = instants.parse
    for name in _INSTANT_FIELDS:
        text = values[name]
        if text is not None:
            values[name] = parse(text)
    freeze = _frozen.freeze
    for name in _NESTED:
        values[name] = freeze(values[name])
    if values["error"] is not None:
        values["error"] = errors.to_map(errors.from_document(values["error"]))
    values["history"] = pvector([_entry_from_document(e) for e in values["history"]])
    return _JOB.build(values)


# The fields whose values are maps or lists: a version of a job shares them with
# the one before, and their text with them (`_frozen.to_json(..., shared=True)`).
_PARTS = (*_NESTED, "error", "history")
_HEADS = {name: json.dumps(name) + ":" for name in _PARTS}


def _json_of(values: dict[str, Any]) -> str:
    """The JSON of a job's fields (`values`, which this changes): scalars and instants
    through the C encoder in one call, the parts from their remembered text."""
    for name in _INSTANT_FIELDS:
        at = values.get(name)
        if type(at) is datetime:
            values[name] = instants.format(at)
    parts = []
    for name in _PARTS:
        value = values.get(name)
        if value is not None:
            del values[name]
            parts.append(_HEADS[name] + _frozen.to_json(value, shared=True))
    text = _frozen.encode(values)
    if not parts:
        return text
    return ("{" if text == "{}" else text[:-1] + ",") + ",".join(parts) + "}"


def to_json(job: Job) -> str:
    """The job as compact JSON for storage: `from_json` reads it back; faster than
    `to_document` (parts a job shares with its previous version are encoded once), but
    history entries omit unset keys."""
    return _json_of(dict(_frozen.pairs(job)))


class Record(NamedTuple):
    """A job as a store writes it: what it files the job under, and the job as JSON."""

    id: str
    user_id: str
    type_name: str
    status: str | None
    priority: int
    queue: str
    run_at: str  # instants as `instants.format` text, as in the JSON
    created_at: str
    lease_expires_at: str | None
    version: int
    doc: str  # `to_json(job)`


def to_record(job: Job) -> Record:
    """The job's `Record`: its readers' values and `to_json`, in one pass over the map."""
    values = dict(_frozen.pairs(job))
    state = values["status"]
    expires = values["leaseExpiresAt"]
    return Record(
        id=str(values["id"]),
        user_id=str(values["userId"]),
        type_name=str(values["type"]),
        status=None if state is None else _STATUS_TEXTS[_as_status(state)],
        priority=int(values["priority"]),
        queue=str(values["queue"]),
        run_at=instants.format(values["runAt"]),
        created_at=instants.format(values["createdAt"]),
        lease_expires_at=None if expires is None else instants.format(expires),
        version=int(values["version"]),
        doc=_json_of(values),
    )


def from_json(text: str | bytes) -> Job:
    doc = json.loads(text)
    if type(doc) is dict and doc.keys() == _FIELD_NAMES:
        return _from_fields(doc)  # freshly parsed: convert it in place, no copy
    return from_document(doc)


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
    freeze = _frozen.freeze  # only the maps need it: the other arguments are scalars
    return _JOB.build(
        {
            "id": job_id,
            "userId": user_id,
            "type": type_name,
            "status": None,
            "priority": priority,
            "queue": queue,
            "runAt": run_at,
            "params": freeze(params),
            "input": freeze(input),
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
            "metadata": freeze(metadata),
            "idempotency": freeze(idempotency),
            "history": pvector(),
        }
    )
