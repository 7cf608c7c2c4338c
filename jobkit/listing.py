"""A user's job list: filters, sort orders and opaque keyset cursors, computed purely.

Keyset pagination (the cursor holds the last row's sort key) never repeats or
skips a row while new jobs are inserted, unlike offsets; every store pages the
same way, `page` being the reference.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import attrs
from returns.result import Failure, Result, Success

from jobkit import errors, instants, jobs
from jobkit.status import Status

SortField = Literal["createdAt", "priority"]
MAX_LIMIT = 100


@attrs.frozen(kw_only=True)
class Query:
    statuses: frozenset[Status] = frozenset()
    types: frozenset[str] = frozenset()
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    sort: SortField = "createdAt"
    descending: bool = True
    limit: int = 20
    after: tuple[Any, ...] | None = None  # the last row's sort key, from a cursor

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise errors.JobkitError(f"limit must be within 1..{MAX_LIMIT}")


@attrs.frozen(kw_only=True)
class Page:
    jobs: tuple[jobs.Job, ...]
    next_cursor: str | None


def sort_key(job: jobs.Job, sort: SortField) -> tuple[Any, ...]:
    """Total order: the sort field, then creation time, then id. Priority never changes."""
    created = instants.format(jobs.created_at(job))
    if sort == "priority":
        return (jobs.priority(job), created, jobs.id(job))
    return (created, jobs.id(job))


def matches(job: jobs.Job, query: Query) -> bool:
    created = jobs.created_at(job)
    return (
        (not query.statuses or jobs.status(job) in query.statuses)
        and (not query.types or jobs.type_name(job) in query.types)
        and (query.created_from is None or created >= query.created_from)
        and (query.created_to is None or created < query.created_to)
    )


def after_cursor(key: tuple[Any, ...], query: Query) -> bool:
    if query.after is None:
        return True
    return key < query.after if query.descending else key > query.after


def encode_cursor(key: tuple[Any, ...], query: Query) -> str:
    raw = json.dumps([query.sort, query.descending, list(key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, query: Query) -> Result[Query, errors.Invalid]:
    """The query continued after `cursor`; a cursor from another sort order is refused."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort, descending, key = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        return Failure(errors.invalid("cursor", "is not a cursor this service issued"))
    if sort != query.sort or descending != query.descending:
        return Failure(errors.invalid("cursor", "belongs to another sort order"))
    shape = (int, str, str) if query.sort == "priority" else (str, str)
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(type(part) is kind for part, kind in zip(key, shape, strict=True))
    ):
        return Failure(errors.invalid("cursor", "is not a cursor this service issued"))
    return Success(attrs.evolve(query, after=tuple(key)))


def page(candidates: Iterable[jobs.Job], query: Query) -> Page:
    """The reference: filter, order, skip past the cursor, cut to the limit."""
    rows = sorted(
        (
            (key, job)
            for job in candidates
            if matches(job, query) and after_cursor(key := sort_key(job, query.sort), query)
        ),
        key=lambda pair: pair[0],
        reverse=query.descending,
    )
    chosen = rows[: query.limit]
    more = len(rows) > query.limit
    cursor = encode_cursor(chosen[-1][0], query) if more and chosen else None
    return Page(jobs=tuple(job for _, job in chosen), next_cursor=cursor)
