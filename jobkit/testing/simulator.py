"""A deterministic discrete-event simulation of many workers sharing one in-memory store.

`simulate(config)` submits `config.jobs` jobs, runs `config.workers` workers on a
virtual clock with faults drawn from `random.Random(config.seed)`, and returns
a `Report`; `check(report)` lists the invariants the run violated. The same
config always gives the same report, so a failing seed is a replayable bug.

Theory of operation
-------------------
Everything is an action on one heap of `(time, seq, action, args)`. Workers do
what `jobkit.worker` does, one action at a time: read the claimable jobs, and a
store latency later step `Claimed` on what they read and compare-and-set it (so
two workers can race for one job); run the pipeline effect by effect, each call
taking simulated time; heartbeat on a timer; write progress, success and
failure by stepping their own copy of the job and compare-and-setting it. Any
write that loses (a stale copy, a lease someone else ended) abandons the
attempt: that is the fence working, and it is counted. Each worker also reaps
stalled leases. At the horizon the workers shut down gracefully (release their
leases, reap the rest) so no job is left `processing`; before it, the run stops
as soon as no job is active and nothing is pending.

The workers live in `jobkit.testing.actors`, the invariants in
`jobkit.testing.invariants`.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap
from returns.result import Failure, Success

from jobkit import errors, events, instants, jobs, machine, pipeline, submission
from jobkit.status import ACTIVE, FAILED, PROCESSING, Status
from jobkit.testing import actors, faults
from jobkit.testing.clock import VirtualClock
from jobkit.testing.invariants import check
from jobkit.testing.memory import MemoryJobStore

# `check` lives in `invariants` and is re-exported here, where its callers look for it.
__all__ = ["QUEUES", "START", "Report", "SimConfig", "Write", "check", "simulate"]

START = instants.from_epoch(1_800_000_000)
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
    fault_rate: float = attrs.field(default=0.05, validator=_rate)  # per effect boundary
    fault_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # see faults.KINDS
    lease_seconds: float = 30.0
    heartbeat_every: float = 10.0
    max_attempts: int = 3
    cancel_rate: float = attrs.field(default=0.05, validator=_rate)  # of jobs, while pending
    retry_rate: float = attrs.field(default=0.3, validator=_rate)  # of failed jobs, by hand
    max_manual_retries: int = 1  # per job, so that the run ends
    horizon_seconds: float = 7 * 24 * 3600.0
    submit_seconds: float = 60.0  # submissions arrive uniformly over this window
    delay_rate: float = attrs.field(default=0.2, validator=_rate)  # jobs given delaySeconds
    max_delay_seconds: float = 120.0
    effect_seconds: float = 2.0  # the mean call; each effect type weighs it
    slow_leases: tuple[float, float] = (1.5, 3.0)  # a slow call lasts this many leases
    poll_seconds: float = 5.0  # the longest idle sleep
    reap_every: float = 5.0
    latency_seconds: float = 0.05  # from a read to the write based on it
    restart_seconds: float = 20.0  # mean delay before a crashed worker's replacement
    cancel_window: float = 120.0
    backoff_base: float = 1.0
    backoff_cap: float = 30.0

    def __attrs_post_init__(self) -> None:
        if self.jobs < 0 or self.workers < 1 or self.max_attempts < 1:
            raise errors.ConfigurationError("need jobs >= 0, workers >= 1, max_attempts >= 1")
        if not 0 < self.heartbeat_every < self.lease_seconds:
            raise errors.ConfigurationError("heartbeat_every must be within (0, lease_seconds)")
        if not 1.0 < self.slow_leases[0] <= self.slow_leases[1]:
            raise errors.ConfigurationError("a slow call must outlast the lease: slow_leases > 1")
        if len(self.fault_weights) != len(faults.KINDS) or sum(self.fault_weights) <= 0:
            raise errors.ConfigurationError(f"fault_weights needs {len(faults.KINDS)} weights")


@attrs.frozen(kw_only=True)
class Write:
    """One successful compare-and-set (or the insert, `expected` 0) as the writer saw it."""

    at: float
    job_id: str
    expected: int
    version: int
    kind: str
    actor: str  # a worker id, `user` or `reaper:<worker>`
    source: str | None  # the status of the copy the writer stepped from
    target: str
    attempts: int
    claim: int


@attrs.frozen(kw_only=True)
class Report:
    seed: int
    config: SimConfig
    jobs: PMap[str, jobs.Job]  # the final store, by id
    writes: tuple[Write, ...]
    counters: PMap[str, int]
    lease_losses: frozenset[tuple[str, int]]  # (job id, claim) of every injected lease loss
    blobs: PMap[str, bytes]
    anomalies: tuple[str, ...]  # what the simulator itself saw go wrong
    stopped: str  # `quiescent`, or `horizon` (shut down there)
    ended_at: datetime


Action = Callable[..., None]


class Run:
    """The mutable state of one simulation; `simulate` and its workers are its only users."""

    def __init__(self, config: SimConfig, store: MemoryJobStore) -> None:
        self.config = config
        self.store = store
        self.rng = random.Random(config.seed)
        self.clock = VirtualClock(START)
        self.t = 0.0
        self.synced = True
        self.heap: list[tuple[float, int, Action, tuple[Any, ...]]] = []
        self.seq = 0
        self.types = faults.job_types(config.max_attempts, config.backoff_base, config.backoff_cap)
        self.policy = self.types.types[faults.JOB_TYPE].retry
        self.world = faults.World()
        self.counters: Counter[str] = Counter()
        self.writes: list[Write] = []
        self.losses: set[tuple[str, int]] = set()
        self.anomalies: list[str] = []
        self.status: dict[str, Status] = {}  # what the store holds, as our writes left it
        self.manual: Counter[str] = Counter()
        self.active = self.processing = self.blocked = self.pending = 0
        self.draining = False
        self.workers: list[actors.Worker] = []

    # -- the loop ------------------------------------------------------------------

    def at(self, t: float, action: Action, *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, action, args))

    def later(self, seconds: float, action: Action, *args: Any) -> None:
        self.at(self.t + seconds, action, *args)

    def latency(self) -> float:
        return self.config.latency_seconds * self.rng.uniform(0.5, 1.5)

    def run(self) -> str:
        horizon = self.config.horizon_seconds
        deadline = horizon + 100 * self.config.lease_seconds * self.config.slow_leases[1]
        while self.heap:
            if self.draining and self.processing == self.blocked == 0:
                return "horizon"
            if not self.draining and self.active == self.blocked == self.pending == 0:
                return "quiescent"
            entry = heapq.heappop(self.heap)
            t, _, action, args = entry
            if not self.draining and t > horizon:
                heapq.heappush(self.heap, entry)
                self.tick(horizon)
                self.shutdown()
                continue
            if t > deadline:
                self.anomalies.append(f"the shutdown did not drain by {deadline:g} s")
                break
            self.tick(t)
            action(*args)
        return "horizon" if self.draining else "quiescent"

    def tick(self, t: float) -> None:
        self.t = t
        self.synced = False  # most actions never ask the time: set the clock lazily

    def now(self) -> datetime:
        if not self.synced:
            self.clock.set(START + timedelta(seconds=self.t))
            self.synced = True
        return self.clock.now()

    def step(self, job: jobs.Job, event: events.Event) -> machine.Stepped:
        self.counters["steps"] += 1
        return machine.step(job, event, self.now())

    def commit(self, before: jobs.Job, after: jobs.Job, kind: str, actor: str) -> bool:
        """Compare-and-set `after` over `before`; log it and keep the counts when it lands."""
        expected = jobs.version(before)
        if not self.store.compare_and_set_now(expected, after):
            return False
        self.record(before, expected, after, kind, actor)
        return True

    def record(
        self, before: jobs.Job, expected: int, after: jobs.Job, kind: str, actor: str
    ) -> None:
        job_id, target = jobs.id(after), jobs.status(after)
        self.writes.append(
            Write(
                at=self.t,
                job_id=job_id,
                expected=expected,
                version=jobs.version(after),
                kind=kind,
                actor=actor,
                source=None if (s := jobs.status_or_none(before)) is None else s.value,
                target=target.value,
                attempts=jobs.attempts(after),
                claim=jobs.claim(after),
            )
        )
        old = self.status.get(job_id)
        self.status[job_id] = target
        self.active += (target in ACTIVE) - (old in ACTIVE)
        self.processing += (target == PROCESSING) - (old == PROCESSING)
        if target == FAILED and old != FAILED and not self.draining:
            wanted = self.rng.random() < self.config.retry_rate
            if wanted and self.manual[job_id] < self.config.max_manual_retries:
                self.manual[job_id] += 1
                self.pending += 1
                self.later(self.rng.uniform(1.0, 60.0), self.user_retry, job_id)

    # -- users ---------------------------------------------------------------------

    def submit(self, index: int) -> None:
        self.pending -= 1
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
        now = self.now()
        match submission.new_job(
            request, types=self.types, job_id=job_id, user_id="sim", now=now, input=source
        ):
            case Success(draft):
                pass
            case invalid:
                raise errors.JobkitError(f"the simulator made a bad submission: {invalid}")
        match self.step(draft, events.Submitted()):
            case Success((job, _)) if self.store.insert_now(job):
                self.counters["submitted"] += 1
                self.record(draft, 0, job, events.Submitted.kind, "user")
            case refused:
                raise errors.JobkitError(f"submitting {job_id} failed: {refused}")
        if rng.random() < c.cancel_rate:
            self.pending += 1
            self.later(rng.uniform(0.0, c.cancel_window), self.user_cancel, job_id)

    def user_cancel(self, job_id: str) -> None:
        job = self.store.get_now(job_id)
        if job is None or self.draining:
            self.pending -= 1
            return
        self.later(self.latency(), self.user_cancel_write, job)

    def user_cancel_write(self, seen: jobs.Job) -> None:
        self.pending -= 1
        if self.draining:
            return
        match self.step(seen, events.CancelRequested()):
            case Success((job, _)):
                won = self.commit(seen, job, events.CancelRequested.kind, "user")
                self.counters["cancels" if won else "cancels_lost_race"] += 1
            case Failure(_):
                self.counters["cancels_refused"] += 1

    def user_retry(self, job_id: str) -> None:
        self.pending -= 1
        job = self.store.get_now(job_id)
        if job is None or self.draining:
            return
        match self.step(job, events.RetryRequested()):
            case Success((retried, _)) if self.commit(job, retried, "retry", "user"):
                self.counters["manual_retries"] += 1
            case _:
                self.anomalies.append(f"the manual retry of failed job {job_id} did not land")

    # -- workers -------------------------------------------------------------------

    def spawn(self) -> None:
        worker = actors.Worker(self, f"w{len(self.workers)}")
        self.workers.append(worker)
        self.counters["workers_started"] += 1
        self.later(self.rng.uniform(0.0, 1.0), worker.poll)
        self.later(self.rng.uniform(0.0, self.config.reap_every), worker.reap)

    def shutdown(self) -> None:
        """The horizon: stop claiming, hand running jobs back; blocked workers do it on waking."""
        self.draining = True
        for w in self.workers:
            if w.alive and w.job is not None and not w.blocked:
                w.release()


def simulate(config: SimConfig, *, store: MemoryJobStore | None = None) -> Report:
    """Run `config` to quiescence or to its horizon; `store` (empty) replaces the indexed one."""
    run = Run(config, faults.IndexedStore() if store is None else store)
    for index in range(config.jobs):
        run.pending += 1
        run.at(run.rng.uniform(0.0, config.submit_seconds), run.submit, index)
    for _ in range(config.workers):
        run.spawn()
    stopped = run.run()
    final = {jobs.id(job): job for job in run.store.all()}
    return Report(
        seed=config.seed,
        config=config,
        jobs=pmap(final),
        writes=tuple(run.writes),
        counters=pmap({**run.counters, "virtual_seconds": round(run.t)}),
        lease_losses=frozenset(run.losses),
        blobs=pmap(run.world.blobs),
        anomalies=tuple(run.anomalies),
        stopped=stopped,
        ended_at=run.now(),
    )
