"""The lifecycle machine's invariants, over real jobs and any event at all: status moves only
along the table, finished jobs absorb, attempts and versions move by one, inputs stay whole."""

from __future__ import annotations

import copy
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from jobkit import documents, events, jobs, machine
from jobkit.status import TERMINAL, TRANSITIONS
from tests.jobkit import strategies
from tests.jobkit.builders import REASONS, refusal

WORKER_SIDE = (
    events.Claimed,
    events.Heartbeat,
    events.ProgressReported,
    events.AttemptSucceeded,
    events.AttemptFailed,
    events.LeaseExpired,
    events.LeaseReleased,
    events.CancelRequested,
)


jobs_and_times = st.one_of(strategies.drafts(), strategies.histories())
ATTEMPT_ENDERS = (events.AttemptSucceeded, events.AttemptFailed, events.LeaseExpired)


@st.composite
def situations(draw: st.DrawFn) -> tuple[jobs.Job, events.Event, datetime]:
    """A real job, any event at all for it, and an instant not before the job's last write."""
    job, now = draw(jobs_and_times)
    return job, draw(strategies.events_for(job)), draw(strategies.later(now))


@given(situations())
def test_status_moves_only_along_the_table(
    situation: tuple[jobs.Job, events.Event, datetime],
) -> None:
    job, event, now = situation
    source = jobs.status_or_none(job)
    match machine.step(job, event, now):
        case Success((moved, _)):
            assert jobs.status(moved) in TRANSITIONS[(source, event.kind)]
        case Failure(refused):
            assert (refused.status, refused.event) == (
                None if source is None else source.value,
                event.kind,
            )
            legal = (source, event.kind) in TRANSITIONS
            assert (refused.code == "illegal_transition") == (not legal)


@st.composite
def finished_situations(draw: st.DrawFn) -> tuple[jobs.Job, events.Event, datetime]:
    job, now = draw(strategies.histories(finished=True))
    kind = draw(st.sampled_from(WORKER_SIDE))
    return job, draw(strategies.events_of(kind, job)), draw(strategies.later(now))


@given(finished_situations())
def test_finished_jobs_absorb_every_worker_side_event(
    situation: tuple[jobs.Job, events.Event, datetime],
) -> None:
    job, event, now = situation
    source = jobs.status(job)
    assert source in TERMINAL
    assert machine.step(job, event, now) == refusal(
        "illegal_transition", f"cannot {event.kind}: {REASONS[source]}", source, event.kind
    )
    assert jobs.status(job) == source


@given(situations())
def test_attempts_change_only_by_one_per_ended_attempt_or_reset_on_retry(
    situation: tuple[jobs.Job, events.Event, datetime],
) -> None:
    """Accepted steps: RetryRequested sets attempts to 0; a success, failure or stall adds
    exactly 1; every other event leaves them as they were. They never pass maxAttempts."""
    job, event, now = situation
    match machine.step(job, event, now):
        case Success((moved, _)):
            if isinstance(event, events.RetryRequested):
                expected = 0
            elif isinstance(event, ATTEMPT_ENDERS):
                expected = jobs.attempts(job) + 1
            else:
                expected = jobs.attempts(job)
            assert jobs.attempts(moved) == expected
            assert jobs.max_attempts(moved) == jobs.max_attempts(job)
            assert 0 <= jobs.attempts(moved) <= jobs.max_attempts(moved)


@given(situations())
def test_every_accepted_write_grows_the_version_by_one(
    situation: tuple[jobs.Job, events.Event, datetime],
) -> None:
    job, event, now = situation
    match machine.step(job, event, now):
        case Success((moved, _)) if isinstance(event, events.Purged):
            assert moved == job  # the record is deleted by DeleteJob, not rewritten
        case Success((moved, _)):
            assert (jobs.version(moved), jobs.updated_at(moved)) == (jobs.version(job) + 1, now)


@given(situations())
def test_the_input_job_is_never_mutated(situation: tuple[jobs.Job, events.Event, datetime]) -> None:
    job, event, now = situation
    before, document = copy.deepcopy(job), documents.to_document(job)
    machine.step(job, event, now)
    assert job == before
    assert documents.to_document(job) == document
