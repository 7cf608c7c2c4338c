"""Whole jobs through the lifecycle machine with the harness: retries, give-ups, and the rules
that hold between attempts."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import attrs
import pytest
from pyrsistent import pmap
from returns.result import Failure, Success

from jobkit import (
    effects,
    errors,
    events,
    instants,
    jobs,
    machine,
    pipeline,
    registry,
    retry,
    submission,
)
from jobkit.status import COMPLETED, FAILED, PENDING
from jobkit.testing import harness, lifecycle

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
KEY = "inputs/job-1/document.txt"
UNAVAILABLE = errors.transient("unavailable", "the store is down")
CORRUPT = errors.permanent("corrupt_document", "not a document")
POLICY = retry.RetryPolicy(max_attempts=3, backoff=retry.Backoff(base=10.0, factor=2.0, cap=60.0))


def count(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    text: bytes = yield effects.ReadBlob(key=KEY)
    yield effects.ReportProgress(current=0, total=1, message="counted")
    key = pipeline.result_key(job, claim)
    data = json.dumps({"words": len(text.split())}).encode()
    written = yield effects.WriteBlob(key=key, data=data, content_type="application/json")
    yield effects.ReportProgress(current=1, total=1, message="done")
    return Success(pipeline.Completion(document=written))


def job_type(run: pipeline.PipelineFactory = count) -> registry.JobType:
    return registry.JobType(name="words", pipeline=run, retry=POLICY)


def draft(kind: registry.JobType) -> jobs.Job:
    made = submission.new_job(
        {"type": "words"},
        types=registry.of([kind]),
        job_id="job-1",
        user_id="u",
        now=NOW,
        input=jobs.Input(blob=KEY, content_type="text/plain"),
    )
    value: jobs.Job = made.unwrap()
    return value


ANSWERS = harness.answers({effects.ReadBlob: b"one two"})


def test_a_job_that_meets_no_fault_completes_in_one_attempt() -> None:
    done = lifecycle.run_job(job_type(), draft(job_type()), ANSWERS)
    assert jobs.status(done.job) is COMPLETED
    assert jobs.attempts(done.job) == 1
    assert jobs.result_key(done.job) == "results/job-1/attempt-1.json"
    assert jobs.progress(done.job) == pmap({"current": 1, "total": 1, "message": "done"})
    [attempt] = done.attempts
    assert jobs.claim(attempt.job) == 1
    assert jobs.progress(attempt.job) is None  # the pipeline saw the job as claimed
    assert attempt.after == done.job
    assert lifecycle.check_job(done) == []


def test_a_pending_job_runs_too_and_progress_reaches_the_job() -> None:
    kind = job_type()
    pending, _ = machine.step(draft(kind), events.Submitted(), NOW).unwrap()
    done = lifecycle.run_job(kind, pending, ANSWERS)
    claimed, _ = machine.step(
        pending, events.Claimed(worker="harness", lease_seconds=60.0), NOW
    ).unwrap()
    assert done.attempts[0].job == claimed
    assert jobs.status(done.job) is COMPLETED


def test_a_transient_failure_is_retried_when_the_policy_says() -> None:
    fault = harness.Fault(at=effects.ReadBlob, error=UNAVAILABLE, attempt=1)
    done = lifecycle.run_job(job_type(), draft(job_type()), ANSWERS, faults=[fault], sample=0.5)
    first, second = done.attempts
    assert first.run.outcome == Failure(UNAVAILABLE)
    assert jobs.status(first.after) is PENDING
    assert jobs.run_at(first.after) == instants.plus(NOW, 0.5 * 10.0)  # full jitter, attempt 1
    assert jobs.claim(second.job) == 2
    assert jobs.status(done.job) is COMPLETED
    assert jobs.result_key(done.job) == "results/job-1/attempt-2.json"
    assert lifecycle.check_job(done) == []


def test_a_permanent_failure_fails_the_job_at_once() -> None:
    fault = harness.Fault(at=effects.ReadBlob, error=CORRUPT)
    done = lifecycle.run_job(job_type(), draft(job_type()), ANSWERS, faults=[fault])
    assert len(done.attempts) == 1
    assert jobs.status(done.job) is FAILED
    assert jobs.error(done.job) == attrs.evolve(CORRUPT, at=NOW)


def test_a_failure_on_every_attempt_exhausts_them() -> None:
    fault = harness.Fault(at=effects.WriteBlob, error=UNAVAILABLE)
    done = lifecycle.run_job(job_type(), draft(job_type()), ANSWERS, faults=[fault])
    assert [jobs.claim(a.job) for a in done.attempts] == [1, 2, 3]
    assert jobs.status(done.job) is FAILED
    assert jobs.attempts(done.job) == 3
    assert [a.run.written for a in done.attempts] == [{}, {}, {}]


def test_a_lost_progress_report_does_not_reach_the_job() -> None:
    lost = harness.Fault(at=effects.ReportProgress, error=UNAVAILABLE)
    done = lifecycle.run_job(job_type(), draft(job_type()), ANSWERS, faults=[lost])
    assert jobs.status(done.job) is COMPLETED


def test_progress_the_machine_refuses_breaks_the_run() -> None:
    def overshoots(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        yield effects.ReportProgress(current=3, total=2)
        return Success(pipeline.Completion())

    kind = job_type(overshoots)
    with pytest.raises(harness.PipelineBroke, match="progress 3/2"):
        lifecycle.run_job(kind, draft(kind), ANSWERS)


def test_only_a_draft_or_a_pending_job_can_be_run() -> None:
    kind = job_type()
    pending, _ = machine.step(draft(kind), events.Submitted(), NOW).unwrap()
    running, _ = machine.step(pending, events.Claimed(worker="w", lease_seconds=30.0), NOW).unwrap()
    with pytest.raises(ValueError, match="not processing"):
        lifecycle.run_job(kind, running, ANSWERS)


def test_check_job_finds_two_attempts_writing_the_same_blob() -> None:
    def one_key(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        key = f"results/{jobs.id(job)}.json"  # not per attempt: a late attempt overwrites
        written = yield effects.WriteBlob(key=key, data=b"{}", content_type="application/json")
        yield effects.ReadBlob(key=KEY)
        return Success(pipeline.Completion(document=written))

    kind = job_type(one_key)
    fault = harness.Fault(at=effects.ReadBlob, error=UNAVAILABLE, attempt=1)
    done = lifecycle.run_job(kind, draft(kind), ANSWERS, faults=[fault])
    assert lifecycle.check_job(done) == [
        "attempt 1: wrote 'results/job-1.json', which the job will not own (not its document)",
        "attempts 1 and 2 both wrote 'results/job-1.json'",
    ]


def test_check_job_finds_a_pipeline_that_does_not_replay() -> None:
    calls = itertools.count()

    def forgetful(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        key = f"results/{jobs.id(job)}/{next(calls)}.json"  # state outside the job and claim
        written = yield effects.WriteBlob(key=key, data=b"{}", content_type="application/json")
        return Success(pipeline.Completion(document=written))

    kind = job_type(forgetful)
    done = lifecycle.run_job(kind, draft(kind), ANSWERS)
    [problem] = lifecycle.check_job(done)
    assert problem.startswith("attempt 1: replayed with the same answers, step 0: the pipeline ")
    assert "asked for WriteBlob(key='results/job-1/1.json'" in problem
