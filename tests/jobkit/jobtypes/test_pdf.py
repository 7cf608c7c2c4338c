"""The pdf-analysis job type, tested as a user tests their own: its parameters, one script
with exact effects, and properties over generated answers and fault schedules, all through
the public `jobkit.testing` harness and strategies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pmap
from returns.result import Failure, Success

from jobkit import effects, errors, events, jobs, machine, pipeline, registry, submission
from jobkit.jobtypes import pdf
from jobkit.status import COMPLETED, FAILED, PENDING, PROCESSING
from jobkit.testing import harness, lifecycle, strategies

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
TYPES = registry.of([pdf.JOB_TYPE])
BLOB = "inputs/job-1/document.pdf"
SOURCE = jobs.Input(blob=BLOB, content_type="application/pdf", filename="invoice.pdf", size=2048)
CLASSIFIER = pdf.JOB_TYPE.retry.classifier


def claimed(
    params: dict[str, Any], source: jobs.Input | None = SOURCE, types: registry.Registry = TYPES
) -> jobs.Job:
    draft = submission.new_job(
        {"type": pdf.NAME, "params": params},
        types=types,
        job_id="job-1",
        user_id="u",
        now=NOW,
        input=source,
    ).unwrap()
    pending, _ = machine.step(draft, events.Submitted(), NOW).unwrap()
    job, _ = machine.step(pending, events.Claimed(worker="w", lease_seconds=60.0), NOW).unwrap()
    assert isinstance(job, jobs.Job)
    return job


# -- parameters ----------------------------------------------------------------------------


def test_params_default_the_instructions_and_keep_a_schema_and_model() -> None:
    assert pdf.validate_params({}) == Success(pmap({"instructions": pdf.DEFAULT_INSTRUCTIONS}))
    given_params = {"instructions": "List risks", "schema": {"type": "object"}, "model": "m-1"}
    assert pdf.validate_params(given_params) == Success(pmap(given_params))


def test_bad_params_are_each_named() -> None:
    refused = pdf.validate_params(
        {"instructions": " ", "schema": {"properties": {}}, "model": "no spaces", "pages": 3}
    )
    assert isinstance(refused, Failure)
    assert [p.field for p in refused.failure().problems] == [
        "pages",
        "instructions",
        "schema",
        "model",
    ]


# -- one script ----------------------------------------------------------------------------

ANALYSIS = effects.Analysis(
    model="m-1", output={"title": "Invoice"}, pages=2, document={"author": "A"}, usage={"in": 9}
)


def test_the_pipeline_checks_analyses_and_writes_its_result_in_that_order() -> None:
    job = claimed({"instructions": "Title?", "schema": {"type": "object"}, "model": "m-1"})
    key = "results/job-1/attempt-1.json"
    done = harness.run_script(
        pdf.analyze_pdf(job, 1),
        [
            (effects.ReportProgress(current=0, total=1, message="checking the document"), None),
            (
                effects.StatBlob(key=BLOB),
                effects.BlobInfo(key=BLOB, size=2048, content_type="application/pdf"),
            ),
            (effects.ReportProgress(current=0, total=1, message="analysing"), None),
            (
                effects.Analyze(
                    key=BLOB,
                    content_type="application/pdf",
                    instructions="Title?",
                    schema={"type": "object"},
                    model="m-1",
                ),
                ANALYSIS,
            ),
            (
                lambda e: isinstance(e, effects.WriteBlob) and e.key == key,
                effects.BlobInfo(key=key, size=99, content_type="application/json"),
            ),
            (effects.ReportProgress(current=2, total=2, message="result saved"), None),
        ],
    )
    summary = {"model": "m-1", "pages": 2, "bytes": 2048}
    assert done.outcome.unwrap().result == pmap(summary)
    assert done.outcome.unwrap().document_key == key
    assert json.loads(done.written[key]) == {
        "jobId": "job-1",
        "attempt": 1,
        "model": "m-1",
        "document": {"filename": "invoice.pdf", "bytes": 2048, "pages": 2, "author": "A"},
        "output": {"title": "Invoice"},
        "usage": {"in": 9},
    }
    assert harness.check(done) == []


def test_a_job_without_a_document_fails_for_good_asking_nothing() -> None:
    # Submission refuses such a job; one made before a type required input could exist.
    lenient = registry.of([attrs.evolve(pdf.JOB_TYPE, input_required=False)])
    done = harness.run_script(pdf.analyze_pdf(claimed({}, None, lenient), 1), [])
    assert done.outcome == Failure(
        errors.permanent("invalid_input", "the job has no input document")
    )


# -- properties ----------------------------------------------------------------------------

running = strategies.jobs_of(pdf.JOB_TYPE, {PROCESSING})


@given(running, strategies.responders(failures=strategies.failures(CLASSIFIER)))
def test_for_any_answers_the_pipeline_keeps_every_rule(
    job: jobs.Job, respond: strategies.Responder
) -> None:
    claim = jobs.claim(job)
    done = harness.run(pdf.analyze_pdf(job, claim), respond)  # never raises
    assert harness.check(done) == []
    match done.outcome:
        case Success(completion):
            key = pipeline.result_key(job, claim)
            assert completion.document_key == key
            assert json.loads(done.written[key])["jobId"] == jobs.id(job)
        case Failure(err):
            assert done.failed is not None  # pdf-analysis fails only when an effect does
            assert err == done.failed.answer.failure()


@given(running, strategies.fault_schedules(fault=strategies.faults(attempts=st.none())))
def test_a_fault_ends_the_attempt_with_its_error_and_nothing_after(
    job: jobs.Job, schedule: tuple[harness.Fault, ...]
) -> None:
    claim = jobs.claim(job)
    done = harness.run(pdf.analyze_pdf(job, claim), harness.answers(), faults=schedule)
    clean = harness.run(pdf.analyze_pdf(job, claim), harness.answers())
    assert done.asked == clean.asked[: len(done.asked)]  # the same path, cut short
    if done.failed is None:
        assert done.outcome == clean.outcome
    else:
        assert done.failed.fault is not None
        assert done.outcome == Failure(done.failed.fault.error)
        assert done.written == {}  # its one write is its last fallible effect


@given(
    strategies.jobs_of(pdf.JOB_TYPE, {PENDING}),
    strategies.fault_schedules(fault=strategies.faults(failures=strategies.failures(CLASSIFIER))),
)
def test_through_its_lifecycle_a_job_is_retried_only_for_transient_faults(
    job: jobs.Job, schedule: tuple[harness.Fault, ...]
) -> None:
    done = lifecycle.run_job(pdf.JOB_TYPE, job, harness.answers(), faults=schedule)
    assert lifecycle.check_job(done) == []
    *retried, last = done.attempts
    for attempt in retried:  # every attempt but the last failed with a transient error
        assert attempt.run.failed is not None
        assert errors.classify(attempt.run.outcome.failure(), CLASSIFIER)
        assert jobs.status(attempt.after) is PENDING
    if last.run.failed is None:
        assert jobs.status(done.job) is COMPLETED
        assert jobs.result(done.job) == last.run.outcome.unwrap().result
    else:
        err = last.run.outcome.failure()
        permanent = not errors.classify(err, CLASSIFIER)
        exhausted = jobs.attempts(done.job) == jobs.max_attempts(done.job)
        assert permanent or exhausted
        assert jobs.status(done.job) is FAILED
        stored = jobs.error(done.job)
        assert stored is not None
        assert (stored.code, stored.message) == (err.code, err.message)


@given(
    st.lists(strategies.drafts(pdf.JOB_TYPE), min_size=2, max_size=2, unique_by=jobs.id),
    st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=2),
)
def test_two_jobs_never_write_the_same_blob(pair: list[jobs.Job], claims: list[int]) -> None:
    runs = [
        harness.run(pdf.analyze_pdf(job, claim), harness.answers(), claim=claim)
        for job, claim in zip(pair, claims, strict=True)
    ]
    assert set(runs[0].written).isdisjoint(runs[1].written)


@pytest.mark.parametrize("kind", strategies.FALLIBLE, ids=lambda t: t.__name__)
def test_every_fallible_effect_is_one_pdf_analysis_uses_or_never_asks(kind: type) -> None:
    asked = {type(e) for e in harness.run(pdf.analyze_pdf(claimed({}), 1), harness.answers()).asked}
    assert (kind in asked) == (kind in {effects.StatBlob, effects.Analyze, effects.WriteBlob})
