"""A job as a store writes it: its document as compact JSON text, and the columns it is filed under.

`to_json(job)` is exactly `_frozen.encode(documents.to_document(job))`, only written by
hand, field by field as the fields are typed: a store writes a job on every claim and
completion, and asking each value its type, or building the document first, cost several
times more. The parts a job shares with its previous version (params, input, an error, its
history entries) are the same objects, and their text is written once and remembered.
`from_json` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, NamedTuple

from pyrsistent.typing import PVector

from jobkit import _cache, _frozen, _values, documents, errors, instants, jobs
from jobkit._values import CREATED_AT, LEASE_EXPIRES_AT, RUN_AT, assign

_string = json.encoder.encode_basestring  # the C encoder's own string escaping
_format = instants.format
_part = _frozen.to_json
_INT = int
# An error or an input lives on, unchanged, in later versions of its job (and an error in
# its history entry too): their text is remembered by identity.
_TEXTS: Final = _cache.IdentityCache[str](max_entries=1024)
TURN_KEY: Final = ',"turn":'  # the turn's key in the text, and the key after it (`around_turn`)
_AFTER_TURN: Final = ',"runAt":'


def _error_text(error: errors.Error) -> str:
    found = _TEXTS.get(error)
    if found is None:
        found = _TEXTS.put(error, _frozen.encode(errors.to_document(error)))
    return found


def _input_text(source: jobs.Input) -> str:
    found = _TEXTS.get(source)
    if found is None:
        found = _TEXTS.put(source, _frozen.encode(documents.input_to_document(source)))
    return found


def _or_null(value: Any) -> str:
    return "null" if value is None else _part(value)


def _entry_text(entry: jobs.Entry) -> str:
    """The entry's compact JSON, every key present, written once and kept with it."""
    text = entry._text
    if text is None:
        attempt, worker, started, ended, outcome, error, next_run_at, delay, key = entry._values
        if type(attempt) is _INT and type(worker) is str and type(started) is datetime:
            text = "".join(
                (
                    '{"attempt":', int.__repr__(attempt),
                    ',"worker":', _string(worker),
                    ',"startedAt":"', _format(started),
                    '","endedAt":', _or_null(ended),
                    ',"outcome":', _or_null(outcome),
                    ',"error":', "null" if error is None else _error_text(error),
                    ',"nextRunAt":', _or_null(next_run_at),
                    ',"delaySeconds":', _or_null(delay),
                    ',"resultKey":', _or_null(key),
                    "}",
                )
            )  # fmt: skip
        else:  # not as the machine writes them: the reference way
            text = _frozen.encode(documents.entry_to_document(entry))
        assign(entry, "_text", text)
    return text


def _history_text(history: PVector[jobs.Entry]) -> str:
    return "[" + ",".join([_entry_text(entry) for entry in history]) + "]"


def to_json(job: jobs.Job) -> str:
    """The job's document as compact JSON text; `from_json` reads it back."""
    return _text_of(job._values)[0]


def _text_of(values: Sequence[Any]) -> tuple[str, str, str, str | None]:
    """The JSON of a job's values, in `FIELDS` order, and the text of its instants `runAt`,
    `createdAt` and `leaseExpiresAt`, which a store files it under.

    Written field by field as the fields are typed (`jobs.draft` and `from_json` make them
    so). A job holding anything else (a `Job` made from a mapping may) takes the reference
    way, through its document.
    """
    (
        job_id, user_id, type_name, state, priority, queue, turn, run_at, params, input_,
        result, error, attempts, max_attempts, history, progress, owner, expires,
        version, created, updated, metadata, idempotency,
    ) = values  # fmt: skip
    if not (
        type(priority) is _INT
        and type(turn) is _INT
        and type(attempts) is _INT
        and type(max_attempts) is _INT
        and type(version) is _INT
        and type(run_at) is datetime
        and type(created) is datetime
        and type(updated) is datetime
        and (expires is None or type(expires) is datetime)
    ):
        return _reference_text(values)
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
                TURN_KEY, int.__repr__(turn),
                ',"runAt":"', run_at_text,
                '","params":', _part(params, shared=True),
                ',"input":', "null" if input_ is None else _input_text(input_),
                ',"result":', "null" if result is None else _part(result, shared=True),
                ',"error":', "null" if error is None else _error_text(error),
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
    except (TypeError, AttributeError):  # a field holding something else than its type
        return _reference_text(values)
    return text, run_at_text, created_text, expires_text


def _reference_text(values: Sequence[Any]) -> tuple[str, str, str, str | None]:
    """`_text_of` through the job's document: slower, for any frozen values."""
    expires = values[LEASE_EXPIRES_AT]
    job = _values.make_job(tuple(values))
    return (
        _frozen.encode(documents.to_document(job)),
        _format(values[RUN_AT]),
        _format(values[CREATED_AT]),
        None if expires is None else _format(expires),
    )


# -- the turn, given as the job is stored ---------------------------------------------------


def around_turn(text: str) -> tuple[str, str]:
    """`to_json`'s text cut around the turn's value: (what comes before it, what comes after
    it), so that `before + str(turn) + after` is the text of `jobs.with_turn(job, turn)`,
    for a store that gives the turn in the statement that writes the job (`sqlite_writes`).

    The turn follows `id`, `userId`, `type`, `status`, `priority` and `queue`, whose text
    cannot hold `,"turn":` (a string's quotes are escaped), so its first match is the key.
    """
    start = text.index(TURN_KEY) + len(TURN_KEY)
    return text[:start], text[text.index(_AFTER_TURN, start) :]


def with_turn(record: Record, turn: int) -> Record:
    """`to_record(jobs.with_turn(job, turn))`, from `to_record(job)`, without encoding again."""
    before, after = around_turn(record.doc)
    return record._replace(turn=turn, doc=f"{before}{turn}{after}")


def from_json(text: str | bytes) -> jobs.Job:
    """The job `to_json` wrote (or any JSON text of its document)."""
    doc = json.loads(text)
    if type(doc) is dict:
        try:
            values = _values.IN_ORDER(doc)
        except KeyError:
            pass  # from_document names what is missing
        else:
            return documents.from_fields(list(values))
    if not isinstance(doc, dict):
        raise errors.JobkitError(f"a job's JSON is an object, not {type(doc).__name__}")
    return documents.from_document(doc)


class Record(NamedTuple):
    """A job as a store writes it: what it files the job under, and the job as JSON."""

    id: str
    user_id: str
    type_name: str
    status: str | None
    priority: int
    queue: str
    turn: int
    run_at: str  # instants as `instants.format` text, as in the JSON
    created_at: str
    lease_expires_at: str | None
    version: int
    doc: str  # `to_json(job)`


def to_record(job: jobs.Job) -> Record:
    """The job's `Record`: its readers' values and `to_json`, in one pass over the job."""
    values = job._values
    state = values[_values.STATUS]
    doc, run_at, created_at, expires = _text_of(values)
    return Record(
        values[_values.ID],
        values[_values.USER_ID],
        values[_values.TYPE],
        None if state is None else jobs.STATUS_TEXTS[jobs.as_status(state)],
        values[_values.PRIORITY],
        values[_values.QUEUE],
        values[_values.TURN],
        run_at,
        created_at,
        expires,
        values[_values.VERSION],
        doc,
    )
