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

from jobkit import effects, errors, events, instants, jobs, machine, pipeline, submission
from jobkit.status import ACTIVE, COMPLETED, FAILED, PENDING, PROCESSING, Status, targets
from jobkit.testing import faults
from jobkit.testing.clock import VirtualClock
from jobkit.testing.memory import MemoryJobStore

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


class _Worker:
    __slots__ = ("alive", "blocked", "claim", "epoch", "gen", "id", "job")

    def __init__(self, worker_id: str) -> None:
        self.id = worker_id
        self.alive = True
        self.blocked = False  # in a slow call: no heartbeats, no reaping
        self.epoch = 0  # bumped whenever an attempt starts or ends: stale timers see it
        self.job: jobs.Job | None = None  # our copy, as last written
        self.claim = 0
        self.gen: pipeline.Pipeline | None = None


Action = Callable[..., None]


class _Run:
    """The mutable state of one simulation; `simulate` is its only user."""

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
        self.workers: list[_Worker] = []

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
        source = {"blob": key, "contentType": faults.INPUT_TYPE}
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
        worker = _Worker(f"w{len(self.workers)}")
        self.workers.append(worker)
        self.counters["workers_started"] += 1
        self.later(self.rng.uniform(0.0, 1.0), self.poll, worker)
        self.later(self.rng.uniform(0.0, self.config.reap_every), self.reap, worker)

    def poll(self, w: _Worker) -> None:
        if not w.alive or w.job is not None or self.draining:
            return
        found = self.store.claimable_now(self.now(), None, 1)
        if found:
            self.later(self.latency(), self.claim, w, found[0])
            return
        sleep = self.config.poll_seconds
        due = self.next_due()
        if due is not None:
            sleep = min(sleep, instants.seconds_between(self.now(), due))
        self.later(max(sleep, 0.001) + self.latency(), self.poll, w)

    def next_due(self) -> datetime | None:
        """The earliest pending runAt (all in the future, as nothing was claimable)."""
        if isinstance(self.store, faults.IndexedStore):
            return self.store.next_due_now()
        pending = (job for job in self.store.all() if jobs.status_or_none(job) == PENDING)
        return min(map(jobs.run_at, pending), default=None)

    def claim(self, w: _Worker, seen: jobs.Job) -> None:
        if not w.alive or self.draining:
            return
        claimed = events.Claimed(worker=w.id, lease_seconds=self.config.lease_seconds)
        match self.step(seen, claimed):
            case Success((job, _)) if self.commit(seen, job, claimed.kind, w.id):
                self.counters["claims"] += 1
                self.start(w, job)
                return
            case Success(_):
                self.counters["claim_races_lost"] += 1
            case Failure(_):
                self.counters["claims_refused"] += 1
        self.poll(w)

    def start(self, w: _Worker, job: jobs.Job) -> None:
        w.job, w.claim, w.epoch = job, jobs.claim(job), w.epoch + 1
        w.gen = self.types.types[jobs.type_name(job)].pipeline(job, w.claim)
        self.later(self.config.heartbeat_every, self.heartbeat, w, w.epoch)
        self.advance(w, None)

    def advance(self, w: _Worker, value: Any) -> None:
        """Send `value` into the pipeline and stand at the next effect boundary."""
        assert w.gen is not None
        try:
            effect = w.gen.send(value)
        except StopIteration as stop:
            self.finish(w, stop.value)
            return
        fault = faults.draw(self.rng, self.config.fault_rate, self.config.fault_weights)
        if fault is faults.Fault.CRASH:
            self.crash(w)
            return
        if fault is faults.Fault.SLOW:
            self.counters["overruns"] += 1
            w.blocked = True
            self.blocked += 1
            seconds = self.config.lease_seconds * self.rng.uniform(*self.config.slow_leases)
        elif isinstance(effect, effects.ReportProgress):
            seconds = self.latency()
        else:
            seconds = faults.duration(self.rng, effect, self.config.effect_seconds)
        self.later(seconds, self.effect_done, w, w.epoch, effect, fault)

    def effect_done(
        self, w: _Worker, epoch: int, effect: effects.PipelineEffect, fault: faults.Fault | None
    ) -> None:
        if not w.alive or w.epoch != epoch or w.job is None or w.gen is None:
            return
        if w.blocked:
            w.blocked = False
            self.blocked -= 1
            if not self.wake(w):
                return
        if isinstance(effect, effects.ReportProgress):
            if fault in (faults.Fault.TRANSIENT, faults.Fault.PERMANENT):
                self.counters["progress_reports_lost"] += 1  # best effort, by contract
                self.advance(w, None)
                return
            report = events.ProgressReported(
                worker=w.id,
                claim=w.claim,
                current=effect.current,
                total=effect.total,
                message=effect.message,
            )
            if self.write(w, report):
                self.advance(w, None)
            return
        result: faults.Performed
        if fault in (faults.Fault.TRANSIENT, faults.Fault.PERMANENT):
            self.counters[fault.value] += 1
            result = Failure(faults.injected_error(fault, effect))
        else:
            result = self.world.perform(effect)
        match result:
            case Success(value):
                self.advance(w, value)
            case Failure(err):
                w.gen.close()
                self.finish(w, Failure(err))

    def wake(self, w: _Worker) -> bool:
        """Back from a call slower than the lease: say so with a heartbeat, which is refused
        when the lease was reaped meanwhile. True when the attempt may go on."""
        assert w.job is not None
        lease_end = jobs.lease_expires_at(w.job)
        job_id, claim = jobs.id(w.job), w.claim
        beat = events.Heartbeat(worker=w.id, claim=claim, lease_seconds=self.config.lease_seconds)
        if self.write(w, beat):
            self.counters["overruns_revived"] += 1  # nobody reaped it in time: the lease lives
            if self.draining:
                self.release(w)
                return False
            return True
        self.counters["overruns_reaped"] += 1
        self.losses.add((job_id, claim))
        if lease_end is None or lease_end > self.now():
            self.anomalies.append(f"{w.id} lost {job_id} claim {claim} before its lease ran out")
        return False

    def heartbeat(self, w: _Worker, epoch: int) -> None:
        if not w.alive or w.epoch != epoch or w.job is None:
            return
        if not w.blocked:
            beat = events.Heartbeat(
                worker=w.id, claim=w.claim, lease_seconds=self.config.lease_seconds
            )
            if not self.write(w, beat):
                return
            self.counters["heartbeats"] += 1
        self.later(self.config.heartbeat_every, self.heartbeat, w, epoch)

    def finish(self, w: _Worker, outcome: pipeline.Outcome) -> None:
        event: events.Event
        match outcome:
            case Success(done):
                event = events.AttemptSucceeded(
                    worker=w.id, claim=w.claim, result=done.result, result_url=done.result_url
                )
            case Failure(err):
                sample = self.rng.random()
                event = events.AttemptFailed(
                    worker=w.id, claim=w.claim, error=err, policy=self.policy, sample=sample
                )
            case _:
                raise errors.JobkitError(f"the pipeline returned {outcome!r}, not a Result")
        if self.write(w, event):
            self.counters[f"attempts_{event.kind}"] += 1
            self.end_attempt(w)

    def write(self, w: _Worker, event: events.Event) -> bool:
        """Step our copy and compare-and-set it; on a loss, abandon the attempt."""
        assert w.job is not None
        match self.step(w.job, event):
            case Success((job, _)) if self.commit(w.job, job, event.kind, w.id):
                w.job = job
                return True
            case Success(_):
                self.counters["stale_writes_refused"] += 1
                self.explain(w, event)
            case Failure(refusal):
                self.counters["stale_steps_refused"] += 1
                self.anomalies.append(f"{w.id} could not step its own copy: {refusal}")
        self.counters["attempts_abandoned"] += 1
        self.end_attempt(w)
        return False

    def explain(self, w: _Worker, event: events.Event) -> None:
        """Why a write lost: the machine must refuse it on the store's copy too."""
        assert w.job is not None
        current = self.store.get_now(jobs.id(w.job))
        if current is None:
            self.anomalies.append(f"job {jobs.id(w.job)} vanished from the store")
            return
        match self.step(current, event):
            case Failure(refusal):
                self.counters[f"fenced_{refusal.code}"] += 1
            case Success(_):
                self.anomalies.append(
                    f"{w.id} lost a {event.kind} write on {jobs.id(w.job)} claim {w.claim} "
                    "although the store still gives it the lease"
                )

    def end_attempt(self, w: _Worker) -> None:
        if w.gen is not None:
            w.gen.close()
        w.job, w.gen, w.epoch = None, None, w.epoch + 1
        if not self.draining:
            self.later(0.0, self.poll, w)

    def crash(self, w: _Worker) -> None:
        assert w.job is not None
        self.counters["crashes"] += 1
        stored = self.store.get_now(jobs.id(w.job))
        if (
            stored is not None
            and jobs.lease_owner(stored) == w.id
            and jobs.claim(stored) == w.claim
        ):
            self.counters["crashes_holding_lease"] += 1
            self.losses.add((jobs.id(w.job), w.claim))
        if w.gen is not None:
            w.gen.close()
        w.alive, w.job, w.gen = False, None, None
        self.later(self.config.restart_seconds * self.rng.uniform(0.5, 1.5), self.spawn)

    def reap(self, w: _Worker) -> None:
        if not w.alive:
            return
        if not w.blocked:
            for seen in self.store.stalled_now(self.now(), 10):
                self.later(self.latency(), self.expire, w, seen)
        self.later(self.config.reap_every, self.reap, w)

    def expire(self, w: _Worker, seen: jobs.Job) -> None:
        if not w.alive or w.blocked:
            return
        expired = events.LeaseExpired(policy=self.policy, sample=self.rng.random())
        match self.step(seen, expired):
            case Success((job, _)) if self.commit(seen, job, expired.kind, f"reaper:{w.id}"):
                self.counters["stalls"] += 1
            case Success(_):
                self.counters["reaper_races_lost"] += 1
            case Failure(_):
                self.counters["reaps_refused"] += 1

    def release(self, w: _Worker) -> None:
        assert w.job is not None
        if self.write(w, events.LeaseReleased(worker=w.id, claim=w.claim)):
            self.counters["released"] += 1
            self.end_attempt(w)

    def shutdown(self) -> None:
        """The horizon: stop claiming, hand running jobs back; blocked workers do it on waking."""
        self.draining = True
        for w in self.workers:
            if w.alive and w.job is not None and not w.blocked:
                self.release(w)


