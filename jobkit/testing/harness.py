"""Run a job type's pipeline against scripted or generated effect results, and check what it did.

`run` drives one attempt's pipeline as the worker does (stopping at the first
failed effect) and records every effect asked, every answer given and the
outcome; `run_script` answers from a list of expected effects, `answers` from
a table per effect type; `check` lists what a run did that a pipeline must not.
`jobkit.testing.lifecycle` takes whole jobs through attempt after attempt.

A pipeline that raises, yields something that is not an effect, asks for more
after a failure, or returns anything but `Success(Completion)` or
`Failure(errors.Error)` fails the run at once with `PipelineBroke`. The
stdlib and the core only: hypothesis strategies live in
`jobkit.testing.strategies`.
"""

from __future__ import annotations

import contextlib
import json
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from jobkit import _frozen, effects, errors, pipeline

Answer = Result[Any, errors.Error]
Respond = Callable[[effects.PipelineEffect], Answer]
# What a script step expects: an equal effect, an effect type, or a predicate on the effect.
Expect = effects.PipelineEffect | type | Callable[[effects.PipelineEffect], bool]

EFFECT_TYPES: tuple[type, ...] = typing.get_args(effects.PipelineEffect)


class PipelineBroke(AssertionError):
    """The pipeline broke its contract: it raised, yielded a non-effect, asked for an effect
    after a failure, or returned something other than an outcome."""


class ScriptMismatch(AssertionError):
    """The pipeline asked for something its script did not expect, or stopped early."""


@attrs.frozen(kw_only=True)
class Fault:
    """Answer one effect with `Failure(error)` instead of asking the responder.

    `at` is the effect's position in the attempt (0 is the first effect asked) or
    an effect type (the attempt's first effect of that type). `attempt` is the
    claim number it strikes; None strikes every attempt. `ReportProgress` is best
    effort and the worker never fails it: a fault aimed there loses the report
    (answered `Success(None)`) and the pipeline goes on.
    """

    at: int | type
    error: errors.Error
    attempt: int | None = None

    def strikes(self, effect: effects.PipelineEffect, position: int, claim: int) -> bool:
        if self.attempt is not None and self.attempt != claim:
            return False
        if isinstance(self.at, int):
            return self.at == position
        return isinstance(effect, self.at)


@attrs.frozen(kw_only=True)
class Step:
    """One effect the pipeline asked for, the answer it got, and the fault that chose it."""

    effect: effects.PipelineEffect
    answer: Answer
    fault: Fault | None = None


@attrs.frozen(kw_only=True)
class Run:
    """One attempt: each effect asked with its answer, in order, and the pipeline's outcome."""

    claim: int
    steps: tuple[Step, ...]
    outcome: pipeline.Outcome

    @property
    def asked(self) -> tuple[effects.PipelineEffect, ...]:
        return tuple(step.effect for step in self.steps)

    @property
    def failed(self) -> Step | None:
        """The step whose failed answer ended the attempt, if one did."""
        last = self.steps[-1] if self.steps else None
        return last if last is not None and isinstance(last.answer, Failure) else None

    @property
    def written(self) -> dict[str, bytes]:
        """The blobs this attempt wrote and did not delete afterwards, by key."""
        kept: dict[str, bytes] = {}
        for step in self.steps:
            if not isinstance(step.answer, Success):
                continue
            match step.effect:
                case effects.WriteBlob(key=key, data=data):
                    kept[key] = data
                case effects.DeleteBlob(key=key):
                    kept.pop(key, None)
        return kept


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _trace(steps: Sequence[Step]) -> str:
    lines = [f"  {i}: {_short(s.effect)} -> {_short(s.answer)}" for i, s in enumerate(steps)]
    return "\n".join(lines) or "  (no effect asked)"


def _broke(message: str, steps: Sequence[Step]) -> PipelineBroke:
    return PipelineBroke(f"{message}\nafter these effects:\n{_trace(steps)}")


def _checked_outcome(value: Any, steps: Sequence[Step]) -> pipeline.Outcome:
    match value:
        case Success(pipeline.Completion()):
            return typing.cast(pipeline.Outcome, value)
        case Failure(errors.Error()):
            return typing.cast(pipeline.Outcome, value)
    message = "returned {}, not Success(pipeline.Completion) or Failure(errors.Error)"
    raise _broke(message.format(_short(value)), steps)


