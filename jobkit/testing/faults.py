"""The simulator's world: its job type, performers and indexed store, and the faults it injects.

A fault is drawn at every call of a performer (an effect boundary of a pipeline): the
worker may crash there, the performer may answer with a transient or a permanent error,
or the call may take longer than the lease. Every draw comes from the `random.Random`
the caller passes, so a seed replays the same faults at the same boundaries.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import json
import random
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import attrs
from pyrsistent import pmap
from returns.result import Failure, Result, Success

from jobkit import effects, errors, jobs, pipeline, registry, retry, schedule
from jobkit.status import PENDING, PROCESSING
from jobkit.testing import memory
from jobkit.worker.interpreter import Performers

JOB_TYPE = "sim.document"
INPUT_TYPE = "application/pdf"
RESULT_TYPE = "application/json"


class Fault(enum.StrEnum):
    CRASH = "crash"  # the worker vanishes; its leases are left to expire
    TRANSIENT = "transient"  # the performer fails with a retryable error
    PERMANENT = "permanent"  # the performer fails with an error no retry can fix
    SLOW = "slow"  # the call takes longer than the lease (heartbeats must keep it)


KINDS: tuple[Fault, ...] = tuple(Fault)


def draw(rng: random.Random, rate: float, weights: tuple[float, ...]) -> Fault | None:
    """The fault at one effect boundary, or None. Always consumes one sample, so the
    sequence of later draws does not depend on whether a fault struck here."""
    if rng.random() >= rate:
        return None
    return rng.choices(KINDS, weights)[0]


def injected_error(fault: Fault, effect: effects.PipelineEffect) -> errors.Error:
    name = type(effect).__name__
    if fault is Fault.PERMANENT:
        return errors.permanent("corrupt_document", f"simulated: {name} found garbage")
    return errors.transient("unavailable", f"simulated: {name} backend unavailable")


# -- durations: how long each call takes, relative to the configured mean ------------

_WEIGHT: Mapping[type, float] = {
    effects.StatBlob: 0.2,
    effects.ReadBlob: 0.5,
    effects.WriteBlob: 0.3,
    effects.DeleteBlob: 0.1,
    effects.Analyze: 1.5,
}


def duration(rng: random.Random, effect: effects.PipelineEffect, mean: float) -> float:
    return _WEIGHT.get(type(effect), 0.1) * mean * rng.uniform(0.5, 1.5)


# -- the job type ------------------------------------------------------------------


def _document(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    """Stat the input, analyse it section by section with progress, write the result."""
    source = jobs.input(job)
    key = source.blob if source is not None else pipeline.input_key(jobs.id(job), "pdf")
    sections = int(jobs.params(job).get("sections", 1))
    info = yield effects.StatBlob(key=key)
    pages = 0
    for section in range(1, sections + 1):
        analysis = yield effects.Analyze(
            key=key, content_type=info.content_type, instructions=f"summarise part {section}"
        )
        pages += analysis.pages or 0
        yield effects.ReportProgress(current=section, total=sections, message=f"part {section}")
    out = pipeline.result_key(job, claim)
    body = json.dumps({"job": jobs.id(job), "claim": claim, "pages": pages}).encode()
    written = yield effects.WriteBlob(key=out, data=body, content_type=RESULT_TYPE)
    completion = pipeline.Completion(result={"pages": pages}, document=written)
    return Success(completion)


def job_types(
    max_attempts: int, backoff_base: float, backoff_cap: float, timeout_seconds: float = 600.0
) -> registry.Registry:
    policy = retry.RetryPolicy(
        max_attempts=max_attempts, backoff=retry.Backoff(base=backoff_base, cap=backoff_cap)
    )
    job_type = registry.JobType(
        name=JOB_TYPE, pipeline=_document, retry=policy, timeout_seconds=timeout_seconds
    )
    return registry.of([job_type])


# -- performers: an in-memory blob store and a pretend analyser ----------------------

Performed = Result[Any, errors.Error]


def written_by(data: bytes) -> tuple[str, int]:
    """(job id, claim) of the attempt that wrote a result blob."""
    doc = json.loads(data)
    return str(doc["job"]), int(doc["claim"])


class World:
    """Blobs by key, and a performer per effect type (`ReportProgress` is the worker's own)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self._performers: Mapping[type, Callable[[Any], Performed]] = {
            effects.StatBlob: self._stat,
            effects.ReadBlob: self._read,
            effects.WriteBlob: self._write,
            effects.DeleteBlob: self._delete,
            effects.Analyze: self._analyze,
        }

    def perform(self, effect: effects.PipelineEffect) -> Performed:
        return self._performers[type(effect)](effect)

    def _missing(self, key: str) -> Performed:
        return Failure(errors.permanent("not_found", f"no blob {key}"))

    def _stat(self, effect: effects.StatBlob) -> Performed:
        data = self.blobs.get(effect.key)
        if data is None:
            return self._missing(effect.key)
        return Success(effects.BlobInfo(key=effect.key, size=len(data), content_type=INPUT_TYPE))

    def _read(self, effect: effects.ReadBlob) -> Performed:
        data = self.blobs.get(effect.key)
        return self._missing(effect.key) if data is None else Success(data)

    def _write(self, effect: effects.WriteBlob) -> Performed:
        self.blobs[effect.key] = effect.data
        info = effects.BlobInfo(key=effect.key, size=len(effect.data), content_type=RESULT_TYPE)
        return Success(info)

    def _delete(self, effect: effects.DeleteBlob) -> Performed:
        self.blobs.pop(effect.key, None)
        return Success(None)

    def _analyze(self, effect: effects.Analyze) -> Performed:
        data = self.blobs.get(effect.key)
        if data is None:
            return self._missing(effect.key)
        pages = 1 + len(data) % 7
        output = pmap({"summary": effect.instructions})
        return Success(effects.Analysis(model="sim", output=output, pages=pages))


