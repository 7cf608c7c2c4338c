"""The lifecycle machine: every row of the table and every refusal, one step at a time.

Expected jobs are written as the document the API would serve: `expect(job, **changes)`
is `job` with exactly those document fields changed (the document round-trip is
tested in test_jobs), so each test says what a step writes and, by omission,
what it leaves alone. Its invariants are in test_machine_properties, its stateful model
in test_machine_stateful.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from returns.result import Success

from jobkit import documents, effects, errors, events, instants, jobs, machine, retry, submission
from jobkit.status import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    PROCESSING,
    TRANSITIONS,
    Status,
)
from tests.jobkit import strategies
from tests.jobkit.builders import REASONS, refusal

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DOCUMENT = jobs.Input(blob="inputs/job-1/document.pdf", content_type="application/pdf")
RESULT_KEY = "results/job-1/attempt-1.json"
FLAKY = errors.transient("unavailable", "backend down")
BROKEN = errors.permanent("corrupt_document", "not a PDF")
POLICY = retry.RetryPolicy(backoff=retry.Backoff(base=10.0, factor=2.0, cap=300.0))
STALLED_MESSAGE = "the worker stopped renewing its lease (crashed, hung or cut off)"


def at(seconds: float) -> datetime:
    return instants.plus(T0, seconds)


def iso(seconds: float) -> str:
    return instants.format(at(seconds))


# -- building real jobs --------------------------------------------------------


def new_draft(
    max_attempts: int = 3,
    delay: float = 0,
    input: jobs.Input | None = DOCUMENT,  # noqa: A002 - the JSON name
) -> jobs.Job:
    request = {"type": "echo", "maxAttempts": max_attempts, "delaySeconds": delay}
    draft: jobs.Job = submission.new_job(
        request, types=strategies.TYPES, job_id="job-1", user_id="user-1", now=T0, input=input
    ).unwrap()
    return draft


def walk(job: jobs.Job, *moves: tuple[events.Event, float]) -> jobs.Job:
    for event, seconds in moves:
        job = strategies.accepted(job, event, at(seconds))
    return job


def claim(worker: str = "w1", seconds: float = 60) -> events.Claimed:
    return events.Claimed(worker=worker, lease_seconds=seconds)


def failure(
    err: errors.Error = FLAKY, sample: float = 0.5, worker: str = "w1", claim: int = 1
) -> events.AttemptFailed:
    return events.AttemptFailed(worker=worker, claim=claim, error=err, policy=POLICY, sample=sample)


def success(worker: str = "w1", claim: int = 1) -> events.AttemptSucceeded:
    return events.AttemptSucceeded(
        worker=worker,
        claim=claim,
        result={"pages": 3},
        result_key=RESULT_KEY,
    )


def pending(**draft: Any) -> jobs.Job:
    """Submitted at 0 (version 1)."""
    return walk(new_draft(**draft), (events.Submitted(), 0))


def processing(**draft: Any) -> jobs.Job:
    """Claimed by w1 at 5 for 60 s: claim 1, lease until 65 (version 2)."""
    return walk(pending(**draft), (claim(), 5))


def completed() -> jobs.Job:
    """Succeeded at 10 with a result blob (version 3)."""
    return walk(processing(), (success(), 10))


def failed() -> jobs.Job:
    """Its one allowed attempt failed at 10 (version 3)."""
    return walk(processing(max_attempts=1), (failure(), 10))


def cancelled() -> jobs.Job:
    """Cancelled at 2, never had an input (version 2)."""
    return walk(pending(input=None), (events.CancelRequested(), 2))


BY_STATUS: dict[Status | None, Callable[[], jobs.Job]] = {
    None: new_draft,
    PENDING: pending,
    PROCESSING: processing,
    COMPLETED: completed,
    FAILED: failed,
    CANCELLED: cancelled,
}

# -- expected values -----------------------------------------------------------


def expect(job: jobs.Job, **changes: Any) -> jobs.Job:
    """`job` with exactly these document fields changed."""
    return documents.from_document({**documents.to_document(job), **changes})


def entry(
    attempt: int,
    worker: str,
    started: float,
    ended: float | None = None,
    outcome: str | None = None,
    error: dict[str, Any] | None = None,
    next_run: float | None = None,
    delay: float | None = None,
    result_key: str | None = None,
) -> dict[str, Any]:
    """One history entry as the document shows it."""
    return {
        "attempt": attempt,
        "worker": worker,
        "startedAt": iso(started),
        "endedAt": None if ended is None else iso(ended),
        "outcome": outcome,
        "error": error,
        "nextRunAt": None if next_run is None else iso(next_run),
        "delaySeconds": delay,
        "resultKey": result_key,
    }


def error_document(err: errors.Error, seconds: float) -> dict[str, Any]:
    return errors.to_document(attrs.evolve(err, at=at(seconds)))


def lifecycle(name: str, attempt: int) -> effects.Lifecycle:
    return effects.Lifecycle(
        name=name, job_id="job-1", job_type="echo", queue="echoes", attempt=attempt
    )


# -- submitted, claimed, cancel ------------------------------------------------


def test_submitting_makes_a_draft_pending() -> None:
    draft = new_draft()
    assert machine.step(draft, events.Submitted(), at(1)) == Success(
        (
            expect(draft, status="pending", version=1, updatedAt=iso(1)),
            (lifecycle("created", 0),),
        )
    )


def test_a_claim_opens_an_attempt_under_a_lease() -> None:
    job = pending()
    assert machine.step(job, claim("w1", 60), at(5)) == Success(
        (
            expect(
                job,
                status="processing",
                leaseOwner="w1",
                leaseExpiresAt=iso(65),
                history=[entry(1, "w1", 5)],
                version=2,
                updatedAt=iso(5),
            ),
            (lifecycle("started", 1),),
        )
    )


def test_a_claim_is_refused_before_run_at_and_accepted_from_it() -> None:
    job = pending(delay=30)
    assert machine.step(job, claim(), at(29.999999)) == refusal(
        "not_due", f"job is not due until {at(30)}", PENDING, "claimed"
    )
    assert machine.step(job, claim(), at(30)) == Success(
        (
            expect(
                job,
                status="processing",
                leaseOwner="w1",
                leaseExpiresAt=iso(90),
                history=[entry(1, "w1", 30)],
                version=2,
                updatedAt=iso(30),
            ),
            (lifecycle("started", 1),),
        )
    )


def test_a_new_claim_clears_the_progress_of_a_released_attempt() -> None:
    job = walk(
        processing(),
        (events.ProgressReported(worker="w1", claim=1, current=1, total=4), 6),
        (events.LeaseReleased(worker="w1", claim=1), 7),
    )
    assert machine.step(job, claim("w2", 30), at(8)) == Success(
        (
            expect(
                job,
                status="processing",
                progress=None,
                leaseOwner="w2",
                leaseExpiresAt=iso(38),
                history=[entry(1, "w1", 5, 7, "released"), entry(2, "w2", 8)],
                version=5,
                updatedAt=iso(8),
            ),
            (lifecycle("started", 2),),
        )
    )


def test_cancelling_a_pending_job() -> None:
    job = pending()
    assert machine.step(job, events.CancelRequested(), at(2)) == Success(
        (expect(job, status="cancelled", version=2, updatedAt=iso(2)), (lifecycle("cancelled", 0),))
    )


def test_a_processing_job_cannot_be_cancelled() -> None:
    assert machine.step(processing(), events.CancelRequested(), at(6)) == refusal(
        "illegal_transition", "cannot cancel: the job is running", PROCESSING, "cancel"
    )


# -- heartbeat and progress ----------------------------------------------------


def test_a_heartbeat_extends_the_lease_from_now() -> None:
    job = processing()
    heartbeat = events.Heartbeat(worker="w1", claim=1, lease_seconds=120)
    assert machine.step(job, heartbeat, at(30)) == Success(
        (expect(job, leaseExpiresAt=iso(150), version=3, updatedAt=iso(30)), ())
    )


def test_progress_is_recorded() -> None:
    job = processing()
    report = events.ProgressReported(worker="w1", claim=1, current=2, total=5, message="pages")
    assert machine.step(job, report, at(30)) == Success(
        (
            expect(
                job,
                progress={"current": 2, "total": 5, "message": "pages"},
                version=3,
                updatedAt=iso(30),
            ),
            (),
        )
    )


@pytest.mark.parametrize(("current", "total"), [(6, 5), (-1, 5), (0, -1)])
def test_progress_out_of_its_total_is_refused(current: int, total: int) -> None:
    report = events.ProgressReported(worker="w1", claim=1, current=current, total=total)
    assert machine.step(processing(), report, at(30)) == refusal(
        "invalid_progress", f"progress {current}/{total}", PROCESSING, "progress"
    )


# -- succeeded -----------------------------------------------------------------


def test_a_successful_attempt_completes_the_job() -> None:
    job = processing()
    assert machine.step(job, success(), at(20)) == Success(
        (
            expect(
                job,
                status="completed",
                attempts=1,
                leaseOwner=None,
                leaseExpiresAt=None,
                result={"pages": 3},
                history=[entry(1, "w1", 5, 20, "succeeded", result_key=RESULT_KEY)],
                version=3,
                updatedAt=iso(20),
            ),
            (lifecycle("completed", 1),),
        )
    )


def test_success_after_a_failed_attempt_clears_the_error() -> None:
    job = walk(processing(), (failure(), 10), (claim("w2"), 20))
    done = events.AttemptSucceeded(worker="w2", claim=2, result={"pages": 1})
    assert machine.step(job, done, at(30)) == Success(
        (
            expect(
                job,
                status="completed",
                attempts=2,
                error=None,
                leaseOwner=None,
                leaseExpiresAt=None,
                result={"pages": 1},
                history=[
                    entry(1, "w1", 5, 10, "failed", error_document(FLAKY, 10), 15, 5.0),
                    entry(2, "w2", 20, 30, "succeeded"),
                ],
                version=5,
                updatedAt=iso(30),
            ),
            (lifecycle("completed", 2),),
        )
    )


# -- failed: retry or give up --------------------------------------------------


def test_a_failed_attempt_with_attempts_left_is_retried_after_the_backoff() -> None:
    job = processing()
    # first attempt: ceiling 10 s, sample 0.5 -> 5 s
    assert machine.step(job, failure(sample=0.5), at(20)) == Success(
        (
            expect(
                job,
                status="pending",
                attempts=1,
                runAt=iso(25),
                error=error_document(FLAKY, 20),
                leaseOwner=None,
                leaseExpiresAt=None,
                history=[entry(1, "w1", 5, 20, "failed", error_document(FLAKY, 20), 25, 5.0)],
                version=3,
                updatedAt=iso(20),
            ),
            (lifecycle("attempt_failed", 1), lifecycle("retried", 1)),
        )
    )


BREAKER_OPEN = errors.error(
    "circuit_open", "the breaker is open", retryable=True, context={errors.RETRY_AFTER: 12.0}
)


def test_an_attempt_refused_by_an_open_breaker_is_deferred_and_not_counted() -> None:
    job = processing(max_attempts=1)  # no attempt left to spend: a deferral spends none
    assert machine.step(job, failure(BREAKER_OPEN), at(20)) == Success(
        (
            expect(
                job,
                status="pending",
                attempts=0,
                runAt=iso(32),
                error=error_document(BREAKER_OPEN, 20),
                leaseOwner=None,
                leaseExpiresAt=None,
                history=[
                    entry(1, "w1", 5, 20, "deferred", error_document(BREAKER_OPEN, 20), 32, 12.0)
                ],
                version=3,
                updatedAt=iso(20),
            ),
            (lifecycle("deferred", 1),),
        )
    )


def test_a_deferral_waits_at_least_a_second_however_little_is_asked() -> None:
    soon = errors.error("circuit_open", "open", retryable=True)
    job, _ = machine.step(processing(), failure(soon), at(20)).unwrap()
    assert (jobs.run_at(job), jobs.attempts(job)) == (at(21), 0)


def test_the_second_retry_waits_up_to_twice_as_long() -> None:
    job = walk(processing(), (failure(), 20), (claim("w2"), 30))
    # second attempt: ceiling 20 s, sample 0.75 -> 15 s
    moved, done = machine.step(job, failure(sample=0.75, worker="w2", claim=2), at(40)).unwrap()
    assert (jobs.run_at(moved), jobs.attempts(moved), done) == (
        at(55),
        2,
        (lifecycle("attempt_failed", 2), lifecycle("retried", 2)),
    )


def test_an_error_keeps_the_instant_it_carries() -> None:
    stamped = attrs.evolve(FLAKY, at=at(12))
    moved, _ = machine.step(processing(), failure(stamped), at(20)).unwrap()
    assert jobs.error(moved) == stamped


def test_the_last_allowed_attempt_failing_fails_the_job() -> None:
    job = processing(max_attempts=1)
    assert machine.step(job, failure(), at(20)) == Success(
        (
            expect(
                job,
                status="failed",
                attempts=1,
                error=error_document(FLAKY, 20),
                leaseOwner=None,
                leaseExpiresAt=None,
                history=[entry(1, "w1", 5, 20, "failed", error_document(FLAKY, 20))],
                version=3,
                updatedAt=iso(20),
            ),
            (lifecycle("attempt_failed", 1), lifecycle("failed", 1)),
        )
    )


def test_a_permanent_error_fails_the_job_whatever_attempts_remain() -> None:
    job = processing(max_attempts=100)
    moved, done = machine.step(job, failure(BROKEN), at(20)).unwrap()
    assert (jobs.status(moved), jobs.attempts(moved), done) == (
        FAILED,
        1,
        (lifecycle("attempt_failed", 1), lifecycle("failed", 1)),
    )


# -- lease expired: a stall ----------------------------------------------------


def stall_error(seconds: float, expired: float, worker: str = "w1") -> dict[str, Any]:
    return {
        "code": "lease_expired",
        "message": STALLED_MESSAGE,
        "retryable": True,
        "context": {"worker": worker, "leaseExpiresAt": iso(expired)},
        "at": iso(seconds),
    }


def test_a_lease_cannot_be_declared_expired_while_it_runs() -> None:
    expired = events.LeaseExpired(policy=POLICY, sample=0.5)
    assert machine.step(processing(), expired, at(64.999999)) == refusal(
        "lease_active", f"the lease runs until {at(65)}", PROCESSING, "lease_expired"
    )
    heartbeat = events.Heartbeat(worker="w1", claim=1, lease_seconds=60)
    assert machine.step(walk(processing(), (heartbeat, 30)), expired, at(65)) == refusal(
        "lease_active", f"the lease runs until {at(90)}", PROCESSING, "lease_expired"
    )


def test_an_expired_lease_is_a_stalled_attempt_that_is_retried() -> None:
    job = processing()
    expired = events.LeaseExpired(policy=POLICY, sample=0.5)
    assert machine.step(job, expired, at(65)) == Success(
        (
            expect(
                job,
                status="pending",
                attempts=1,
                runAt=iso(70),
                error=stall_error(65, 65),
                leaseOwner=None,
                leaseExpiresAt=None,
                history=[entry(1, "w1", 5, 65, "stalled", stall_error(65, 65), 70, 5.0)],
                version=3,
                updatedAt=iso(65),
            ),
            (lifecycle("stalled", 1), lifecycle("retried", 1)),
        )
    )


def test_a_stall_of_the_last_allowed_attempt_fails_the_job() -> None:
    job = processing(max_attempts=1)
    expired = events.LeaseExpired(policy=POLICY, sample=0.5)
    assert machine.step(job, expired, at(100)) == Success(
        (
            expect(
                job,
                status="failed",
                attempts=1,
                error=stall_error(100, 65),
                leaseOwner=None,
                leaseExpiresAt=None,
                history=[entry(1, "w1", 5, 100, "stalled", stall_error(100, 65))],
                version=3,
                updatedAt=iso(100),
            ),
            (lifecycle("stalled", 1), lifecycle("failed", 1)),
        )
    )


# -- released ------------------------------------------------------------------


def test_a_released_job_is_pending_and_due_at_once_without_counting_an_attempt() -> None:
    job = processing()
    assert machine.step(job, events.LeaseReleased(worker="w1", claim=1), at(20)) == Success(
        (
            expect(
                job,
                status="pending",
                runAt=iso(20),
                leaseOwner=None,
                leaseExpiresAt=None,
                history=[entry(1, "w1", 5, 20, "released")],
                version=3,
                updatedAt=iso(20),
            ),
            (lifecycle("released", 1),),
        )
    )


# -- lease lost: the wrong worker or an old claim ---------------------------------


def lost_to_another_worker() -> tuple[jobs.Job, str, int]:
    return processing(), "w2", 1


def lost_by_an_old_claim() -> tuple[jobs.Job, str, int]:
    job = walk(processing(), (events.LeaseReleased(worker="w1", claim=1), 7), (claim("w1"), 8))
    return job, "w1", 1


def lost_after_a_stall() -> tuple[jobs.Job, str, int]:
    expired = events.LeaseExpired(policy=POLICY, sample=0.0)
    return walk(processing(), (expired, 65), (claim("w2"), 70)), "w1", 1


def lost_to_a_claim_not_yet_made() -> tuple[jobs.Job, str, int]:
    return processing(), "w1", 2


WORKER_EVENTS: dict[str, Callable[[str, int], events.Event]] = {
    "heartbeat": lambda w, c: events.Heartbeat(worker=w, claim=c, lease_seconds=60),
    "progress": lambda w, c: events.ProgressReported(worker=w, claim=c, current=1, total=2),
    "succeeded": lambda w, c: events.AttemptSucceeded(worker=w, claim=c),
    "failed": lambda w, c: failure(worker=w, claim=c),
    "released": lambda w, c: events.LeaseReleased(worker=w, claim=c),
}


@pytest.mark.parametrize("kind", sorted(WORKER_EVENTS))
@pytest.mark.parametrize(
    "situation",
    [
        lost_to_another_worker,
        lost_by_an_old_claim,
        lost_after_a_stall,
        lost_to_a_claim_not_yet_made,
    ],
)
def test_a_worker_event_without_the_lease_is_refused(
    kind: str, situation: Callable[[], tuple[jobs.Job, str, int]]
) -> None:
    job, worker, stale = situation()
    event: events.Event = WORKER_EVENTS[kind](worker, stale)
    assert machine.step(job, event, at(80)) == refusal(
        "lease_lost", f"{worker} no longer holds the lease", PROCESSING, kind
    )


# -- retry and purge -----------------------------------------------------------


def test_a_manual_retry_resets_attempts_and_is_due_now() -> None:
    job = failed()
    assert machine.step(job, events.RetryRequested(), at(50)) == Success(
        (
            expect(
                job,
                status="pending",
                attempts=0,
                error=None,
                runAt=iso(50),
                version=4,
                updatedAt=iso(50),
            ),
            (lifecycle("requeued", 1),),
        )
    )
    retried = walk(job, (events.RetryRequested(), 50), (claim("w2"), 50))
    assert (jobs.status(retried), jobs.claim(retried)) == (PROCESSING, 2)


@pytest.mark.parametrize(
    ("finished", "expected"),
    [
        (
            completed,
            (
                effects.DeleteBlob(key=DOCUMENT.blob),
                effects.DeleteBlob(key=RESULT_KEY),
                effects.DeleteJob(job_id="job-1", version=3),
                lifecycle("purged", 1),
            ),
        ),
        (
            failed,
            (
                effects.DeleteBlob(key=DOCUMENT.blob),
                effects.DeleteJob(job_id="job-1", version=3),
                lifecycle("purged", 1),
            ),
        ),
        (cancelled, (effects.DeleteJob(job_id="job-1", version=2), lifecycle("purged", 0))),
    ],
    ids=["completed", "failed", "cancelled"],
)
def test_purging_deletes_the_blobs_then_the_record_and_writes_nothing(
    finished: Callable[[], jobs.Job], expected: tuple[effects.MachineEffect, ...]
) -> None:
    job = finished()
    assert machine.step(job, events.Purged(), at(99)) == Success((job, expected))


def test_apply_all_collects_effects_and_stops_at_a_refusal() -> None:
    draft = new_draft()
    moves: list[events.Event] = [events.Submitted(), claim("w1"), success()]
    done = machine.apply_all(draft, moves, at(1))
    assert done == Success(
        (
            walk(draft, *((m, 1) for m in moves)),
            (
                lifecycle("created", 0),
                lifecycle("started", 1),
                lifecycle("completed", 1),
            ),
        )
    )
    assert machine.apply_all(draft, [events.Submitted(), events.Purged()], at(1)) == refusal(
        "illegal_transition", "cannot purge: the job has not started", PENDING, "purge"
    )


# -- the table: every legal row is accepted, every other pair refused ------------

SAMPLES: dict[str, events.Event] = {
    "submitted": events.Submitted(),
    "claimed": claim(),
    "heartbeat": events.Heartbeat(worker="w1", claim=1, lease_seconds=60),
    "progress": events.ProgressReported(worker="w1", claim=1, current=1, total=2),
    "succeeded": success(),
    "failed": failure(),
    "lease_expired": events.LeaseExpired(policy=POLICY, sample=0.5),
    "released": events.LeaseReleased(worker="w1", claim=1),
    "cancel": events.CancelRequested(),
    "retry": events.RetryRequested(),
    "purge": events.Purged(),
}
PAIRS = [(source, kind.kind) for source in BY_STATUS for kind in events.ALL]


def test_the_samples_cover_every_event_kind() -> None:
    assert sorted(SAMPLES) == sorted(kind.kind for kind in events.ALL)


@pytest.mark.parametrize(("source", "kind"), [p for p in PAIRS if p in TRANSITIONS], ids=str)
def test_every_legal_row_is_accepted_into_one_of_its_targets(
    source: Status | None, kind: str
) -> None:
    job = BY_STATUS[source]()
    moved, _ = machine.step(job, SAMPLES[kind], at(100)).unwrap()
    assert jobs.status(moved) in TRANSITIONS[(source, kind)]


@pytest.mark.parametrize(("source", "kind"), [p for p in PAIRS if p not in TRANSITIONS], ids=str)
def test_every_other_pair_is_an_illegal_transition(source: Status | None, kind: str) -> None:
    assert machine.step(BY_STATUS[source](), SAMPLES[kind], at(100)) == refusal(
        "illegal_transition", f"cannot {kind}: {REASONS[source]}", source, kind
    )
