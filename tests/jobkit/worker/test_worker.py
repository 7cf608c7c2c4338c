"""The async worker against the reference store, on the virtual-time event loop
(`jobkit.testing.loop`): leases, heartbeats, backoffs and grace periods play out in
virtual seconds, exactly and at once. Time limits only stop a hung test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from pyrsistent import pmap
from returns.result import Failure, Result, Success

from jobkit import effects, errors, events, instants, jobs, machine, pipeline, registry, retry
from jobkit.status import TERMINAL, Status
from jobkit.testing import MemoryJobStore
from jobkit.testing import loop as virtual
from jobkit.worker import Performer
from jobkit.worker.worker import Worker, WorkerConfig
from tests.jobkit.worker.support import FAST, HUNG, Watched, get, make_worker, submit

QUIET = attrs.evolve(FAST, lease_seconds=30.0, heartbeat_seconds=10.0)  # no heartbeat writes
TINY = retry.Backoff(base=0.02, factor=1.0, cap=0.02)  # a retry falls due within 20 ms
UNAVAILABLE = errors.transient("unavailable", "the model is overloaded")


# -- job types and performers ------------------------------------------------------------


def upper(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    """Writes the upper-cased `text` param as the attempt's result document."""
    text = str(jobs.params(job)["text"])
    key = pipeline.result_key(job, claim, "txt")
    written = yield effects.WriteBlob(
        key=key, data=text.upper().encode(), content_type="text/plain"
    )
    return Success(pipeline.Completion(result={"length": len(text)}, document=written))


