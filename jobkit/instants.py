"""Instants as aware UTC datetimes, and their one fixed-width, sortable text form."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from jobkit import _cache

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Every write of a job formats its instants and every read parses them, and most
# of them (createdAt, runAt, a history entry's startedAt) are the same instant from
# one version of a job to the next. Texts are remembered by the datetime's identity
# (the entry holds it, so that its id cannot be reused meanwhile), parsed instants
# by their text; both are bounded, and invisible: the functions are pure.
_CACHED = 1024  # a worker has a few hundred instants in flight; more only feeds the GC
_TEXTS = _cache.IdentityCache[str](max_entries=_CACHED)
_DATES: dict[int, str] = {}  # `2026-11-28T` by the day's ordinal
_TWO = tuple(f"{n:02d}" for n in range(100))


def format(at: datetime) -> str:  # noqa: A001 - the module is the namespace: instants.format
    """`2026-11-28T18:49:48.123456Z`: fixed width, so text order is time order."""
    found = _TEXTS.get(at)
    if found is not None:
        return found
    if type(at) is not datetime or at.tzinfo is not UTC:
        # Not cached: a naive instant is read in the local time zone, which may change
        # under a running process, and a subclass may format itself its own way.
        utc = at if at.tzinfo is UTC else at.astimezone(UTC)
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    # What `isoformat(timespec="microseconds")` writes, from parts: formatting the
    # whole (isoformat, strftime or `%`) costs several times as much.
    day = at.toordinal()
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) >= _CACHED:
            _DATES.clear()
        date = _DATES[day] = f"{at.year:04d}-{at.month:02d}-{at.day:02d}T"
    two, micro = _TWO, at.microsecond
    text = "".join(
        (
            date, two[at.hour], ":", two[at.minute], ":", two[at.second], ".",
            two[micro // 10000], two[micro // 100 % 100], two[micro % 100], "Z",
        )
    )  # fmt: skip
    return _TEXTS.put(at, text)


def parse(text: str) -> datetime:
    """Parse an ISO 8601 instant; a value without an offset is refused (ambiguous), and so is
    one that leaves the representable range once moved to UTC (`0001-01-01T00:00+01:00`)."""
    return _parse_cached(text)


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"instant without a UTC offset: {text!r}")
    try:
        at = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"instant out of range in UTC: {text!r}") from None
    if len(text) == 27 and text[26] == "Z" and text[10] == "T" and text[19] == ".":
        # Already `format`'s text (a stored job's instants are): remember it as such,
        # so that writing the job back does not format it again.
        _TEXTS.put(at, text)
    return at


_parse_cached = functools.lru_cache(maxsize=_CACHED)(_parse)


def format_or_none(at: datetime | None) -> str | None:
    return None if at is None else format(at)


def parse_or_none(text: str | None) -> datetime | None:
    return None if text is None else parse(text)


# The latest sum `plus` made: a worker claims a batch at one instant, and every job in
# it gets the same lease expiry (one object, so its text is remembered too).
_LAST_PLUS: list[tuple[datetime, float, datetime]] = []


def plus(at: datetime, seconds: float) -> datetime:
    if seconds == 0:  # the same instant: keep the object, whose text may be remembered
        return at
    if _LAST_PLUS:
        last_at, last_seconds, last = _LAST_PLUS[0]
        if last_at is at and last_seconds == seconds:
            return last
    result = at + timedelta(seconds=seconds)
    _LAST_PLUS[:] = ((at, seconds, result),)
    return result


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def from_epoch(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)
