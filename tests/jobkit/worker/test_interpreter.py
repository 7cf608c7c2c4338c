from __future__ import annotations

import asyncio
from typing import Any

import pytest
from returns.result import Failure, Result, Success

from jobkit import effects, errors, pipeline
from jobkit.worker import Performer, interpret

UNAVAILABLE = errors.transient("unavailable", "the store is down")


class Recorder:
    """Performers that answer from a script and note every effect they are given."""

    def __init__(self, answers: dict[str, Result[Any, errors.Error]] | None = None) -> None:
        self.answers = answers or {}
        self.performed: list[effects.PipelineEffect] = []

    async def read(self, effect: effects.ReadBlob) -> Result[Any, errors.Error]:
        self.performed.append(effect)
        return self.answers.get(effect.key, Success(effect.key.encode()))

    async def stat(self, effect: effects.StatBlob) -> Result[effects.BlobInfo, errors.Error]:
        self.performed.append(effect)
        return Success(effects.BlobInfo(key=effect.key, size=42, content_type="text/plain"))

    def table(self) -> dict[type, Performer]:
        return {effects.ReadBlob: self.read, effects.StatBlob: self.stat}


class Closable:
    """A pipeline that notes whether its generator was closed (its `finally` ran)."""

    def __init__(self) -> None:
        self.closed = False

    def run(self) -> pipeline.Pipeline:
        try:
            info = yield effects.StatBlob(key="doc")
            first = yield effects.ReadBlob(key="a")
            second = yield effects.ReadBlob(key="b")
            return Success(
                pipeline.Completion(result={"size": info.size, "text": (first + second).decode()})
            )
        finally:
            self.closed = True


def test_each_effect_goes_to_the_performer_for_its_type_and_values_flow_back() -> None:
    recorder = Recorder()
    run = Closable()
    outcome = asyncio.run(interpret(run.run(), recorder.table()))
    assert outcome == Success(pipeline.Completion(result={"size": 42, "text": "ab"}))
    assert recorder.performed == [
        effects.StatBlob(key="doc"),
        effects.ReadBlob(key="a"),
        effects.ReadBlob(key="b"),
    ]
    assert run.closed


def test_a_pipeline_without_effects_returns_its_outcome() -> None:
    def nothing_to_do() -> pipeline.Pipeline:
        return Success(pipeline.Completion(result={"empty": True}))
        yield  # a generator all the same

    outcome = asyncio.run(interpret(nothing_to_do(), {}))
    assert outcome == Success(pipeline.Completion(result={"empty": True}))


def test_the_first_failure_ends_the_pipeline_and_closes_it() -> None:
    recorder = Recorder({"a": Failure(UNAVAILABLE)})
    run = Closable()
    outcome = asyncio.run(interpret(run.run(), recorder.table()))
    assert outcome == Failure(UNAVAILABLE)
    assert recorder.performed == [effects.StatBlob(key="doc"), effects.ReadBlob(key="a")]
    assert run.closed


def test_an_effect_without_a_performer_is_a_configuration_error() -> None:
    recorder = Recorder()
    run = Closable()
    table: dict[type, Performer] = {effects.StatBlob: recorder.stat}  # no ReadBlob performer
    with pytest.raises(errors.ConfigurationError, match="no performer for ReadBlob"):
        asyncio.run(interpret(run.run(), table))
    assert recorder.performed == [effects.StatBlob(key="doc")]
    assert run.closed


def test_a_performers_exception_propagates_and_closes_the_pipeline() -> None:
    async def broken(effect: effects.ReadBlob) -> Result[bytes, errors.Error]:
        raise ValueError(f"cannot read {effect.key}")

    recorder = Recorder()
    run = Closable()
    table = {**recorder.table(), effects.ReadBlob: broken}
    with pytest.raises(ValueError, match="cannot read a"):
        asyncio.run(interpret(run.run(), table))
    assert run.closed


def test_an_answer_that_is_not_a_result_is_a_bug() -> None:
    async def sloppy(effect: effects.ReadBlob) -> bytes:
        return effect.key.encode()  # forgot Success(...)

    recorder = Recorder()
    run = Closable()
    table = {**recorder.table(), effects.ReadBlob: sloppy}
    with pytest.raises(errors.JobkitError, match=r"ReadBlob returned b'a', not a Result"):
        asyncio.run(interpret(run.run(), table))
    assert run.closed


def test_a_pipelines_own_exception_propagates() -> None:
    def crashes() -> pipeline.Pipeline:
        data = yield effects.ReadBlob(key="a")
        raise RuntimeError(f"cannot parse {data!r}")

    with pytest.raises(RuntimeError, match="cannot parse b'a'"):
        asyncio.run(interpret(crashes(), Recorder().table()))
