"""The async worker: claims due jobs, runs their pipelines, and records every outcome through
the machine, with heartbeats, timeouts, stall reaping and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from returns.result import Failure, Success

from jobkit import (
    effects,
    errors,
    events,
    instants,
    jobs,
    machine,
    pipeline,
    ports,
    registry,
    schedule,
)
from jobkit.worker.interpreter import Performers, interpret

log = logging.getLogger("jobkit.worker")

Clock = Callable[[], datetime]
Hook = Callable[[effects.MachineEffect, jobs.Job], None]


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@attrs.frozen(kw_only=True)
class WorkerConfig:
    """How one worker process runs jobs. Defaults fit Cloud Run (10 s to shut down)."""

    concurrency: int = 8
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    idle_seconds: float = 0.25  # longest idle sleep without a doorbell: others may submit work
    poll_seconds: float = 5.0  # longest idle sleep with one: a safety net for lost rings
    reap_seconds: float = 5.0
    grace_seconds: float = 8.0
    progress_seconds: float = 0.5  # at most one progress write per job this often
    queues: frozenset[str] | None = None

    def __attrs_post_init__(self) -> None:
        if self.concurrency < 1:
            raise errors.ConfigurationError("concurrency must be >= 1")
        if not 0 < self.heartbeat_seconds < self.lease_seconds:
            raise errors.ConfigurationError("heartbeat_seconds must be within (0, lease_seconds)")
        if not (self.idle_seconds > 0 and self.poll_seconds > 0):
            raise errors.ConfigurationError("idle_seconds and poll_seconds must be > 0")


@attrs.define
class Attempt:
    """One running attempt, as the worker tracks it; `job` is the latest version it wrote."""

    job: jobs.Job
    claim: int
    lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    report: ports.Progress | None = None  # progress of this attempt, for performers
    lost: bool = False
    closed: bool = False  # its final event (succeeded, failed, released) is written
    last_progress: float = float("-inf")  # monotonic time may start near 0: report the first


PerformersFor = Callable[[Attempt], Performers]


_FINAL = (events.AttemptSucceeded, events.AttemptFailed, events.LeaseReleased)
# An idle worker wakes this long after the next due time: a timer may fire a little early,
# and a look at the store just before the due time finds nothing and sleeps again.
_PAST_DUE = 0.0005
_RETRY_DUE = 0.01  # and this long after a due time already past (a stall awaiting the reaper)


class Worker:
    """Runs jobs from `store` with the performers `performers_for(attempt)` builds per attempt.

    `run()` works until `stop()`; `drain()` runs until nothing is due (burst mode).

    With a `doorbell` (`ports.Doorbell`), an idle worker listens for rings: it looks for
    work when one comes, at the next due time, and otherwise every `poll_seconds`. Without
    one, it looks every `idle_seconds` at least.
    """

    def __init__(
        self,
        *,
        store: ports.JobStore,
        types: registry.Registry,
        performers_for: PerformersFor,
        config: WorkerConfig | None = None,
        worker_id: str | None = None,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        on_effect: Hook | None = None,
        doorbell: ports.Doorbell | None = None,
    ) -> None:
        self.store = store
        self.types = types
        self.config = config or WorkerConfig()
        self.id = worker_id or default_worker_id()
        self._performers_for = performers_for
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_effect = on_effect
        self._running: dict[str, Attempt] = {}
        self._wake = asyncio.Event()
        self._doorbell = doorbell
        self._listener: ports.Listener | None = None
        self._stopping = False
        self._contended = False
        # Finished attempts whose final write is queued or being written (`_finish`).
        self._outbox: list[tuple[Attempt, jobs.Job, machine.Effects, events.Event]] = []
        self._sender: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._closing = 0  # attempts in `_running` that only wait for that write
        # Claims whose compare-and-set is on its way (`_claim`), and the jobs they name.
        self._claims: set[asyncio.Task[None]] = set()
        self._claiming: set[str] = set()
        self._claim_error: BaseException | None = None
        # Half the slots per claim: while one claim's write is on its way, the next can
        # be read and stepped, so the loop does not sit idle waiting for each commit.
        self._batch = max(1, (self.config.concurrency + 1) // 2)
        self.finished = 0

    # -- control ------------------------------------------------------------

    def wake(self) -> None:
        """Work may be due: look for it now instead of after the idle sleep (a doorbell's
        listener calls this on each ring)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop claiming; `run()` then lets running jobs finish within the grace period."""
        self._stopping = True
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

    def _free(self) -> int:
        """Slots for new attempts. A claim on its way holds one per job it names; an
        attempt whose final write is on its way needs none, so the next claim can share
        that write's transaction."""
        return self.config.concurrency - len(self._running) - len(self._claiming) + self._closing

    async def run(self) -> None:
        await self._listen()
        heartbeats = asyncio.create_task(self._heartbeat_loop(), name=f"{self.id}:heartbeat")
        next_reap = 0.0
        try:
            while not self._stopping:
                if time.monotonic() >= next_reap:
                    await self._reap()
                    next_reap = time.monotonic() + self.config.reap_seconds
                self._raise_claim_error()
                free = self._free()
                due, started = await self._claim(free) if free > 0 else (0, 0)
                if started or due:
                    await asyncio.sleep(0)  # more may be due, or lost races to retry at once
                    continue
                await self._idle(free > 0)
        finally:
            await self._shutdown()
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
            await self._unlisten()
            # Cleared on the way out, not on entry, so that a stop() made before run() got
            # going is not lost; the worker may run (or drain) again afterwards.
            self._stopping = False

    async def drain(self) -> int:
        """Burst mode: run every due job (and the retries that fall due meanwhile), then return
        how many attempts finished. Jobs scheduled later stay pending. `stop()` ends it early,
        with the same grace period as `run()`."""
        finished = self.finished
        await self._listen()
        heartbeats = asyncio.create_task(self._heartbeat_loop(), name=f"{self.id}:heartbeat")
        next_reap = 0.0
        try:
            while True:
                if time.monotonic() >= next_reap:
                    await self._reap()
                    next_reap = time.monotonic() + self.config.reap_seconds
                self._raise_claim_error()
                free = self._free()
                due, started = (
                    await self._claim(free) if free > 0 and not self._stopping else (0, 0)
                )
                busy = self._running or self._claims
                if not due and not busy and not await self._reap():
                    return self.finished - finished  # nothing due, nothing running: done
                if self._stopping:
                    await self._shutdown()
                    return self.finished - finished
                if due and not started:
                    await asyncio.sleep(0)  # lost every race: other workers took them; again
                elif not started:
                    await self._idle(False)
        finally:
            if self._running or self._claims:  # cancelled or crashed mid-drain: hand back
                await self._shutdown()
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
            await self._unlisten()
            self._stopping = False

    # -- the loop's parts --------------------------------------------------------

    async def _listen(self) -> None:
        """Listen to the doorbell, if any, before the first look at the store: a ring
        made after that look is then heard."""
        if self._doorbell is None or self._listener is not None:
            return
        try:
            self._listener = await self._doorbell.listen(self.wake)
        except OSError as exc:
            log.warning(
                "cannot listen for wake-ups; looking for work every idle_seconds instead",
                extra={"error": str(exc)},
            )

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def _idle(self, nothing_due: bool) -> None:
        """Sleep until woken (work in this process, a ring, a slot freed), until the next
        due time when nothing is due, or for the longest idle sleep: `poll_seconds` when
        nothing is due and the doorbell is heard, else `idle_seconds` (waiting for this
        worker's own work in flight, which wakes it)."""
        listening = self._listener is not None and nothing_due
        timeout = self.config.poll_seconds if listening else self.config.idle_seconds
        if nothing_due:
            upcoming = await self.store.next_wakeup(self.config.queues)
            if upcoming is not None:
                until = instants.seconds_between(self._clock(), upcoming)
                timeout = min(timeout, until + _PAST_DUE if until > 0 else _RETRY_DUE)
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    async def _claim(self, free: int) -> tuple[int, int]:
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
        claiming = self._claiming
        found = await self.store.claimable(now, self.config.queues, window + len(claiming))
        candidates = [job for job in found if jobs.id(job) not in claiming][:window]
        if len(candidates) > batch:
            candidates = sorted(self._rng.sample(candidates, batch), key=schedule.claim_key)
        claim = events.Claimed(worker=self.id, lease_seconds=self.config.lease_seconds)
        moves: list[tuple[int, jobs.Job, machine.Effects]] = []
        for job in candidates:
            match machine.step(job, claim, now):
                case Success((claimed, done)):
                    moves.append((jobs.version(job), claimed, done))
                case Failure(refusal):  # changed since it was read: someone else's now
                    log.debug("claim refused", extra={"jobId": jobs.id(job), "code": refusal.code})
        if not moves:
            return len(candidates), 0
        write = self.store.compare_and_set_many([(version, job) for version, job, _ in moves])
        ids = [jobs.id(job) for _, job, _ in moves]
        claiming.update(ids)
        task = asyncio.create_task(self._claimed(moves, ids, write))
        self._claims.add(task)
        task.add_done_callback(self._claims.discard)
        return len(candidates), len(moves)

    async def _claimed(
        self,
        moves: list[tuple[int, jobs.Job, machine.Effects]],
        ids: list[str],
        write: Awaitable[Sequence[bool]],
    ) -> None:
        """Start the jobs a claim won, once its write lands (release them when stopping)."""
        try:
            won = await write
        except Exception as exc:
            # Whether it landed is unknown: jobs it did claim keep our lease until it runs
            # out, and the reaper gives them back. The loop raises it, as it would its own.
            self._claim_error = exc
            return
        finally:
            self._claiming.difference_update(ids)
            # Out of `_claims` before the wake: the loop it wakes must not see this claim
            # still on its way (its done callback comes later) and wait for it.
            task = asyncio.current_task()
            if task is not None:
                self._claims.discard(task)
            self._wake.set()
        started = 0
        unwanted: list[Attempt] = []
        for (_, job, done), ok in zip(moves, won, strict=True):
            if ok:
                self._emit(done, job)
                started += 1
                if self._stopping:
                    unwanted.append(self._track(job))
                else:
                    self._start(job)
        self._contended = started < len(moves)
        for attempt in unwanted:  # stopping: hand it back at once, untouched
            await self._advance(attempt, events.LeaseReleased(worker=self.id, claim=attempt.claim))
            self._running.pop(jobs.id(attempt.job), None)

    def _raise_claim_error(self) -> None:
        if self._claim_error is not None:
            error, self._claim_error = self._claim_error, None
            raise error

    def _track(self, job: jobs.Job) -> Attempt:
        attempt = Attempt(job=job, claim=jobs.claim(job))
        self._running[jobs.id(job)] = attempt
        return attempt

    def _start(self, job: jobs.Job) -> None:
        """Run the attempt's pipeline up to its first effect here; only an attempt that has
        an effect to wait for gets a task. One that asks for nothing is finished at once."""
        attempt = self._track(job)
        job_id = jobs.id(job)
        job_type = registry.get(self.types, jobs.type_name(job))
        deadline = asyncio.get_running_loop().time() + job_type.timeout_seconds
        try:
            run = job_type.pipeline(job, attempt.claim)
            first = next(run)
        except StopIteration as stop:  # done without an effect
            event = self._outcome(attempt, job_type, stop.value)
        except Exception as exc:  # a bug in the pipeline: record it, keep working
            event = self._crashed(attempt, job_type, exc)
        else:
            attempt.task = asyncio.create_task(
                self._attempt(attempt, job_type, run, first, deadline), name=f"job:{job_id}"
            )
            return
        if not self._finish(attempt, event):
            self._running.pop(job_id, None)

    async def _attempt(
        self,
        attempt: Attempt,
        job_type: registry.JobType,
        run: pipeline.Pipeline,
        first: effects.PipelineEffect,
        deadline: float,
    ) -> None:
        queued = False
        try:
            event = await self._execute(attempt, job_type, run, first, deadline)
            if attempt.lock.locked():  # a heartbeat or progress report is being written
                await self._advance(attempt, event)  # waits for it, then writes alone
            else:
                queued = self._finish(attempt, event)
        except asyncio.CancelledError:
            if not attempt.lost:
                raise  # shutdown: `_shutdown` releases the lease
        finally:
            # Unless its write is queued (which removes it once written): `_shutdown` keeps
            # its own list of the attempts it cancels, and an attempt left here would keep
            # `drain()` waiting for it forever.
            if not queued:
                self._running.pop(jobs.id(attempt.job), None)
                self._wake.set()

    async def _execute(
        self,
        attempt: Attempt,
        job_type: registry.JobType,
        run: pipeline.Pipeline,
        first: effects.PipelineEffect,
        deadline: float,
    ) -> events.Event:
        async def report(current: int, total: int, message: str) -> None:
            effect = effects.ReportProgress(current=current, total=total, message=message)
            await self._progress(attempt, effect)

        attempt.report = report
        performers: dict[type, Any] = dict(self._performers_for(attempt))
        performers[effects.ReportProgress] = lambda effect: self._progress(attempt, effect)
        try:
            # The timeout counts from the attempt's start; it is armed at the first effect,
            # since nothing before it waited.
            async with asyncio.timeout_at(deadline):
                outcome = await interpret(run, performers, first)
        except TimeoutError:
            limit = job_type.timeout_seconds
            outcome = Failure(errors.transient("timeout", f"the job ran longer than {limit:g} s"))
        except Exception as exc:  # a bug in a performer or pipeline: record it, keep working
            return self._crashed(attempt, job_type, exc)
        return self._outcome(attempt, job_type, outcome)

    def _outcome(self, attempt: Attempt, job_type: registry.JobType, outcome: Any) -> events.Event:
        match outcome:
            case Success(completion):
                return events.AttemptSucceeded(
                    worker=self.id,
                    claim=attempt.claim,
                    result=completion.result,
                    result_url=completion.result_url,
                )
            case Failure(err):
                return self._failed(attempt, job_type, err)
            case _:
                problem = errors.JobkitError(f"pipeline returned {outcome!r}, not a Result")
                return self._crashed(attempt, job_type, problem)

    def _crashed(
        self, attempt: Attempt, job_type: registry.JobType, exc: Exception
    ) -> events.Event:
        log.error(
            "attempt crashed",
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"jobId": jobs.id(attempt.job)},
        )
        err = errors.error(
            "internal",
            f"{type(exc).__name__}: {exc}",
            retryable=True,
            context={"exception": type(exc).__name__},
        )
        return self._failed(attempt, job_type, err)

    def _failed(
        self, attempt: Attempt, job_type: registry.JobType, err: errors.Error
    ) -> events.Event:
        return events.AttemptFailed(
            worker=self.id,
            claim=attempt.claim,
            error=err,
            policy=job_type.retry,
            sample=self._rng.random(),
        )

    async def _progress(self, attempt: Attempt, effect: effects.ReportProgress) -> Success[None]:
        now = time.monotonic()
        final = effect.current >= effect.total
        if final or now - attempt.last_progress >= self.config.progress_seconds:
            attempt.last_progress = now
            event = events.ProgressReported(
                worker=self.id,
                claim=attempt.claim,
                current=effect.current,
                total=effect.total,
                message=effect.message,
            )
            await self._advance(attempt, event)
        return Success(None)

    # -- writes ------------------------------------------------------------------

    def _finish(self, attempt: Attempt, event: events.Event) -> bool:
        """Step the attempt's final event and queue its write for the next batch; False
        when there is nothing to write (the lease is gone), and the caller drops it.

        No other write of the attempt may be in flight. The attempt counts as closed from
        here on (a heartbeat now would be refused anyway) and frees its slot; `_write_out`
        settles it, and only then takes it out of `_running`, so `drain()` and
        `_shutdown()` wait for the write.
        """
        if attempt.lost or attempt.closed:
            return False
        match machine.step(attempt.job, event, self._clock()):
            case Success((job, done)):
                attempt.closed = True
                self._outbox.append((attempt, job, done, event))
                self._closing += 1
                if self._sender is None:  # the first this turn: it writes them all, next turn
                    self._sender = sender = asyncio.create_task(self._write_out())
                    self._sending.add(sender)
                    sender.add_done_callback(self._sending.discard)
                return True
            case Failure(refusal):
                self._lose(attempt, event, refusal.code)
                return False
            case _:
                raise errors.JobkitError("machine.step returned a non-Result")

    async def _write_out(self) -> None:
        """Write the finished attempts queued since the last batch, in one compare-and-set."""
        batch, self._outbox = self._outbox, []
        self._sender = None  # attempts finishing from now on go into the next batch
        writes = [(jobs.version(attempt.job), job) for attempt, job, _, _ in batch]
        try:
            won: list[bool | None] = list(await self.store.compare_and_set_many(writes))
        except Exception:
            # Whether they landed is unknown: those that did not keep their leases until
            # these run out, and the reaper then gives the jobs back to the retry policy.
            log.exception("writing finished attempts failed", extra={"count": len(batch)})
            won = [None] * len(batch)
        finally:
            self._closing -= len(batch)
        for (attempt, job, done, event), ok in zip(batch, won, strict=True):
            if ok:
                attempt.job = job
                self.finished += 1
                self._emit(done, job)
            elif ok is False:
                self._lose(attempt, event, "version_conflict")
            self._running.pop(jobs.id(job), None)
        self._wake.set()

    async def _advance(self, attempt: Attempt, event: events.Event) -> bool:
        """Step the attempt's job and compare-and-set it; False when the lease is gone.
        One write of an attempt at a time: its lock orders heartbeats, progress and the end."""
        async with attempt.lock:
            if attempt.lost or attempt.closed:
                return False
            now = self._clock()
            match machine.step(attempt.job, event, now):
                case Success((job, done)):
                    write = asyncio.ensure_future(
                        self.store.compare_and_set(jobs.version(attempt.job), job)
                    )
                    try:
                        ok = await asyncio.shield(write)
                    except asyncio.CancelledError:
                        ok = await write  # keep our copy true to the store, then stop
                        self._settle(attempt, job, done, ok, event)
                        raise
                    return self._settle(attempt, job, done, ok, event)
                case Failure(refusal):
                    self._lose(attempt, event, refusal.code)
                    return False
                case _:
                    raise errors.JobkitError("machine.step returned a non-Result")

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
            final = isinstance(event, _FINAL)
            attempt.closed = final
            if final and not isinstance(event, events.LeaseReleased):
                self.finished += 1
            self._emit(done, job)
        else:
            self._lose(attempt, event, "version_conflict")
        return ok

    def _lose(self, attempt: Attempt, event: events.Event, code: str) -> None:
        attempt.lost = True
        log.warning(
            "lease lost: another worker owns the job now",
            extra={"jobId": jobs.id(attempt.job), "event": event.kind, "code": code},
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            beats = [
                self._beat(attempt)
                for attempt in list(self._running.values())
                if not (attempt.lost or attempt.closed)
            ]
            await asyncio.gather(*beats)

    async def _beat(self, attempt: Attempt) -> None:
        event = events.Heartbeat(
            worker=self.id, claim=attempt.claim, lease_seconds=self.config.lease_seconds
        )
        if not await self._advance(attempt, event) and attempt.task is not None:
            attempt.task.cancel()  # the work is someone else's now; stop spending on it

    async def _reap(self) -> int:
        """Give stalled jobs (expired leases) back to the retry policy, in one batch; returns
        how many it took."""
        now = self._clock()
        moves: list[tuple[int, jobs.Job, machine.Effects]] = []
        for job in await self.store.stalled(now, 100):
            policy = registry.get(self.types, jobs.type_name(job)).retry
            expired = events.LeaseExpired(policy=policy, sample=self._rng.random())
            match machine.step(job, expired, now):
                case Success((stalled, done)):
                    moves.append((jobs.version(job), stalled, done))
                case Failure(_):
                    pass
        taken = 0
        if moves:
            won = await self.store.compare_and_set_many([(v, job) for v, job, _ in moves])
            for (_, job, done), ok in zip(moves, won, strict=True):
                if ok:
                    self._emit(done, job)
                    taken += 1
        return taken

    async def _shutdown(self) -> None:
        """Let running jobs finish within the grace period, then release the rest's leases."""
        self._stopping = True
        while self._claims:  # claims on their way: what they win is released, not started
            await asyncio.gather(*self._claims, return_exceptions=True)
        tasks = [a.task for a in self._running.values() if a.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=self.config.grace_seconds)
        unfinished = [a for a in self._running.values() if a.task is not None and not a.task.done()]
        for attempt in unfinished:
            assert attempt.task is not None
            attempt.task.cancel()
        await asyncio.gather(*(a.task for a in unfinished if a.task), return_exceptions=True)
        for attempt in unfinished:
            released = events.LeaseReleased(worker=self.id, claim=attempt.claim)
            await self._advance(attempt, released)
        while self._sending:  # the finished attempts' writes, queued or on their way
            await asyncio.gather(*self._sending, return_exceptions=True)
        self._running.clear()
        if self._doorbell is not None and unfinished:  # released: due now, for other workers
            self._doorbell.ring()

    def _emit(self, done: machine.Effects, job: jobs.Job) -> None:
        if self._on_effect is not None:
            for effect in done:
                self._on_effect(effect, job)
        elif done and log.isEnabledFor(logging.INFO):  # asked once, not per effect
            for effect in done:
                if isinstance(effect, effects.Lifecycle):
                    log.info(
                        "job %s", effect.name, extra={"jobId": effect.job_id, "event": effect.name}
                    )


def performers_from(table: Mapping[type, Callable[[Any], Awaitable[Any]]]) -> PerformersFor:
    """The same performers for every attempt."""
    return lambda _attempt: table
