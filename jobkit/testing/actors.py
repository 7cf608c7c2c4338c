"""The simulator's workers: each claims and runs jobs, heartbeats, and reaps stalled leases."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from returns.result import Failure, Success

from jobkit import effects, errors, events, instants, jobs, pipeline
from jobkit.status import PENDING
from jobkit.testing import faults
from jobkit.testing.memory import MemoryJobStore

if TYPE_CHECKING:  # the run spawns its workers, so it is imported for types only
    from jobkit.testing.simulator import Run


class Worker:
    """What `jobkit.worker` does, one action at a time on its run's heap.

    Every write steps the worker's own copy of the job and compare-and-sets it; a
    write that loses abandons the attempt.
    """

    __slots__ = ("alive", "blocked", "claim", "epoch", "gen", "id", "job", "run")

    def __init__(self, run: Run, worker_id: str) -> None:
        self.run = run
        self.id = worker_id
        self.alive = True
        self.blocked = False  # in a slow call: no heartbeats, no reaping
        self.epoch = 0  # bumped whenever an attempt starts or ends: stale timers see it
        self.job: jobs.Job | None = None  # our copy, as last written
        self.claim = 0
        self.gen: pipeline.Pipeline | None = None

    # -- claiming ------------------------------------------------------------------

    def poll(self) -> None:
        run = self.run
        if not self.alive or self.job is not None or run.draining:
            return
        found = run.store.claimable_now(run.now(), None, 1)
        if found:
            run.later(run.latency(), self.claim_job, found[0])
            return
        sleep = run.config.poll_seconds
        due = _next_due(run.store)
        if due is not None:
            sleep = min(sleep, instants.seconds_between(run.now(), due))
        run.later(max(sleep, 0.001) + run.latency(), self.poll)

    def claim_job(self, seen: jobs.Job) -> None:
        run = self.run
        if not self.alive or run.draining:
            return
        claimed = events.Claimed(worker=self.id, lease_seconds=run.config.lease_seconds)
        match run.step(seen, claimed):
            case Success((job, _)) if run.commit(seen, job, claimed.kind, self.id):
                run.counters["claims"] += 1
                self.start(job)
                return
            case Success(_):
                run.counters["claim_races_lost"] += 1
            case Failure(_):
                run.counters["claims_refused"] += 1
        self.poll()

    def start(self, job: jobs.Job) -> None:
        run = self.run
        self.job, self.claim, self.epoch = job, jobs.claim(job), self.epoch + 1
        self.gen = run.types.types[jobs.type_name(job)].pipeline(job, self.claim)
        run.later(run.config.heartbeat_every, self.heartbeat, self.epoch)
        self.advance(None)

    # -- running the pipeline ------------------------------------------------------

    def advance(self, value: Any) -> None:
        """Send `value` into the pipeline and stand at the next effect boundary."""
        run, config = self.run, self.run.config
        assert self.gen is not None
        try:
            effect = self.gen.send(value)
        except StopIteration as stop:
            self.finish(stop.value)
            return
        fault = faults.draw(run.rng, config.fault_rate, config.fault_weights)
        if fault is faults.Fault.CRASH:
            self.crash()
            return
        if fault is faults.Fault.SLOW:
            run.counters["overruns"] += 1
            self.blocked = True
            run.blocked += 1
            seconds = config.lease_seconds * run.rng.uniform(*config.slow_leases)
        elif isinstance(effect, effects.ReportProgress):
            seconds = run.latency()
        else:
            seconds = faults.duration(run.rng, effect, config.effect_seconds)
        run.later(seconds, self.effect_done, self.epoch, effect, fault)

    def effect_done(
        self, epoch: int, effect: effects.PipelineEffect, fault: faults.Fault | None
    ) -> None:
        run = self.run
        if not self.alive or self.epoch != epoch or self.job is None or self.gen is None:
            return
        if self.blocked:
            self.blocked = False
            run.blocked -= 1
            if not self.wake():
                return
        if isinstance(effect, effects.ReportProgress):
            if fault in (faults.Fault.TRANSIENT, faults.Fault.PERMANENT):
                run.counters["progress_reports_lost"] += 1  # best effort, by contract
                self.advance(None)
                return
            report = events.ProgressReported(
                worker=self.id,
                claim=self.claim,
                current=effect.current,
                total=effect.total,
                message=effect.message,
            )
            if self.write(report):
                self.advance(None)
            return
        result: faults.Performed
        if fault in (faults.Fault.TRANSIENT, faults.Fault.PERMANENT):
            run.counters[fault.value] += 1
            result = Failure(faults.injected_error(fault, effect))
        else:
            result = run.world.perform(effect)
        match result:
            case Success(value):
                self.advance(value)
            case Failure(err):
                self.gen.close()
                self.finish(Failure(err))

    def wake(self) -> bool:
        """Back from a call slower than the lease: say so with a heartbeat, which is refused
        when the lease was reaped meanwhile. True when the attempt may go on."""
        run = self.run
        assert self.job is not None
        lease_end = jobs.lease_expires_at(self.job)
        job_id, claim = jobs.id(self.job), self.claim
        beat = events.Heartbeat(worker=self.id, claim=claim, lease_seconds=run.config.lease_seconds)
        if self.write(beat):
            run.counters["overruns_revived"] += 1  # nobody reaped it in time: the lease lives
            if run.draining:
                self.release()
                return False
            return True
        run.counters["overruns_reaped"] += 1
        run.losses.add((job_id, claim))
        if lease_end is None or lease_end > run.now():
            run.anomalies.append(f"{self.id} lost {job_id} claim {claim} before its lease ran out")
        return False

    def heartbeat(self, epoch: int) -> None:
        run = self.run
        if not self.alive or self.epoch != epoch or self.job is None:
            return
        if not self.blocked:
            beat = events.Heartbeat(
                worker=self.id, claim=self.claim, lease_seconds=run.config.lease_seconds
            )
            if not self.write(beat):
                return
            run.counters["heartbeats"] += 1
        run.later(run.config.heartbeat_every, self.heartbeat, epoch)

    def finish(self, outcome: pipeline.Outcome) -> None:
        run = self.run
        event: events.Event
        match outcome:
            case Success(done):
                event = events.AttemptSucceeded(
                    worker=self.id,
                    claim=self.claim,
                    result=done.result,
                    result_key=done.document_key,
                )
            case Failure(err):
                sample = run.rng.random()
                event = events.AttemptFailed(
                    worker=self.id, claim=self.claim, error=err, policy=run.policy, sample=sample
                )
            case _:
                raise errors.JobkitError(f"the pipeline returned {outcome!r}, not a Result")
        if self.write(event):
            run.counters[f"attempts_{event.kind}"] += 1
            self.end_attempt()

    # -- writing and losing --------------------------------------------------------

    def write(self, event: events.Event) -> bool:
        """Step our copy and compare-and-set it; on a loss, abandon the attempt."""
        run = self.run
        assert self.job is not None
        match run.step(self.job, event):
            case Success((job, _)) if run.commit(self.job, job, event.kind, self.id):
                self.job = job
                return True
            case Success(_):
                run.counters["stale_writes_refused"] += 1
                self.explain(event)
            case Failure(refusal):
                run.counters["stale_steps_refused"] += 1
                run.anomalies.append(f"{self.id} could not step its own copy: {refusal}")
        run.counters["attempts_abandoned"] += 1
        self.end_attempt()
        return False

    def explain(self, event: events.Event) -> None:
        """Why a write lost: the machine must refuse it on the store's copy too."""
        run = self.run
        assert self.job is not None
        current = run.store.get_now(jobs.id(self.job))
        if current is None:
            run.anomalies.append(f"job {jobs.id(self.job)} vanished from the store")
            return
        match run.step(current, event):
            case Failure(refusal):
                run.counters[f"fenced_{refusal.code}"] += 1
            case Success(_):
                run.anomalies.append(
                    f"{self.id} lost a {event.kind} write on {jobs.id(self.job)} claim"
                    f" {self.claim} although the store still gives it the lease"
                )

    def end_attempt(self) -> None:
        if self.gen is not None:
            self.gen.close()
        self.job, self.gen, self.epoch = None, None, self.epoch + 1
        if not self.run.draining:
            self.run.later(0.0, self.poll)

    def crash(self) -> None:
        run = self.run
        assert self.job is not None
        run.counters["crashes"] += 1
        stored = run.store.get_now(jobs.id(self.job))
        if (
            stored is not None
            and jobs.lease_owner(stored) == self.id
            and jobs.claim(stored) == self.claim
        ):
            run.counters["crashes_holding_lease"] += 1
            run.losses.add((jobs.id(self.job), self.claim))
        if self.gen is not None:
            self.gen.close()
        self.alive, self.job, self.gen = False, None, None
        run.later(run.config.restart_seconds * run.rng.uniform(0.5, 1.5), run.spawn)

    def release(self) -> None:
        assert self.job is not None
        if self.write(events.LeaseReleased(worker=self.id, claim=self.claim)):
            self.run.counters["released"] += 1
            self.end_attempt()

    # -- reaping -------------------------------------------------------------------

    def reap(self) -> None:
        run = self.run
        if not self.alive:
            return
        if not self.blocked:
            for seen in run.store.stalled_now(run.now(), 10):
                run.later(run.latency(), self.expire, seen)
        run.later(run.config.reap_every, self.reap)

    def expire(self, seen: jobs.Job) -> None:
        run = self.run
        if not self.alive or self.blocked:
            return
        expired = events.LeaseExpired(policy=run.policy, sample=run.rng.random())
        match run.step(seen, expired):
            case Success((job, _)) if run.commit(seen, job, expired.kind, f"reaper:{self.id}"):
                run.counters["stalls"] += 1
            case Success(_):
                run.counters["reaper_races_lost"] += 1
            case Failure(_):
                run.counters["reaps_refused"] += 1


def _next_due(store: MemoryJobStore) -> datetime | None:
    """The earliest pending runAt (all in the future, as nothing was claimable)."""
    if isinstance(store, faults.IndexedStore):
        return store.next_due_now()
    pending = (job for job in store.all() if jobs.status_or_none(job) == PENDING)
    return min(map(jobs.run_at, pending), default=None)
