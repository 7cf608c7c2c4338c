"""Error values of the core: job failures, machine refusals, validation problems, and bugs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap

from jobkit import _frozen, instants


class JobkitError(Exception):
    """Base of the exceptions jobkit raises: bugs and misconfiguration, never expected outcomes."""


class ConfigurationError(JobkitError):
    """A job type, policy or setting is invalid; raised where it is built, never at run time."""


@attrs.frozen(kw_only=True)
class Error:
    """Why an attempt failed: the value stored in a job's `error` and its history.

    `retryable` is the performer's opinion; `classify` has the final word.
    """

    code: str
    message: str
    retryable: bool
    context: PMap[str, Any] = attrs.field(factory=pmap, converter=_frozen.mapping)
    at: datetime | None = None


RETRY_AFTER = "retryAfterSeconds"
"""Context key: the seconds the failing service asked us to wait (a 429's retry delay).
`retry.decide` never schedules the retry sooner."""


def error(
    code: str,
    message: str,
    *,
    retryable: bool,
    context: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Error:
    return Error(code=code, message=message, retryable=retryable, context=context or {}, at=at)


def transient(code: str, message: str, **context: Any) -> Error:
    return error(code, message, retryable=True, context=context)


def permanent(code: str, message: str, **context: Any) -> Error:
    return error(code, message, retryable=False, context=context)


def to_document(err: Error) -> dict[str, Any]:
    """The error as plain JSON values: how a job's document, the API and the logs show it."""
    return {
        "code": err.code,
        "message": err.message,
        "retryable": err.retryable,
        "context": _frozen.thaw(err.context),
        "at": instants.format_or_none(err.at),
    }


def from_document(doc: Mapping[str, Any]) -> Error:
    """Inverse of `to_document`; `context` and `at` may be absent."""
    return Error(
        code=doc["code"],
        message=doc["message"],
        retryable=doc["retryable"],
        context=doc.get("context") or {},
        at=instants.parse_or_none(doc.get("at")),
    )


@attrs.frozen(kw_only=True)
class Classifier:
    """Decides, per error code, whether a failure is transient (retry) or permanent (fail now),
    or deferred: the attempt never reached the service (its circuit breaker was open), so
    it does not count as an attempt and the job waits until the service may be tried again.

    Codes not listed keep the `retryable` flag the performer set.
    """

    transient: frozenset[str] = frozenset()
    permanent: frozenset[str] = frozenset()
    deferred: frozenset[str] = frozenset()

    def __attrs_post_init__(self) -> None:
        for (name, one), (other_name, other) in (
            (("transient", self.transient), ("permanent", self.permanent)),
            (("transient", self.transient), ("deferred", self.deferred)),
            (("permanent", self.permanent), ("deferred", self.deferred)),
        ):
            both = one & other
            if both:
                raise ConfigurationError(f"codes both {name} and {other_name}: {sorted(both)}")


DEFAULT_CLASSIFIER = Classifier(
    transient=frozenset(
        {"lease_expired", "timeout", "rate_limited", "unavailable", "worker_crashed"}
    ),
    permanent=frozenset(
        {
            "invalid_input",
            "not_found",
            "unsupported",
            "corrupt_document",
            "encrypted_document",
            "too_many_pages",
            "document_too_complex",
        }
    ),
    deferred=frozenset({"circuit_open"}),
)


def deferred(err: Error, classifier: Classifier = DEFAULT_CLASSIFIER) -> bool:
    """True when the attempt never reached the service: not an attempt, the job waits."""
    return err.code in classifier.deferred


def classify(err: Error, classifier: Classifier = DEFAULT_CLASSIFIER) -> bool:
    """True when the error is transient (or deferred) and may be retried."""
    if err.code in classifier.deferred:
        return True
    if err.code in classifier.permanent:
        return False
    if err.code in classifier.transient:
        return True
    return err.retryable


@attrs.frozen(kw_only=True)
class JobError:
    """The machine refused an event: illegal in the job's state, or from a lost lease."""

    code: str
    message: str
    status: str | None
    event: str


@attrs.frozen(kw_only=True)
class Problem:
    """One invalid field of a submission: `field` is a JSON-pointer-like path (`params/pages`)."""

    field: str
    message: str


@attrs.frozen(kw_only=True)
class Invalid:
    """A submission was refused; one `Problem` per thing that is wrong with it."""

    problems: tuple[Problem, ...]

    @property
    def message(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)


def invalid(field: str, message: str) -> Invalid:
    return Invalid(problems=(Problem(field=field, message=message),))
