"""Pipelines: generators that yield effects, receive their results and return the outcome.

A pipeline reads like straight-line code; it never performs I/O. Whoever drives
it (the async interpreter in `jobkit.worker`, the simulator, a test's list of
canned answers) sends back each effect's `Success` value and stops at the first
`Failure`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import attrs
from pyrsistent import pmap
from pyrsistent.typing import PMap
from returns.result import Failure, Result, Success

from jobkit import _frozen, effects, errors, jobs


@attrs.frozen(kw_only=True)
class Completion:
    """A pipeline's successful outcome: a small summary kept in the job (`jobs.result`), and
    the result document it wrote (what `WriteBlob` answered), which the API serves."""

    result: PMap[str, Any] = attrs.field(factory=pmap, converter=_frozen.mapping)
    document: effects.BlobInfo | None = None

    @property
    def document_key(self) -> str | None:
        return None if self.document is None else self.document.key


Outcome = Result[Completion, errors.Error]
Pipeline = Generator[effects.PipelineEffect, Any, Outcome]
PipelineFactory = Callable[[jobs.Job, int], Pipeline]


def result_key(job: jobs.Job, claim: int, suffix: str = "json") -> str:
    """Deterministic per job and attempt: a re-run overwrites, two attempts never collide."""
    return f"results/{jobs.id(job)}/attempt-{claim}.{suffix}"


def input_key(job_id: str, suffix: str) -> str:
    return f"inputs/{job_id}/document.{suffix}"


def run(
    pipeline: Pipeline, respond: Callable[[effects.PipelineEffect], Result[Any, errors.Error]]
) -> Outcome:
    """Drive `pipeline` synchronously, answering each effect with `respond`.

    The pure twin of `jobkit.worker.interpret`, for tests and the simulator.
    """
    try:
        effect = next(pipeline)
        while True:
            match respond(effect):
                case Success(value):
                    effect = pipeline.send(value)
                case Failure(err):
                    pipeline.close()
                    return Failure(err)
    except StopIteration as stop:
        outcome: Outcome = stop.value
        return outcome
