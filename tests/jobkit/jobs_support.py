"""Jobs the tests of `jobs`, `changes`, `documents` and `records` share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from jobkit import errors, events, instants, jobs, retry, submission
from tests.jobkit import strategies

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DOCUMENT = jobs.Input(
    blob="inputs/job-1/document.pdf", content_type="application/pdf", filename="a.pdf", size=9
)
RESULT_KEY = "results/job-1/attempt-2.json"
FLAKY = errors.transient("unavailable", "backend down")
POLICY = retry.RetryPolicy(backoff=retry.Backoff(base=10.0, factor=2.0, cap=300.0))

every_job = st.one_of(
    strategies.drafts().map(lambda drawn: drawn[0]),
    st.builds(jobs.with_turn, strategies.submitted_jobs(), st.integers(0, 2**40)),
)


def at(seconds: float) -> datetime:
    return instants.plus(T0, seconds)


def new_draft(input: jobs.Input | None = DOCUMENT, **request: Any) -> jobs.Job:  # noqa: A002
    draft: jobs.Job = submission.new_job(
        {"type": "echo", **request},
        types=strategies.TYPES,
        job_id="job-1",
        user_id="user-1",
        now=T0,
        input=input,
    ).unwrap()
    return draft


def walk(job: jobs.Job, *moves: tuple[events.Event, float]) -> jobs.Job:
    for event, seconds in moves:
        job = strategies.accepted(job, event, at(seconds))
    return job


def completed_on_second_attempt() -> jobs.Job:
    """Failed once (retried 5 s later), then succeeded for another worker with progress shown."""
    return walk(
        new_draft(params={"pages": 3}, metadata={"team": "docs"}),
        (events.Submitted(), 0),
        (events.Claimed(worker="w1", lease_seconds=60), 1),
        (events.AttemptFailed(worker="w1", claim=1, error=FLAKY, policy=POLICY, sample=0.5), 2),
        (events.Claimed(worker="w2", lease_seconds=60), 10),
        (events.ProgressReported(worker="w2", claim=2, current=1, total=2, message="half"), 11),
        (
            events.AttemptSucceeded(
                worker="w2", claim=2, result={"pages": 3}, result_key=RESULT_KEY
            ),
            12,
        ),
    )


def without(job: jobs.Job, *keys: str) -> dict[str, Any]:
    return {key: value for key, value in job.items() if key not in keys}
