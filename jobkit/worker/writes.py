"""Writing a running attempt's events: one at a time through the attempt's lock
(heartbeats, progress, a release), or, for an attempt that finished, queued in the outbox
and written with the others that finished in the same turn, in one compare-and-set."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from returns.result import Failure, Success

from jobkit import errors, events, jobs, machine, ports
from jobkit.worker.config import FINAL, Attempt, Clock, Emit, log

Queued = tuple[Attempt, jobs.Job, machine.Effects, events.Event]


class Writes:
    """Every write of a running attempt, and the count of attempts that finished.

    State it owns: the outbox (finished attempts whose final write is queued for the next
    batch), the task that sends it, the batches on their way, how many attempts only wait
    for such a write (`closing`: they hold no slot), and `finished`. When a final write is
    settled, `settled(attempt)` tells the worker, which stops tracking the attempt.
    """

    def __init__(
        self,
        *,
        store: ports.JobStore,
        worker_id: str,
        clock: Clock,
        emit: Emit,
        settled: Callable[[Attempt], None],
    ) -> None:
        self._store = store
        self._worker_id = worker_id
        self._clock = clock
        self._emit = emit
        self._settled = settled
        self._outbox: list[Queued] = []
        self._sender: asyncio.Task[None] | None = None
        self._sending: dict[asyncio.Task[None], None] = {}  # an ordered set
        self.closing = 0
        self.finished = 0

    def finish(self, attempt: Attempt, event: events.Event) -> bool:
        """Step the attempt's final event and queue its write for the next batch; False
        when there is nothing to write (the lease is gone), and the caller drops it.

        No other write of the attempt may be in flight. The attempt counts as closed from
        here on (a heartbeat now would be refused anyway) and frees its slot; the batch
        settles it, and only then is it forgotten, so a drain and a shutdown wait for it.
        """
        if attempt.lost or attempt.closed:
            return False
        match machine.step(attempt.job, event, self._clock()):
            case Success((job, done)):
                attempt.closed = True
                self._outbox.append((attempt, job, done, event))
                self.closing += 1
                if self._sender is None:  # the first this turn: it writes them all, next turn
                    self._sender = sender = asyncio.create_task(self._write_out())
                    self._sending[sender] = None
                    sender.add_done_callback(self._sending.pop)
                return True
            case Failure(refusal):
                self.lose(attempt, event, refusal.code)
                return False
            case _:
                raise errors.JobkitError("machine.step returned a non-Result")

    async def _write_out(self) -> None:
        """Write the finished attempts queued since the last batch, in one compare-and-set."""
        batch, self._outbox = self._outbox, []
        self._sender = None  # attempts finishing from now on go into the next batch
        writes = [(jobs.version(attempt.job), job) for attempt, job, _, _ in batch]
        try:
            won: list[bool | None] = list(await self._store.compare_and_set_many(writes))
        except Exception:
            # Whether they landed is unknown: those that did not keep their leases until
            # these run out, and the reaper then gives the jobs back to the retry policy.
            log.exception("writing finished attempts failed", extra={"count": len(batch)})
            won = [None] * len(batch)
        finally:
            self.closing -= len(batch)
        for (attempt, job, done, event), ok in zip(batch, won, strict=True):
            if ok:
                attempt.job = job
                self.finished += 1
                self._emit(done, job, attempt)
            elif ok is False:
                self.lose(attempt, event, "version_conflict")
            self._settled(attempt)

    async def flush(self) -> None:
        """Wait until every queued final write is written (or has failed)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def advance(self, attempt: Attempt, event: events.Event) -> bool:
        """Step the attempt's job and compare-and-set it; False when the lease is gone.
        One write of an attempt at a time: its lock orders heartbeats, progress and the end.
        A write that fails raises, and the attempt's copy stays as it was."""
        async with attempt.lock:
            if attempt.lost or attempt.closed:
                return False
            match machine.step(attempt.job, event, self._clock()):
                case Success((job, done)):
                    write = asyncio.ensure_future(
                        self._store.compare_and_set(jobs.version(attempt.job), job)
                    )
                    try:
                        ok = await asyncio.shield(write)
                    except asyncio.CancelledError:
                        ok = await write  # keep our copy true to the store, then stop
                        self._settle(attempt, job, done, ok, event)
                        raise
                    return self._settle(attempt, job, done, ok, event)
                case Failure(refusal):
                    self.lose(attempt, event, refusal.code)
                    return False
                case _:
                    raise errors.JobkitError("machine.step returned a non-Result")

    async def release(self, attempt: Attempt) -> None:
        """Hand the attempt's job back at once (shutting down); a write that fails is
        logged, and the lease then runs out instead."""
        try:
            await self.advance(
                attempt, events.LeaseReleased(worker=self._worker_id, claim=attempt.claim)
            )
        except Exception:
            log.exception("releasing a lease failed", extra={"jobId": jobs.id(attempt.job)})

    def _settle(
        self,
        attempt: Attempt,
        job: jobs.Job,
        done: machine.Effects,
        ok: bool,
        event: events.Event,
    ) -> bool:
        if ok:
            attempt.job = job
            final = isinstance(event, FINAL)
            attempt.closed = final
            if final and not isinstance(event, events.LeaseReleased):
                self.finished += 1
            self._emit(done, job, attempt)
        else:
            self.lose(attempt, event, "version_conflict")
        return ok

    def lose(self, attempt: Attempt, event: events.Event, code: str) -> None:
        """The lease is gone: the job is someone else's now, and what this attempt meant
        to write is dropped (a crash's stack goes with the warning, so it is not lost)."""
        attempt.lost = True
        crash = None if attempt.failure is None else attempt.failure.exception
        log.warning(
            "lease lost: another worker owns the job now; %s not written",
            event.kind,
            extra={
                "jobId": jobs.id(attempt.job),
                "jobType": jobs.type_name(attempt.job),
                "queue": jobs.queue(attempt.job),
                "attempt": attempt.claim,
                "workerId": self._worker_id,
                "event": event.kind,
                "code": code,
            },
            exc_info=crash,
        )
