"""A job as its JSON document — plain JSON values under the API's names — and back.

The document is the one shape of a job outside Python: stores keep it (SQLite as its text,
`jobkit.records`; Firestore as a document's fields), the API serves a projection of it,
and logs show it. Every key of `jobs.FIELDS` is always there, and every key of a history
entry (`jobs.ENTRY_KEYS`), null when unset. Instants are `instants.format` text (fixed
width, so text order is time order); an error is `errors.to_document`'s map; the input is
`input_to_document`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyrsistent import pvector

from jobkit import _frozen, _values, errors, instants, jobs
from jobkit._values import (
    CREATED_AT,
    E_ATTEMPT,
    E_ENDED_AT,
    E_ERROR,
    E_NEXT_RUN_AT,
    E_STARTED_AT,
    E_WORKER,
    ERROR,
    HISTORY,
    IDEMPOTENCY,
    INPUT,
    LEASE_EXPIRES_AT,
    METADATA,
    PARAMS,
    PROGRESS,
    RESULT,
    RUN_AT,
    UPDATED_AT,
)

INPUT_KEYS: tuple[str, ...] = ("blob", "filename", "size", "contentType", "uri")
_INSTANTS = (RUN_AT, LEASE_EXPIRES_AT, CREATED_AT, UPDATED_AT)
_NESTED = (PARAMS, RESULT, METADATA, PROGRESS, IDEMPOTENCY)
_ENTRY_INSTANTS = (E_STARTED_AT, E_ENDED_AT, E_NEXT_RUN_AT)


def to_document(job: jobs.Job) -> dict[str, Any]:
    """The job as plain JSON values, every field present."""
    values = job._values
    doc: dict[str, Any] = dict(zip(jobs.FIELDS, map(_frozen.thaw, values), strict=True))
    for index in _INSTANTS:
        doc[jobs.FIELDS[index]] = instants.format_or_none(values[index])
    error = values[ERROR]
    doc["error"] = None if error is None else errors.to_document(error)
    source = values[INPUT]
    doc["input"] = None if source is None else input_to_document(source)
    doc["history"] = [entry_to_document(entry) for entry in values[HISTORY]]
    return doc


def from_document(doc: Mapping[str, Any]) -> jobs.Job:
    """Inverse of `to_document`; a missing field is a store bug, but for `turn`, which
    documents stored before jobs took turns lack: theirs is 0. Fields not in `jobs.FIELDS`
    are left out; a history entry's missing keys are unset."""
    try:
        values = _values.IN_ORDER(doc)
    except KeyError:
        if "turn" not in doc:
            return from_document({**doc, "turn": 0})
        missing = [name for name in jobs.FIELDS if name not in doc]
        raise errors.JobkitError(f"job document lacks fields {missing}") from None
    return from_fields(list(values))


def from_fields(values: list[Any]) -> jobs.Job:
    """The job from its document's values in `jobs.FIELDS` order, converted in place."""
    parse = instants.parse
    for index in _INSTANTS:
        text = values[index]
        if text is not None:
            values[index] = parse(text)
    freeze = _frozen.freeze
    for index in _NESTED:
        values[index] = freeze(values[index])
    if values[ERROR] is not None:
        values[ERROR] = errors.from_document(values[ERROR])
    if values[INPUT] is not None:
        values[INPUT] = input_from_document(values[INPUT])
    entries = values[HISTORY]
    values[HISTORY] = (
        pvector([entry_from_document(entry) for entry in entries])
        if entries
        else _frozen.EMPTY_VECTOR
    )
    return _values.make_job(tuple(values))


# -- history entries ---------------------------------------------------------------------


def entry_to_document(entry: jobs.Entry) -> dict[str, Any]:
    """Every key present, null when unset, so readers see one shape."""
    values = list(map(_frozen.thaw, entry._values))
    for index in _ENTRY_INSTANTS:
        values[index] = instants.format_or_none(entry._values[index])
    error = entry._values[E_ERROR]
    values[E_ERROR] = None if error is None else errors.to_document(error)
    return dict(zip(jobs.ENTRY_KEYS, values, strict=True))


def entry_from_document(doc: Mapping[str, Any]) -> jobs.Entry:
    """Inverse of `entry_to_document`; a missing key is unset, other keys are left out."""
    values: list[Any] = [doc.get(name) for name in jobs.ENTRY_KEYS]
    if values[E_ATTEMPT] is None or values[E_WORKER] is None or values[E_STARTED_AT] is None:
        return jobs.Entry(doc)  # names what is missing
    for index in _ENTRY_INSTANTS:
        if values[index] is not None:
            values[index] = instants.parse(values[index])
    if values[E_ERROR] is not None:
        values[E_ERROR] = errors.from_document(values[E_ERROR])
    return _values.make_entry(tuple(map(_frozen.freeze, values)))


# -- the input document ----------------------------------------------------------------


def input_to_document(source: jobs.Input) -> dict[str, Any]:
    return {
        "blob": source.blob,
        "filename": source.filename,
        "size": source.size,
        "contentType": source.content_type,
        "uri": source.uri,
    }


def input_from_document(doc: Mapping[str, Any]) -> jobs.Input:
    """Inverse of `input_to_document`; absent optional keys are None."""
    return jobs.Input(
        blob=doc["blob"],
        content_type=doc["contentType"],
        filename=doc.get("filename"),
        size=doc.get("size"),
        uri=doc.get("uri"),
    )
