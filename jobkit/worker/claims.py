"""Taking work from the store: claiming due jobs in batches whose writes are pipelined, and
reaping stalled ones (expired leases) back to their retry policy."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime

from returns.result import Failure, Success

from jobkit import events, jobs, machine, ports, registry, schedule
from jobkit.errors import JobError
from jobkit.worker.config import Clock, Emit, WorkerConfig, log

Moves = list[tuple[int, jobs.Job, machine.Effects]]


def step_each(
    found: Iterable[jobs.Job], event_of: Callable[[jobs.Job], events.Event], now: datetime
) -> tuple[Moves, list[tuple[jobs.Job, JobError]]]:
    """Each job moved by its event, with the version it was read at (for the write's
    compare-and-set); and the jobs the machine refused, with why (changed since read)."""
    moves: Moves = []
    refused: list[tuple[jobs.Job, JobError]] = []
    for job in found:
        match machine.step(job, event_of(job), now):
            case Success((moved, done)):
                moves.append((jobs.version(job), moved, done))
            case Failure(refusal):
                refused.append((job, refusal))
    return moves, refused


async def write_moves(store: ports.JobStore, moves: Moves, emit: Emit) -> list[jobs.Job]:
    """`moves` in one compare-and-set write; the jobs whose writes landed, each told to
    `emit` (the others were changed meanwhile: someone else's now)."""
    if not moves:
        return []
    won = await store.compare_and_set_many([(version, job) for version, job, _ in moves])
    landed: list[jobs.Job] = []
    for (_, job, done), ok in zip(moves, won, strict=True):
        if ok:
            emit(done, job, None)
            landed.append(job)
    return landed


class Claims:
    """Claims up to half the free slots' worth of due jobs per write, without waiting for
    the write: while one claim's write is on its way, the next can be read and stepped.

    State it owns: the claims on their way (their tasks, and the ids of the jobs they
    name, which hold a slot each), whether the last claim lost a race (`contended`), and
    the error of a claim write, for the loop to raise. What a claim wins goes to
    `won(jobs)` once its write lands.
    """

    def __init__(
        self,
        *,
        store: ports.JobStore,
        config: WorkerConfig,
        worker_id: str,
        clock: Clock,
        rng: random.Random,
        emit: Emit,
        won: Callable[[list[jobs.Job]], Awaitable[None]],
        wake: Callable[[], None],
    ) -> None:
        self._store = store
        self._config = config
        self._event = events.Claimed(worker=worker_id, lease_seconds=config.lease_seconds)
        self._clock = clock
        self._rng = rng
        self._emit = emit
        self._won = won
        self._wake = wake
        self._batch = max(1, (config.concurrency + 1) // 2)
        self._tasks: dict[asyncio.Task[None], None] = {}  # an ordered set
        self.ids: set[str] = set()
        self._contended = False
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    @property
    def waiting(self) -> bool:
        """A claim is on its way and the next may not be read before it lands
        (`WorkerConfig.claim_ahead` off); its landing wakes the loop."""
        return bool(self.ids) and not self._config.claim_ahead

    async def claim(self, free: int) -> tuple[int, int]:
        """Claim up to half the slots' worth of due jobs in one write, without waiting for
        it; (how many were due, how many it asked for).

        The jobs of claims still on their way are still pending in the store: they are
        read past. Workers in other processes read the same head of the queue. After
        losing a race, a worker takes a random batch of the first `2 * batch` instead, in
        claim order, so that contending workers spread out rather than collide again.
        """
        now = self._clock()
        batch = min(free, self._batch)
        window = batch * 2 if self._contended else batch
        claiming = self.ids
        found = await self._store.claimable(now, self._config.queues, window + len(claiming))
        candidates = [job for job in found if jobs.id(job) not in claiming][:window]
        if len(candidates) > batch:
            candidates = sorted(self._rng.sample(candidates, batch), key=schedule.claim_key)
        moves, refused = step_each(candidates, lambda _: self._event, now)
        for job, refusal in refused:  # changed since it was read: someone else's now
            log.debug("claim refused", extra={"jobId": jobs.id(job), "code": refusal.code})
        if not moves:
            return len(candidates), 0
        write = self._store.compare_and_set_many([(version, job) for version, job, _ in moves])
        ids = [jobs.id(job) for _, job, _ in moves]
        claiming.update(ids)
        task = asyncio.create_task(self._claimed(moves, ids, write))
        self._tasks[task] = None
        task.add_done_callback(functools.partial(self._done, write))
        return len(candidates), len(moves)

    def _done(self, write: Awaitable[Sequence[bool]], task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if task.cancelled() and inspect.iscoroutine(write):
            write.close()  # cancelled before it began: the write was never sent

    async def _claimed(
        self, moves: Moves, ids: list[str], write: Awaitable[Sequence[bool]]
    ) -> None:
        """Hand the jobs a claim won to `won`, once its write lands."""
        try:
            won = await write
        except Exception as exc:
            # Whether it landed is unknown: jobs it did claim keep our lease until it runs
            # out, and the reaper gives them back. The loop raises it, as it would its own.
            self._error = exc
            return
        finally:
            self.ids.difference_update(ids)
            # Out of the claims on their way before the wake: the loop it wakes must not
            # see this claim still pending (its done callback comes later) and wait for it.
            task = asyncio.current_task()
            if task is not None:
                self._tasks.pop(task, None)
            self._wake()
        taken: list[jobs.Job] = []
        for (_, job, done), ok in zip(moves, won, strict=True):
            if ok:
                self._emit(done, job, None)
                taken.append(job)
        if taken and log.isEnabledFor(logging.DEBUG):
            for job in taken:
                log.debug(
                    "claimed",
                    extra={
                        "jobId": jobs.id(job),
                        "jobType": jobs.type_name(job),
                        "queue": jobs.queue(job),
                        "attempt": jobs.claim(job),
                        "workerId": self._event.worker,
                        "batch": len(moves),
                    },
                )
        self._contended = len(taken) < len(moves)
        if taken:
            await self._won(taken)

    def raise_error(self) -> None:
        """Raise the error of a claim write that failed, once."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    async def settle(self) -> None:
        """Wait for the claims on their way."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def reap(
    store: ports.JobStore,
    types: registry.Registry,
    clock: Clock,
    rng: random.Random,
    emit: Emit,
) -> int:
    """Give stalled jobs (expired leases) back to the retry policy, in one batch; returns
    how many it took."""
    now = clock()

    def expired(job: jobs.Job) -> events.Event:
        policy = registry.get(types, jobs.type_name(job)).retry
        return events.LeaseExpired(policy=policy, sample=rng.random())

    moves, _ = step_each(await store.stalled(now, 100), expired, now)
    return len(await write_moves(store, moves, emit))
