"""The job: a frozen map keyed by the API's JSON names (`Job`), its readers and updaters.

This is the only module that touches a job's raw keys. The same map is
stored, served and logged. Its history is a pyrsistent vector of `Entry` values
(frozen maps laid out like the job), its other nested values (params, result...)
pyrsistent maps and vectors, all shared by a job's versions.
`to_document`/`from_document` convert it to and from plain JSON values
(ISO 8601 instants, lists, dicts) at the storage edge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, ClassVar, Final, NamedTuple, cast

from pyrsistent import pmap, pvector
from pyrsistent.typing import PMap, PVector

from jobkit import _frozen, errors, instants
from jobkit.status import Status

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


# -- the value -------------------------------------------------------------

_INDEX: Final[dict[str, int]] = {name: index for index, name in enumerate(FIELDS)}
(
    _ID,
    _USER_ID,
    _TYPE,
    _STATUS,
    _PRIORITY,
    _QUEUE,
    _RUN_AT,
    _PARAMS,
    _INPUT,
    _RESULT,
    _RESULT_URL,
    _ERROR,
    _ATTEMPTS,
    _MAX_ATTEMPTS,
    _HISTORY,
    _PROGRESS,
    _LEASE_OWNER,
    _LEASE_EXPIRES_AT,
    _VERSION,
    _CREATED_AT,
    _UPDATED_AT,
    _METADATA,
    _IDEMPOTENCY,
) = range(len(FIELDS))
_IN_ORDER = itemgetter(*FIELDS)  # a mapping's values in `FIELDS` order; KeyError if one lacks
_new = object.__new__
_assign = object.__setattr__


class _Frozen(Mapping[str, Any]):
    """What `Job` and `Entry` share: values in a tuple, fixed when made; equal to any
    mapping with the same items, and hashed by its values."""

    __slots__ = ("_values",)
    _values: tuple[Any, ...]
    _noun: ClassVar[str]  # what it is, for the error on an attempt to change it

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._values == other._values
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._noun} is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{self._noun} is immutable; cannot delete {name!r}")


class Job(_Frozen):
    """A job: a frozen map from the API's JSON names (every name in `FIELDS`, always all of
    them) to frozen values: strings, numbers, instants, None, pyrsistent maps and vectors.

    A new version shares every unchanged value with the one before. The values sit in a
    tuple in `FIELDS` order, so reading a field is one index and a new version one tuple
    copy: a job queue reads and rewrites jobs on every claim and completion, and on a
    general persistent map (a pyrsistent `PMap`) that alone cost more than SQLite's work.
    Read it through this module's functions; `job["status"]` and the rest of the `Mapping`
    protocol work too. Equal to any mapping with the same items.
    """

    __slots__ = ()
    _noun = "a job"

    def __new__(cls, fields: Mapping[str, Any]) -> Job:
        """The job holding `fields` (each of `FIELDS`, frozen here; others are left out)."""
        try:
            values = list(_IN_ORDER(fields))
        except KeyError:
            missing = [name for name in FIELDS if name not in fields]
            raise errors.JobkitError(f"a job needs every field; it lacks {missing}") from None
        history = values[_HISTORY]
        values = list(map(_frozen.freeze, values))
        values[_HISTORY] = _history_of(history)
        return _job(tuple(values))

    def __getitem__(self, key: str) -> Any:
        return self._values[_INDEX[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(FIELDS)

    def __len__(self) -> int:
        return len(FIELDS)

    def __contains__(self, key: object) -> bool:
        return key in _INDEX

    def __reduce__(self) -> tuple[Any, ...]:
        return (_job, (self._values,))


def _job(values: tuple[Any, ...]) -> Job:
    """The job of `values`, already frozen and in `FIELDS` order: no checks, no copies."""
    job: Job = _new(Job)
    _assign(job, "_values", values)
    return job


# -- readers ---------------------------------------------------------------

_get = _frozen.get  # `map.get(key)`, without the KeyError inside

# -- history entries ---------------------------------------------------------------

ENTRY_KEYS: tuple[str, ...] = (
    "attempt",
    "worker",
    "startedAt",
    "endedAt",
    "outcome",
    "error",
    "nextRunAt",
    "delaySeconds",
    "resultKey",
)
_ENTRY_INDEX: Final[dict[str, int]] = {name: index for index, name in enumerate(ENTRY_KEYS)}
(
    _E_ATTEMPT,
    _E_WORKER,
    _E_STARTED_AT,
    _E_ENDED_AT,
    _E_OUTCOME,
    _E_ERROR,
    _E_NEXT_RUN_AT,
    _E_DELAY_SECONDS,
    _E_RESULT_KEY,
) = range(len(ENTRY_KEYS))
_ENTRY_REQUIRED = ENTRY_KEYS[:_E_ENDED_AT]  # attempt, worker, startedAt: set when it opens


class Entry(_Frozen):
    """One history entry (one claim): a frozen map from `ENTRY_KEYS` to frozen values.

    `attempt`, `worker` and `startedAt` are always there; the others only once set (a
    key whose value is None is absent). Laid out like `Job`, its values in a tuple in
    `ENTRY_KEYS` order, so that opening and closing an attempt is one tuple each, and its
    JSON text is written once and kept with it (`_entry_text`): an entry lives on,
    unchanged, in every later version of its job. Equal to any mapping with the same items.
    """

    __slots__ = ("_text",)
    _text: str | None
    _noun = "a history entry"

    def __new__(cls, fields: Mapping[str, Any]) -> Entry:
        """The entry holding `fields` (frozen here); keys not in `ENTRY_KEYS` are left out."""
        missing = [name for name in _ENTRY_REQUIRED if fields.get(name) is None]
        if missing:
            raise errors.JobkitError(f"a history entry needs {missing}")
        return _entry(tuple(_frozen.freeze(fields.get(name)) for name in ENTRY_KEYS))

    def __getitem__(self, key: str) -> Any:
        value = self._values[_ENTRY_INDEX[key]]
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        index = _ENTRY_INDEX.get(key)
        value = None if index is None else self._values[index]
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        return iter(
            [
                name
                for name, value in zip(ENTRY_KEYS, self._values, strict=True)
                if value is not None
            ]
        )

    def __len__(self) -> int:
        return len(self._values) - self._values.count(None)

    def __contains__(self, key: object) -> bool:
        index = _ENTRY_INDEX.get(key) if isinstance(key, str) else None
        return index is not None and self._values[index] is not None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_entry, (self._values,))


def _entry(values: tuple[Any, ...]) -> Entry:
    """The entry of `values`, already frozen and in `ENTRY_KEYS` order: no checks."""
    entry: Entry = _new(Entry)
    _assign(entry, "_values", values)
    _assign(entry, "_text", None)
    return entry


def _history_of(value: Any) -> PVector[Entry]:
    """A history given as any sequence of mappings, as a vector of entries."""
    items: Sequence[Any] = value
    if type(items) is _frozen.PVECTOR_TYPE and all(type(item) is Entry for item in items):
        return cast("PVector[Entry]", items)
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise errors.JobkitError(f"a job's history is a list of entries, not {items!r}")
    if not all(isinstance(item, Mapping) for item in items):
        raise errors.JobkitError(f"a job's history entries are mappings: {items!r}")
    return pvector([item if type(item) is Entry else Entry(item) for item in items])


def id(job: Job) -> str:  # noqa: A001 - read as jobs.id(job)
    value: str = job._values[_ID]
    return value


def user_id(job: Job) -> str:
    value: str = job._values[_USER_ID]
    return value


def type_name(job: Job) -> str:
    value: str = job._values[_TYPE]
    return value


# The enum members by their stored text: a dict lookup is several times cheaper than
# the enum's own `Status(value)` call, which stays the way to refuse an unknown value.
_STATUSES: dict[str, Status] = {member.value: member for member in Status}
_STATUS_TEXTS: dict[Status, str] = {member: member.value for member in Status}  # `.value`: slow


def status(job: Job) -> Status:
    """The job's status; a draft (not yet submitted) has none and is a caller bug here."""
    value = job._values[_STATUS]
    if value is None:
        raise errors.JobkitError(f"job {job['id']} is a draft and has no status yet")
    return _as_status(value)


