"""The simulator's store as each actor reaches it: over a wire with latency, whose writes
may fail with an unknown outcome, and which a crashed worker can no longer use; and the
ledger of every write that landed, with who wrote it, for the invariant checker.

A read answers with what the store held when it was sent, a round trip later: the caller
acts on a copy that may be stale by then (reads race writes). A write
travels, lands (atomically, in the shared `MemoryJobStore`) and answers after another
delay. A write fault lands the write or not, with even odds, and then raises
`StoreUnavailable`: the caller cannot tell which.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

import attrs

from jobkit import jobs, listing, schedule
from jobkit.status import ACTIVE, FAILED, Status
from jobkit.testing import indexed
from jobkit.testing.memory import MemoryJobStore

T = TypeVar("T")


class StoreUnavailable(ConnectionError):
    """A simulated store failure: the write may or may not have landed."""


class Killed(BaseException):
    """Raised to a crashed worker's code: it is gone, like a process after SIGKILL. Not an
    `Exception`, so that no handler of the worker's mistakes it for a failure to record."""


@attrs.frozen(kw_only=True)
class Write:
    """One successful compare-and-set (or the insert, `expected` 0) as the store saw it."""

    at: float  # virtual seconds
    job_id: str
    expected: int
    version: int
    kind: str  # the event, told from the change (`kind_of`)
    actor: str  # a worker id, or `user`
    source: str | None  # the status it replaced
    target: str
    attempts: int
    claim: int


def kind_of(before: jobs.Job | None, after: jobs.Job) -> str:
    """Which event made `after` from `before`, read from the history, not the statuses (so
    the checker can still test the statuses against the transition table)."""
    if before is None:
        return "submitted"
    if jobs.claim(after) == jobs.claim(before) + 1:
        return "claimed"
    old, new = jobs.history(before), jobs.history(after)
    if new and len(new) == len(old) and jobs.entry_outcome(old[-1]) != jobs.entry_outcome(new[-1]):
        outcome = jobs.entry_outcome(new[-1])
        return {jobs.STALLED: "lease_expired"}.get(str(outcome), str(outcome))
    if jobs.status(after) != jobs.status(before):
        return {FAILED: "retry"}.get(jobs.status(before), "cancel")
    if jobs.progress(after) != jobs.progress(before):
        return "progress"
    return "heartbeat"


