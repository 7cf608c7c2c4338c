"""What the worker's tests share: a quick worker, submitting a job as the API does, reading
it back, and how long a test may wait before it counts as hung."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from jobkit import events, jobs, machine, registry, submission
from jobkit.testing import MemoryJobStore
from jobkit.worker import Performer
from jobkit.worker.worker import Worker, WorkerConfig, performers_from, utc_now

FAST = WorkerConfig(
    concurrency=4,
    lease_seconds=0.4,
    heartbeat_seconds=0.1,
    idle_seconds=0.02,
    reap_seconds=0.02,
    grace_seconds=0.05,
)
HUNG = 5.0  # seconds after which a test is hung, not slow


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
        **options,
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
    now = at or utc_now()
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
