"""A deterministic simulation of real workers sharing one in-memory store, with faults.

`simulate(config)` runs `config.workers` real `jobkit.worker.Worker`s as tasks on a
virtual-time event loop (`jobkit.testing.loop`) over a `MemoryJobStore`, while users
submit, cancel and retry `config.jobs` jobs through the real commands
(`jobkit.worker.commands`), and returns a `Report`; `check(report)` lists the invariants
the run violated. Every draw comes from `random.Random(config.seed)` and the loop runs
callbacks in a fixed order, so the same config always gives the same report: a failing
seed is a replayable bug (`simulate(SimConfig(seed=...))`).

Theory of operation
-------------------
Each worker reaches the store over its own `wire.Wire`: latency each way, so reads race
writes, and writes that fail with an unknown outcome. Its performers (`faults`) take
virtual time per call and may fail (transient, permanent), take longer than the lease
(heartbeats must keep it), or crash the worker: its wire is cut and its tasks cancelled
at once, so nothing it does afterwards reaches the store, as after SIGKILL; its leases
are left to expire, and a replacement starts later. A worker whose loop raises (a store
error) exits the same way, after its own shutdown. Every write that lands is logged with
its writer (`wire.Ledger`).

The run ends when nothing is active (no job pending or processing, no user action to
come), or at the horizon. Then every worker is stopped gracefully (running attempts get
the grace period, or their leases are released), and what dead workers left processing
is reaped once their leases run out, so no job is left `processing`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
from collections import Counter
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap

from jobkit import effects, errors, events, instants, jobs, pipeline, submission
from jobkit.status import PROCESSING
from jobkit.testing import faults, indexed, wire
from jobkit.testing import loop as virtual
from jobkit.testing.invariants import check
from jobkit.testing.memory import MemoryJobStore
from jobkit.testing.wire import Write
from jobkit.worker import commands
from jobkit.worker.worker import Worker, WorkerConfig, performers_from

# `check` lives in `invariants` and is re-exported here, where its callers look for it.
__all__ = ["QUEUES", "START", "Report", "SimConfig", "Write", "check", "sample", "simulate"]

START = virtual.START
QUEUES = ("default", "bulk", "urgent")


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise errors.ConfigurationError(f"{attribute.name} must be within 0..1, got {value!r}")


@attrs.frozen(kw_only=True)
class SimConfig:
    """One simulation. Times are virtual seconds; rates are probabilities."""

    seed: int = 0
    jobs: int = 100
    workers: int = 4
    concurrency: int = 2  # each worker's slots
    fault_rate: float = attrs.field(default=0.05, validator=_rate)  # per performer call
    fault_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # see faults.KINDS
    store_fault_rate: float = attrs.field(default=0.0, validator=_rate)  # per worker write
    lease_seconds: float = 30.0
    heartbeat_every: float = 10.0
    timeout_seconds: float = 600.0  # the job type's
    max_attempts: int = 3
    cancel_rate: float = attrs.field(default=0.05, validator=_rate)  # of jobs, while pending
    retry_rate: float = attrs.field(default=0.3, validator=_rate)  # of failed jobs, by hand
    max_manual_retries: int = 1  # per job, so that the run ends
    wake_rate: float = attrs.field(default=0.5, validator=_rate)  # submissions that wake workers
    horizon_seconds: float = 7 * 24 * 3600.0
    submit_seconds: float = 60.0  # submissions arrive uniformly over this window
    delay_rate: float = attrs.field(default=0.2, validator=_rate)  # jobs given delaySeconds
    max_delay_seconds: float = 120.0
    effect_seconds: float = 2.0  # the mean call; each effect type weighs it
    slow_leases: tuple[float, float] = (1.5, 3.0)  # a slow call lasts this many leases
    poll_seconds: float = 5.0  # the workers' longest idle sleep
    reap_every: float = 5.0
    grace_seconds: float = 8.0
    progress_seconds: float = 0.5
    claim_ahead: bool = True  # WorkerConfig.claim_ahead
    latency_seconds: float = 0.05  # the store's, each way (a mean)
    restart_seconds: float = 20.0  # mean delay before a dead worker's replacement
    cancel_window: float = 120.0
    backoff_base: float = 1.0
    backoff_cap: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.jobs < 0 or self.workers < 1 or self.max_attempts < 1 or self.concurrency < 1:
            raise errors.ConfigurationError(
                "need jobs >= 0, workers >= 1, concurrency >= 1, max_attempts >= 1"
            )
        if not 0 < self.heartbeat_every < self.lease_seconds:
            raise errors.ConfigurationError("heartbeat_every must be within (0, lease_seconds)")
        if self.heartbeat_every + 12 * self.latency_seconds >= self.lease_seconds:
            raise errors.ConfigurationError(
                "the lease must outlast a heartbeat period and its round trips to the store"
            )
        if not 1.0 < self.slow_leases[0] <= self.slow_leases[1]:
            raise errors.ConfigurationError("a slow call must outlast the lease: slow_leases > 1")
        if len(self.fault_weights) != len(faults.KINDS) or sum(self.fault_weights) <= 0:
            raise errors.ConfigurationError(f"fault_weights needs {len(faults.KINDS)} weights")


def sample(seed: int) -> SimConfig:
    """A small schedule drawn from `seed`: a few jobs and workers, and settings, fault
    rates and timings varied widely. `simulate(sample(seed))` replays it."""
    rng = random.Random(seed)
    lease = rng.choice([2.0, 5.0, 10.0, 30.0])
    latency = rng.choice([0.0, 0.01, lease / 50])
    weights = tuple(rng.choice([0.0, 1.0, 3.0]) for _ in faults.KINDS)
    return SimConfig(
        seed=seed,
        jobs=rng.randint(1, 5),
        workers=rng.randint(1, 3),
        concurrency=rng.randint(1, 3),
        fault_rate=rng.choice([0.0, 0.1, 0.3]),
        fault_weights=weights if any(weights) else (1.0, 1.0, 1.0, 1.0),  # type: ignore[arg-type]
        store_fault_rate=rng.choice([0.0, 0.0, 0.05, 0.2]),
        lease_seconds=lease,
        heartbeat_every=lease * rng.uniform(0.2, 0.6),
        timeout_seconds=lease * rng.choice([1.0, 2.5, 100.0]),
        max_attempts=rng.randint(1, 4),
        cancel_rate=rng.choice([0.0, 0.2]),
        retry_rate=rng.choice([0.0, 0.5]),
        horizon_seconds=rng.choice([20.0, 120.0, 3600.0]),
        submit_seconds=rng.uniform(0.0, 30.0),
        delay_rate=rng.choice([0.0, 0.3]),
        max_delay_seconds=30.0,
        effect_seconds=lease * rng.uniform(0.02, 0.3),
        poll_seconds=rng.choice([2.0, 10.0, 30.0]),
        reap_every=rng.choice([2.0, 10.0, 30.0]),
        grace_seconds=rng.choice([0.0, 1.0, 10.0]),
        progress_seconds=rng.choice([0.0, 0.5]),
        latency_seconds=latency,
        restart_seconds=rng.choice([1.0, 10.0]),
        cancel_window=30.0,
        claim_ahead=seed % 2 == 0,  # not a draw: the schedules drawn before stay the same
    )


@attrs.frozen(kw_only=True)
class Report:
    seed: int
    config: SimConfig
    jobs: PMap[str, jobs.Job]  # the final store, by id
    writes: tuple[Write, ...]
    counters: PMap[str, int]
    lease_losses: frozenset[tuple[str, int]]  # (job id, claim) held by a worker when it died
    excused: frozenset[tuple[str, int]]  # attempts a failed store write touched: may stall
    shut_down: frozenset[str]  # workers that shut down (or died, maybe shutting down): may release
    blobs: PMap[str, bytes]
    anomalies: tuple[str, ...]  # what the simulator itself saw go wrong
    stopped: str  # `quiescent`, or `horizon` (shut down there)
    ended_at: datetime


# The worker a task belongs to: tasks inherit it from the task that made them.
_OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar("owner", default=None)


class Run:
    """The mutable state of one simulation, on its loop; `simulate` is its only user."""

    def __init__(self, config: SimConfig, store: MemoryJobStore, loop: virtual.VirtualLoop):
        self.config = config
        self.store = store
        self.loop = loop
        self.rng = random.Random(config.seed)
        self.clock = virtual.clock(START, loop)
        self.types = faults.job_types(
            config.max_attempts, config.backoff_base, config.backoff_cap, config.timeout_seconds
        )
        self.world = faults.World()
        self.ledger = wire.Ledger(loop)
        self.ledger.on_failed = self.failed
        self.counters = self.ledger.counters
        self.users = wire.Wire(
            store, self.ledger, "user", self.rng, wire.Conditions(latency=config.latency_seconds)
        )
        self.weather = faults.Weather(
            rate=config.fault_rate,
            weights=config.fault_weights,
            mean_seconds=config.effect_seconds,
            slow_seconds=(
                config.lease_seconds * config.slow_leases[0],
                config.lease_seconds * config.slow_leases[1],
            ),
        )
        self.losses: set[tuple[str, int]] = set()
        self.excused: set[tuple[str, int]] = set()
        self.shut_down: set[str] = set()
        self.anomalies: list[str] = []
        self.manual: Counter[str] = Counter()
        self.owned: dict[str, dict[asyncio.Task[Any], None]] = {}
        self.living: dict[str, tuple[Worker, wire.Wire, asyncio.Task[None]]] = {}
        self.spawned = 0
        self.draining = False
        self.plain = contextvars.copy_context()  # for tasks that belong to no worker
        loop.set_task_factory(self._task)  # type: ignore[arg-type]

    def _task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, context=context)
        owner = _OWNER.get() if context is None else context.get(_OWNER)
        if owner is not None:
            self.owned[owner][task] = None
            task.add_done_callback(functools.partial(self._done, owner))
        return task

    def _done(self, owner: str, task: asyncio.Task[Any]) -> None:
        self.owned[owner].pop(task, None)
        if not task.cancelled() and isinstance(task.exception(), wire.Killed):
            pass  # a dead worker's task ended with its death: looked at, so never reported

    def user(self, coro: Coroutine[Any, Any, None]) -> None:
        """Start a user action (planned until it ends), belonging to no worker."""
        self.ledger.change(0, 1)

        async def planned() -> None:
            try:
                await coro
            finally:
                self.ledger.change(0, -1)

        self.loop.create_task(planned(), context=self.plain)

    # -- users ---------------------------------------------------------------------

    async def submit(self, index: int, at: float) -> None:
        await asyncio.sleep(at)
        if self.draining:
            return
        c, rng = self.config, self.rng
        job_id = f"job-{index:05d}"
        request: dict[str, Any] = {
            "type": faults.JOB_TYPE,
            "priority": rng.randint(0, 100),
            "queue": rng.choice(QUEUES),
            "params": {"sections": rng.randint(1, 2)},
        }
        if rng.random() < c.delay_rate:
            request["delaySeconds"] = round(rng.uniform(0.0, c.max_delay_seconds), 3)
        if rng.random() < 0.3:
            request["maxAttempts"] = rng.randint(1, c.max_attempts)
        key = pipeline.input_key(job_id, "pdf")
        self.world.blobs[key] = b"%PDF-sim " + job_id.encode() * rng.randint(1, 4)
        source = jobs.Input(blob=key, content_type=faults.INPUT_TYPE)
        draft = submission.new_job(
            request, types=self.types, job_id=job_id, user_id="sim", now=self.clock(), input=source
        ).unwrap()
        await commands.submit(self.users, draft, self.clock())
        self.counters["submitted"] += 1
        if rng.random() < c.wake_rate:  # as a submission in the workers' own process does
            for worker, _, _ in self.living.values():
                worker.wake()
        if rng.random() < c.cancel_rate:
            self.user(self.cancel(job_id, rng.uniform(0.0, c.cancel_window)))

    async def cancel(self, job_id: str, after: float) -> None:
        await asyncio.sleep(after)
        if self.draining:
            return
        done = await commands.apply(
            self.users, None, job_id, events.CancelRequested(), user_id=None, clock=self.clock
        )
        self.counters["cancels" if done.value_or(None) is not None else "cancels_refused"] += 1

    def failed(self, job_id: str) -> None:
        """A job failed for good: its user may retry it by hand, later."""
        if self.draining or self.rng.random() >= self.config.retry_rate:
            return
        if self.manual[job_id] < self.config.max_manual_retries:
            self.manual[job_id] += 1
            self.user(self.retry(job_id, self.rng.uniform(1.0, 60.0)))

    async def retry(self, job_id: str, after: float) -> None:
        await asyncio.sleep(after)
        if self.draining:
            return
        done = await commands.apply(
            self.users, None, job_id, events.RetryRequested(), user_id=None, clock=self.clock
        )
        if done.value_or(None) is None:
            self.anomalies.append(f"the manual retry of failed job {job_id} did not land: {done}")
        else:
            self.counters["manual_retries"] += 1

    # -- workers -------------------------------------------------------------------

    def spawn(self) -> None:
        if self.draining:
            return
        c = self.config
        worker_id = f"w{self.spawned}"
        self.spawned += 1
        self.counters["workers_started"] += 1
        conditions = wire.Conditions(latency=c.latency_seconds, write_faults=c.store_fault_rate)
        link = wire.Wire(
            self.store, self.ledger, worker_id, self.rng, conditions, self.excused.update
        )
        table = faults.performers(
            self.world, self.rng, self.weather, self.counters, lambda: self.crash(worker_id)
        )
        config = WorkerConfig(
            concurrency=c.concurrency,
            lease_seconds=c.lease_seconds,
            heartbeat_seconds=c.heartbeat_every,
            idle_seconds=c.poll_seconds,
            reap_seconds=c.reap_every,
            grace_seconds=c.grace_seconds,
            progress_seconds=c.progress_seconds,
            claim_ahead=c.claim_ahead,
        )
        worker = Worker(
            store=link,
            types=self.types,
            performers_for=performers_from(table),
            config=config,
            worker_id=worker_id,
            clock=self.clock,
            rng=self.rng,
            on_effect=self.effect,
        )
        self.owned[worker_id] = {}
        context = self.plain.copy()
        context.run(_OWNER.set, worker_id)
        task = self.loop.create_task(self.life(worker, link), context=context)
        self.living[worker_id] = (worker, link, task)

    def effect(self, effect: effects.MachineEffect, job: jobs.Job) -> None:
        if isinstance(effect, effects.Lifecycle):
            self.counters[f"lifecycle_{effect.name}"] += 1

    async def life(self, worker: Worker, link: wire.Wire) -> None:
        await asyncio.sleep(self.rng.uniform(0.0, 1.0))
        try:
            await worker.run()
        except wire.Killed:
            return  # crashed: `crash` did the rest
        except Exception as exc:  # its loop raised: the process exits, after its shutdown
            self.counters["worker_exits"] += 1
            self.counters[f"worker_exits_{type(exc).__name__}"] += 1
            self.die(worker.id, "exits_holding_lease")

    def crash(self, worker_id: str) -> None:
        """SIGKILL: nothing the worker does from now on reaches the store or the world."""
        self.counters["crashes"] += 1
        self.die(worker_id, "crashes_holding_lease")
        for task in list(self.owned.get(worker_id, {})):
            task.cancel()

    def die(self, worker_id: str, counter: str) -> None:
        """The worker is gone: note the leases it held (they must stall), cut its wire, and
        start its replacement later."""
        if worker_id not in self.living:
            return
        _, link, _ = self.living.pop(worker_id)
        link.cut()
        self.shut_down.add(worker_id)  # it may have been shutting down (an exit) when it died
        held = [
            (jobs.id(job), jobs.claim(job))
            for job in self.store.all()
            if jobs.status(job) == PROCESSING and jobs.lease_owner(job) == worker_id
        ]
        if held:
            self.counters[counter] += 1
            self.losses.update(held)
        delay = self.config.restart_seconds * self.rng.uniform(0.5, 1.5)
        self.loop.call_later(delay, self.spawn)

    # -- the run -------------------------------------------------------------------

    async def main(self) -> str:
        c = self.config
        for index in range(c.jobs):
            self.user(self.submit(index, self.rng.uniform(0.0, c.submit_seconds)))
        for _ in range(c.workers):
            self.spawn()
        stopped = "quiescent"
        try:
            async with asyncio.timeout(c.horizon_seconds):
                while self.ledger.active or self.ledger.planned:
                    self.ledger.quiet.clear()
                    await self.ledger.quiet.wait()
        except TimeoutError:
            stopped = "horizon"
        self.draining = True
        deadline = 10 * (c.grace_seconds + c.lease_seconds * c.slow_leases[1] + c.reap_every)
        try:
            async with asyncio.timeout(deadline):
                await self.shutdown(stopped)
        except TimeoutError:
            self.anomalies.append(f"the shutdown did not finish within {deadline:g} s")
        return stopped

    async def shutdown(self, stopped: str) -> None:
        """Stop every worker gracefully, then reap what dead ones left processing."""
        living = list(self.living.values())
        for worker, _, _ in living:
            if stopped == "horizon":
                self.shut_down.add(worker.id)
            worker.stop()
        await asyncio.gather(*(task for _, _, task in living), return_exceptions=True)
        closer = Worker(
            store=wire.Wire(self.store, self.ledger, "closer", self.rng, wire.Conditions()),
            types=self.types,
            performers_for=performers_from({}),
            config=WorkerConfig(queues=frozenset(), reap_seconds=1e9),
            worker_id="closer",
            clock=self.clock,
            rng=self.rng,
            on_effect=self.effect,
        )
        while leases := [
            at
            for job in self.store.all()
            if jobs.status(job) == PROCESSING and (at := jobs.lease_expires_at(job)) is not None
        ]:
            await asyncio.sleep(max(instants.seconds_between(self.clock(), min(leases)), 0) + 0.001)
            await closer.drain()


async def _simulate(config: SimConfig, store: MemoryJobStore) -> tuple[Run, str]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, virtual.VirtualLoop)
    run = Run(config, store, loop)
    return run, await run.main()


def simulate(config: SimConfig, *, store: MemoryJobStore | None = None) -> Report:
    """Run `config` to quiescence or to its horizon; `store` (empty) replaces the indexed one."""
    run, stopped = virtual.run(
        _simulate(config, indexed.IndexedStore() if store is None else store)
    )
    final = {jobs.id(job): job for job in run.store.all()}
    counters = Counter(run.counters)
    for job in final.values():
        for entry in jobs.history(job):
            if (err := jobs.entry_error(entry)) is not None:
                counters[f"error_{err.code}"] += 1
    return Report(
        seed=config.seed,
        config=config,
        jobs=pmap(final),
        writes=tuple(run.ledger.writes),
        counters=pmap({**counters, "virtual_seconds": round(run.loop.time())}),
        lease_losses=frozenset(run.losses),
        excused=frozenset(run.excused),
        shut_down=frozenset(run.shut_down),
        blobs=pmap(run.world.blobs),
        anomalies=tuple(run.anomalies),
        stopped=stopped,
        ended_at=run.clock(),
    )
