"""The effect interpreter: drives a pipeline by looking each effect's performer up by type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from returns.result import Failure, Success

from jobkit import effects, errors, pipeline

Performer = Callable[[Any], Awaitable[Any]]
Performers = Mapping[type, Performer]

_START: Final[Any] = object()  # `first` when the pipeline has not been started


async def interpret(
    run: pipeline.Pipeline, performers: Performers, first: Any = _START
) -> pipeline.Outcome:
    """Run `run` to its end, awaiting each effect's performer; the first `Failure` ends it.

    A performer returns `Success(value)` (sent back into the pipeline) or
    `Failure(errors.Error)`. An effect with no performer is a wiring bug and
    raises; so does a performer's unexpected exception, for the worker to record.

    `first` is the effect `run` has already yielded, when the caller started it
    (the worker runs each pipeline's first, synchronous step itself).
    """
    try:
        effect: effects.PipelineEffect = next(run) if first is _START else first
        while True:
            perform = performers.get(type(effect))
            if perform is None:
                run.close()
                raise errors.ConfigurationError(f"no performer for {type(effect).__name__}")
            try:
                answer = await perform(effect)
            except BaseException:
                run.close()
                raise
            match answer:
                case Success(value):
                    effect = run.send(value)
                case Failure(err):
                    run.close()
                    return Failure(err)
                case _:
                    run.close()
                    raise errors.JobkitError(
                        f"performer for {type(effect).__name__} returned {answer!r}, not a Result"
                    )
    except StopIteration as stop:
        outcome: pipeline.Outcome = stop.value
        return outcome
