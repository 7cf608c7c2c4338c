"""Walk one PDF-analysis job through its whole lifecycle with the pure core alone.

No I/O: the clock is a value, the pipeline's effects are answered from a table,
and every state is an immutable map. Run: `python examples/lifecycle_by_hand.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from returns.result import Failure, Result, Success

from jobkit import effects, errors, events, jobs, machine, pipeline, plugins, registry, submission


def main() -> None:
    types = plugins.discover()  # the installed job types: pdf-analysis ships with jobkit
    now = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    draft = submission.new_job(
        {
            "type": "pdf-analysis",
            "params": {"instructions": "List the invoice lines."},
            "priority": 80,
        },
        types=types,
        job_id="job-1",
        user_id="tenant:alice",
        now=now,
        input=jobs.Input(
            blob="inputs/job-1/document.pdf",
            content_type="application/pdf",
            filename="invoice.pdf",
        ),
    ).unwrap()
    job, done = machine.step(draft, events.Submitted(), now).unwrap()
    names = [e.name for e in done if isinstance(e, effects.Lifecycle)]
    print(f"submitted: {jobs.status(job)} v{jobs.version(job)} {names}")

    job, _ = machine.step(job, events.Claimed(worker="w1", lease_seconds=30), now).unwrap()
    job_type = registry.get(types, jobs.type_name(job))

    # The first attempt fails: the model is overloaded (a transient error).
    overloaded = errors.transient("unavailable", "the model is overloaded")
    job, done = machine.step(
        job,
        events.AttemptFailed(
            worker="w1", claim=1, error=overloaded, policy=job_type.retry, sample=0.5
        ),
        now,
    ).unwrap()
    entry = jobs.history(job)[-1]
    print(f"attempt 1: {entry['outcome']}, next run at {entry['nextRunAt']:%H:%M:%S}")

    # The retry is due later; claiming it now is refused with a value, not an exception.
    match machine.step(job, events.Claimed(worker="w2", lease_seconds=30), now):
        case Failure(refused):
            print(f"claim too early: {refused.code}")
        case Success(_):
            raise AssertionError("a job must not be claimed before its runAt")

    later = now + timedelta(seconds=10)
    job, _ = machine.step(job, events.Claimed(worker="w2", lease_seconds=30), later).unwrap()

    answers: dict[type, Any] = {
        effects.StatBlob: effects.BlobInfo(
            key="inputs/job-1/document.pdf", size=1234, content_type="application/pdf"
        ),
        effects.ReportProgress: None,
        effects.Analyze: effects.Analysis(model="offline", output={"lines": 3}, pages=2),
        effects.WriteBlob: effects.BlobInfo(
            key="results/job-1/attempt-2.json", size=321, content_type="application/json"
        ),
    }

    def respond(effect: effects.PipelineEffect) -> Result[Any, errors.Error]:
        print(f"  effect: {type(effect).__name__}")
        return Success(answers[type(effect)])

    completion = pipeline.run(job_type.pipeline(job, jobs.claim(job)), respond).unwrap()
    job, done = machine.step(
        job,
        events.AttemptSucceeded(
            worker="w2", claim=2, result=completion.result, result_key=completion.document_key
        ),
        later,
    ).unwrap()
    print(f"attempt 2: {jobs.status(job)}, attempts={jobs.attempts(job)}")
    print(f"result: {dict(jobs.result(job) or {})} in {jobs.result_key(job)}")
    assert jobs.status(job) == "completed"
    assert jobs.attempts(job) == 2


if __name__ == "__main__":
    main()
