"""Claim order and stall detection: which jobs a worker may take next, purely.

Due jobs only (`runAt <= now`); higher `priority` first, then the earliest
`runAt`, then the oldest `createdAt`, then `id` so that the order is total.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from jobkit import jobs
from jobkit.status import PENDING, PROCESSING


def claim_key(job: jobs.Job) -> tuple[Any, ...]:
    return (-jobs.priority(job), jobs.run_at(job), jobs.created_at(job), jobs.id(job))


def in_queues(job: jobs.Job, queues: Collection[str] | None) -> bool:
    """`queues=None` means every queue."""
    return queues is None or jobs.queue(job) in queues


def is_due(job: jobs.Job, now: datetime) -> bool:
    return jobs.status_or_none(job) == PENDING and jobs.run_at(job) <= now


def is_stalled(job: jobs.Job, now: datetime) -> bool:
    """A processing job whose lease ran out: its worker crashed, hung or lost the network."""
    expires = jobs.lease_expires_at(job)
    return jobs.status_or_none(job) == PROCESSING and expires is not None and expires <= now


def claimable(
    candidates: Iterable[jobs.Job], now: datetime, queues: Collection[str] | None, limit: int
) -> list[jobs.Job]:
    """The first `limit` due jobs in claim order."""
    due = (job for job in candidates if is_due(job, now) and in_queues(job, queues))
    return sorted(due, key=claim_key)[:limit]


def count_due(
    candidates: Iterable[jobs.Job], now: datetime, queues: Collection[str] | None, limit: int
) -> int:
    """How many jobs are due (in `queues`), counted up to `limit`."""
    due = (job for job in candidates if is_due(job, now) and in_queues(job, queues))
    return sum(1 for _ in itertools.islice(due, max(0, limit)))


def stalled(candidates: Iterable[jobs.Job], now: datetime, limit: int) -> list[jobs.Job]:
    """Up to `limit` stalled jobs, the longest-expired first."""
    found = (job for job in candidates if is_stalled(job, now))
    return sorted(found, key=lambda job: (jobs.lease_expires_at(job), jobs.id(job)))[:limit]


def next_wakeup(candidates: Iterable[jobs.Job], queues: Collection[str] | None) -> datetime | None:
    """The earliest instant something becomes claimable: a pending runAt or a lease expiry."""
    times = [
        jobs.run_at(job)
        for job in candidates
        if jobs.status_or_none(job) == PENDING and in_queues(job, queues)
    ]
    times += [
        at
        for job in candidates
        if jobs.status_or_none(job) == PROCESSING and (at := jobs.lease_expires_at(job)) is not None
    ]
    return min(times, default=None)


@attrs.frozen(kw_only=True)
class QueueCounts:
    """The live jobs of one queue, as a dashboard's gauges show them: `pending` (due or
    scheduled later), of which `due` (`runAt <= now`), `processing`, and the `runAt` of the
    oldest due job (None when none is due)."""

    pending: int = 0
    due: int = 0
    processing: int = 0
    oldest_due: datetime | None = None


Counts = Mapping[str, QueueCounts]


def counts(candidates: Iterable[jobs.Job], now: datetime, queues: Collection[str]) -> Counts:
    """Each queue of `queues` (all zero when empty) and every other queue holding a pending
    or processing job, with its `QueueCounts` at `now`. Finished jobs are not counted: the
    lifecycle counters say how many finished, and a store would have to scan them all."""
    found: dict[str, dict[str, Any]] = {
        name: {"pending": 0, "due": 0, "processing": 0, "oldest_due": None} for name in queues
    }
    for job in candidates:
        current = jobs.status_or_none(job)
        if current not in (PENDING, PROCESSING):
            continue
        tally = found.setdefault(
            jobs.queue(job), {"pending": 0, "due": 0, "processing": 0, "oldest_due": None}
        )
        if current == PROCESSING:
            tally["processing"] += 1
            continue
        tally["pending"] += 1
        due = jobs.run_at(job)
        if due <= now:
            tally["due"] += 1
            oldest = tally["oldest_due"]
            tally["oldest_due"] = due if oldest is None or due < oldest else oldest
    return {name: QueueCounts(**tally) for name, tally in sorted(found.items())}
