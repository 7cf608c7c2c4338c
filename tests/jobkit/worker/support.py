"""What the worker's tests share: a quick worker on the virtual-time loop's clock, a store
that can be awaited until it holds what a test waits for, submitting a job as the API
does, reading it back, and how long (in virtual seconds) a test may wait before it counts
as hung."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jobkit import events, jobs, machine, registry, submission
from jobkit.testing import MemoryJobStore
from jobkit.testing import loop as virtual
from jobkit.worker import Performer
from jobkit.worker.worker import Worker, WorkerConfig, performers_from

FAST = WorkerConfig(
    concurrency=4,
    lease_seconds=0.4,
    heartbeat_seconds=0.1,
    idle_seconds=0.02,
    reap_seconds=0.02,
    grace_seconds=0.05,
)
HUNG = 5.0  # seconds after which a test is hung, not slow
NOW = virtual.clock()  # the running loop's time, as a datetime


class Watched(MemoryJobStore):
    """The reference store; `await until(condition)` returns once a write made it true."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    def insert_now(self, job: jobs.Job) -> bool:
        done = super().insert_now(job)
        self.changed()
        return done

    def compare_and_set_now(self, expected_version: int, job: jobs.Job) -> bool:
        done = super().compare_and_set_now(expected_version, job)
        self.changed()
        return done

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._changed.clear()
            await self._changed.wait()


def make_worker(
    store: MemoryJobStore,
    types: registry.Registry,
    table: dict[type, Performer],
    config: WorkerConfig = FAST,
    **options: Any,
) -> Worker:
    return Worker(
        store=store,
        types=types,
        performers_for=performers_from(table),
        config=config,
        rng=random.Random(7),
        **({"clock": NOW} | options),
    )


def submit(
    store: MemoryJobStore,
    types: registry.Registry,
    type_name: str,
    job_id: str,
    *,
    at: datetime | None = None,
    **request: Any,
) -> jobs.Job:
    """Submit a job the way the API does: validate, step `Submitted`, insert."""
    now = at or virtual.START
    draft = submission.new_job(
        {"type": type_name, **request}, types=types, job_id=job_id, user_id="user-1", now=now
    ).unwrap()
    job, _ = machine.step(draft, events.Submitted(), now).unwrap()
    assert store.insert_now(job)
    return job


def get(store: MemoryJobStore, job_id: str) -> jobs.Job:
    job = store.get_now(job_id)
    assert job is not None
    return job
