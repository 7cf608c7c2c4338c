"""Fair claims across users (`jobkit.schedule`'s turns), watched through real workers.

`run(plan)` runs `plan.workers` real `Worker`s on a virtual-time loop (`jobkit.testing.loop`)
over the simulator's indexed memory store, while users submit bursts of jobs through the
real commands (`commands.submit_many`); each job runs for its burst's `seconds`, with no
faults. It returns a `Trace`: the order in which jobs were stored and started, each job's
user, and how many of its user's jobs were unfinished when it was stored.

`overtakes(trace)` says, for each job, the most jobs of any one other user started between
its submission and its start; `unfair(trace, slack)` lists the jobs over the bound
`schedule` proves: `k + 2` for a job stored with `k` jobs of its user unfinished, plus
`slack` for the claims on their way when it was stored (read before it existed) and a
contended worker's random window (`jobkit.worker.claims`). `plan.fair=False` gives every
job turn 0, the claim order before turns: first come, first served.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import attrs
from returns.result import Success

from jobkit import effects, jobs, pipeline, registry, submission
from jobkit.status import ACTIVE, COMPLETED
from jobkit.testing import indexed
from jobkit.testing import loop as virtual
from jobkit.worker import commands
from jobkit.worker.config import Attempt
from jobkit.worker.worker import Worker, WorkerConfig

JOB_TYPE = "fair.work"


def _work(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield effects.StatBlob(key=jobs.id(job))  # its performer takes the job's time
    return Success(pipeline.Completion())


TYPES = registry.of([registry.JobType(name=JOB_TYPE, pipeline=_work)])


@attrs.frozen
class Burst:
    """`count` jobs of `user`, submitted in one call at `at` seconds, each running `seconds`."""

    user: str
    at: float
    count: int
    seconds: float = 0.01


@attrs.frozen(kw_only=True)
class Plan:
    bursts: tuple[Burst, ...]
    workers: int = 1
    concurrency: int = 1
    seed: int = 0
    fair: bool = True  # False: every job takes turn 0, as before turns

    @property
    def slack(self) -> int:
        """The jobs whose claims may be on their way when a job is stored (read before it
        existed), or sampled past it by a contended worker: each worker's slots, since a
        claim holds a slot per job. (Seen over many runs: at most 3 over `k + 2`.)"""
        return self.workers * self.concurrency


@attrs.frozen
class Trace:
    order: tuple[tuple[str, str], ...]  # ("stored" | "started", job id), as they happened
    users: dict[str, str]  # job id: its user
    unfinished: dict[str, int]  # job id: its user's unfinished jobs when it was stored


class _FirstCome(indexed.IndexedStore):
    """Every submission takes turn 0: the claim order before turns."""

    def insert_in_turn_now(self, batch: Any) -> list[int | None]:
        return [0 if self.insert_now(job) else None for job in batch]


def run(plan: Plan) -> Trace:
    return virtual.run(_main(plan))


async def _main(plan: Plan) -> Trace:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, virtual.VirtualLoop)
    store = indexed.IndexedStore() if plan.fair else _FirstCome()
    clock = virtual.clock(virtual.START, loop)
    order: list[tuple[str, str]] = []
    users: dict[str, str] = {}
    unfinished: dict[str, int] = {}

    def seen(effect: effects.MachineEffect, job: jobs.Job) -> None:
        if isinstance(effect, effects.Lifecycle) and effect.name == "started":
            order.append(("started", effect.job_id))

    def performers(attempt: Attempt) -> dict[type, Any]:
        seconds = float(jobs.params(attempt.job)["seconds"])

        async def perform(effect: effects.StatBlob) -> Any:
            await asyncio.sleep(seconds)
            return Success(None)

        return {effects.StatBlob: perform}

    config = WorkerConfig(concurrency=plan.concurrency, idle_seconds=0.05)
    workers = [
        Worker(
            store=store,
            types=TYPES,
            performers_for=performers,
            config=config,
            worker_id=f"w{n}",
            clock=clock,
            rng=random.Random(plan.seed * 1000 + n),
            on_effect=seen,
        )
        for n in range(plan.workers)
    ]
    running = [loop.create_task(worker.run()) for worker in workers]

    async def burst(number: int, burst: Burst) -> None:
        await asyncio.sleep(burst.at)
        now = clock()
        drafts = [
            submission.new_job(
                {"type": JOB_TYPE, "params": {"seconds": burst.seconds}},
                types=TYPES,
                job_id=f"{burst.user}-{number}-{n}",
                user_id=burst.user,
                now=now,
            ).unwrap()
            for n in range(burst.count)
        ]
        before = sum(
            1
            for job in store.all()
            if jobs.user_id(job) == burst.user and jobs.status(job) in ACTIVE
        )
        for n, job in enumerate(await commands.submit_many(store, drafts, now)):
            order.append(("stored", jobs.id(job)))
            users[jobs.id(job)] = burst.user
            unfinished[jobs.id(job)] = before + n

    await asyncio.gather(*(burst(n, b) for n, b in enumerate(plan.bursts)))
    total = sum(b.count for b in plan.bursts)
    while sum(1 for job in store.all() if jobs.status(job) == COMPLETED) < total:
        await asyncio.sleep(0.5)
    for worker in workers:
        worker.stop()
    await asyncio.gather(*running)
    return Trace(order=tuple(order), users=users, unfinished=unfinished)


def overtakes(trace: Trace) -> dict[str, int]:
    """For each job: the most jobs of any one other user started after it was stored and
    before it started."""
    stored = {job_id: at for at, (what, job_id) in enumerate(trace.order) if what == "stored"}
    found: dict[str, int] = {}
    for job_id, start in stored.items():
        user = trace.users[job_id]
        passed: Counter[str] = Counter()
        for what, other in trace.order[start + 1 :]:
            if what != "started":
                continue
            if other == job_id:
                break
            if trace.users[other] != user:
                passed[trace.users[other]] += 1
        found[job_id] = max(passed.values(), default=0)
    return found


def unfair(trace: Trace, slack: int) -> dict[str, tuple[int, int]]:
    """The jobs passed by more of one other user's jobs than the bound allows: job id:
    (how many, the bound)."""
    return {
        job_id: (count, bound)
        for job_id, count in overtakes(trace).items()
        if count > (bound := trace.unfinished[job_id] + 2 + slack)
    }
