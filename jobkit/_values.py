"""The frozen values a job is made of: `Job`, its history's `Entry` values, and its `Input`.

Read them through `jobkit.jobs`; this module is their layout. A `Job` and an `Entry` are
frozen mappings whose values sit in a tuple in key order (`FIELDS`, `ENTRY_KEYS`): a job
queue reads and rewrites jobs on every claim and completion, and on a general persistent
map (a pyrsistent `PMap`) that alone cost more than SQLite's work. Reading a field is one
index, and a new version one tuple copy that shares every unchanged value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, ClassVar, Final, cast

import attrs
from pyrsistent import pvector
from pyrsistent.typing import PVector

from jobkit import _frozen, errors

FIELDS: tuple[str, ...] = (
    "id",
    "userId",
    "type",
    "status",
    "priority",
    "queue",
    "turn",
    "runAt",
    "params",
    "input",
    "result",
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
INDEX: Final[dict[str, int]] = {name: index for index, name in enumerate(FIELDS)}
(
    ID,
    USER_ID,
    TYPE,
    STATUS,
    PRIORITY,
    QUEUE,
    TURN,
    RUN_AT,
    PARAMS,
    INPUT,
    RESULT,
    ERROR,
    ATTEMPTS,
    MAX_ATTEMPTS,
    HISTORY,
    PROGRESS,
    LEASE_OWNER,
    LEASE_EXPIRES_AT,
    VERSION,
    CREATED_AT,
    UPDATED_AT,
    METADATA,
    IDEMPOTENCY,
) = range(len(FIELDS))
IN_ORDER = itemgetter(*FIELDS)  # a mapping's values in `FIELDS` order; KeyError if one lacks

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
ENTRY_INDEX: Final[dict[str, int]] = {name: index for index, name in enumerate(ENTRY_KEYS)}
(
    E_ATTEMPT,
    E_WORKER,
    E_STARTED_AT,
    E_ENDED_AT,
    E_OUTCOME,
    E_ERROR,
    E_NEXT_RUN_AT,
    E_DELAY_SECONDS,
    E_RESULT_KEY,
) = range(len(ENTRY_KEYS))
ENTRY_REQUIRED: Final = ENTRY_KEYS[:E_ENDED_AT]  # attempt, worker, startedAt: set when it opens

new = object.__new__
assign = object.__setattr__


class _Frozen(Mapping[str, Any]):
    """What `Job` and `Entry` share: a value for each of `_KEYS` (None when unset) in a
    tuple, fixed when made; equal to any mapping with the same items, hashed by its values."""

    __slots__ = ("_values",)
    _values: tuple[Any, ...]
    _KEYS: ClassVar[tuple[str, ...]]
    _INDEX: ClassVar[dict[str, int]]
    _noun: ClassVar[str]  # what it is, for the error on an attempt to change it

    def __getitem__(self, key: str) -> Any:
        return self._values[self._INDEX[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)

    def __contains__(self, key: object) -> bool:
        return key in self._INDEX

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
    """A job: a frozen map from each of `FIELDS` (always all of them) to a frozen value:
    strings, numbers, instants, None, pyrsistent maps and vectors, an `errors.Error`, an
    `Input`, and a vector of `Entry` values. Equal to any mapping with the same items.
    """

    __slots__ = ()
    _KEYS = FIELDS
    _INDEX = INDEX
    _noun = "a job"

    def __new__(cls, fields: Mapping[str, Any]) -> Job:
        """The job holding `fields` (each of `FIELDS`, frozen here; others are left out).
        `error` is an `errors.Error` or None, `input` an `Input` or None, and `history` a
        sequence of `Entry` values or of mappings to make them from."""
        try:
            values = list(IN_ORDER(fields))
        except KeyError:
            missing = [name for name in FIELDS if name not in fields]
            raise errors.JobkitError(f"a job needs every field; it lacks {missing}") from None
        history, error, source = values[HISTORY], values[ERROR], values[INPUT]
        values = list(map(_frozen.freeze, values))
        values[HISTORY] = history_of(history)
        values[ERROR] = _error_of(error)
        values[INPUT] = _input_of(source)
        return make_job(tuple(values))

    def __getitem__(self, key: str) -> Any:
        return self._values[INDEX[key]]

    def __reduce__(self) -> tuple[Any, ...]:
        return (make_job, (self._values,))


def make_job(values: tuple[Any, ...]) -> Job:
    """The job of `values`, already frozen and in `FIELDS` order: no checks, no copies."""
    job: Job = new(Job)
    assign(job, "_values", values)
    return job


class Entry(_Frozen):
    """One history entry (one claim): a frozen map from each of `ENTRY_KEYS` to a frozen
    value, None while unset. `attempt`, `worker` and `startedAt` are set when it opens.

    Laid out like `Job`, so that opening and closing an attempt is one tuple each. An entry
    lives on, unchanged, in every later version of its job, so its JSON text is written
    once and kept with it (`records`).
    """

    __slots__ = ("_text",)
    _text: str | None
    _KEYS = ENTRY_KEYS
    _INDEX = ENTRY_INDEX
    _noun = "a history entry"

    def __new__(cls, fields: Mapping[str, Any]) -> Entry:
        """The entry holding `fields` (frozen here; a missing key is unset, keys not in
        `ENTRY_KEYS` are left out; `error` is an `errors.Error` or None)."""
        missing = [name for name in ENTRY_REQUIRED if fields.get(name) is None]
        if missing:
            raise errors.JobkitError(f"a history entry needs {missing}")
        values = [_frozen.freeze(fields.get(name)) for name in ENTRY_KEYS]
        values[E_ERROR] = _error_of(fields.get("error"))
        return make_entry(tuple(values))

    def __reduce__(self) -> tuple[Any, ...]:
        return (make_entry, (self._values,))


def make_entry(values: tuple[Any, ...]) -> Entry:
    """The entry of `values`, already frozen and in `ENTRY_KEYS` order: no checks."""
    entry: Entry = new(Entry)
    assign(entry, "_values", values)
    assign(entry, "_text", None)
    return entry


@attrs.frozen(kw_only=True)
class Input:
    """A job's input document: the blob it was stored as, and what is known of it.

    `uri` is where the blob lives for other services to read (`gs://…`), when the blob
    store has such a place; None for a folder only this service reads.
    """

    blob: str
    content_type: str
    filename: str | None = None
    size: int | None = None
    uri: str | None = None


def history_of(value: Any) -> PVector[Entry]:
    """A history given as any sequence of mappings, as a vector of entries."""
    items: Sequence[Any] = value
    if type(items) is _frozen.PVECTOR_TYPE and all(type(item) is Entry for item in items):
        return cast("PVector[Entry]", items)
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise errors.JobkitError(f"a job's history is a list of entries, not {items!r}")
    if not all(isinstance(item, Mapping) for item in items):
        raise errors.JobkitError(f"a job's history entries are mappings: {items!r}")
    if not items:
        return cast("PVector[Entry]", _frozen.EMPTY_VECTOR)
    return pvector([item if type(item) is Entry else Entry(item) for item in items])


def _error_of(value: Any) -> errors.Error | None:
    if value is None or type(value) is errors.Error:
        return value
    raise errors.JobkitError(f"a job's error is an errors.Error value, not {value!r}")


def _input_of(value: Any) -> Input | None:
    if value is None or type(value) is Input:
        return value
    raise errors.JobkitError(f"a job's input is a jobs.Input value, not {value!r}")
