"""The pipeline harness: runs, scripts, canned answers, faults and checks, on small pipelines."""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from returns.result import Failure, Success

from jobkit import effects, errors, jobs, pipeline, registry, submission
from jobkit.testing import harness, strategies

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
KEY = "inputs/job-1/document.txt"
OUT = "results/job-1/attempt-1.json"
UNAVAILABLE = errors.transient("unavailable", "the store is down")
CORRUPT = errors.permanent("corrupt_document", "not a document")


def job() -> jobs.Job:
    types = registry.of([registry.JobType(name="words", pipeline=words)])
    made = submission.new_job(
        {"type": "words"},
        types=types,
        job_id="job-1",
        user_id="u",
        now=NOW,
        input=jobs.Input(blob=KEY, content_type="text/plain"),
    )
    draft: jobs.Job = made.unwrap()
    return draft


def words(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    """Stat and read the input, count its words, write the count, then say it is done."""
    yield effects.ReportProgress(current=0, total=1, message="reading")
    info: effects.BlobInfo = yield effects.StatBlob(key=KEY)
    text: bytes = yield effects.ReadBlob(key=info.key)
    count = len(text.split())
    key = pipeline.result_key(job, claim)
    written = yield effects.WriteBlob(
        key=key, data=json.dumps({"words": count}).encode(), content_type="x"
    )
    yield effects.ReportProgress(current=1, total=1, message="done")
    return Success(pipeline.Completion(result={"words": count}, document=written))


ANSWERS = harness.answers({effects.ReadBlob: b"one two three"})


# -- run -------------------------------------------------------------------------------


def test_a_run_records_each_effect_its_answer_and_the_outcome() -> None:
    done = harness.run(words(job(), 1), ANSWERS)
    assert done.asked == (
        effects.ReportProgress(current=0, total=1, message="reading"),
        effects.StatBlob(key=KEY),
        effects.ReadBlob(key=KEY),
        effects.WriteBlob(key=OUT, data=b'{"words": 3}', content_type="x"),
        effects.ReportProgress(current=1, total=1, message="done"),
    )
    assert [step.answer for step in done.steps] == [
        Success(None),
        Success(effects.BlobInfo(key=KEY, size=1024, content_type="application/pdf")),
        Success(b"one two three"),
        Success(effects.BlobInfo(key=OUT, size=12, content_type="x")),
        Success(None),
    ]
    assert done.outcome == Success(
        pipeline.Completion(
            result={"words": 3}, document=effects.BlobInfo(key=OUT, size=12, content_type="x")
        )
    )
    assert done.failed is None
    assert done.written == {OUT: b'{"words": 3}'}
    assert done.claim == 1


def test_the_first_failure_ends_the_run_and_closes_the_pipeline() -> None:
    closed: list[bool] = []

    def tidy(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        try:
            yield effects.StatBlob(key=KEY)
            yield effects.ReadBlob(key=KEY)
        finally:
            closed.append(True)
        return Success(pipeline.Completion())

    respond = harness.answers({effects.StatBlob: Failure(UNAVAILABLE)})
    done = harness.run(tidy(job(), 1), respond)
    assert done.outcome == Failure(UNAVAILABLE)
    assert done.asked == (effects.StatBlob(key=KEY),)
    assert done.failed == done.steps[0]
    assert closed == [True]


def test_the_harness_drives_a_pipeline_as_the_core_driver_does() -> None:
    for respond in (ANSWERS, harness.answers({effects.ReadBlob: Failure(CORRUPT)})):
        assert harness.run(words(job(), 1), respond).outcome == pipeline.run(
            words(job(), 1), respond
        )


@given(strategies.responders())
def test_for_any_answers_the_outcome_is_the_core_drivers(respond: strategies.Responder) -> None:
    done = harness.run(words(job(), 1), respond)
    replayed = dict(enumerate(step.answer for step in done.steps))
    asked = iter(range(len(done.steps)))
    assert pipeline.run(words(job(), 1), lambda _: replayed[next(asked)]) == done.outcome
    if done.failed is not None:
        assert done.outcome == done.failed.answer


def broken(kind: str) -> Generator[Any, Any, Any]:
    yield effects.StatBlob(key=KEY)
    if kind == "raises":
        raise KeyError("pages")
    if kind == "yields junk":
        yield "ReadBlob"
    if kind == "returns None":
        return None
    if kind == "fails with text":
        return Failure("no good")
    return Success({"words": 1})


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("raises", "raised KeyError('pages')"),
        ("yields junk", "yielded 'ReadBlob', which is not a pipeline effect"),
        ("returns None", "returned None, not Success(pipeline.Completion) or Failure"),
        ("fails with text", "returned <Failure: no good>, not Success(pipeline.Completion)"),
        ("succeeds with a dict", "returned <Success: {'words': 1}>, not Success(pipeline.Comp"),
    ],
)
def test_a_pipeline_that_breaks_its_contract_fails_the_run_naming_what_it_did(
    kind: str, says: str
) -> None:
    with pytest.raises(harness.PipelineBroke) as broke:
        harness.run(broken(kind), ANSWERS)
    message = str(broke.value)
    assert says in message
    assert "0: StatBlob(key='inputs/job-1/document.txt') -> <Success: BlobInfo(" in message