def simulate(config: SimConfig, *, store: MemoryJobStore | None = None) -> Report:
    """Run `config` to quiescence or to its horizon; `store` (empty) replaces the indexed one."""
    run = _Run(config, faults.IndexedStore() if store is None else store)
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


# -- invariants -----------------------------------------------------------------------


def check(report: Report) -> list[str]:
    """Every invariant the run violated, one line each; empty when all hold.

    - Every job is terminal. `pending` is legitimate only when the run was cut at the
      horizon (not due yet, backlogged, or released by the shutdown); `processing` never.
    - Per job the write log is a chain: each write expected the version the one before
      made and made exactly one more, and the store holds the last. So a stale copy
      never overwrote a newer one.
    - Every logged move is in `status.TRANSITIONS`; attempts never exceed maxAttempts;
      the logged claims are the history's entries; `released` only at the shutdown.
    - No job completed twice, or after it was cancelled.
    - A completed job has one succeeded attempt; its claim names the resultKey, the
      resultUrl points at that key, and that claim wrote the blob.
    - The `stalled` history entries are exactly the injected lease losses, by (job,
      claim): crashes while holding a lease, and slow calls whose worker woke to find
      its lease reaped.
    - The simulator saw no anomaly (such as a write lost while the store still gave
      the writer its lease).
    """
    problems = [f"anomaly: {text}" for text in report.anomalies]
    log: dict[str, list[Write]] = {}
    for write in report.writes:
        log.setdefault(write.job_id, []).append(write)
    problems += [f"{job_id}: written but not in the store" for job_id in log.keys() - report.jobs]
    for job_id, job in sorted(report.jobs.items()):
        problems += [f"{job_id}: {p}" for p in _check_job(report, job, log.get(job_id, []))]
    stalled = {
        (job_id, int(entry["attempt"]))
        for job_id, job in report.jobs.items()
        for entry in jobs.history(job)
        if entry.get("outcome") == jobs.STALLED
    }
    if stalled != report.lease_losses:
        problems.append(
            f"{len(stalled)} stalled attempts but {len(report.lease_losses)} injected lease losses;"
            f" stalls nobody caused: {sorted(stalled - report.lease_losses)[:5]};"
            f" losses never reaped: {sorted(report.lease_losses - stalled)[:5]}"
        )
    return problems