class Ledger:
    """What the simulator learns from the store: every landed write in order, the
    counters, and whether anything is still active (a job pending or processing, or a
    user action still to come); `quiet` is set when nothing is."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writes: list[Write] = []
        self.counters: Counter[str] = Counter()
        self.status: dict[str, Status] = {}
        self.active = 0  # jobs pending or processing
        self.planned = 0  # user actions still to come
        self.quiet = asyncio.Event()
        self.on_failed: Callable[[str], None] = lambda _job_id: None

    def record(self, before: jobs.Job | None, after: jobs.Job, actor: str) -> None:
        job_id, target = jobs.id(after), jobs.status(after)
        source = None if before is None else jobs.status_or_none(before)
        self.writes.append(
            Write(
                at=self.loop.time(),
                job_id=job_id,
                expected=0 if before is None else jobs.version(before),
                version=jobs.version(after),
                kind=kind_of(before, after),
                actor=actor,
                source=None if source is None else source.value,
                target=target.value,
                attempts=jobs.attempts(after),
                claim=jobs.claim(after),
            )
        )
        old = self.status.get(job_id)
        self.status[job_id] = target
        self.change((target in ACTIVE) - (old in ACTIVE), 0)
        if target == FAILED and old != FAILED:
            self.on_failed(job_id)

    def change(self, active: int, planned: int) -> None:
        self.active += active
        self.planned += planned
        if self.active == self.planned == 0:
            self.quiet.set()


@attrs.frozen(kw_only=True)
class Conditions:
    """The wire's weather: seconds of latency each way (a mean), and the chance that a
    write fails with an unknown outcome."""

    latency: float = 0.0
    write_faults: float = 0.0


class Wire:
    """One actor's connection to the shared store (a `ports.JobStore`). `cut()` is the
    actor's death: every call from then on raises `Killed`, even one already on its way.
    `on_fault(attempts)` hears of each write that failed, with the (job id, claim) pairs
    it would have written."""

    def __init__(
        self,
        store: MemoryJobStore,
        ledger: Ledger,
        actor: str,
        rng: random.Random,
        conditions: Conditions,
        on_fault: Callable[[list[tuple[str, int]]], None] = lambda _attempts: None,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self.actor = actor
        self._rng = rng
        self._latency = conditions.latency
        self._faults = conditions.write_faults
        self._on_fault = on_fault
        self.alive = True

    def cut(self) -> None:
        self.alive = False

    async def _travel(self, legs: float = 1.0) -> None:
        if self._latency > 0.0:
            await asyncio.sleep(legs * self._latency * self._rng.uniform(0.5, 1.5))
        if not self.alive:
            raise Killed(self.actor)

    async def _read(self, read: Callable[[], T]) -> T:
        """What the store holds now, answered a round trip later: a copy that may be
        stale by the time the caller acts on it."""
        if not self.alive:
            raise Killed(self.actor)
        answer = read()
        await self._travel(2.0)
        return answer

    async def _write(self, write: Callable[[], T], touched: Sequence[jobs.Job] = ()) -> T:
        await self._travel()
        if self._faults > 0.0 and self._rng.random() < self._faults:
            self._ledger.counters["store_write_faults"] += 1
            self._on_fault([(jobs.id(job), jobs.claim(job)) for job in touched])
            if self._rng.random() < 0.5:
                self._ledger.counters["store_write_faults_landed"] += 1
                write()
            raise StoreUnavailable(f"simulated: no answer from the store ({self.actor})")
        answer = write()
        await self._travel()
        return answer

    # -- writes ---------------------------------------------------------------------

    def _cas(self, expected: int, job: jobs.Job) -> bool:
        before = self._store.get_now(jobs.id(job))
        if not self._store.compare_and_set_now(expected, job):
            return False
        self._ledger.record(before, job, self.actor)
        return True

    def _insert(self, job: jobs.Job) -> bool:
        if not self._store.insert_now(job):
            return False
        self._ledger.record(None, job, self.actor)
        return True

    async def insert(self, job: jobs.Job) -> bool:
        return await self._write(lambda: self._insert(job))

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]:
        return await self._write(lambda: [self._insert(job) for job in batch])

    def _insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        taken = self._store.insert_in_turn_now(batch)
        for job, turn in zip(batch, taken, strict=True):
            if turn is not None:
                self._ledger.record(None, jobs.with_turn(job, turn), self.actor)
        return taken

    async def insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        """Atomic, as the SQLite store's: the turns are read and taken where the jobs land."""
        return await self._write(lambda: self._insert_in_turn(batch))

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        return await self._write(lambda: self._cas(expected_version, job), [job])

    async def compare_and_set_many(
        self, writes: Sequence[tuple[int, jobs.Job]]
    ) -> builtins.list[bool]:
        return await self._write(
            lambda: [self._cas(version, job) for version, job in writes], [job for _, job in writes]
        )

    async def delete(self, job_id: str, expected_version: int) -> bool:
        return await self._write(lambda: self._store.delete_now(job_id, expected_version))

    # -- reads ----------------------------------------------------------------------

    async def get(self, job_id: str) -> jobs.Job | None:
        return await self._read(lambda: self._store.get_now(job_id))

    async def list(self, user_id: str, query: listing.Query) -> listing.Page:
        return await self._read(
            lambda: listing.page(
                (j for j in self._store.all() if jobs.user_id(j) == user_id), query
            )
        )

    async def turns(
        self, lines: Collection[schedule.Line]
    ) -> Mapping[schedule.Line, schedule.Turns]:
        return await self._read(lambda: self._store.turns_now(lines))

    async def count_active(self, user_id: str, limit: int) -> int:
        return await self._read(lambda: self._store.count_active_now(user_id, limit))

    async def claimable(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> Sequence[jobs.Job]:
        return await self._read(lambda: self._store.claimable_now(now, queues, limit))

    async def count_due(self, now: datetime, queues: Collection[str] | None, limit: int) -> int:
        return await self._read(lambda: schedule.count_due(self._store.all(), now, queues, limit))

    async def stalled(self, now: datetime, limit: int) -> Sequence[jobs.Job]:
        return await self._read(lambda: self._store.stalled_now(now, limit))

    async def counts(self, now: datetime, queues: Collection[str]) -> schedule.Counts:
        return await self._read(lambda: schedule.counts(self._store.all(), now, queues))

    async def next_wakeup(self, queues: Collection[str] | None) -> datetime | None:
        store = self._store
        if isinstance(store, indexed.IndexedStore) and queues is None:
            return await self._read(store.next_wakeup_now)
        return await self._read(lambda: schedule.next_wakeup(store.all(), queues))
