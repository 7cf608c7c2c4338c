"""Instants as aware UTC datetimes, and their one fixed-width, sortable text form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format(at: datetime) -> str:  # noqa: A001 - the module is the namespace: instants.format
    """`2026-11-28T18:49:48.123456Z`: fixed width, so text order is time order."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse(text: str) -> datetime:
    """Parse an ISO 8601 instant; a value without an offset is refused (ambiguous)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"instant without a UTC offset: {text!r}")
    return value.astimezone(UTC)


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
