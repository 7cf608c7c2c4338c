"""A job as a Firestore document: the fields of its JSON document, each kept as Firestore can.

A job's document is `documents.to_document(job)`, the map the API serves, so a
person reading the Firebase console sees what the API shows. Instants stay
the fixed-width text `instants.format` writes: text order is time order, so
the store's range filters and orderings compare exactly as `schedule` and
`listing` do, and a listing cursor holds the very values the query orders by.

Firestore cannot hold every JSON value: a map key may not be empty nor look
like `__name__`, an array may not hold an array, values nest 20 deep at most,
integers are 64-bit and strings UTF-8. The free-form fields (`params`,
`result`, `metadata`, ...) may hold any of these, so such a field, when it
must, is kept as its JSON text under one key (`{"$json": "..."}`), and read
back as the value it was. A map that happens to have that very shape is
wrapped too, so reading never mistakes a value for a wrapper.

Pure: no client, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from jobkit import documents, errors, jobs

MAX_DOCUMENT_BYTES: Final = 1_048_576  # Firestore's limit on one document's stored size
MAX_NESTING: Final = 19  # maps and arrays below a top-level field (Firestore: 20 levels in all)
JSON_KEY: Final = "$json"
# The free-form fields: whatever a job type, a user or an error context put there.
FREE_FORM: Final = (
    "params",
    "input",
    "result",
    "error",
    "history",
    "progress",
    "metadata",
    "idempotency",
)
_RESERVED = re.compile(r"__.*__")
_INT64 = (-(2**63), 2**63 - 1)
_MAX_FIELD_NAME = 1500


class DocumentTooLarge(errors.JobkitError):
    """A job's document is past Firestore's 1 MiB: large results belong in the blob store."""


def to_fields(job: jobs.Job) -> dict[str, Any]:
    """The job's Firestore fields: its JSON document, free-form fields wrapped where needed."""
    doc = documents.to_document(job)
    for name in FREE_FORM:
        value = doc[name]
        if value is not None and (is_wrapped(value) or not storable(value, MAX_NESTING)):
            doc[name] = {JSON_KEY: json.dumps(value, separators=(",", ":"))}
    return doc


def from_fields(fields: Mapping[str, Any]) -> jobs.Job:
    """Inverse of `to_fields`."""
    doc = dict(fields)
    for name in FREE_FORM:
        value = doc.get(name)
        if is_wrapped(value):
            assert value is not None
            doc[name] = json.loads(value[JSON_KEY])
    return documents.from_document(doc)


def is_wrapped(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and type(value.get(JSON_KEY)) is str


def storable(value: Any, nesting: int) -> bool:
    """Whether Firestore holds `value` as it is, with at most `nesting` maps and arrays below."""
    if value is None or type(value) is bool or type(value) is float:
        return True
    if type(value) is int:
        return _INT64[0] <= value <= _INT64[1]
    if type(value) is str:
        return _utf8(value)
    if nesting <= 0:
        return False
    if type(value) is dict:
        return all(
            type(key) is str
            and key
            and _utf8(key)
            and len(key.encode()) <= _MAX_FIELD_NAME
            and not _RESERVED.fullmatch(key)
            and storable(item, nesting - 1)
            for key, item in value.items()
        )
    if type(value) is list:
        return all(type(item) is not list and storable(item, nesting - 1) for item in value)
    return False


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON can carry and UTF-8 cannot
        return False
    return True


def document_size(collection: str, doc_id: str, fields: Mapping[str, Any]) -> int:
    """The document's stored size as Firestore counts it (its name, its fields, 32 bytes)."""
    name = len(collection.encode()) + 1 + len(doc_id.encode()) + 1 + 16
    return name + _map_size(fields) + 32


def check_size(collection: str, doc_id: str, fields: Mapping[str, Any]) -> None:
    size = document_size(collection, doc_id, fields)
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(
            f"job {doc_id!r} is {size} bytes as a Firestore document, over the limit of"
            f" {MAX_DOCUMENT_BYTES}: keep large results in the blob store, not in the job"
        )


def _map_size(fields: Mapping[str, Any]) -> int:
    return sum(len(key.encode()) + 1 + _value_size(value) for key, value in fields.items())


def _value_size(value: Any) -> int:
    if value is None or type(value) is bool:
        return 1
    if type(value) is int or type(value) is float:
        return 8
    if type(value) is str:
        return len(value.encode()) + 1
    if type(value) is dict:
        return _map_size(value)
    if type(value) is list:
        return sum(_value_size(item) for item in value)
    raise errors.JobkitError(f"not a JSON value: {type(value).__name__}")