def test_a_pipeline_that_asks_for_more_after_a_failure_is_caught() -> None:
    def cleans_up(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        try:
            yield effects.ReadBlob(key=KEY)
        finally:
            yield effects.DeleteBlob(key="tmp/scratch")  # effects cannot run after a failure
        return Success(pipeline.Completion())

    respond = harness.answers({effects.ReadBlob: Failure(UNAVAILABLE)})
    with pytest.raises(harness.PipelineBroke, match="went on after <Failure: Error"):
        harness.run(cleans_up(job(), 1), respond)
    # It passes when nothing fails, which is why a test must make something fail.
    assert harness.run(cleans_up(job(), 1), ANSWERS).outcome == Success(pipeline.Completion())


def test_a_responder_that_answers_without_a_result_is_the_tests_bug() -> None:
    with pytest.raises(TypeError, match=r"answered ReportProgress\(.*\) with b'', not Success"):
        harness.run(words(job(), 1), lambda effect: b"")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="with <Failure: down>"):
        harness.run(words(job(), 1), lambda effect: Failure("down"))  # type: ignore[arg-type]


def test_a_responder_that_raises_stops_the_run_and_closes_the_pipeline() -> None:
    closed: list[bool] = []

    def tidy(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        try:
            yield effects.StatBlob(key=KEY)
        finally:
            closed.append(True)
        return Success(pipeline.Completion())

    def explode(effect: effects.PipelineEffect) -> harness.Answer:
        raise LookupError("no answer")

    with pytest.raises(LookupError, match="no answer"):
        harness.run(tidy(job(), 1), explode)
    assert closed == [True]


# -- faults ----------------------------------------------------------------------------


def test_a_fault_by_position_fails_that_effect() -> None:
    fault = harness.Fault(at=2, error=CORRUPT)
    done = harness.run(words(job(), 1), ANSWERS, faults=[fault])
    assert done.asked[-1] == effects.ReadBlob(key=KEY)
    assert done.steps[-1] == harness.Step(
        effect=effects.ReadBlob(key=KEY), answer=Failure(CORRUPT), fault=fault
    )
    assert done.outcome == Failure(CORRUPT)


def test_a_fault_by_type_fails_the_first_effect_of_that_type() -> None:
    fault = harness.Fault(at=effects.WriteBlob, error=UNAVAILABLE)
    done = harness.run(words(job(), 1), ANSWERS, faults=[fault])
    assert len(done.steps) == 4
    assert done.outcome == Failure(UNAVAILABLE)
    assert done.written == {}


def test_a_fault_strikes_only_its_attempt() -> None:
    fault = harness.Fault(at=effects.StatBlob, error=UNAVAILABLE, attempt=2)
    assert isinstance(harness.run(words(job(), 1), ANSWERS, faults=[fault]).outcome, Success)
    assert harness.run(words(job(), 2), ANSWERS, faults=[fault], claim=2).outcome == Failure(
        UNAVAILABLE
    )
    every = harness.Fault(at=effects.StatBlob, error=UNAVAILABLE)
    for claim in (1, 2, 7):
        done = harness.run(words(job(), claim), ANSWERS, faults=[every], claim=claim)
        assert done.outcome == Failure(UNAVAILABLE)


def test_a_fault_at_a_progress_report_loses_the_report_and_strikes_once() -> None:
    lost = harness.Fault(at=effects.ReportProgress, error=UNAVAILABLE)
    done = harness.run(words(job(), 1), ANSWERS, faults=[lost])
    assert done.steps[0] == harness.Step(
        effect=effects.ReportProgress(current=0, total=1, message="reading"),
        answer=Success(None),
        fault=lost,
    )
    assert done.steps[-1].fault is None  # the second report is not struck again
    assert isinstance(done.outcome, Success)


def test_the_first_fault_that_strikes_wins() -> None:
    first = harness.Fault(at=1, error=CORRUPT)
    second = harness.Fault(at=effects.StatBlob, error=UNAVAILABLE)
    assert harness.run(words(job(), 1), ANSWERS, faults=[first, second]).outcome == Failure(CORRUPT)


# -- scripts ---------------------------------------------------------------------------

SCRIPT: list[tuple[harness.Expect, Any]] = [
    (effects.ReportProgress, None),
    (effects.StatBlob(key=KEY), effects.BlobInfo(key=KEY, size=13, content_type="text/plain")),
    (lambda e: isinstance(e, effects.ReadBlob) and e.key == KEY, Success(b"a b")),
    (effects.WriteBlob, effects.BlobInfo(key=OUT, size=12, content_type="x")),
    (effects.ReportProgress(current=1, total=1, message="done"), None),
]


def test_a_script_answers_each_expected_effect_in_turn() -> None:
    done = harness.run_script(words(job(), 1), SCRIPT)
    written = effects.BlobInfo(key=OUT, size=12, content_type="x")
    assert done.outcome == Success(pipeline.Completion(result={"words": 2}, document=written))
    assert done.steps[3].answer == Success(written)


def test_a_script_may_end_in_a_failure() -> None:
    script = [*SCRIPT[:2], (effects.ReadBlob, Failure(CORRUPT))]
    assert harness.run_script(words(job(), 1), script).outcome == Failure(CORRUPT)


def test_an_unexpected_effect_fails_the_script_naming_both() -> None:
    script = [SCRIPT[0], (effects.ReadBlob, b"")]
    message = (
        "step 1: the pipeline asked for StatBlob(key='inputs/job-1/document.txt'), "
        "the script expected any ReadBlob"
    )
    with pytest.raises(
        harness.ScriptMismatch, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        harness.run_script(words(job(), 1), script)


def test_a_predicate_that_does_not_hold_fails_the_script() -> None:
    def is_big(effect: effects.PipelineEffect) -> bool:
        return False

    with pytest.raises(harness.ScriptMismatch, match="expected an effect for which is_big holds"):
        harness.run_script(words(job(), 1), [(is_big, None)])


def test_asking_past_the_end_of_the_script_fails_it() -> None:
    with pytest.raises(harness.ScriptMismatch, match="after all 2 scripted steps"):
        harness.run_script(words(job(), 1), SCRIPT[:2])


def test_ending_before_the_script_does_fails_it() -> None:
    script = [*SCRIPT, (effects.DeleteBlob, None)]
    with pytest.raises(harness.ScriptMismatch, match="after 5 of 6 scripted steps; step 5 exp"):
        harness.run_script(words(job(), 1), script)


# -- answers ---------------------------------------------------------------------------


def test_default_answers_fit_every_effects_contract() -> None:
    respond = harness.answers()
    write = effects.WriteBlob(key="k", data=b"", content_type="x")
    analyze = effects.Analyze(key="k", content_type="application/pdf", instructions="read")
    assert respond(effects.StatBlob(key="k")) == Success(
        effects.BlobInfo(key="k", size=1024, content_type="application/pdf")
    )
    assert respond(effects.ReadBlob(key="k")) == Success(b"")
    assert respond(write) == Success(effects.BlobInfo(key="k", size=0, content_type="x"))
    assert respond(effects.DeleteBlob(key="k")) == Success(None)
    assert respond(analyze) == Success(effects.Analysis(model="test-model", output={}))
    assert respond(effects.ReportProgress(current=0, total=1)) == Success(None)
    assert set(harness.DEFAULT_ANSWERS) == set(harness.EFFECT_TYPES)


def test_answers_take_values_functions_of_the_effect_and_results() -> None:
    respond = harness.answers(
        {
            effects.ReadBlob: lambda effect: effect.key.encode(),
            effects.StatBlob: Failure(CORRUPT),
            effects.DeleteBlob: Success(None),
        }
    )
    assert respond(effects.ReadBlob(key="abc")) == Success(b"abc")
    assert respond(effects.StatBlob(key="abc")) == Failure(CORRUPT)
    assert respond(effects.DeleteBlob(key="abc")) == Success(None)


# -- checks ----------------------------------------------------------------------------


def test_a_pipeline_that_keeps_every_rule_has_no_problems() -> None:
    assert harness.check(harness.run(words(job(), 1), ANSWERS)) == []
    assert (
        harness.check(
            harness.run(words(job(), 1), ANSWERS, faults=[harness.Fault(at=3, error=CORRUPT)])
        )
        == []
    )


def completes(result: dict[str, Any], *effects_asked: effects.PipelineEffect) -> pipeline.Pipeline:
    """Asks `effects_asked`, then completes with `result`; its `document` key (taken out of
    `result`) names the result document, as `WriteBlob` would have answered."""
    for effect in effects_asked:  # noqa: UP028 - `yield from` a tuple fails on `send`
        yield effect
    summary = dict(result)
    key = summary.pop("document", None)
    document = None if key is None else effects.BlobInfo(key=key, size=2, content_type="x")
    return Success(pipeline.Completion(result=summary, document=document))


def write(key: str) -> effects.WriteBlob:
    return effects.WriteBlob(key=key, data=b"{}", content_type="application/json")


@pytest.mark.parametrize(
    ("result", "asked", "problems"),
    [
        (
            {},
            [effects.ReportProgress(current=3, total=2)],
            ["step 0: progress 3/2 is outside 0..2"],
        ),
        (
            {},
            [effects.ReportProgress(current=-1, total=2)],
            ["step 0: progress -1/2 is outside 0..2"],
        ),
        ({"raw": b"bytes"}, [], ["the result {'raw': b'bytes'} is not plain JSON"]),
        ({"ratio": float("nan")}, [], ["the result {'ratio': nan} is not plain JSON"]),
        ({"document": OUT}, [], [f"the completion names document {OUT!r}, which it did not write"]),
        (
            {"document": OUT},
            [effects.ReportProgress(current=2, total=2), write(OUT)],
            [f"step 0: progress said done before step 1 wrote the result {OUT!r}"],
        ),
        (
            {"document": OUT},
            [write(OUT), write("results/job-1/extra.json")],
            ["wrote 'results/job-1/extra.json', which the job will not own (not its document)"],
        ),
        ({}, [write(OUT)], [f"wrote {OUT!r}, which the job will not own (not its document)"]),
        (
            {"document": OUT},
            [write("tmp/scratch"), write(OUT), effects.DeleteBlob(key="tmp/scratch")],
            [],
        ),
        ({"document": OUT, "pages": [1, {"a": None}]}, [write(OUT)], []),
    ],
)
def test_check_names_each_rule_a_run_broke(
    result: dict[str, Any], asked: list[effects.PipelineEffect], problems: list[str]
) -> None:
    done = harness.run(completes(result, *asked), harness.answers())
    assert harness.check(done) == problems


def test_a_failed_attempt_must_leave_no_blob_behind() -> None:
    def writes_then_fails(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        written = yield write(OUT)
        yield effects.Analyze(key=OUT, content_type="application/json", instructions="check")
        return Success(pipeline.Completion(document=written))

    failing = harness.answers({effects.Analyze: Failure(UNAVAILABLE)})
    done = harness.run(writes_then_fails(job(), 1), failing)
    assert harness.check(done) == [f"wrote {OUT!r}, which the job will not own (not its document)"]
    assert harness.check(harness.run(writes_then_fails(job(), 1), harness.answers())) == []
