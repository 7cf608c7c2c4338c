"""Workers racing for the same jobs: a lost claim is retried, never mistaken for an empty queue.
On the virtual-time loop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence

from returns.result import Success

from jobkit import events, jobs, machine, pipeline, registry, submission
from jobkit.status import Status
from jobkit.testing import MemoryJobStore
from jobkit.testing import loop as virtual
from jobkit.worker.worker import Worker, WorkerConfig, performers_from


def noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


TYPES = registry.of([registry.JobType(name="noop", pipeline=noop)])


class Rivalled(MemoryJobStore):
    """Another process wins the first `losses` claim writes (nothing is written for them)."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses

    async def compare_and_set_many(self, writes: Sequence[tuple[int, jobs.Job]]) -> list[bool]:
        if self.losses > 0:
            self.losses -= 1
            return [False] * len(writes)
        return await super().compare_and_set_many(writes)


def fill(store: MemoryJobStore, count: int) -> None:
    now = virtual.START
    for n in range(count):
        draft = submission.new_job(
            {"type": "noop"}, types=TYPES, job_id=f"job-{n}", user_id="u", now=now
        ).unwrap()
        job, _ = machine.step(draft, events.Submitted(), now).unwrap()
        assert store.insert_now(job)


def test_drain_does_not_stop_after_losing_a_claim_race() -> None:
    store = Rivalled(losses=3)
    fill(store, 20)
    worker = Worker(
        store=store,
        types=TYPES,
        performers_for=performers_from({}),
        config=WorkerConfig(concurrency=8),
        clock=virtual.clock(),
    )
    ran = virtual.run(worker.drain())
    assert ran == 20
    assert {jobs.status(job) for job in store.all()} == {Status.COMPLETED}


def test_workers_sharing_a_store_split_the_work_and_run_each_job_once() -> None:
    store = MemoryJobStore()
    fill(store, 200)

    async def both() -> list[int]:
        workers = [
            Worker(
                store=store,
                types=TYPES,
                performers_for=performers_from({}),
                config=WorkerConfig(concurrency=16),
                rng=random.Random(seed),
                clock=virtual.clock(),
            )
            for seed in (1, 2)
        ]
        return list(await asyncio.gather(*(w.drain() for w in workers)))

    counts = virtual.run(both())
    assert sum(counts) == 200
    finished = store.all()
    assert {jobs.status(job) for job in finished} == {Status.COMPLETED}
    assert all(jobs.attempts(job) == 1 for job in finished)
