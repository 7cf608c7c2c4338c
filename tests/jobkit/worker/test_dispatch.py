"""Push dispatch against the reference store, on the virtual-time loop: each doorbell runs
one due job to the end; the worker's writes that leave a job pending ring for it at its
`runAt`; concurrent dispatches share out the due jobs; a stop releases what outlasts the
grace period and rings for it; the sweep reaps and makes up for lost doorbells."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Collection
from datetime import datetime

import attrs
from returns.result import Failure, Result, Success

from jobkit import effects, errors, events, instants, jobs, machine, pipeline, registry, retry
from jobkit.status import Status
from jobkit.testing import loop as virtual
from jobkit.worker import Performer
from jobkit.worker.dispatch import Dispatcher, Outcome
from jobkit.worker.worker import WorkerConfig, performers_from
from tests.jobkit.worker.support import FAST, NOW, Watched, get, submit
from tests.jobkit.worker.tasks_queue import TasksQueue
from tests.jobkit.worker.test_worker import TINY, UNAVAILABLE, Gate, answers, entries, reads, steal

RETRYING = retry.RetryPolicy(max_attempts=3, backoff=TINY)
TYPES = registry.of([registry.JobType(name="reads", pipeline=reads, retry=RETRYING)])


def dispatcher(
    store: Watched,
    bells: TasksQueue,
    read: Performer,
    config: WorkerConfig = FAST,
    worker_id: str = "instance-1",
) -> Dispatcher:
    return Dispatcher(
        store=store,
        types=TYPES,
        performers_for=performers_from({effects.ReadBlob: read}),
        doorbell=bells,
        config=config,
        worker_id=worker_id,
        clock=NOW,
        rng=random.Random(3),
    )


def statuses(store: Watched, *job_ids: str) -> list[Status]:
    return [jobs.status(get(store, job_id)) for job_id in job_ids]


def finished(store: Watched, *job_ids: str) -> Callable[[], bool]:
    final = {Status.COMPLETED, Status.FAILED}
    return lambda: all(s in final for s in statuses(store, *job_ids))


def test_each_doorbell_runs_one_due_job_to_the_end_and_a_spare_one_finds_nothing() -> None:
    store, bells = Watched(), TasksQueue()
    for n in range(3):
        submit(store, TYPES, "reads", f"job-{n}")
    read, calls = answers(Success(b"data"))
    subject = dispatcher(store, bells, read)

    async def main() -> list[Outcome]:
        return [await subject.dispatch() for _ in range(4)]

    outcomes = virtual.run(main())
    assert [o.result for o in outcomes] == ["completed", "completed", "completed", "idle"]
    assert sorted(o.job_id or "" for o in outcomes[:3]) == ["job-0", "job-1", "job-2"]
    assert all(o.attempt == 1 for o in outcomes[:3])
    assert statuses(store, "job-0", "job-1", "job-2") == [Status.COMPLETED] * 3
    assert len(calls) == 3
    assert bells.rung == []  # nothing was left pending: nothing to ring for
    assert not outcomes[0].again
    assert outcomes[3] == Outcome(result="idle")


def test_a_doorbell_takes_the_first_job_in_claim_order_whichever_it_was_rung_for() -> None:
    store, bells = Watched(), TasksQueue()
    for job_id, priority in [("p10", 10), ("p90", 90), ("p50", 50)]:
        submit(store, TYPES, "reads", job_id, priority=priority)
    read, _ = answers(Success(b""))
    subject = dispatcher(store, bells, read)

    async def main() -> list[str | None]:
        return [(await subject.dispatch()).job_id for _ in range(3)]

    assert virtual.run(main()) == ["p90", "p50", "p10"]


def test_a_transient_failure_rings_at_its_backoff_and_that_doorbell_runs_the_retry() -> None:
    store, bells = Watched(), TasksQueue()
    submit(store, TYPES, "reads", "job-1")
    bells.ring(None)  # as the submission did
    read, calls = answers(Failure(UNAVAILABLE), Failure(UNAVAILABLE), Success(b"four"))
    subject = dispatcher(store, bells, read)

    virtual.run(bells.deliver([subject], finished(store, "job-1")))

    job = get(store, "job-1")
    assert jobs.status(job) is Status.COMPLETED
    assert len(calls) == 3
    first, second, third = entries(job)
    # Each failure rang once, at the retry's due time, and that ring started the next try.
    assert bells.rung[1:] == [first["nextRunAt"], second["nextRunAt"]]
    assert second["startedAt"] >= first["nextRunAt"]
    assert third["startedAt"] >= second["nextRunAt"]
    assert [o.result for o in bells.outcomes] == ["retrying", "retrying", "completed"]


def test_a_job_scheduled_later_is_not_run_by_an_early_doorbell() -> None:
    store, bells = Watched(), TasksQueue()
    submit(store, TYPES, "reads", "later", delaySeconds=2)
    read, _ = answers(Success(b""))
    subject = dispatcher(store, bells, read)

    async def main() -> tuple[Outcome, Outcome]:
        early = await subject.dispatch()
        await asyncio.sleep(2.01)
        return early, await subject.dispatch()

    early, due = virtual.run(main())
    assert early.result == "idle"
    assert (due.result, due.job_id) == ("completed", "later")


def test_concurrent_dispatches_in_one_process_share_the_due_jobs_without_racing() -> None:
    store, bells = Watched(), TasksQueue()
    for n in range(6):
        submit(store, TYPES, "reads", f"job-{n}")

    async def main() -> list[Outcome]:
        gate = Gate()
        subject = dispatcher(store, bells, gate.read, attrs.evolve(FAST, concurrency=6))
        running = [asyncio.create_task(subject.dispatch()) for _ in range(6)]
        await asyncio.sleep(0.01)
        assert subject.running == 6  # every dispatch holds a job of its own
        gate.opened.set()
        return await asyncio.gather(*running)

    outcomes = virtual.run(main())
    assert sorted(o.job_id or "" for o in outcomes) == [f"job-{n}" for n in range(6)]
    assert {o.result for o in outcomes} == {"completed"}


def test_two_instances_racing_for_one_job_run_it_once() -> None:
    store, bells = Watched(), TasksQueue()
    submit(store, TYPES, "reads", "only")
    read, calls = answers(Success(b""))
    first = dispatcher(store, bells, read, worker_id="instance-1")
    second = dispatcher(store, bells, read, worker_id="instance-2")

    async def main() -> list[Outcome]:
        return list(await asyncio.gather(first.dispatch(), second.dispatch()))

    outcomes = virtual.run(main())
    assert sorted(str(o.result) for o in outcomes) == ["completed", "idle"]
    assert len(calls) == 1


def test_a_stop_lets_short_attempts_finish_releases_the_rest_and_rings_for_them() -> None:
    store, bells = Watched(), TasksQueue()
    submit(store, TYPES, "reads", "long")
    config = attrs.evolve(FAST, grace_seconds=0.5)

    async def main() -> tuple[Outcome, Outcome, Outcome]:
        gate = Gate()  # never opened: the attempt outlasts the grace period
        leaving = dispatcher(store, bells, gate.read, config, worker_id="old")
        held = asyncio.create_task(leaving.dispatch())
        await gate.entered.wait()
        started = asyncio.get_running_loop().time()
        leaving.stop()
        released = await held
        assert asyncio.get_running_loop().time() - started < 0.6  # the grace, then out
        assert gate.cancelled.is_set()
        refused = await leaving.dispatch()
        await leaving.close()
        read, _ = answers(Success(b"done"))
        taking = dispatcher(store, bells, read, config, worker_id="new")
        return released, refused, await taking.dispatch()

    released, refused, taken = virtual.run(main())
    assert (released.result, released.job_id, released.again) == ("released", "long", True)
    assert (refused.result, refused.again) == ("stopping", True)
    assert (taken.result, taken.job_id, taken.attempt) == ("completed", "long", 2)
    job = get(store, "long")
    assert [jobs.entry_outcome(e) for e in jobs.history(job)] == [jobs.RELEASED, jobs.SUCCEEDED]
    assert jobs.attempts(job) == 1  # a released attempt does not count
    assert len(bells.rung) == 1  # the release rang once, for now


def test_an_attempt_that_ends_within_the_grace_period_completes() -> None:
    store, bells = Watched(), TasksQueue()
    submit(store, TYPES, "reads", "short")

    async def main() -> Outcome:
        gate = Gate()
        subject = dispatcher(store, bells, gate.read, attrs.evolve(FAST, grace_seconds=1.0))
        held = asyncio.create_task(subject.dispatch())
        await gate.entered.wait()
        subject.stop()
        await asyncio.sleep(0.2)
        gate.opened.set()
        outcome = await held
        await subject.close()
        return outcome

    assert virtual.run(main()).result == "completed"
    assert bells.rung == []


def test_a_lease_lost_to_another_worker_is_reported_lost() -> None:
    store, bells = Watched(), TasksQueue()
    submit(store, TYPES, "reads", "stolen")
    quiet = attrs.evolve(FAST, lease_seconds=0.4, heartbeat_seconds=0.3)

    async def main() -> Outcome:
        gate = Gate()
        subject = dispatcher(store, bells, gate.read, quiet)
        held = asyncio.create_task(subject.dispatch())
        await gate.entered.wait()
        await asyncio.sleep(0.41)  # the lease ran out before a heartbeat renewed it
        steal(store, "stolen", "thief")
        return await held

    assert virtual.run(main()).result == "lost"


def test_the_sweep_reaps_expired_leases_and_rings_for_each() -> None:
    store, bells = Watched(), TasksQueue()
    job = submit(store, TYPES, "reads", "stalled")
    # An instance claimed it and vanished: no heartbeat, no release.
    crashed = events.Claimed(worker="crashed", lease_seconds=0.4)
    taken, _ = machine.step(job, crashed, virtual.START).unwrap()
    assert store.compare_and_set_now(jobs.version(job), taken)
    read, _ = answers(Success(b""))
    sweeping = dispatcher(store, bells, read, worker_id="sweeper")

    async def main() -> None:
        early = await sweeping.sweep()
        assert (early.reaped, early.due, early.rung) == (0, 0, 0)  # its lease still runs
        await asyncio.sleep(0.5)
        swept = await sweeping.sweep()
        assert (swept.reaped, swept.rung) == (1, 0)  # reaped, it rang for itself
        assert bells.rung == [jobs.run_at(get(store, "stalled"))]
        await bells.deliver([sweeping], finished(store, "stalled"))

    virtual.run(main())
    history = jobs.history(get(store, "stalled"))
    assert [jobs.entry_outcome(e) for e in history] == [jobs.STALLED, jobs.SUCCEEDED]


def test_the_sweep_rings_once_for_every_due_job_beyond_the_doorbells_waiting() -> None:
    store, bells = Watched(), TasksQueue()
    for n in range(5):
        submit(store, TYPES, "reads", f"job-{n}")
        bells.ring(None)
    submit(store, TYPES, "reads", "later", delaySeconds=3600)
    bells.ring(instants.plus(virtual.START, 3600))
    read, _ = answers(Success(b""))
    subject = dispatcher(store, bells, read)

    async def main() -> None:
        assert bells.lose() == 6  # the queue was purged: every doorbell is lost
        bells.ring(None)  # one came back
        swept = await subject.sweep()
        assert (swept.reaped, swept.due, swept.waiting, swept.rung) == (0, 5, 1, 4)
        again = await subject.sweep()  # nothing more to add: the rings are there
        assert (again.due, again.waiting, again.rung) == (5, 5, 0)
        await bells.deliver([subject], finished(store, *(f"job-{n}" for n in range(5))))

    virtual.run(main())
    assert jobs.status(get(store, "later")) is Status.PENDING  # its time has not come
    ran = [o.result for o in bells.outcomes if o.result != "busy"]  # busy: came again later
    assert ran == ["completed"] * 5


def test_a_dispatch_that_loses_every_race_asks_for_its_doorbell_again() -> None:
    class Thieving(Watched):
        """Another instance takes each job between this one's read and its write."""

        def compare_and_set_now(self, expected_version: int, job: jobs.Job) -> bool:
            if jobs.status(job) is Status.PROCESSING and jobs.lease_owner(job) == "instance-1":
                return False
            return super().compare_and_set_now(expected_version, job)

    store, bells = Thieving(), TasksQueue()
    submit(store, TYPES, "reads", "contended")
    read, _ = answers(Success(b""))

    outcome = virtual.run(dispatcher(store, bells, read).dispatch())
    assert (outcome.result, outcome.again) == ("busy", True)


