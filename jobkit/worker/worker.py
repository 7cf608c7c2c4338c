"""The async worker: one loop that reaps stalled jobs, claims due ones while it has free
slots, and otherwise waits; `run()` keeps at it until `stop()`, `drain()` until nothing is
due or running. The parts it drives: `claims` (taking work), `attempts` (running it),
`writes` (recording every outcome); `config` holds what they share.

Every time the worker acts on comes from the running event loop (`loop.time()`, sleeps,
timeouts) or the injected datetime clock, and every random draw from the injected `rng`:
on a virtual-time loop (`jobkit.testing.loop`), a worker runs deterministically.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from jobkit import instants, jobs, ports, registry
from jobkit.worker import claims
from jobkit.worker.attempts import Attempts
from jobkit.worker.config import (
    Attempt,
    Clock,
    Hook,
    PerformersFor,
    WorkerConfig,
    default_worker_id,
    emitter,
    log,
    utc_now,
)
from jobkit.worker.writes import Writes

# An idle worker wakes this long after the next due time: a timer may fire a little early,
# and a look at the store just before the due time finds nothing and sleeps again.
_PAST_DUE = 0.0005
_RETRY_DUE = 0.01  # and this long after a due time already past (a stall awaiting the reaper)
_FIRST_OUTAGE_SECONDS = 0.1  # the first wait after the store failed the loop; it doubles

__all__ = [
    "Attempt",
    "Clock",
    "Hook",
    "PerformersFor",
    "Worker",
    "WorkerConfig",
    "default_worker_id",
    "performers_from",
    "utc_now",
]


class Worker:
    """Runs jobs from `store` with the performers `performers_for(attempt)` builds per attempt.

    `run()` works until `stop()`; `drain()` runs until nothing is due (burst mode).
    `run()` outlives the store's failures (it logs them, backs off and goes on); `drain()`
    raises the first.

    With a `doorbell` (`ports.Doorbell`), an idle worker listens for rings: it looks for
    work when one comes, at the next due time, and otherwise every `poll_seconds` (a safety
    net for lost rings). Without one, it looks every `idle_seconds` at least.

    State it owns: whether it is stopping, and the event that wakes its idle wait. The
    running attempts are its `Attempts`', the claims on their way its `Claims`', the
    queued final writes and the count of finished attempts its `Writes`'.
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
        self.config = config = config or WorkerConfig()
        self.id = worker_id = worker_id or default_worker_id()
        self._rng = rng = rng or random.Random()
        emit = emitter(on_effect, worker_id)
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._doorbell = doorbell
        self._listener: ports.Listener | None = None
        self._writes = Writes(
            store=store,
            worker_id=worker_id,
            clock=clock,
            emit=emit,
            settled=self._forget,
        )
        self._attempts = Attempts(
            types=types,
            config=config,
            worker_id=worker_id,
            rng=rng,
            performers_for=performers_for,
            writes=self._writes,
            wake=self._wake.set,
        )
        self._claims = claims.Claims(
            store=store,
            config=config,
            worker_id=worker_id,
            clock=clock,
            rng=rng,
            emit=emit,
            won=self._won,
            wake=self._wake.set,
        )
        self._reap = functools.partial(claims.reap, store, types, clock, rng, emit)

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
        return len(self._attempts.running)

    @property
    def finished(self) -> int:
        """Attempts this worker finished (succeeded or failed), since it was made."""
        return self._writes.finished

    @property
    def concurrency(self) -> int:
        return self.config.concurrency

    async def run(self) -> None:
        queues = "all" if self.config.queues is None else ",".join(sorted(self.config.queues))
        fields = {"workerId": self.id, "concurrency": self.config.concurrency, "queues": queues}
        log.info("worker started", extra=fields)
        try:
            await self._serve(until_idle=False)
        finally:
            log.info("worker stopped", extra={**fields, "finished": self.finished})

    async def drain(self) -> int:
        """Burst mode: run every due job (and the retries that fall due meanwhile), then return
        how many attempts finished. Jobs scheduled later stay pending. `stop()` ends it early,
        with the same grace period as `run()`."""
        finished = self.finished
        await self._serve(until_idle=True)
        return self.finished - finished

    # -- the loop ----------------------------------------------------------------

    async def _serve(self, *, until_idle: bool) -> None:
        """Reap when it is time, claim while slots are free, else wait; until `stop()`, or
        with `until_idle` until nothing is due, running or stalled. On the way out (a stop,
        an error, a cancellation) running attempts get the grace period (`_shutdown`)."""
        loop = asyncio.get_running_loop()
        await self._listen()  # before the first look at the store: a later ring is heard
        heartbeats = asyncio.create_task(self._attempts.heartbeats(), name=f"{self.id}:heartbeat")
        next_reap = loop.time()
        failures = 0  # store calls of the loop that failed in a row
        try:
            while not self._stopping:
                try:
                    if loop.time() >= next_reap:
                        await self._reap()
                        next_reap = loop.time() + self.config.reap_seconds
                    self._claims.raise_error()
                    free = self._free()
                    if free > 0 and self._claims.waiting:
                        await self._idle(nothing_due=False)  # until the claim lands
                        continue
                    due, asked = await self._claims.claim(free) if free > 0 else (0, 0)
                    failures = 0
                    if asked:  # more may be due: claim again while slots are free
                        continue
                    if due:  # lost every race: other workers took them; look again
                        await asyncio.sleep(0)
                        continue
                    if until_idle and not self._busy() and not await self._reap():
                        return  # drained
                    await self._idle(nothing_due=free > 0)
                except Exception as exc:
                    if until_idle:
                        raise  # burst mode fails fast: its caller decides
                    failures += 1
                    await self._outage(exc, failures)
        finally:
            await self._shutdown()
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
            await self._unlisten()
            # Cleared on the way out, not on entry, so that a stop() made before run() got
            # going is not lost; the worker may run (or drain) again afterwards.
            self._stopping = False

    def _free(self) -> int:
        """Slots for new attempts. A claim on its way holds one per job it names; an
        attempt whose final write is on its way needs none, so the next claim can share
        that write's transaction."""
        held = len(self._attempts.running) + len(self._claims.ids) - self._writes.closing
        return self.config.concurrency - held

    def _busy(self) -> bool:
        return bool(self._attempts.running) or self._claims.busy

    async def _listen(self) -> None:
        if self._doorbell is None or self._listener is not None:
            return
        try:
            self._listener = await self._doorbell.listen(self.wake)
        except OSError as exc:
            log.warning(
                "cannot listen for wake-ups; looking for work every idle_seconds instead",
                extra={"workerId": self.id, "error": str(exc)},
            )

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def _idle(self, *, nothing_due: bool) -> None:
        """Wait for the first of: a wake-up (`wake()`: work in this process, a ring, a slot
        freed, a claim landed), the next job falling due (asked only when nothing is due
        now), the longest idle sleep: `poll_seconds` when nothing is due and the doorbell is
        heard, else `idle_seconds` (this worker's own work in flight wakes it). The one place
        the loop waits."""
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

    async def _outage(self, exc: Exception, failures: int) -> None:
        """The store failed the loop (a read, or a claim or reap write whose outcome is
        unknown): log it, wait, and go on. The wait doubles with each failure in a row, up
        to `poll_seconds`, with jitter, so an outage longer than the client's own retries
        costs a request every few seconds, not a worker. Running attempts carry on; their
        own writes fail or not on their own, and a claim whose outcome is unknown leaves
        jobs leased to this worker until the reaper gives them back."""
        delay = min(self.config.poll_seconds, _FIRST_OUTAGE_SECONDS * 2 ** (failures - 1))
        delay *= self._rng.uniform(0.5, 1.0)
        log.error(
            "the job store failed the worker's loop (%s: %s); trying again in %.3g s",
            type(exc).__name__,
            exc,
            delay,
            extra={
                "workerId": self.id,
                "error": type(exc).__name__,
                "failures": failures,
                "retryInSeconds": round(delay, 3),
            },
            exc_info=exc if failures == 1 else None,
        )
        try:
            async with asyncio.timeout(delay):
                while not self._stopping:  # only `stop()` cuts the wait short
                    self._wake.clear()
                    await self._wake.wait()
        except TimeoutError:
            pass

    def _forget(self, attempt: Attempt) -> None:
        """An attempt's final write is settled."""
        self._attempts.forget(attempt)

    async def _won(self, taken: list[jobs.Job]) -> None:
        """Start the jobs a claim won; hand them back untouched when stopping."""
        for job in taken:
            if self._stopping:
                await self._attempts.hand_back(job)
            else:
                self._attempts.start(job)

    async def _shutdown(self) -> None:
        """Let running jobs finish within the grace period, then release the rest's leases;
        wait for the final writes on their way."""
        self._stopping = True
        await self._claims.settle()  # what they win is handed back, not started
        released = await self._attempts.stop()
        await self._writes.flush()
        self._attempts.running.clear()
        if self._doorbell is not None and released:  # due now: other workers take them
            self._doorbell.ring()


def performers_from(table: Mapping[type, Callable[[Any], Awaitable[Any]]]) -> PerformersFor:
    """The same performers for every attempt."""
    return lambda _attempt: table
