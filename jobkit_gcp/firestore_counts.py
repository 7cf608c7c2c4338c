"""Counting on Firestore without reading documents: count aggregations, billed one read
per thousand index entries counted (at least one), for the queue gauges (`counts`), the
per-user quota (`FirestoreJobStore.count_active`) and push dispatch's sweep
(`FirestoreJobStore.count_due`)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from typing import Any, Final

from google.cloud.firestore_v1.async_collection import AsyncCollectionReference

from jobkit import instants, schedule
from jobkit.status import PENDING, PROCESSING
from jobkit_gcp import firestore_queries as queries

ALL: Final = 2**31 - 1  # a count aggregation's limit that never binds (int32)

Tally = Callable[[queries.Shape], Awaitable[int]]  # a shape's count (the store bills it)
Run = Callable[[queries.Shape], Awaitable[builtins.list[Any]]]  # a shape's snapshots


async def tally(collection: AsyncCollectionReference, shape: queries.Shape) -> int:
    """A count aggregation of `shape` (up to its limit)."""
    # The client annotates `count()` as returning a class; it returns an instance.
    counting: Any = queries.build(collection, shape).count(alias="n")
    found = await counting.get()
    return int(found[0][0].value)


async def counts(tally: Tally, run: Run, now: datetime, queues: Collection[str]) -> schedule.Counts:
    """Each of `queues` only (count aggregations cannot group by queue): per queue, three
    count aggregations (pending, due, processing) and the oldest due job (one read), all
    at once. The gauges call it on an interval, so its cost is bounded by the number of
    queues, not of scrapes."""
    names = sorted(set(queues))
    found = await asyncio.gather(*(_queue(tally, run, now, name) for name in names))
    return dict(zip(names, found, strict=True))


async def _queue(tally: Tally, run: Run, now: datetime, queue: str) -> schedule.QueueCounts:
    pending, due, processing, oldest = await asyncio.gather(
        tally(queries.in_queue(PENDING.value, queue, limit=ALL)),
        tally(queries.in_queue(PENDING.value, queue, due_by=now, limit=ALL)),
        tally(queries.in_queue(PROCESSING.value, queue, limit=ALL)),
        run(queries.in_queue(PENDING.value, queue, due_by=now, limit=1)),
    )
    first = oldest[0].get("runAt") if oldest else None
    return schedule.QueueCounts(
        pending=pending,
        due=due,
        processing=processing,
        oldest_due=instants.parse(first) if isinstance(first, str) else None,
    )