@attrs.frozen(kw_only=True)
class Weather:
    """How a worker's performers behave: the chance of a fault per call and the weights
    of its kinds (`KINDS`), the mean call, and how long a slow call lasts, in seconds."""

    rate: float
    weights: tuple[float, ...]
    mean_seconds: float
    slow_seconds: tuple[float, float]


def performers(
    world: World,
    rng: random.Random,
    weather: Weather,
    counters: Counter[str],
    crash: Callable[[], None],
) -> Performers:
    """One worker's performers over `world`. A CRASH fault calls `crash()`, which kills the
    worker (the calling task included) before the call does anything."""

    async def perform(effect: effects.PipelineEffect) -> Performed:
        fault = draw(rng, weather.rate, weather.weights)
        if fault is not None:
            counters[fault.value] += 1
        if fault is Fault.CRASH:
            crash()
            await asyncio.sleep(0)  # the crash cancelled this task: it ends here
        if fault is Fault.SLOW:
            seconds = rng.uniform(*weather.slow_seconds)
        else:
            seconds = duration(rng, effect, weather.mean_seconds)
        await asyncio.sleep(seconds)
        if fault in (Fault.TRANSIENT, Fault.PERMANENT):
            return Failure(injected_error(fault, effect))
        return world.perform(effect)

    return dict.fromkeys(_WEIGHT, perform)


class IndexedStore(memory.MemoryJobStore):
    """`MemoryJobStore` answering `claimable_now`/`stalled_now` from heaps, not a full scan.

    The answers are the same (a test runs both stores and compares reports); the
    scan per claim would make a 10,000-job run quadratic. Entries are (job id,
    version) pairs, dropped lazily once the job has moved on.
    """

    def __init__(self) -> None:
        super().__init__()
        self._future: list[tuple[datetime, str, int]] = []  # pending, by runAt
        self._due: list[tuple[tuple[Any, ...], int]] = []  # pending and due, in claim order
        self._leases: list[tuple[datetime, str, int]] = []  # processing, by lease expiry

    def _index(self, job: jobs.Job) -> None:
        state, key = jobs.status_or_none(job), (jobs.id(job), jobs.version(job))
        if state == PENDING:
            heapq.heappush(self._future, (jobs.run_at(job), *key))
        elif state == PROCESSING and (expires := jobs.lease_expires_at(job)) is not None:
            heapq.heappush(self._leases, (expires, *key))

    def _current(self, job_id: str, version: int) -> jobs.Job | None:
        job = self.get_now(job_id)
        return job if job is not None and jobs.version(job) == version else None

    def insert_now(self, job: jobs.Job) -> bool:
        done = super().insert_now(job)
        if done:
            self._index(job)
        return done

    def compare_and_set_now(self, expected_version: int, job: jobs.Job) -> bool:
        done = super().compare_and_set_now(expected_version, job)
        if done:
            self._index(job)
        return done

    def claimable_now(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> list[jobs.Job]:
        if queues is not None:
            return super().claimable_now(now, queues, limit)
        while self._future and self._future[0][0] <= now:
            _, job_id, version = heapq.heappop(self._future)
            if (job := self._current(job_id, version)) is not None:
                heapq.heappush(self._due, (schedule.claim_key(job), version))
        found: list[jobs.Job] = []
        kept: list[tuple[tuple[Any, ...], int]] = []
        while self._due and len(found) < limit:
            entry = heapq.heappop(self._due)
            if (job := self._current(entry[0][-1], entry[1])) is not None:
                found.append(job)
                kept.append(entry)
        for entry in kept:
            heapq.heappush(self._due, entry)
        return found

    def stalled_now(self, now: datetime, limit: int) -> list[jobs.Job]:
        found: list[jobs.Job] = []
        kept: list[tuple[datetime, str, int]] = []
        while self._leases and self._leases[0][0] <= now and len(found) < limit:
            entry = heapq.heappop(self._leases)
            if (job := self._current(entry[1], entry[2])) is not None:
                found.append(job)
                kept.append(entry)
        for entry in kept:
            heapq.heappush(self._leases, entry)
        return found

    def next_wakeup_now(self) -> datetime | None:
        """What `schedule.next_wakeup` answers for every queue: the earliest pending runAt
        or lease expiry."""
        while self._future and self._current(self._future[0][1], self._future[0][2]) is None:
            heapq.heappop(self._future)
        while self._leases and self._current(self._leases[0][1], self._leases[0][2]) is None:
            heapq.heappop(self._leases)
        self._due = [entry for entry in self._due if self._current(entry[0][-1], entry[1])]
        heapq.heapify(self._due)
        times = [jobs.run_at(self._jobs[entry[0][-1]]) for entry in self._due]
        times += [heap[0][0] for heap in (self._future, self._leases) if heap]
        return min(times, default=None)
