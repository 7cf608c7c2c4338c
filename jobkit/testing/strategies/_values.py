"""Instants, plain JSON and error values."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from jobkit import errors, instants


def utc_datetimes(low: int = 2000, high: int = 2100) -> st.SearchStrategy[datetime]:
    """Aware UTC instants from the start of year `low` to the end of year `high`."""
    return st.datetimes(
        min_value=datetime(low, 1, 1),
        max_value=datetime(high, 12, 31, 23, 59, 59, 999999),
        timezones=st.just(UTC),
    )


def later(now: datetime, high: float = 7200.0) -> st.SearchStrategy[datetime]:
    """An instant from `now` to `high` seconds after it."""
    return st.floats(min_value=0.0, max_value=high).map(lambda s: instants.plus(now, s))


SCALARS: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def json_objects(max_size: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with 1..16 character keys, valid as params or metadata."""
    return st.dictionaries(st.text(min_size=1, max_size=16), json_values, max_size=max_size)


# -- errors ---------------------------------------------------------------------------

ERROR_CODES: tuple[str, ...] = (
    *sorted(errors.DEFAULT_CLASSIFIER.transient),
    *sorted(errors.DEFAULT_CLASSIFIER.permanent),
    "boom",
    "quota_exceeded",
)


def error_values(
    codes: Collection[str] = ERROR_CODES,
    retryable: st.SearchStrategy[bool] | None = None,
    at: st.SearchStrategy[datetime | None] | None = None,
) -> st.SearchStrategy[errors.Error]:
    """An `errors.Error` with a code from `codes`, sometimes stamped with when it happened."""
    return st.builds(
        errors.error,
        st.sampled_from(sorted(codes)),
        st.text(max_size=30),
        retryable=st.booleans() if retryable is None else retryable,
        context=st.dictionaries(st.text(max_size=8), SCALARS, max_size=2),
        at=(st.none() | utc_datetimes()) if at is None else at,
    )


def transient_errors(
    classifier: errors.Classifier = errors.DEFAULT_CLASSIFIER,
) -> st.SearchStrategy[errors.Error]:
    """Errors as a performer returns them (not yet stamped) that `classifier` calls
    transient: a job type with it retries them while attempts remain."""
    codes = (set(ERROR_CODES) | classifier.transient) - classifier.permanent
    drawn = error_values(codes, st.just(True), st.none())
    return drawn.filter(lambda e: errors.classify(e, classifier))


def permanent_errors(
    classifier: errors.Classifier = errors.DEFAULT_CLASSIFIER,
) -> st.SearchStrategy[errors.Error]:
    """Errors as a performer returns them that `classifier` calls permanent: a job type
    with it fails the job at once on them."""
    codes = (set(ERROR_CODES) | classifier.permanent) - classifier.transient
    drawn = error_values(codes, st.just(False), st.none())
    return drawn.filter(lambda e: not errors.classify(e, classifier))


def failures(
    classifier: errors.Classifier = errors.DEFAULT_CLASSIFIER,
) -> st.SearchStrategy[errors.Error]:
    """Any error a performer may return, transient or permanent under `classifier`."""
    return transient_errors(classifier) | permanent_errors(classifier)