def test_the_outcome_of_a_crashing_performer_is_a_retry() -> None:
    store, bells = Watched(), TasksQueue()
    submit(store, TYPES, "reads", "crash")

    async def boom(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        raise RuntimeError("a bug")

    outcome = virtual.run(dispatcher(store, bells, boom).dispatch())
    assert (outcome.result, outcome.again) == ("retrying", False)
    assert len(bells.rung) == 1


def test_a_pipeline_done_without_an_effect_is_completed_at_once() -> None:
    def nothing(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        return Success(pipeline.Completion(result={"ok": True}))
        yield  # a generator that asks for nothing

    store, bells = Watched(), TasksQueue()
    types = registry.of([registry.JobType(name="nothing", pipeline=nothing)])
    submit(store, types, "nothing", "quick")
    subject = Dispatcher(
        store=store,
        types=types,
        performers_for=performers_from({}),
        doorbell=bells,
        config=FAST,
        clock=NOW,
    )
    outcome = virtual.run(subject.dispatch())
    assert (outcome.result, outcome.job_id) == ("completed", "quick")


def test_a_dispatch_beyond_the_concurrency_asks_for_its_doorbell_again() -> None:
    store, bells = Watched(), TasksQueue()
    for n in range(3):
        submit(store, TYPES, "reads", f"job-{n}")

    async def main() -> tuple[list[Outcome], Outcome]:
        gate = Gate()
        subject = dispatcher(store, bells, gate.read, attrs.evolve(FAST, concurrency=2))
        running = [asyncio.create_task(subject.dispatch()) for _ in range(2)]
        await asyncio.sleep(0.01)
        full = await subject.dispatch()
        gate.opened.set()
        return list(await asyncio.gather(*running)), full

    ran, full = virtual.run(main())
    assert [o.result for o in ran] == ["completed", "completed"]
    assert (full.result, full.again) == ("busy", True)
    assert jobs.status(get(store, "job-2")) is Status.PENDING


def test_concurrent_dispatches_whose_reads_take_time_still_take_one_job_each() -> None:
    class Slow(Watched):
        """Reads and writes that take a while: every dispatch reads before a claim lands."""

        async def claimable(
            self, now: datetime, queues: Collection[str] | None, limit: int
        ) -> list[jobs.Job]:
            found = self.claimable_now(now, queues, limit)
            await asyncio.sleep(0.01)
            return found

        async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
            await asyncio.sleep(0.01)
            return self.compare_and_set_now(expected_version, job)

    store, bells = Slow(), TasksQueue()
    for n in range(3):
        submit(store, TYPES, "reads", f"job-{n}")

    async def main() -> list[Outcome]:
        gate = Gate()
        subject = dispatcher(store, bells, gate.read)
        running = [asyncio.create_task(subject.dispatch()) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert subject.running == 3
        gate.opened.set()
        return list(await asyncio.gather(*running))

    outcomes = virtual.run(main())
    assert sorted(o.job_id or "" for o in outcomes) == ["job-0", "job-1", "job-2"]
