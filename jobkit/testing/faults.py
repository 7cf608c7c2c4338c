"""The simulator's world: its job type and performers, and the faults it injects.

A fault is drawn at every call of a performer (an effect boundary of a pipeline): the
worker may crash there, the performer may answer with a transient or a permanent error,
or the call may take longer than the lease. Every draw comes from the `random.Random`
the caller passes, so a seed replays the same faults at the same boundaries.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from pyrsistent import pmap
from returns.result import Failure, Result, Success

from jobkit import effects, errors, jobs, pipeline, registry, retry
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
