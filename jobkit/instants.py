"""Instants as aware UTC datetimes, and their one fixed-width, sortable text form."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Every write of a job formats its instants and every read parses them, and most
# of them (createdAt, runAt, a history entry's startedAt) are the same instant from
# one version of a job to the next: remembering the latest few thousand makes
# storage conversion cheap. Both functions are pure, so the caches are invisible.
_CACHED = 4096


def format(at: datetime) -> str:  # noqa: A001 - the module is the namespace: instants.format
    """`2026-11-28T18:49:48.123456Z`: fixed width, so text order is time order."""
    if type(at) is datetime and at.tzinfo is UTC:
        return _format_cached(at)
    # Not cached: a naive instant is read in the local time zone, which may change
    # under a running process, and a subclass may format itself differently.
    return _format(at if at.tzinfo is UTC else at.astimezone(UTC))


def _format(at: datetime) -> str:
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_format_cached = functools.lru_cache(maxsize=_CACHED)(_format)


@functools.lru_cache(maxsize=_CACHED)
def parse(text: str) -> datetime:
    """Parse an ISO 8601 instant; a value without an offset is refused (ambiguous), and so is
    one that leaves the representable range once moved to UTC (`0001-01-01T00:00+01:00`)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"instant without a UTC offset: {text!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"instant out of range in UTC: {text!r}") from None


def format_or_none(at: datetime | None) -> str | None:
    return None if at is None else format(at)


def parse_or_none(text: str | None) -> datetime | None:
    return None if text is None else parse(text)


def plus(at: datetime, seconds: float) -> datetime:
    return at + timedelta(seconds=seconds)


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def from_epoch(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)
