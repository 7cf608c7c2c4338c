"""The worker's attempt path: a pipeline runs up to its first effect without a task, the
final writes of finished attempts go out in one batch and outlive a shutdown, and a
pipeline's timeout counts from the attempt's start though it is only armed at the first
effect. On the virtual-time loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import attrs
import pytest
from pyrsistent import pmap
from returns.result import Failure, Result, Success

from jobkit import effects, errors, jobs, pipeline, registry
from jobkit.status import Status
from jobkit.testing import MemoryJobStore
from jobkit.testing import loop as virtual
from jobkit.worker.worker import Worker, WorkerConfig
from tests.jobkit.worker.support import HUNG, Watched, get, make_worker, submit

QUICK = WorkerConfig(
    concurrency=1,
    lease_seconds=30.0,
    heartbeat_seconds=10.0,
    idle_seconds=0.02,
    reap_seconds=0.02,
    grace_seconds=0.05,
)


def noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion(result={"claim": claim}))


class Batches(MemoryJobStore):
    """Records each batched write as the statuses it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    async def compare_and_set_many(self, writes: Sequence[tuple[int, jobs.Job]]) -> list[bool]:
        self.batches.append([str(jobs.status(job)) for _, job in writes])
        return await super().compare_and_set_many(writes)


class HeldFinals(Batches):
    """Batches that finish attempts (anything but claims) wait for `opened` before landing."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()

    async def compare_and_set_many(self, writes: Sequence[tuple[int, jobs.Job]]) -> list[bool]:
        if any(jobs.status(job) is not Status.PROCESSING for _, job in writes):
            self.entered.set()
            await self.opened.wait()
        return await super().compare_and_set_many(writes)


def test_finished_attempts_are_written_in_one_batch() -> None:
    types = registry.of([registry.JobType(name="noop", pipeline=noop)])
    store = Batches()
    for n in range(10):
        submit(store, types, "noop", f"job-{n}")
    worker = make_worker(store, types, {}, attrs.evolve(QUICK, concurrency=10))
    assert virtual.run(asyncio.wait_for(worker.drain(), HUNG)) == 10
    # Claims take half the slots at a time; the finished attempts go out together.
    assert store.batches == [["processing"] * 5, ["processing"] * 5, ["completed"] * 10]
    for n in range(10):
        job = get(store, f"job-{n}")
        assert jobs.status(job) is Status.COMPLETED
        assert jobs.result(job) == pmap({"claim": 1})


def test_the_next_claim_does_not_wait_for_the_last_attempts_final_write() -> None:
    types = registry.of([registry.JobType(name="noop", pipeline=noop)])

    async def main() -> HeldFinals:
        store = HeldFinals()
        for n in range(4):
            submit(store, types, "noop", f"job-{n}")
        worker = make_worker(store, types, {}, attrs.evolve(QUICK, concurrency=2))
        draining = asyncio.create_task(worker.drain())
        await asyncio.wait_for(store.entered.wait(), HUNG)  # the first two wait to land...
        await virtual.until_idle()
        assert worker.running == 4  # ...while the next two were claimed and have finished
        store.opened.set()
        assert await asyncio.wait_for(draining, HUNG) == 4
        return store

    store = virtual.run(main())
    written = [status for batch in store.batches for status in batch]
    assert written == ["processing"] * 4 + ["completed"] * 4


def test_a_pipeline_that_crashes_before_its_first_effect_is_recorded_as_internal() -> None:
    def broken(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        raise ValueError("no such field")
        yield effects.ReadBlob(key="never")  # a generator all the same

    types = registry.of([registry.JobType(name="broken", pipeline=broken)])
    store = MemoryJobStore()
    submit(store, types, "broken", "job-1")
    worker = make_worker(store, types, {}, QUICK)
    assert virtual.run(asyncio.wait_for(worker.drain(), HUNG)) >= 1
    [entry, *_] = jobs.history(get(store, "job-1"))
    error = jobs.entry_error(entry)
    assert error is not None
    assert (error.code, error.message) == ("internal", "ValueError: no such field")


def test_a_pipeline_that_returns_no_result_is_recorded_as_internal() -> None:
    def wrong(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        yield from ()
        return "done"  # type: ignore[return-value]

    types = registry.of([registry.JobType(name="wrong", pipeline=wrong)])
    store = MemoryJobStore()
    submit(store, types, "wrong", "job-1")
    worker = make_worker(store, types, {}, QUICK)
    assert virtual.run(asyncio.wait_for(worker.drain(), HUNG)) >= 1
    [entry, *_] = jobs.history(get(store, "job-1"))
    error = jobs.entry_error(entry)
    assert error is not None
    assert error.code == "internal"
    assert "not a Result" in error.message


def test_a_shutdown_during_the_final_write_lets_it_land_and_writes_nothing_after() -> None:
    types = registry.of([registry.JobType(name="noop", pipeline=noop)])

    async def main() -> tuple[HeldFinals, Worker, int]:
        store = HeldFinals()
        submit(store, types, "noop", "job-1")
        seen: list[str] = []
        worker = make_worker(
            store,
            types,
            {},
            QUICK,
            on_effect=lambda effect, job: seen.append(getattr(effect, "name", "")),
        )
        running = asyncio.create_task(worker.run())
        await asyncio.wait_for(store.entered.wait(), HUNG)  # the success is being written
        worker.stop()
        await asyncio.sleep(QUICK.grace_seconds * 3)  # well past the grace period...
        assert not running.done()  # ...but the worker waits for its write
        writes = store.writes
        store.opened.set()
        await asyncio.wait_for(running, HUNG)
        assert seen == ["started", "completed"]  # the landed write was settled and told
        return store, worker, store.writes - writes

    store, worker, writes = virtual.run(main())
    assert writes == 1  # the success, and no release after it
    job = get(store, "job-1")
    assert (jobs.status(job), jobs.attempts(job), jobs.lease_owner(job)) == (
        Status.COMPLETED,
        1,
        None,
    )
    assert worker.running == 0


def test_a_cancelled_drain_still_lands_the_final_write_and_releases_nothing() -> None:
    types = registry.of([registry.JobType(name="noop", pipeline=noop)])

    async def main() -> None:
        store = HeldFinals()
        submit(store, types, "noop", "job-1")
        worker = make_worker(store, types, {}, QUICK)
        draining = asyncio.create_task(worker.drain())
        await asyncio.wait_for(store.entered.wait(), HUNG)
        draining.cancel()  # the caller gives up: drain hands the leases back, if any
        await asyncio.sleep(QUICK.grace_seconds * 3)
        store.opened.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(draining, HUNG)
        job = get(store, "job-1")
        assert jobs.status(job) is Status.COMPLETED  # landed, and not released afterwards

    virtual.run(main())


def slow_start(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    """Spends its whole time budget before its first effect, which then waits."""
    virtual.block(0.08)
    yield effects.ReadBlob(key="never")
    return Success(pipeline.Completion())


def test_a_timeout_counts_the_time_spent_before_the_first_effect() -> None:
    types = registry.of([registry.JobType(name="slow", pipeline=slow_start, timeout_seconds=0.05)])
    store = MemoryJobStore()
    submit(store, types, "slow", "job-1")
    reads: list[str] = []

    async def hang(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        reads.append(effect.key)
        await asyncio.sleep(HUNG)
        return Success(b"")

    worker = make_worker(store, types, {effects.ReadBlob: hang}, QUICK)

    async def main() -> float:
        assert await asyncio.wait_for(worker.drain(), HUNG) >= 1
        return asyncio.get_running_loop().time()

    assert virtual.run(main()) < 0.1  # the timeout struck at the first wait
    job = get(store, "job-1")
    [entry, *_] = jobs.history(job)
    error = jobs.entry_error(entry)
    assert error is not None
    assert error.code == "timeout"


def test_a_pipeline_closed_by_the_interpreter_is_closed_itself() -> None:
    closed: list[int] = []

    def two_reads(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        try:
            yield effects.ReadBlob(key="a")
            yield effects.ReadBlob(key="b")
            return Success(pipeline.Completion())
        finally:
            closed.append(claim)

    async def refuse(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        return Failure(errors.permanent("not_found", effect.key))

    types = registry.of([registry.JobType(name="two", pipeline=two_reads)])
    store = MemoryJobStore()
    submit(store, types, "two", "job-1")
    config = attrs.evolve(QUICK, concurrency=2)
    worker = make_worker(store, types, {effects.ReadBlob: refuse}, config)
    assert virtual.run(asyncio.wait_for(worker.drain(), HUNG)) == 1
    assert closed == [1]  # its `finally` ran when the first answer failed it
    job = get(store, "job-1")
    assert jobs.status(job) is Status.FAILED


class HeldClaims(Watched):
    """Claims (writes of processing jobs) wait for `opened`; records the ids each claims."""

    def __init__(self, failure: Exception | None = None) -> None:
        super().__init__()
        self.claims: list[list[str]] = []
        self.opened = asyncio.Event()
        self.failure = failure

    async def compare_and_set_many(self, writes: Sequence[tuple[int, jobs.Job]]) -> list[bool]:
        if all(jobs.status(job) is Status.PROCESSING for _, job in writes):
            self.claims.append([jobs.id(job) for _, job in writes])
            self.changed()
            await self.opened.wait()
            if self.failure is not None:
                raise self.failure
        return await super().compare_and_set_many(writes)


def counting(runs: list[str]) -> registry.Registry:
    def pipeline_(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        runs.append(jobs.id(job))
        yield from ()
        return Success(pipeline.Completion())

    return registry.of([registry.JobType(name="noop", pipeline=pipeline_)])


def test_the_next_claim_is_made_while_the_last_ones_write_is_on_its_way() -> None:
    runs: list[str] = []
    types = counting(runs)

    async def main() -> HeldClaims:
        store = HeldClaims()
        for n in range(4):
            submit(store, types, "noop", f"job-{n}")
        worker = make_worker(store, types, {}, attrs.evolve(QUICK, concurrency=4))
        draining = asyncio.create_task(worker.drain())
        await store.until(lambda: len(store.claims) == 2)  # both halves sent, neither landed
        assert runs == []
        store.opened.set()
        assert await asyncio.wait_for(draining, HUNG) == 4
        return store

    store = virtual.run(main())
    assert store.claims == [["job-0", "job-1"], ["job-2", "job-3"]]  # none claimed twice
    assert sorted(runs) == [f"job-{n}" for n in range(4)]
    assert all(jobs.status(get(store, f"job-{n}")) is Status.COMPLETED for n in range(4))


def test_a_claim_that_lands_after_stop_is_handed_back_untouched() -> None:
    runs: list[str] = []
    types = counting(runs)

    async def main() -> HeldClaims:
        store = HeldClaims()
        submit(store, types, "noop", "job-0")
        worker = make_worker(store, types, {}, QUICK)
        running = asyncio.create_task(worker.run())
        await store.until(lambda: len(store.claims) == 1)
        worker.stop()
        await asyncio.sleep(QUICK.grace_seconds * 3)  # run() waits for the claim on its way
        assert not running.done()
        store.opened.set()
        await asyncio.wait_for(running, HUNG)
        return store

    store = virtual.run(main())
    assert runs == []
    job = get(store, "job-0")
    assert jobs.status(job) is Status.PENDING
    assert jobs.lease_owner(job) is None
    assert [jobs.entry_outcome(entry) for entry in jobs.history(job)] == [jobs.RELEASED]
    assert jobs.attempts(job) == 0


def test_a_claim_write_that_fails_is_raised_by_the_loop() -> None:
    types = counting([])

    async def main() -> None:
        store = HeldClaims(failure=OSError("disk gone"))
        store.opened.set()
        submit(store, types, "noop", "job-0")
        worker = make_worker(store, types, {}, QUICK)
        await asyncio.wait_for(worker.drain(), HUNG)

    with pytest.raises(OSError, match="disk gone"):
        virtual.run(main())