def _close(pipe: pipeline.Pipeline) -> None:
    """Close a pipeline the run is abandoning anyway; its complaints would hide the cause."""
    with contextlib.suppress(Exception):
        pipe.close()


def _striking(
    faults: Sequence[Fault], struck: set[int], effect: effects.PipelineEffect, at: int, claim: int
) -> Fault | None:
    for i, fault in enumerate(faults):
        if i not in struck and fault.strikes(effect, at, claim):
            struck.add(i)  # a fault strikes once per attempt
            return fault
    return None


def _answer(respond: Respond, effect: effects.PipelineEffect, pipe: pipeline.Pipeline) -> Answer:
    try:
        answer = respond(effect)
    except BaseException:
        _close(pipe)
        raise
    match answer:
        case Success(_) | Failure(errors.Error()):
            return answer
    _close(pipe)
    message = f"the responder answered {_short(effect)} with {_short(answer)}"
    raise TypeError(f"{message}, not Success(value) or Failure(errors.Error)")


def run(
    pipe: pipeline.Pipeline,
    respond: Respond,
    *,
    faults: Sequence[Fault] = (),
    claim: int = 1,
) -> Run:
    """Drive `pipe` (the attempt with claim number `claim`) to its end, as the worker does.

    Each effect gets the first of `faults` that strikes it, else `respond(effect)`;
    the first `Failure` closes the pipeline and is the outcome.
    """
    steps: list[Step] = []
    struck: set[int] = set()
    sent: Any = None  # sending None first is `next(pipe)`
    while True:
        try:
            effect = pipe.send(sent)
        except StopIteration as stop:
            outcome = _checked_outcome(stop.value, steps)
            return Run(claim=claim, steps=tuple(steps), outcome=outcome)
        except Exception as exc:
            raise _broke(f"raised {exc!r}", steps) from exc
        if not isinstance(effect, EFFECT_TYPES):
            _close(pipe)
            raise _broke(f"yielded {_short(effect)}, which is not a pipeline effect", steps)
        fault = _striking(faults, struck, effect, len(steps), claim)
        answer: Answer
        if fault is None:
            answer = _answer(respond, effect, pipe)
        elif isinstance(effect, effects.ReportProgress):
            answer = Success(None)  # a lost report, as the worker treats one
        else:
            answer = Failure(fault.error)
        steps.append(Step(effect=effect, answer=answer, fault=fault))
        if isinstance(answer, Failure):
            try:
                pipe.close()
            except Exception as exc:  # a `yield` in `finally` raises RuntimeError here
                message = f"went on after {_short(answer)} instead of stopping: {exc!r}"
                raise _broke(message, steps) from exc
            return Run(claim=claim, steps=tuple(steps), outcome=answer)
        sent = answer.unwrap()


def _matches(expect: Expect, effect: effects.PipelineEffect) -> bool:
    if isinstance(expect, type):
        return isinstance(effect, expect)
    if isinstance(expect, EFFECT_TYPES):
        return bool(expect == effect)
    predicate = typing.cast(Callable[[effects.PipelineEffect], bool], expect)
    return bool(predicate(effect))


def _named(expect: Expect) -> str:
    if isinstance(expect, type):
        return f"any {expect.__name__}"
    if isinstance(expect, EFFECT_TYPES):
        return _short(expect)
    return f"an effect for which {getattr(expect, '__name__', repr(expect))} holds"


def _as_answer(canned: Any) -> Answer:
    return canned if isinstance(canned, Success | Failure) else Success(canned)