def status_or_none(job: Job) -> Status | None:
    value = job._values[_STATUS]
    return None if value is None else _as_status(value)


def _as_status(value: Any) -> Status:
    found = _STATUSES.get(value) if type(value) is str else None
    return Status(value) if found is None else found


def priority(job: Job) -> int:
    value: int = job._values[_PRIORITY]
    return value


def queue(job: Job) -> str:
    value: str = job._values[_QUEUE]
    return value


def run_at(job: Job) -> datetime:
    value: datetime = job._values[_RUN_AT]
    return value


def params(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = job._values[_PARAMS]
    return value


def input(job: Job) -> PMap[str, Any] | None:  # noqa: A001 - read as jobs.input(job)
    value: PMap[str, Any] | None = job._values[_INPUT]
    return value


def result(job: Job) -> PMap[str, Any] | None:
    value: PMap[str, Any] | None = job._values[_RESULT]
    return value


def result_url(job: Job) -> str | None:
    value: str | None = job._values[_RESULT_URL]
    return value


def error(job: Job) -> errors.Error | None:
    value = job._values[_ERROR]
    return None if value is None else errors.from_map(value)


def attempts(job: Job) -> int:
    """Finished attempts: succeeded, failed or stalled. A released attempt does not count."""
    value: int = job._values[_ATTEMPTS]
    return value


def max_attempts(job: Job) -> int:
    value: int = job._values[_MAX_ATTEMPTS]
    return value


def history(job: Job) -> PVector[Entry]:
    value: PVector[Entry] = job._values[_HISTORY]
    return value


def claim(job: Job) -> int:
    """The number of the latest claim (1-based); a worker's events must name it."""
    return len(job._values[_HISTORY])


def progress(job: Job) -> PMap[str, Any] | None:
    value: PMap[str, Any] | None = job._values[_PROGRESS]
    return value


def lease_owner(job: Job) -> str | None:
    value: str | None = job._values[_LEASE_OWNER]
    return value


def lease_expires_at(job: Job) -> datetime | None:
    value: datetime | None = job._values[_LEASE_EXPIRES_AT]
    return value


def version(job: Job) -> int:
    value: int = job._values[_VERSION]
    return value


def created_at(job: Job) -> datetime:
    value: datetime = job._values[_CREATED_AT]
    return value


def updated_at(job: Job) -> datetime:
    value: datetime = job._values[_UPDATED_AT]
    return value


def metadata(job: Job) -> PMap[str, Any]:
    value: PMap[str, Any] = job._values[_METADATA]
    return value


# -- history entries: one per claim, oldest first -------------------------------


def entry_attempt(entry: Entry) -> int:
    """The claim number (1-based) this entry records."""
    return int(entry._values[_E_ATTEMPT])


def entry_worker(entry: Entry) -> str:
    return str(entry._values[_E_WORKER])


def entry_started_at(entry: Entry) -> datetime:
    value: datetime = entry._values[_E_STARTED_AT]
    return value


def entry_ended_at(entry: Entry) -> datetime | None:
    value: datetime | None = entry._values[_E_ENDED_AT]
    return value


def entry_outcome(entry: Entry) -> str | None:
    """`succeeded`, `failed`, `stalled` or `released`; None while the attempt runs."""
    value: str | None = entry._values[_E_OUTCOME]
    return value


def entry_error(entry: Entry) -> errors.Error | None:
    value = entry._values[_E_ERROR]
    return None if value is None else errors.from_map(value)


def entry_next_run_at(entry: Entry) -> datetime | None:
    value: datetime | None = entry._values[_E_NEXT_RUN_AT]
    return value


def entry_result_key(entry: Entry) -> str | None:
    value: str | None = entry._values[_E_RESULT_KEY]
    return value


def idempotency(job: Job) -> PMap[str, Any] | None:
    """`{"key", "fingerprint"}` when submitted with an `Idempotency-Key`, else None."""
    value: PMap[str, Any] | None = job._values[_IDEMPOTENCY]
    return value


def next_run_at(job: Job) -> datetime | None:
    """When a pending job will next be tried; None once it is running or finished."""
    return run_at(job) if job._values[_STATUS] == Status.PENDING else None


def blob_keys(job: Job) -> tuple[str, ...]:
    """Every blob the job owns: its input document and each attempt's result."""
    keys: list[str] = []
    source = input(job)
    if source is not None and isinstance(_get(source, "blob"), str):
        keys.append(source["blob"])
    for entry in history(job):
        key = entry._values[_E_RESULT_KEY]
        if isinstance(key, str):
            keys.append(key)
    outcome = result(job)
    if outcome is not None and isinstance(_get(outcome, "resultKey"), str):
        keys.append(outcome["resultKey"])
    return tuple(dict.fromkeys(keys))


# -- updaters ----------------------------------------------------------------


class Change:
    """Changes to one job, applied in one copy by `done()`: a lifecycle step changes
    several fields, and the machine collects them here to pay for one new version."""

    __slots__ = ("_job", "_values")

    def __init__(self, job: Job) -> None:
        self._job = job
        self._values: dict[int, Any] = {}  # by the field's place in `FIELDS`

    def status(self, value: Status) -> Change:
        self._values[_STATUS] = _STATUS_TEXTS[value]
        return self

    def lease(self, owner: str, expires_at: datetime) -> Change:
        self._values[_LEASE_OWNER] = owner
        self._values[_LEASE_EXPIRES_AT] = expires_at
        return self

    def no_lease(self) -> Change:
        self._values[_LEASE_OWNER] = None
        self._values[_LEASE_EXPIRES_AT] = None
        return self

    def run_at(self, at: datetime) -> Change:
        self._values[_RUN_AT] = at
        return self

    def attempts(self, value: int) -> Change:
        self._values[_ATTEMPTS] = value
        return self

    def error(self, value: errors.Error | None) -> Change:
        self._values[_ERROR] = None if value is None else errors.to_map(value)
        return self

    def result(self, value: Mapping[str, Any] | None, url: str | None) -> Change:
        self._values[_RESULT] = None if value is None else _frozen.mapping(value)
        self._values[_RESULT_URL] = url
        return self

    def progress(self, current: int, total: int, message: str) -> Change:
        self._values[_PROGRESS] = pmap({"current": current, "total": total, "message": message})
        return self

    def no_progress(self) -> Change:
        self._values[_PROGRESS] = None
        return self

    def attempt_started(self, worker: str, at: datetime) -> Change:
        """Open a history entry for claim number `claim(job) + 1`."""
        entries = self._values.get(_HISTORY, self._job._values[_HISTORY])
        entry = _entry((len(entries) + 1, worker, at, None, None, None, None, None, None))
        self._values[_HISTORY] = entries.append(entry)
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
        entries = self._values.get(_HISTORY, self._job._values[_HISTORY])
        (attempt, worker, started, _, _, old_error, old_next, old_delay, old_key) = entries[
            -1
        ]._values
        if next_run_at is None:
            next_run_at, delay_seconds = old_next, old_delay
        closed = _entry(
            (
                attempt,
                worker,
                started,
                at,
                outcome,
                old_error if error is None else errors.to_map(error),
                next_run_at,
                delay_seconds,
                old_key if result_key is None else result_key,
            )
        )
        self._values[_HISTORY] = entries.set(len(entries) - 1, closed)
        return self

    def touched(self, now: datetime) -> Change:
        """One write: the version fence grows by one and `updatedAt` moves to `now`."""
        self._values[_VERSION] = self._job._values[_VERSION] + 1
        self._values[_UPDATED_AT] = now
        return self

    def done(self) -> Job:
        """The new version; the job itself when no field changes."""
        old = self._job._values
        changed = False
        values = list(old)
        for index, value in self._values.items():
            if value is not old[index]:
                values[index] = value
                changed = True
        return _job(tuple(values)) if changed else self._job


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
_ENTRY_INSTANTS = frozenset(("startedAt", "endedAt", "nextRunAt"))


def _entry_to_document(entry: Entry) -> dict[str, Any]:
    """Every key present (null when unset), so API users see one shape."""
    doc: dict[str, Any] = {}
    for name, value in zip(ENTRY_KEYS, entry._values, strict=True):
        if value is None:
            doc[name] = None
        elif name in _ENTRY_INSTANTS:
            doc[name] = instants.format(value)
        elif name == "error":
            doc[name] = errors.to_document(errors.from_map(value))
        else:
            doc[name] = _frozen.thaw(value)
    return doc


def _entry_from_document(doc: Mapping[str, Any]) -> Entry:
    """Inverse of `_entry_to_document` (unset keys may be null or absent); other keys are
    left out."""
    values: list[Any] = [doc.get(name) for name in ENTRY_KEYS]
    if values[_E_ATTEMPT] is None or values[_E_WORKER] is None or values[_E_STARTED_AT] is None:
        return Entry(doc)  # names what is missing
    for index in (_E_STARTED_AT, _E_ENDED_AT, _E_NEXT_RUN_AT):
        if values[index] is not None:
            values[index] = instants.parse(values[index])
    if values[_E_ERROR] is not None:
        values[_E_ERROR] = errors.to_map(errors.from_document(values[_E_ERROR]))
    return _entry(tuple(map(_frozen.freeze, values)))


def _entry_text(entry: Entry) -> str:
    """The entry's compact JSON (unset keys left out), written once and kept with it."""
    text = entry._text
    if text is None:
        attempt, worker, started, ended, outcome, error, next_run_at, delay, key = entry._values
        if type(attempt) is _INT and type(worker) is str and type(started) is datetime:
            parts = ['{"attempt":', int.__repr__(attempt), ',"worker":', _string(worker)]
            parts += (',"startedAt":"', _format(started), '"')
            if ended is not None:
                parts += (',"endedAt":', _part(ended))
            if outcome is not None:
                parts += (',"outcome":', _part(outcome))
            if error is not None:
                parts += (',"error":', _part(error, shared=True))
            if next_run_at is not None:
                parts += (',"nextRunAt":', _part(next_run_at))
            if delay is not None:
                parts += (',"delaySeconds":', _part(delay))
            if key is not None:
                parts += (',"resultKey":', _part(key))
            parts.append("}")
            text = "".join(parts)
        else:  # not as the machine writes them: ask each value its type
            text = _frozen.items_to_json(list(entry.items()))
        _assign(entry, "_text", text)
    return text


def _history_text(history: PVector[Entry]) -> str:
    return "[" + ",".join([_entry_text(entry) for entry in history]) + "]"


def to_document(job: Job) -> dict[str, Any]:
    """The job as plain JSON values: what the API serves and the stores keep."""
    doc: dict[str, Any] = dict(zip(FIELDS, map(_frozen.thaw, job._values), strict=True))
    for name in _INSTANT_FIELDS:
        doc[name] = instants.format_or_none(job[name])
    if job._values[_ERROR] is not None:
        doc["error"] = errors.to_document(errors.from_map(job._values[_ERROR]))
    doc["history"] = [_entry_to_document(entry) for entry in history(job)]
    return doc


_INSTANTS = tuple(_INDEX[name] for name in _INSTANT_FIELDS)
_NESTED = tuple(
    _INDEX[name] for name in ("params", "input", "result", "metadata", "progress", "idempotency")
)


def from_document(doc: Mapping[str, Any]) -> Job:
    """Inverse of `to_document` (and of `to_json`, parsed); a missing field is a store bug.
    Fields not in `FIELDS` are left out."""
    try:
        values = _IN_ORDER(doc)
    except KeyError:
        missing = [name for name in FIELDS if name not in doc]
        raise errors.JobkitError(f"job document lacks fields {missing}") from None
    return _from_fields(list(values))


def _from_fields(values: list[Any]) -> Job:
    """The job from its document's values in `FIELDS` order, converted in place."""
    parse = instants.parse
    for index in _INSTANTS:
        text = values[index]
        if text is not None:
            values[index] = parse(text)
    freeze = _frozen.freeze
    for index in _NESTED:
        values[index] = freeze(values[index])
    if values[_ERROR] is not None:
        values[_ERROR] = errors.to_map(errors.from_document(values[_ERROR]))
    entries = values[_HISTORY]
    values[_HISTORY] = (
        pvector([_entry_from_document(entry) for entry in entries])
        if entries
        else _frozen.EMPTY_VECTOR
    )
    return _job(tuple(values))


_string = json.encoder.encode_basestring  # the C encoder's own string escaping
_format = instants.format
_part = _frozen.to_json
_INT = int


def _json_of(values: Sequence[Any]) -> str:
    """The JSON of a job's values, in `FIELDS` order: `_text_of`'s first part."""
    return _text_of(values)[0]


def _text_of(values: Sequence[Any]) -> tuple[str, str, str, str | None]:
    """The JSON of a job's values, in `FIELDS` order, and the text of its instants `runAt`,
    `createdAt` and `leaseExpiresAt`, which a store files it under.

    Written field by field as the fields are typed (`draft` and `from_document` make
    them so), which is several times quicker than asking each value its type. Maps and
    lists (params, history...) are shared by a job's versions, and so is their text
    (`_frozen.to_json(..., shared=True)`). A job holding anything else (a `Job` made from
    a mapping may) takes the general way, `_general_text`.
    """
    (
        job_id, user_id, type_name, state, priority, queue, run_at, params, input_, result,
        result_url, error, attempts, max_attempts, history, progress, owner, expires,
        version, created, updated, metadata, idempotency,
    ) = values  # fmt: skip
    if not (
        type(priority) is _INT
        and type(attempts) is _INT
        and type(max_attempts) is _INT
        and type(version) is _INT
        and type(run_at) is datetime
        and type(created) is datetime
        and type(updated) is datetime
        and (expires is None or type(expires) is datetime)
    ):
        return _general_text(values)
    try:
        run_at_text, created_text = _format(run_at), _format(created)
        expires_text = None if expires is None else _format(expires)
        text = "".join(
            (
                '{"id":', _string(job_id),
                ',"userId":', _string(user_id),
                ',"type":', _string(type_name),
                ',"status":', "null" if state is None else _string(state),
                ',"priority":', int.__repr__(priority),
                ',"queue":', _string(queue),
                ',"runAt":"', run_at_text,
                '","params":', _part(params, shared=True),
                ',"input":', "null" if input_ is None else _part(input_, shared=True),
                ',"result":', "null" if result is None else _part(result, shared=True),
                ',"resultUrl":', "null" if result_url is None else _string(result_url),
                ',"error":', "null" if error is None else _part(error, shared=True),
                ',"attempts":', int.__repr__(attempts),
                ',"maxAttempts":', int.__repr__(max_attempts),
                ',"history":', _history_text(history),
                ',"progress":', "null" if progress is None else _part(progress, shared=True),
                ',"leaseOwner":', "null" if owner is None else _string(owner),
                ',"leaseExpiresAt":', "null" if expires_text is None else f'"{expires_text}"',
                ',"version":', int.__repr__(version),
                ',"createdAt":"', created_text,
                '","updatedAt":"', _format(updated),
                '","metadata":', _part(metadata, shared=True),
                ',"idempotency":',
                "null" if idempotency is None else _part(idempotency, shared=True),
                "}",
            )
        )  # fmt: skip
    except TypeError:  # a str field holding something else
        return _general_text(values)
    return text, run_at_text, created_text, expires_text


def _general_text(values: Sequence[Any]) -> tuple[str, str, str, str | None]:
    """`_text_of` for any frozen values: asks each its type."""
    expires = values[_LEASE_EXPIRES_AT]
    return (
        _frozen.items_to_json(list(zip(FIELDS, values, strict=True))),
        _format(values[_RUN_AT]),
        _format(values[_CREATED_AT]),
        None if expires is None else _format(expires),
    )


def to_json(job: Job) -> str:
    """The job as compact JSON for storage: `from_json` reads it back; faster than
    `to_document` (parts a job shares with its previous version are encoded once), but
    history entries omit unset keys."""
    return _json_of(job._values)


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
    """The job's `Record`: its readers' values and `to_json`."""
    values = job._values
    state = values[_STATUS]
    doc, run_at, created_at, expires = _text_of(values)
    return Record(
        values[_ID],
        values[_USER_ID],
        values[_TYPE],
        None if state is None else _STATUS_TEXTS[_as_status(state)],
        values[_PRIORITY],
        values[_QUEUE],
        run_at,
        created_at,
        expires,
        values[_VERSION],
        doc,
    )


def from_json(text: str | bytes) -> Job:
    doc = json.loads(text)
    if type(doc) is dict:
        try:
            values = _IN_ORDER(doc)
        except KeyError:
            pass  # from_document names what is missing
        else:
            return _from_fields(list(values))
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
    return _job(
        _IN_ORDER(
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
    )