def _check_job(report: Report, job: jobs.Job, log: list[Write]) -> list[str]:
    problems: list[str] = []
    state = jobs.status(job)
    if state == PROCESSING:
        problems.append(f"still processing when the run {report.stopped}")
    elif state == PENDING and report.stopped != "horizon":
        problems.append("pending although the run went on until nothing was active")
    version, cancelled = 0, False
    for write in log:
        if (write.expected, write.version) != (version, version + 1):
            problems.append(
                f"{write.kind} by {write.actor} wrote v{write.expected}->v{write.version} over"
                f" v{version}: a stale copy overwrote a newer one"
            )
        version = write.version
        source = None if write.source is None else Status(write.source)
        if Status(write.target) not in targets(source, write.kind):
            problems.append(
                f"{write.kind} moved {write.source} to {write.target}: not in the table"
            )
        if write.attempts > jobs.max_attempts(job):
            problems.append(
                f"{write.attempts} attempts exceed maxAttempts {jobs.max_attempts(job)}"
            )
        if cancelled and write.target == COMPLETED:
            problems.append(f"completed by {write.actor} after it was cancelled")
        cancelled = cancelled or write.target == "cancelled"
    if jobs.version(job) != version:
        problems.append(f"stored v{jobs.version(job)} but the last logged write made v{version}")
    if sum(write.kind == "succeeded" for write in log) > 1:
        problems.append("completed more than once")
    if sum(write.kind == "claimed" for write in log) != jobs.claim(job):
        problems.append("the claims in the write log do not match the history")
    history = jobs.history(job)
    if report.stopped != "horizon" and any(e.get("outcome") == jobs.RELEASED for e in history):
        problems.append("released although the workers never shut down")
    won = [entry for entry in history if entry.get("outcome") == jobs.SUCCEEDED]
    if state != COMPLETED:
        return problems + (["has a succeeded attempt but is not completed"] if won else [])
    if len(won) != 1:
        return [*problems, f"completed with {len(won)} succeeded attempts"]
    return problems + _check_result(report, job, int(won[0]["attempt"]), won[0].get("resultKey"))


def _check_result(report: Report, job: jobs.Job, claim: int, entry_key: Any) -> list[str]:
    """The result document was written by the attempt that succeeded, and nowhere else."""
    key = pipeline.result_key(job, claim)
    result = jobs.result(job)
    problems = []
    if result is None or result.get("resultKey") != key or entry_key != key:
        problems.append(f"result key {entry_key!r} is not the succeeded claim {claim}'s {key!r}")
    if jobs.result_url(job) != faults.blob_url(key):
        problems.append(f"resultUrl {jobs.result_url(job)!r} does not point at {key!r}")
    data = report.blobs.get(key)
    if data is None or faults.written_by(data) != (jobs.id(job), claim):
        problems.append(f"blob {key!r} was not written by claim {claim}")
    return problems
