"""Claim order, fair turns and stall detection: which jobs a worker may take next, purely.

Due jobs only (`runAt <= now`); higher `priority` first, then the lowest `turn`, then the
earliest `runAt`, then the oldest `createdAt`, then `id` so that the order is total.

Turns: fair claiming across users (start-time fair queuing)
-----------------------------------------------------------
A *band* is one (queue, priority). Within a band, a turn is a round in which each user has
at most one job: jobs are claimed round by round, so a user's backlog of ten thousand fills
ten thousand rounds, and another user's job lands in the round being served now, not
behind the backlog. A job takes its turn when it is stored (`next_turn`), from two facts a
store reads from its indexes (`Turns`):

- `served`, the band's clock: the largest turn a claim in the band has taken (the turn of
  a job processing, completed or failed). It only grows, so it says which round is being
  served whatever the band did since: drained, or holding jobs that wait for a retry.
- `last`: the largest turn still held by the user in the band: of their jobs waiting or
  running, or of their job claimed in the round being served (`served`). A job that
  finished in an earlier round, or was cancelled, holds nothing: its round is past.

`next_turn = max(served, last + 1)` (an absent value counts as 0): the round being served,
unless the user already has a job there or later, then the round after their last. A job
keeps its turn through automatic retries and releases, so it goes back ahead of the jobs
that came after it; a retry by hand takes a new one (`events.RetryRequested`).

What follows, with no failures (each claim taking the head of the claim order): a user's
job submitted with `k` jobs of theirs unfinished in its band is claimed after at most
`k + 2` jobs of any other user that were claimed after it was submitted (`docs/
explanation/scheduling.md` has the proof); a newcomer's job, after about one job per
active user. Workers that claim in batches, or from a random window after losing a race
(`jobkit.worker.claims`), can take up to a batch out of that order.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import attrs

from jobkit import jobs
from jobkit.status import ACTIVE, COMPLETED, FAILED, PENDING, PROCESSING


def claim_key(job: jobs.Job) -> tuple[Any, ...]:
    return (
        -jobs.priority(job),
        jobs.turn(job),
        jobs.run_at(job),
        jobs.created_at(job),
        jobs.id(job),
    )


# -- turns -----------------------------------------------------------------------------

SERVED = frozenset({PROCESSING, COMPLETED, FAILED})
"""The statuses of a job a claim has taken: the band's clock counts their turns."""


class Line(NamedTuple):
    """One user's jobs in one band: what a store reads `Turns` for."""

    user_id: str
    queue: str
    priority: int


def line_of(job: jobs.Job) -> Line:
    return Line(jobs.user_id(job), jobs.queue(job), jobs.priority(job))


@attrs.frozen
class Turns:
    """Where a user stands in a band: the band's clock (`served`: the largest turn a claim
    has taken there) and the user's `last` turn there (the largest of their jobs pending or
    processing, or of their claimed job at `served`); None when there is none."""

    served: int | None = None
    last: int | None = None


def standing(served: int | None, last: int | None) -> Turns:
    """`Turns` in the one form every store gives: a `last` below the clock holds no place
    (`next_turn` is the clock's round either way), so it is None. A store may then read
    `last` as the reference does (live jobs, and a claim in the round being served) or as
    the largest turn of the user's jobs not cancelled, in one query (Firestore), and both
    say the same."""
    if served is not None and last is not None and last < served:
        last = None
    return Turns(served=served, last=last)


def next_turn(turns: Turns) -> int:
    """The turn a job takes: the round being served, or the one after the user's last."""
    served = 0 if turns.served is None else turns.served
    return served if turns.last is None else max(served, turns.last + 1)


def take_turns(found: Mapping[Line, Turns], batch: Iterable[jobs.Job]) -> list[int]:
    """The turn of each job of `batch`, stored in this order where each line stood as
    `found` says: as if stored one after another (each job is its user's last for the next;
    the band's clock moves only with claims)."""
    now = dict(found)
    taken: list[int] = []
    for job in batch:
        line = line_of(job)
        turns = now.get(line, Turns())
        turn = next_turn(turns)
        now[line] = Turns(served=turns.served, last=turn)
        taken.append(turn)
    return taken


def turns(candidates: Iterable[jobs.Job], lines: Collection[Line]) -> dict[Line, Turns]:
    """Each of `lines`' `Turns` among `candidates` (a whole store's jobs): the reference
    for `JobStore.turns`.

    In `standing`'s form, these are the same as with `last` taken over every job of the
    user not cancelled (a job finished before the round being served has a turn below it,
    and one claimed in it has the clock's own): a store reads `last` either way, from the
    jobs that are live or claimed at the clock, which it indexes anyway (SQLite), or from
    every job of the user's line in one query (Firestore)."""
    wanted = set(lines)
    bands = {(line.queue, line.priority) for line in wanted}
    served: dict[tuple[str, int], int] = {}
    live: dict[Line, int] = {}  # the user's largest turn pending or processing
    claimed: dict[Line, int] = {}  # the user's largest turn claimed
    for job in candidates:
        state = jobs.status_or_none(job)
        band = (jobs.queue(job), jobs.priority(job))
        if state is None or band not in bands:
            continue
        turn = jobs.turn(job)
        line = Line(jobs.user_id(job), *band)
        if state in SERVED:
            served[band] = max(turn, served.get(band, turn))
            claimed[line] = max(turn, claimed.get(line, turn))
        if state in ACTIVE:
            live[line] = max(turn, live.get(line, turn))
    found: dict[Line, Turns] = {}
    for line in wanted:
        clock = served.get((line.queue, line.priority))
        held = [live[line]] if line in live else []
        if clock is not None and claimed.get(line) == clock:
            held.append(clock)
        found[line] = standing(clock, max(held, default=None))
    return found


# -- claims and stalls ---------------------------------------------------------------------


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