def reads(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    """Reads one blob (the test's performer decides what that does) and reports its size."""
    data = yield effects.ReadBlob(key=f"inputs/{jobs.id(job)}")
    return Success(pipeline.Completion(result={"size": len(data)}))


class Blobs:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def write(self, effect: effects.WriteBlob) -> Result[effects.BlobInfo, errors.Error]:
        self.data[effect.key] = effect.data
        size, kind = len(effect.data), effect.content_type
        return Success(effects.BlobInfo(key=effect.key, size=size, content_type=kind))


class Gate:
    """A `ReadBlob` performer that blocks until `opened`, noting entry and cancellation.

    Build it inside the running loop: its events belong to one loop.
    """

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def read(self, effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        self.entered.set()
        try:
            await self.opened.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return Success(b"opened")


def answers(*script: Result[bytes, errors.Error]) -> tuple[Performer, list[str]]:
    """A `ReadBlob` performer giving `script` in turn (its last answer from then on)."""
    calls: list[str] = []

    async def read(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        calls.append(effect.key)
        return script[min(len(calls), len(script)) - 1]

    return read, calls


# -- helpers -----------------------------------------------------------------------------


def entries(job: jobs.Job) -> list[dict[str, Any]]:
    """The job's history with every key in each entry (None when unset), as the API shows it."""
    return [dict.fromkeys(jobs.ENTRY_KEYS) | dict(entry) for entry in jobs.history(job)]


def settled(store: MemoryJobStore, *job_ids: str) -> Callable[[], bool]:
    return lambda: all(jobs.status(get(store, i)) in TERMINAL for i in job_ids)


async def run_until(worker: Worker, store: Watched, done: Callable[[], bool]) -> None:
    """`run()` the worker until a write makes `done()` true, then stop it and wait for
    `run()` to return."""
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(HUNG):
            await store.until(done)
    finally:
        worker.stop()
        await asyncio.wait_for(task, HUNG)


def steal(store: MemoryJobStore, job_id: str, thief: str) -> jobs.Job:
    """Another worker finds the lease expired and claims the job, through the machine.

    The machine is pure, so the thief observes the expiry at the instant after it,
    as a process whose clock runs a little ahead would.
    """
    job = get(store, job_id)
    expires = jobs.lease_expires_at(job)
    assert expires is not None
    after = instants.plus(expires, 0.001)
    moves: list[events.Event] = [
        events.LeaseExpired(policy=retry.RetryPolicy(backoff=TINY), sample=0.0),
        events.Claimed(worker=thief, lease_seconds=60.0),
    ]
    taken, _ = machine.apply_all(job, moves, after).unwrap()
    assert store.compare_and_set_now(jobs.version(job), taken)
    return taken


Seen = list[tuple[str, int, Status]]


def recorder(seen: Seen) -> Callable[[effects.MachineEffect, jobs.Job], None]:
    def hook(effect: effects.MachineEffect, job: jobs.Job) -> None:
        assert isinstance(effect, effects.Lifecycle)
        assert effect.job_id == jobs.id(job)
        seen.append((effect.name, effect.attempt, jobs.status(job)))

    return hook


# -- burst mode: drain ----------------------------------------------------------------------


def test_drain_runs_every_due_job_and_records_its_result() -> None:
    store, blobs = Watched(), Blobs()
    types = registry.of([registry.JobType(name="upper", pipeline=upper)])
    for i in range(5):
        submit(store, types, "upper", f"job-{i}", params={"text": f"hello {i}"})
    worker = make_worker(store, types, {effects.WriteBlob: blobs.write}, worker_id="w1")

    async def main() -> tuple[int, int]:
        return await worker.drain(), await worker.drain()

    assert virtual.run(main()) == (5, 0)
    for i in range(5):
        job = get(store, f"job-{i}")
        key = f"results/job-{i}/attempt-1.txt"
        assert blobs.data[key] == f"HELLO {i}".encode()
        assert jobs.status(job) is Status.COMPLETED
        assert jobs.result(job) == pmap({"length": 7})
        assert jobs.result_key(job) == key
        assert (jobs.attempts(job), jobs.error(job)) == (1, None)
        assert (jobs.lease_owner(job), jobs.lease_expires_at(job)) == (None, None)
        [entry] = entries(job)
        assert entry["startedAt"] <= entry["endedAt"]
        assert entry == {
            "attempt": 1,
            "worker": "w1",
            "startedAt": entry["startedAt"],
            "endedAt": entry["endedAt"],
            "outcome": jobs.SUCCEEDED,
            "error": None,
            "nextRunAt": None,
            "delaySeconds": None,
            "resultKey": key,
        }
    assert worker.running == 0


def test_priority_order_is_honoured_one_job_at_a_time() -> None:
    started: list[str] = []

    def noted(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        started.append(jobs.id(job))
        yield effects.ReadBlob(key="anything")
        return Success(pipeline.Completion())

    store = Watched()
    types = registry.of([registry.JobType(name="noted", pipeline=noted)])
    for job_id, priority in [("p10", 10), ("p90", 90), ("p50", 50), ("p70", 70), ("p0", 0)]:
        submit(store, types, "noted", job_id, priority=priority)
    read, _ = answers(Success(b""))
    worker = make_worker(store, types, {effects.ReadBlob: read}, attrs.evolve(FAST, concurrency=1))
    assert virtual.run(worker.drain()) == 5
    assert started == ["p90", "p70", "p50", "p10", "p0"]


def test_a_queue_filter_leaves_other_queues_jobs_pending() -> None:
    store, blobs = Watched(), Blobs()
    types = registry.of([registry.JobType(name="upper", pipeline=upper)])
    for i in range(3):
        submit(store, types, "upper", f"fast-{i}", params={"text": "x"}, queue="fast")
        submit(store, types, "upper", f"slow-{i}", params={"text": "x"}, queue="slow")
    config = attrs.evolve(FAST, queues=frozenset({"fast"}))
    worker = make_worker(store, types, {effects.WriteBlob: blobs.write}, config)
    assert virtual.run(worker.drain()) == 3
    for i in range(3):
        assert jobs.status(get(store, f"fast-{i}")) is Status.COMPLETED
        slow = get(store, f"slow-{i}")
        assert (jobs.status(slow), jobs.version(slow), len(entries(slow))) == (
            Status.PENDING,
            1,
            0,
        )


def test_the_hook_sees_each_lifecycle_effect_with_the_job_as_stored() -> None:
    store, blobs = Watched(), Blobs()
    types = registry.of([registry.JobType(name="upper", pipeline=upper)])
    submit(store, types, "upper", "job-1", params={"text": "x"})
    seen: Seen = []
    worker = make_worker(store, types, {effects.WriteBlob: blobs.write}, on_effect=recorder(seen))
    assert virtual.run(worker.drain()) == 1
    assert seen == [("started", 1, Status.PROCESSING), ("completed", 1, Status.COMPLETED)]


# -- failures and retries --------------------------------------------------------------------


def test_a_transient_failure_is_retried_after_its_backoff_then_succeeds() -> None:
    store = Watched()
    policy = retry.RetryPolicy(max_attempts=3, backoff=TINY)
    types = registry.of([registry.JobType(name="reads", pipeline=reads, retry=policy)])
    submit(store, types, "reads", "job-1")
    read, calls = answers(Failure(UNAVAILABLE), Success(b"four"))
    seen: Seen = []
    worker = make_worker(store, types, {effects.ReadBlob: read}, on_effect=recorder(seen))
    virtual.run(run_until(worker, store, settled(store, "job-1")))

    job = get(store, "job-1")
    assert jobs.status(job) is Status.COMPLETED
    assert jobs.result(job) == pmap({"size": 4})
    assert (jobs.attempts(job), jobs.error(job), len(calls)) == (2, None, 2)
    failed, succeeded = entries(job)
    assert failed["outcome"] == jobs.FAILED
    assert failed["error"] == attrs.evolve(UNAVAILABLE, at=failed["endedAt"])
    assert 0.0 <= failed["delaySeconds"] <= TINY.cap
    assert failed["nextRunAt"] == instants.plus(failed["endedAt"], failed["delaySeconds"])
    assert succeeded["outcome"] == jobs.SUCCEEDED
    assert succeeded["startedAt"] >= failed["nextRunAt"]  # the backoff was waited out
    assert seen == [
        ("started", 1, Status.PROCESSING),
        ("attempt_failed", 1, Status.PENDING),
        ("retried", 1, Status.PENDING),
        ("started", 2, Status.PROCESSING),
        ("completed", 2, Status.COMPLETED),
    ]


def test_a_permanent_error_fails_the_job_at_once() -> None:
    store = Watched()
    policy = retry.RetryPolicy(max_attempts=5, backoff=TINY)
    types = registry.of([registry.JobType(name="reads", pipeline=reads, retry=policy)])
    submit(store, types, "reads", "job-1")
    corrupt = errors.permanent("corrupt_document", "not a PDF")
    read, calls = answers(Failure(corrupt))
    worker = make_worker(store, types, {effects.ReadBlob: read})
    assert virtual.run(worker.drain()) == 1

    job = get(store, "job-1")
    assert (jobs.status(job), jobs.attempts(job), len(calls)) == (Status.FAILED, 1, 1)
    [entry] = entries(job)
    assert jobs.error(job) == attrs.evolve(corrupt, at=entry["endedAt"])
    assert (entry["outcome"], entry["nextRunAt"]) == (jobs.FAILED, None)


def test_a_job_fails_once_its_attempts_are_exhausted() -> None:
    store = Watched()
    policy = retry.RetryPolicy(max_attempts=3, backoff=TINY)
    types = registry.of([registry.JobType(name="reads", pipeline=reads, retry=policy)])
    submit(store, types, "reads", "job-1")
    read, calls = answers(Failure(UNAVAILABLE))
    worker = make_worker(store, types, {effects.ReadBlob: read})
    virtual.run(run_until(worker, store, settled(store, "job-1")))

    job = get(store, "job-1")
    assert (jobs.status(job), jobs.attempts(job), len(calls)) == (Status.FAILED, 3, 3)
    assert jobs.error(job) == entries(job)[-1]["error"]
    assert [(e["attempt"], e["outcome"], e["nextRunAt"] is None) for e in entries(job)] == [
        (1, jobs.FAILED, False),
        (2, jobs.FAILED, False),
        (3, jobs.FAILED, True),
    ]


def test_a_job_running_past_its_types_timeout_fails_with_timeout() -> None:
    closed: list[bool] = []

    def endless(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        try:
            yield effects.ReadBlob(key="never-answered")
            return Success(pipeline.Completion())
        finally:
            closed.append(True)

    store = Watched()
    job_type = registry.JobType(
        name="endless",
        pipeline=endless,
        timeout_seconds=0.05,
        retry=retry.RetryPolicy(max_attempts=1),
    )
    types = registry.of([job_type])
    submit(store, types, "endless", "job-1")

    async def main() -> int:
        gate = Gate()  # never opened
        worker = make_worker(store, types, {effects.ReadBlob: gate.read})
        finished = await asyncio.wait_for(worker.drain(), HUNG)
        assert gate.cancelled.is_set()
        return finished

    assert virtual.run(main()) == 1
    job = get(store, "job-1")
    err = jobs.error(job)
    assert err is not None
    assert (jobs.status(job), err.code, err.retryable) == (Status.FAILED, "timeout", True)
    assert err.message == "the job ran longer than 0.05 s"
    assert closed == [True]


def test_a_crashing_pipeline_is_recorded_as_internal_and_the_worker_carries_on() -> None:
    def crashes(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        data = yield effects.ReadBlob(key="doc")
        return Success(pipeline.Completion(result={"ratio": 1 / len(data)}))

    store, blobs = Watched(), Blobs()
    once = retry.RetryPolicy(max_attempts=1)
    types = registry.of(
        [
            registry.JobType(name="crashes", pipeline=crashes, retry=once, priority=90),
            registry.JobType(name="upper", pipeline=upper, priority=10),
        ]
    )
    submit(store, types, "crashes", "job-1")
    submit(store, types, "upper", "job-2", params={"text": "fine"})
    read, _ = answers(Success(b""))
    table = {effects.ReadBlob: read, effects.WriteBlob: blobs.write}
    worker = make_worker(store, types, table, attrs.evolve(FAST, concurrency=1))
    assert virtual.run(worker.drain()) == 2

    crashed = get(store, "job-1")
    err = jobs.error(crashed)
    assert err is not None
    assert (jobs.status(crashed), err.code, err.retryable) == (Status.FAILED, "internal", True)
    assert err.message == "ZeroDivisionError: division by zero"
    assert err.context == pmap({"exception": "ZeroDivisionError"})
    assert jobs.status(get(store, "job-2")) is Status.COMPLETED


# -- progress ------------------------------------------------------------------------------


def counting(snapshots: list[Any]) -> pipeline.PipelineFactory:
    """Reports 1/4, 2/4, 3/4; reads (the performer snapshots the stored progress); then 4/4."""

    def count(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        for step in range(1, 4):
            yield effects.ReportProgress(current=step, total=4, message=f"step {step}")
        yield effects.ReadBlob(key=jobs.id(job))
        yield effects.ReportProgress(current=4, total=4, message="done")
        return Success(pipeline.Completion())

    return count


def run_counting(progress_seconds: float, pause: float = 0.0) -> tuple[Any, jobs.Job]:
    """The counting job; its read waits `pause` seconds, then snapshots the stored progress."""
    snapshots: list[Any] = []
    store = Watched()
    types = registry.of([registry.JobType(name="count", pipeline=counting(snapshots))])
    submit(store, types, "count", "job-1")

    async def snapshot(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        await asyncio.sleep(pause)
        snapshots.append(jobs.progress(get(store, effect.key)))
        return Success(b"")

    config = attrs.evolve(QUIET, progress_seconds=progress_seconds)
    worker = make_worker(store, types, {effects.ReadBlob: snapshot}, config)
    assert virtual.run(worker.drain()) == 1
    [seen] = snapshots
    return seen, get(store, "job-1")


def test_progress_waits_its_turn_and_the_last_report_rides_on_the_completion() -> None:
    seen, job = run_counting(progress_seconds=1e9)  # longer than the whole run
    assert seen is None  # the claim counts as a progress write: none since
    assert jobs.progress(job) == pmap({"current": 4, "total": 4, "message": "done"})
    # submitted, claimed, succeeded (recording 4/4): no progress write of its own
    assert (jobs.status(job), jobs.version(job)) == (Status.COMPLETED, 3)


def test_a_waiting_report_is_written_when_its_turn_comes() -> None:
    seen, job = run_counting(progress_seconds=0.5, pause=2.0)
    assert seen == pmap({"current": 3, "total": 4, "message": "step 3"})  # the latest, at 0.5 s
    assert jobs.progress(job) == pmap({"current": 4, "total": 4, "message": "done"})
    # submitted, claimed, 3/4 when its turn came, succeeded with 4/4
    assert (jobs.status(job), jobs.version(job)) == (Status.COMPLETED, 4)


def test_without_throttling_every_progress_report_is_written() -> None:
    seen, job = run_counting(progress_seconds=0.0)
    assert seen == pmap({"current": 3, "total": 4, "message": "step 3"})
    assert jobs.progress(job) == pmap({"current": 4, "total": 4, "message": "done"})
    assert (jobs.status(job), jobs.version(job)) == (Status.COMPLETED, 7)


# -- leases: heartbeats, stalls, theft ------------------------------------------------------


def test_heartbeats_keep_a_long_job_leased_past_several_lease_lengths() -> None:
    entered = asyncio.Event()

    async def slow(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        entered.set()
        await asyncio.sleep(1.2)  # three lease lengths
        return Success(b"slow")

    store = Watched()
    types = registry.of([registry.JobType(name="reads", pipeline=reads)])
    submit(store, types, "reads", "job-1")
    worker = make_worker(store, types, {effects.ReadBlob: slow}, worker_id="w1")
    seen: Seen = []  # a second worker, watching for stalls to reap
    watcher = make_worker(store, types, {}, worker_id="w2", on_effect=recorder(seen))

    async def main() -> int:
        draining = asyncio.create_task(worker.drain())
        await asyncio.wait_for(entered.wait(), HUNG)
        watching = asyncio.create_task(watcher.run())
        try:
            return await asyncio.wait_for(draining, HUNG)
        finally:
            watcher.stop()
            await asyncio.wait_for(watching, HUNG)

    assert virtual.run(main()) == 1
    job = get(store, "job-1")
    assert (jobs.status(job), jobs.attempts(job)) == (Status.COMPLETED, 1)
    assert [(e["worker"], e["outcome"]) for e in entries(job)] == [("w1", jobs.SUCCEEDED)]
    assert seen == []
    # Outliving 0.4 s leases for 1.2 s takes at least two renewals on top of the
    # submitted, claimed and succeeded writes.
    assert jobs.version(job) >= 5


def test_a_stalled_job_is_reaped_and_run_again() -> None:
    store, blobs = Watched(), Blobs()
    policy = retry.RetryPolicy(max_attempts=3, backoff=TINY)
    types = registry.of([registry.JobType(name="upper", pipeline=upper, retry=policy)])
    long_ago = instants.plus(virtual.START, -10.0)
    job = submit(store, types, "upper", "job-1", at=long_ago, params={"text": "x"})
    # A worker claimed it with a one-second lease, then died.
    claimed, _ = machine.step(
        job, events.Claimed(worker="dead", lease_seconds=1.0), long_ago
    ).unwrap()
    assert store.compare_and_set_now(jobs.version(job), claimed)

    seen: Seen = []
    worker = make_worker(
        store, types, {effects.WriteBlob: blobs.write}, worker_id="w1", on_effect=recorder(seen)
    )
    virtual.run(run_until(worker, store, settled(store, "job-1")))

    job = get(store, "job-1")
    assert (jobs.status(job), jobs.attempts(job)) == (Status.COMPLETED, 2)
    stalled, succeeded = entries(job)
    assert (stalled["worker"], stalled["outcome"]) == ("dead", jobs.STALLED)
    assert stalled["error"].code == "lease_expired"
    assert stalled["nextRunAt"] is not None
    assert (succeeded["worker"], succeeded["outcome"]) == ("w1", jobs.SUCCEEDED)
    assert jobs.result_key(job) == "results/job-1/attempt-2.txt"
    assert seen == [
        ("stalled", 1, Status.PENDING),
        ("retried", 1, Status.PENDING),
        ("started", 2, Status.PROCESSING),
        ("completed", 2, Status.COMPLETED),
    ]


def test_a_worker_whose_lease_was_taken_stops_and_never_writes_again() -> None:
    store = Watched()
    types = registry.of([registry.JobType(name="reads", pipeline=reads)])
    submit(store, types, "reads", "job-1")

    async def main() -> tuple[int, jobs.Job, int]:
        gate = Gate()
        worker = make_worker(store, types, {effects.ReadBlob: gate.read}, worker_id="w1")
        draining = asyncio.create_task(worker.drain())
        await asyncio.wait_for(gate.entered.wait(), HUNG)
        taken = steal(store, "job-1", thief="w2")
        writes = store.writes
        await asyncio.wait_for(gate.cancelled.wait(), HUNG)  # its next heartbeat found out
        finished = await asyncio.wait_for(draining, HUNG)
        assert worker.running == 0
        return finished, taken, store.writes - writes

    finished, taken, writes_since = virtual.run(main())
    assert (finished, writes_since) == (0, 0)
    job = get(store, "job-1")
    assert job == taken
    assert (jobs.status(job), jobs.lease_owner(job), jobs.claim(job)) == (
        Status.PROCESSING,
        "w2",
        2,
    )
    assert [e["outcome"] for e in entries(job)] == [jobs.STALLED, None]


def test_a_result_finished_after_the_lease_was_taken_is_not_recorded() -> None:
    store = Watched()
    types = registry.of([registry.JobType(name="reads", pipeline=reads)])
    submit(store, types, "reads", "job-1")

    async def main() -> tuple[int, jobs.Job, int]:
        gate = Gate()
        worker = make_worker(store, types, {effects.ReadBlob: gate.read}, QUIET, worker_id="w1")
        draining = asyncio.create_task(worker.drain())
        await asyncio.wait_for(gate.entered.wait(), HUNG)
        taken = steal(store, "job-1", thief="w2")
        writes = store.writes
        gate.opened.set()  # the pipeline finishes before any heartbeat could notice
        finished = await asyncio.wait_for(draining, HUNG)
        return finished, taken, store.writes - writes

    finished, taken, writes_since = virtual.run(main())
    assert (finished, writes_since) == (0, 0)
    assert get(store, "job-1") == taken


# -- run(), stop() and wake() -----------------------------------------------------------------


def test_stop_releases_a_job_that_outlasts_the_grace_period() -> None:
    store = Watched()
    types = registry.of([registry.JobType(name="reads", pipeline=reads)])
    submit(store, types, "reads", "job-1")

    async def main() -> None:
        gate = Gate()  # never opened
        worker = make_worker(store, types, {effects.ReadBlob: gate.read}, worker_id="w1")
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(gate.entered.wait(), HUNG)
        worker.stop()
        await asyncio.wait_for(running, HUNG)
        assert gate.cancelled.is_set()
        assert worker.running == 0

    virtual.run(main())
    job = get(store, "job-1")
    assert jobs.status(job) is Status.PENDING
    assert (jobs.lease_owner(job), jobs.lease_expires_at(job), jobs.attempts(job)) == (
        None,
        None,
        0,
    )
    [entry] = entries(job)
    assert (entry["worker"], entry["outcome"], entry["error"]) == ("w1", jobs.RELEASED, None)
    assert jobs.run_at(job) == entry["endedAt"]  # due again at once

    # Another worker takes it up, later on the same clock; the released attempt did not count.
    read, _ = answers(Success(b"data"))
    again = make_worker(store, types, {effects.ReadBlob: read}, clock=lambda: entry["endedAt"])
    assert asyncio.run(again.drain()) == 1
    job = get(store, "job-1")
    assert (jobs.status(job), jobs.attempts(job)) == (Status.COMPLETED, 1)
    assert [e["outcome"] for e in entries(job)] == [jobs.RELEASED, jobs.SUCCEEDED]


def test_stop_lets_a_job_finish_within_the_grace_period_and_claims_nothing_more() -> None:
    store = Watched()
    types = registry.of([registry.JobType(name="reads", pipeline=reads)])
    submit(store, types, "reads", "first", priority=90)
    submit(store, types, "reads", "second", priority=10)

    async def main() -> None:
        gate = Gate()
        config = attrs.evolve(FAST, concurrency=1, grace_seconds=HUNG)
        worker = make_worker(store, types, {effects.ReadBlob: gate.read}, config)
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(gate.entered.wait(), HUNG)
        worker.stop()
        gate.opened.set()
        await asyncio.wait_for(running, HUNG)
        assert not gate.cancelled.is_set()

    virtual.run(main())
    first = get(store, "first")
    assert (jobs.status(first), jobs.attempts(first)) == (Status.COMPLETED, 1)
    assert jobs.result(first) == pmap({"size": 6})
    second = get(store, "second")
    assert (jobs.status(second), len(entries(second))) == (Status.PENDING, 0)


def test_stop_called_before_run_gets_going_still_stops_it() -> None:
    store = Watched()
    types = registry.of([registry.JobType(name="reads", pipeline=reads)])

    async def main() -> None:
        worker = make_worker(store, types, {})
        running = asyncio.create_task(worker.run())
        worker.stop()
        await asyncio.wait_for(running, HUNG)

    virtual.run(main())


def test_a_stopped_worker_can_run_and_drain_again() -> None:
    store, blobs = Watched(), Blobs()
    types = registry.of([registry.JobType(name="upper", pipeline=upper)])
    submit(store, types, "upper", "job-1", params={"text": "x"})

    async def main() -> int:
        worker = make_worker(store, types, {effects.WriteBlob: blobs.write})
        await run_until(worker, store, settled(store, "job-1"))
        submit(store, types, "upper", "job-2", params={"text": "y"})
        await run_until(worker, store, settled(store, "job-2"))
        submit(store, types, "upper", "job-3", params={"text": "z"})
        return await asyncio.wait_for(worker.drain(), HUNG)

    assert virtual.run(main()) == 1
    assert all(jobs.status(job) is Status.COMPLETED for job in store.all())


def test_stop_during_drain_does_not_leave_it_waiting_forever() -> None:
    store = Watched()
    types = registry.of([registry.JobType(name="reads", pipeline=reads)])
    for i in range(3):
        submit(store, types, "reads", f"job-{i}")

    async def main() -> None:
        gate = Gate()
        config = attrs.evolve(FAST, concurrency=1)
        worker = make_worker(store, types, {effects.ReadBlob: gate.read}, config)
        draining = asyncio.create_task(worker.drain())
        await asyncio.wait_for(gate.entered.wait(), HUNG)
        worker.stop()
        gate.opened.set()
        await asyncio.wait_for(draining, HUNG)
        assert worker.running == 0

    virtual.run(main())
    assert all(jobs.lease_owner(job) is None for job in store.all())


def test_wake_makes_an_idle_worker_look_for_work_now() -> None:
    store, blobs = Watched(), Blobs()
    types = registry.of([registry.JobType(name="upper", pipeline=upper)])

    async def main() -> float:
        worker = make_worker(
            store, types, {effects.WriteBlob: blobs.write}, attrs.evolve(FAST, idle_seconds=30.0)
        )
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(1.0)  # nothing to do: it sleeps for up to 30 s
        submit(store, types, "upper", "job-1", params={"text": "x"})
        worker.wake()
        try:
            await store.until(settled(store, "job-1"))
            return asyncio.get_running_loop().time()
        finally:
            worker.stop()
            await asyncio.wait_for(running, HUNG)

    assert virtual.run(main()) == pytest.approx(1.0)  # at once, not after its idle sleep
    assert jobs.status(get(store, "job-1")) is Status.COMPLETED


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"concurrency": 0},
        {"lease_seconds": 10.0, "heartbeat_seconds": 10.0},
        {"heartbeat_seconds": 0.0},
    ],
)
def test_an_impossible_config_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigurationError):
        WorkerConfig(**options)
