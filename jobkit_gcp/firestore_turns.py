"""Turns on Firestore (`schedule`'s fair claiming): where a user stands in a band, read as
queries, and submissions stored in turn.

Firestore cannot read and write in one statement as SQLite does, and a transaction would
lock each band's clock for every submission: the store reads a batch's lines first (two
queries per line, at once: a read each), then inserts the batch in the turns read. Two
submissions of one user that race may take the same turn: the tie goes by `runAt`, and the
user is a turn ahead of where they should be for that one job, which costs the others
little. A submission whose id exists still counts in the turns of the batch's later jobs
(a turn skipped, no harm).

Documents stored before jobs took turns lack the field, and a query ordered by a field
leaves out the documents that lack it: `fill` gives the pending ones turn 0, once, on
upgrade (`docs/how-to/use-firestore-and-gcs.md`).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from jobkit import jobs, schedule
from jobkit_gcp import firestore_documents as documents
from jobkit_gcp import firestore_queries as queries

if TYPE_CHECKING:
    from jobkit_gcp.firestore import FirestoreJobStore

_PAGE = 300

Run = Callable[[queries.Shape], Awaitable[builtins.list[Any]]]  # a shape's snapshots


class _Inserts(Protocol):
    async def turns(
        self, lines: Collection[schedule.Line]
    ) -> Mapping[schedule.Line, schedule.Turns]: ...

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]: ...


async def read(run: Run, lines: Collection[schedule.Line]) -> dict[schedule.Line, schedule.Turns]:
    """Each line's `Turns`: two queries per line, all at once."""
    ordered = builtins.list(lines)
    found = await asyncio.gather(*(_line(run, line) for line in ordered))
    return dict(zip(ordered, found, strict=True))


async def _line(run: Run, line: schedule.Line) -> schedule.Turns:
    """The band's clock and the largest turn of the user's jobs there not cancelled, at
    once: in `schedule.standing`'s form, that is where the user stands (a turn below the
    clock holds nothing; one at or past it is live, or claimed at the clock)."""
    served, last = (
        _turn(found)
        for found in await asyncio.gather(
            run(queries.served(line.queue, line.priority)),
            run(queries.held(line)),
        )
    )
    return schedule.standing(served, last)


def _turn(snapshots: Sequence[Any]) -> int | None:
    """The turn of a query's one job, if it found one (ordered by turn: the job holds one)."""
    if not snapshots:
        return None
    turn: int = snapshots[0].get("turn")
    return turn


async def insert(store: _Inserts, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
    """`JobStore.insert_in_turn`: the turns read, then the jobs inserted holding them."""
    if not batch:
        return []
    found = await store.turns({schedule.line_of(job) for job in batch})
    taken = schedule.take_turns(found, batch)
    won = await store.insert_many(
        [jobs.with_turn(job, turn) for job, turn in zip(batch, taken, strict=True)]
    )
    return [turn if ok else None for turn, ok in zip(taken, won, strict=True)]


async def fill(store: FirestoreJobStore) -> int:
    """Give turn 0 to every pending job whose document lacks a turn (stored before jobs took
    turns), so that claims see it; how many were filled. A read per pending job and a
    write per one filled: run it once, on upgrade, before the new workers start. Each
    write is guarded by the job's version, so a job that moved on meanwhile is left."""
    filled = 0
    after: tuple[Any, ...] | None = None
    while True:
        shape = queries.pending_page(after, _PAGE)
        collection = store.client.collection(store.collection)
        found = [s async for s in queries.build(collection, shape).stream()]
        for snapshot in found:
            fields = snapshot.to_dict() or {}
            if "turn" in fields:
                continue
            job = documents.from_fields(fields)  # turn 0
            filled += await store.compare_and_set(jobs.version(job), job)
        if len(found) < _PAGE:
            return filled
        after = (found[-1].get("runAt"), found[-1].id)