def run_script(
    pipe: pipeline.Pipeline, script: Sequence[tuple[Expect, Any]], *, claim: int = 1
) -> Run:
    """Drive `pipe` through `script`: (expected effect, answer) pairs, in order.

    An answer is a `Result`, or a plain value meaning `Success(value)`. The run
    fails with `ScriptMismatch` when the pipeline asks for an effect the step does
    not expect, asks for more than the script holds, or ends before using it all.
    """
    position = 0

    def respond(effect: effects.PipelineEffect) -> Answer:
        nonlocal position
        if position >= len(script):
            raise ScriptMismatch(
                f"the pipeline asked for {_short(effect)} after all {len(script)} scripted steps"
            )
        expect, canned = script[position]
        if not _matches(expect, effect):
            raise ScriptMismatch(
                f"step {position}: the pipeline asked for {_short(effect)}, "
                f"the script expected {_named(expect)}"
            )
        position += 1
        return _as_answer(canned)

    done = run(pipe, respond, claim=claim)
    if position < len(script):
        raise ScriptMismatch(
            f"the pipeline ended with {_short(done.outcome)} after {position} of "
            f"{len(script)} scripted steps; step {position} expected {_named(script[position][0])}"
        )
    return done


def _written(effect: effects.WriteBlob) -> effects.BlobInfo:
    return effects.BlobInfo(key=effect.key, size=len(effect.data), content_type=effect.content_type)


def _blob_info(effect: effects.StatBlob) -> effects.BlobInfo:
    return effects.BlobInfo(key=effect.key, size=1024, content_type="application/pdf")


# A success for every effect type: a value, or a function of the effect.
DEFAULT_ANSWERS: Mapping[type[Any], Any] = {
    effects.StatBlob: _blob_info,
    effects.ReadBlob: b"",
    effects.WriteBlob: _written,
    effects.DeleteBlob: None,
    effects.Analyze: effects.Analysis(model="test-model", output={}),
    effects.ReportProgress: None,
}


def answers(overrides: Mapping[type[Any], Any] | None = None) -> Respond:
    """A responder answering each effect type from `overrides`, else `DEFAULT_ANSWERS`.

    A value is an answer (a `Result`, or a plain value meaning `Success(value)`);
    a callable is called with the effect and its return value is the answer.
    """
    table = {**DEFAULT_ANSWERS, **(overrides or {})}

    def respond(effect: effects.PipelineEffect) -> Answer:
        value = table[type(effect)]
        return _as_answer(value(effect) if callable(value) else value)

    return respond


# -- checks: what a pipeline must not do --------------------------------------------


def _plain_json(value: Any) -> bool:
    try:
        thawed = _frozen.thaw(value)
        return bool(json.loads(json.dumps(thawed, allow_nan=False)) == thawed)
    except (TypeError, ValueError):
        return False


def check(done: Run) -> list[str]:
    """What `done` did that a pipeline must not; empty when it kept every rule.

    - progress stays within 0..total (the machine refuses anything else);
    - a completion's `result` is plain JSON (it is stored in the job);
    - the result document the completion names (`document`, recorded as the attempt's
      `resultKey`) was written by this attempt, before any progress report said the
      attempt was done;
    - every blob the attempt leaves behind is that document: the job owns only that
      one, so purging the job would leave any other behind.
    """
    problems: list[str] = []
    wrote_at = {
        step.effect.key: i
        for i, step in enumerate(done.steps)
        if isinstance(step.effect, effects.WriteBlob) and isinstance(step.answer, Success)
    }
    finished_at = None
    for i, step in enumerate(done.steps):
        if isinstance(step.effect, effects.ReportProgress):
            current, total = step.effect.current, step.effect.total
            if not 0 <= current <= total:
                problems.append(f"step {i}: progress {current}/{total} is outside 0..{total}")
            elif current == total and finished_at is None:
                finished_at = i
    owned: str | None = None
    if isinstance(done.outcome, Success):
        result = done.outcome.unwrap().result
        if not _plain_json(result):
            problems.append(f"the result {_short(_frozen.thaw(result))} is not plain JSON")
        key = done.outcome.unwrap().document_key
        if key is not None:
            owned = key
            if key not in wrote_at:
                problems.append(f"the completion names document {key!r}, which it did not write")
            elif finished_at is not None and finished_at < wrote_at[key]:
                problems.append(
                    f"step {finished_at}: progress said done before step {wrote_at[key]} "
                    f"wrote the result {key!r}"
                )
    for key in done.written:
        if key != owned:
            problems.append(f"wrote {key!r}, which the job will not own (not its document)")
    return problems
