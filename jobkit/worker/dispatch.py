"""Push dispatch: the worker driven by requests instead of a loop. Each `dispatch()` (one
doorbell, a Cloud Tasks task on Cloud Run) claims the next due job in claim order, runs its
attempt to the end with the worker's own parts (`attempts`: timeouts, heartbeats, progress;
`writes`: the outcome), and says what happened; `sweep()` reaps expired leases and rings
again for due jobs that no doorbell waits for; `stop()` gives running attempts the grace
period, then releases them.

Who rings, and when: the store is the only truth, and a doorbell is a unit of capacity, one
per due job. Whoever makes a job due rings once for it, after the write: a submission or a
user's retry (the API, `Runtime.submit`), and here every write of the worker's own that
leaves a job pending — a retry after its backoff, a lease released at shutdown, a stalled
job reaped — rings at the job's `runAt` (`_ringing`, the one place those writes are seen).
A doorbell claims whichever job is first in claim order, not necessarily the one it was
rung for: doorbells are interchangeable, so it is their number that must match the jobs
due, which the sweep checks (`ports.QueuedRings`). A duplicate or stale ring finds nothing
due and costs one read.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Final, Literal

import attrs

from jobkit import events, jobs, machine, ports, registry, schedule
from jobkit.status import FAILED, PENDING
from jobkit.worker import claims
from jobkit.worker.attempts import Attempts
from jobkit.worker.config import (
    Attempt,
    Clock,
    Emit,
    Hook,
    PerformersFor,
    WorkerConfig,
    default_worker_id,
    emitter,
    log,
    utc_now,
)
from jobkit.worker.writes import Writes

CLAIM_ROUNDS: Final = 4  # reads of the queue's head one dispatch makes while it loses races
SWEEP_LIMIT: Final = 1000  # rings one sweep adds at most; the next sweep goes on
# A doorbell due this soon after the sweep's look counts as waiting: rings are scheduled a
# little after their job's runAt (`jobkit_gcp.tasks.MARGIN_SECONDS`).
SWEEP_HORIZON: Final = timedelta(seconds=2)

Result = Literal["idle", "busy", "stopping", "completed", "failed", "retrying", "released", "lost"]


@attrs.frozen(kw_only=True)
class Outcome:
    """What one dispatch did.

    `result`: `idle` (nothing due: a duplicate or stale doorbell), `busy` (this instance
    runs all the attempts it may, or every due job it tried was taken by another dispatch
    first: its doorbell should come again), `stopping`
    (this process is shutting down and takes nothing), `completed`, `failed`, `retrying`
    (failed; pending again, due at its backoff), `released` (given back unfinished at a
    shutdown, due now), `lost` (its lease went to another worker), or None when the
    outcome could not be written (the lease runs out; the sweep reaps it).
    """

    result: Result | None
    job_id: str | None = None
    attempt: int | None = None

    @property
    def again(self) -> bool:
        """Whether the doorbell should be delivered again (Cloud Tasks: a non-2xx answer)."""
        return self.result in ("busy", "stopping", "released", None)


@attrs.frozen(kw_only=True)
class Sweep:
    """What one sweep did: leases reaped, jobs due, doorbells waiting, rings added."""

    reaped: int
    due: int
    waiting: int
    rung: int


class Dispatcher:
    """Runs one due job per `dispatch()`, to the end, with the performers
    `performers_for(attempt)` builds; many dispatches may run at once (one per request), up
    to `config.concurrency` attempts: a dispatch beyond it answers `busy` at once, so that
    the doorbell goes to another instance (the API's requests share Cloud Run's
    per-instance concurrency with the jobs).

    State it owns: the dispatches waiting for a claim (those that arrive together share one
    read and one write, so that concurrent dispatches in one process do not race each other
    for the head of the queue) and the task claiming for them, the dispatches waiting for
    their attempts by job id, the heartbeat task, and whether it is stopping. The running
    attempts are its `Attempts`', the final writes its `Writes`'.
    """

    def __init__(
        self,
        *,
        store: ports.JobStore,
        types: registry.Registry,
        performers_for: PerformersFor,
        doorbell: ports.Doorbell,
        config: WorkerConfig | None = None,
        worker_id: str | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        on_effect: Hook | None = None,
    ) -> None:
        self.store = store
        self.types = types
        self.doorbell = doorbell
        self.config = config = config or WorkerConfig()
        self.id = worker_id = worker_id or default_worker_id()
        self._clock = clock
        self._rng = rng = rng or random.Random()
        self._emit = self._ringing(emitter(on_effect, worker_id))
        self._event = events.Claimed(worker=worker_id, lease_seconds=config.lease_seconds)
        self._writes = Writes(
            store=store, worker_id=worker_id, clock=clock, emit=self._emit, settled=self._settled
        )
        self._attempts = Attempts(
            types=types,
            config=config,
            worker_id=worker_id,
            rng=rng,
            performers_for=performers_for,
            writes=self._writes,
            wake=self._check,
        )
        self._wanting: list[asyncio.Future[tuple[jobs.Job | None, bool]]] = []
        self._claimer: asyncio.Task[None] | None = None
        self._claiming = 0  # dispatches waiting for a claim
        self._waiting: dict[str, tuple[Attempt | None, asyncio.Future[None]]] = {}
        self._heartbeats: asyncio.Task[None] | None = None
        self._stopping = False
        self._stopped: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        return len(self._attempts.running)

    @property
    def finished(self) -> int:
        """Attempts finished (succeeded or failed) here since it was made."""
        return self._writes.finished

    @property
    def concurrency(self) -> int:
        return self.config.concurrency

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- one doorbell --------------------------------------------------------------------

    async def dispatch(self) -> Outcome:
        """Claim the next due job and run its attempt to the end: its outcome written, or
        its lease released if `stop()` comes first and the grace period runs out."""
        if self._stopping:
            return Outcome(result="stopping")
        if self.running + self._claiming >= self.config.concurrency:
            return Outcome(result="busy")  # this instance is full: Cloud Tasks tries again
        claimed, busy = await self._claim()
        if claimed is None:
            return Outcome(result="busy" if busy else "idle")
        job_id = jobs.id(claimed)
        done = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = (None, done)
        self._start_heartbeats()
        ran: Attempt | None = None
        try:
            if self._stopping:  # stopped while claiming: give it back untouched
                await self._attempts.hand_back(claimed)
            else:
                self._attempts.start(claimed)
                attempt = self._attempts.running.get(job_id)
                if attempt is not None:
                    self._waiting[job_id] = (attempt, done)
                    ran = attempt
                    self._check()
                    await asyncio.shield(done)
        finally:
            self._waiting.pop(job_id, None)
        if self._stopped is not None:  # its release, if any, is written once this is done
            await asyncio.shield(self._stopped)
        return await self._outcome(job_id, jobs.claim(claimed), ran)

    async def _claim(self) -> tuple[jobs.Job | None, bool]:
        """The job claimed for this dispatch, or None, and whether due jobs were there but
        all taken by others. Dispatches that arrive together share one claim: one read of
        the queue's head and one write for all of them (`_claims`)."""
        wanted: asyncio.Future[tuple[jobs.Job | None, bool]]
        wanted = asyncio.get_running_loop().create_future()
        self._wanting.append(wanted)
        self._claiming += 1
        if self._claimer is None or self._claimer.done():
            self._claimer = asyncio.create_task(self._claims(), name=f"{self.id}:claims")
        try:
            return await wanted
        finally:
            self._claiming -= 1

    async def _claims(self) -> None:
        """Claim for the dispatches waiting, batch after batch, until none waits: those that
        arrive while a batch is on its way go in the next one, as a group commit."""
        while self._wanting:
            batch, self._wanting = self._wanting, []
            try:
                taken, contended = await self._claim_batch(len(batch))
            except Exception as exc:  # the store failed: each dispatch raises it
                for wanted in batch:
                    if not wanted.done():
                        wanted.set_exception(exc)
                continue
            for n, wanted in enumerate(batch):
                if not wanted.done():
                    wanted.set_result((taken[n], False) if n < len(taken) else (None, contended))

    async def _claim_batch(self, wanted: int) -> tuple[list[jobs.Job], bool]:
        """Up to `wanted` jobs claimed in claim order, and whether due jobs were lost to
        others. The first look takes the head of the queue; after a lost race, a random
        sample of the first few, so that instances racing for the head spread out rather
        than collide again (as the pull worker's claims do)."""
        won: list[jobs.Job] = []
        contended = False
        for _ in range(CLAIM_ROUNDS):
            need = wanted - len(won)
            now = self._clock()
            window = need * 2 if contended else need
            found = await self.store.claimable(now, self.config.queues, window)
            if not found:
                break
            candidates = list(found)
            if len(candidates) > need:
                candidates = sorted(self._rng.sample(candidates, need), key=schedule.claim_key)
            moves, refused = claims.step_each(candidates, lambda _: self._event, now)
            landed = await claims.write_moves(self.store, moves, self._emit)
            won += landed
            # Refused or lost: changed since it was read, someone else's now.
            contended = contended or bool(refused) or len(landed) < len(moves)
            if len(won) == wanted or not contended:
                break
        return won, contended

    def _check(self) -> None:
        """An attempt was forgotten (its last write settled): wake the dispatches whose
        attempt it was."""
        running = self._attempts.running
        for job_id, (attempt, done) in self._waiting.items():
            if attempt is not None and running.get(job_id) is not attempt and not done.done():
                done.set_result(None)

    def _settled(self, attempt: Attempt) -> None:
        self._attempts.forget(attempt)

    async def _outcome(self, job_id: str, claim: int, attempt: Attempt | None) -> Outcome:
        """What became of the attempt: its history entry says how it ended, in the version
        it last wrote, or, when its lease went to another worker (or it was handed back
        before it started), as the store has it now."""
        known = attempt is not None and not attempt.lost
        job = attempt.job if attempt is not None and known else await self.store.get(job_id)
        if job is None:  # deleted since: it had finished, and its owner purged it
            return Outcome(result="completed", job_id=job_id, attempt=claim)
        history = jobs.history(job)
        ended = jobs.entry_outcome(history[claim - 1]) if len(history) >= claim else None
        latest = len(history) == claim
        result: Result | None
        if ended == jobs.SUCCEEDED:
            result = "completed"
        elif ended == jobs.FAILED:
            result = "failed" if latest and jobs.status_or_none(job) == FAILED else "retrying"
        elif ended == jobs.DEFERRED:  # its service's breaker was open: due again later
            result = "retrying"
        elif ended == jobs.RELEASED:
            result = "released"
        elif ended is None and latest and jobs.lease_owner(job) == self.id:
            result = None  # still ours and running: the outcome's write failed
        else:  # stalled (reaped) or taken over: the lease went to another worker
            result = "lost"
        return Outcome(result=result, job_id=job_id, attempt=claim)

    def _start_heartbeats(self) -> None:
        if self._heartbeats is None or self._heartbeats.done():
            self._heartbeats = asyncio.create_task(
                self._attempts.heartbeats(), name=f"{self.id}:heartbeat"
            )

    # -- what makes jobs due -------------------------------------------------------------

    def _ringing(self, emit: Emit) -> Emit:
        """`emit`, and a ring at its `runAt` for every job a write leaves pending: the
        worker's writes that make a job due again (a retry's backoff, a release, a reap)
        all pass here, whatever part wrote them."""
        doorbell = self.doorbell

        def ringing(done: machine.Effects, job: jobs.Job, attempt: Attempt | None) -> None:
            emit(done, job, attempt)
            if jobs.status_or_none(job) == PENDING:
                doorbell.ring(jobs.run_at(job))

        return ringing

    async def sweep(self) -> Sweep:
        """Reap expired leases (each job reaped rings for itself), then ring once for every
        due job beyond the doorbells waiting in the doorbell's queue, up to `SWEEP_LIMIT`:
        so a lost doorbell never strands a job. A doorbell that cannot count what waits
        (`ports.QueuedRings`) counts as having none waiting."""
        now = self._clock()
        reaped = []

        def note(done: machine.Effects, job: jobs.Job, attempt: Attempt | None) -> None:
            self._emit(done, job, attempt)
            reaped.append(job)

        await claims.reap(self.store, self.types, self._clock, self._rng, note)
        now = self._clock()
        # The reaped jobs due now were rung just above: their rings may not be queued yet.
        fresh = sum(
            1 for job in reaped if jobs.status_or_none(job) == PENDING and jobs.run_at(job) <= now
        )
        due = await self.store.count_due(now, self.config.queues, SWEEP_LIMIT + fresh)
        waiting = 0
        if isinstance(self.doorbell, ports.QueuedRings):
            waiting = await self.doorbell.waiting(now + SWEEP_HORIZON)
        missing = max(0, min(SWEEP_LIMIT, due - waiting - fresh))
        for _ in range(missing):
            self.doorbell.ring(None)
        if missing or reaped:
            log.info(
                "sweep: %d leases reaped, %d rings added",
                len(reaped),
                missing,
                extra={"reaped": len(reaped), "due": due, "waiting": waiting, "rung": missing},
            )
        return Sweep(reaped=len(reaped), due=due, waiting=waiting, rung=missing)

    # -- shutting down -------------------------------------------------------------------

    def stop(self) -> None:
        """Take nothing more; running attempts get the grace period, then their leases are
        released (each release rings, so another instance takes the job at once). The
        dispatches waiting for them then answer. Idempotent; `close()` waits for it."""
        if self._stopping:
            return
        self._stopping = True
        log.info("dispatch stopping", extra={"workerId": self.id, "running": self.running})
        self._stopped = asyncio.ensure_future(self._shutdown())

    async def _shutdown(self) -> None:
        released = await self._attempts.stop()
        await self._writes.flush()
        if released:
            log.info("released %d unfinished attempts", released, extra={"released": released})

    async def close(self) -> None:
        """Stop (if not yet), wait for the releases, and end the heartbeats."""
        self.stop()
        assert self._stopped is not None
        await self._stopped
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            await asyncio.gather(self._heartbeats, return_exceptions=True)
