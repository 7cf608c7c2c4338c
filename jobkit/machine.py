"""The lifecycle machine: `step(job, event, now)` -> the next job and the effects to perform.

Legality comes from `status.TRANSITIONS` alone; the handlers below only say
what a legal move writes. Every accepted write grows `version` by one, the
fence a store's `compare_and_set` checks, so a stale copy can never win.
"""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

import attrs
from returns.result import Failure, Result, Success

from jobkit import effects, errors, events, instants, jobs, retry
from jobkit.status import CANCELLED, COMPLETED, FAILED, PENDING, PROCESSING, Status, targets

Effects = tuple[effects.MachineEffect, ...]
Stepped = Result[tuple[jobs.Job, Effects], errors.JobError]


def _refuse(job: jobs.Job, event: events.Event, code: str, message: str) -> Stepped:
    current = jobs.status_or_none(job)
    return Failure(
        errors.JobError(
            code=code,
            message=message,
            status=None if current is None else current.value,
            event=event.kind,
        )
    )


def _lifecycle(job: jobs.Job, name: str) -> effects.Lifecycle:
    return effects.Lifecycle(
        name=name,
        job_id=jobs.id(job),
        job_type=jobs.type_name(job),
        queue=jobs.queue(job),
        attempt=jobs.claim(job),
    )


def _holds_lease(job: jobs.Job, worker: str, claim: int) -> bool:
    return jobs.lease_owner(job) == worker and jobs.claim(job) == claim


def _end_attempt(
    job: jobs.Job,
    err: errors.Error,
    policy: retry.RetryPolicy,
    sample: float,
    now: datetime,
    outcome: str,
) -> tuple[jobs.Job, Effects]:
    """Count a failed or stalled attempt and let the retry policy choose its fate."""
    attempts = jobs.attempts(job) + 1
    err = err if err.at is not None else attrs.evolve(err, at=now)
    decision = retry.decide(
        policy, err, attempts=attempts, max_attempts=jobs.max_attempts(job), now=now, sample=sample
    )
    job = jobs.with_error(jobs.without_lease(jobs.with_attempts(job, attempts)), err)
    match decision:
        case retry.RetryAt(at=at, delay=delay):
            job = jobs.with_attempt_ended(
                job, at=now, outcome=outcome, error=err, next_run_at=at, delay_seconds=delay
            )
            job = jobs.with_run_at(jobs.with_status(job, PENDING), at)
            return job, (_lifecycle(job, outcome), _lifecycle(job, "retried"))
        case retry.GiveUp():
            job = jobs.with_attempt_ended(job, at=now, outcome=outcome, error=err)
            job = jobs.with_status(job, FAILED)
            return job, (_lifecycle(job, outcome), _lifecycle(job, "failed"))
        case _:
            assert_never(decision)


def _apply(job: jobs.Job, event: events.Event, now: datetime) -> Stepped:
    match event:
        case events.Submitted():
            job = jobs.with_status(job, PENDING)
            return Success((job, (_lifecycle(job, "created"),)))
        case events.Claimed(worker=worker, lease_seconds=seconds):
            if jobs.run_at(job) > now:
                return _refuse(job, event, "not_due", f"job is not due until {jobs.run_at(job)}")
            job = jobs.with_attempt_started(job, worker, now)
            job = jobs.with_lease(job, worker, instants.plus(now, seconds))
            job = jobs.without_progress(jobs.with_status(job, PROCESSING))
            return Success((job, (_lifecycle(job, "started"),)))
        case events.Heartbeat(worker=worker, claim=claim, lease_seconds=seconds):
            if not _holds_lease(job, worker, claim):
                return _refuse(job, event, "lease_lost", f"{worker} no longer holds the lease")
            return Success((jobs.with_lease(job, worker, instants.plus(now, seconds)), ()))
        case events.ProgressReported(worker=worker, claim=claim, current=current, total=total):
            if not _holds_lease(job, worker, claim):
                return _refuse(job, event, "lease_lost", f"{worker} no longer holds the lease")
            if not 0 <= current <= total:
                return _refuse(job, event, "invalid_progress", f"progress {current}/{total}")
            return Success((jobs.with_progress(job, current, total, event.message), ()))
        case events.AttemptSucceeded(worker=worker, claim=claim, result=result, result_url=url):
            if not _holds_lease(job, worker, claim):
                return _refuse(job, event, "lease_lost", f"{worker} no longer holds the lease")
            key = result.get("resultKey")
            job = jobs.with_attempts(jobs.without_lease(job), jobs.attempts(job) + 1)
            job = jobs.with_attempt_ended(
                job,
                at=now,
                outcome=jobs.SUCCEEDED,
                result_key=key if isinstance(key, str) else None,
            )
            job = jobs.with_error(jobs.with_result(job, result, url), None)
            job = jobs.with_status(job, COMPLETED)
            return Success((job, (_lifecycle(job, "completed"),)))
        case events.AttemptFailed(worker=worker, claim=claim, error=err, policy=policy):
            if not _holds_lease(job, worker, claim):
                return _refuse(job, event, "lease_lost", f"{worker} no longer holds the lease")
            return Success(_end_attempt(job, err, policy, event.sample, now, jobs.FAILED))
        case events.LeaseExpired(policy=policy, sample=sample):
            expires = jobs.lease_expires_at(job)
            if expires is None or expires > now:
                return _refuse(job, event, "lease_active", f"the lease runs until {expires}")
            err = errors.error(
                "lease_expired",
                "the worker stopped renewing its lease (crashed, hung or cut off)",
                retryable=True,
                context={
                    "worker": jobs.lease_owner(job),
                    "leaseExpiresAt": instants.format(expires),
                },
                at=now,
            )
            return Success(_end_attempt(job, err, policy, sample, now, jobs.STALLED))
        case events.LeaseReleased(worker=worker, claim=claim):
            if not _holds_lease(job, worker, claim):
                return _refuse(job, event, "lease_lost", f"{worker} no longer holds the lease")
            job = jobs.with_attempt_ended(job, at=now, outcome=jobs.RELEASED)
            job = jobs.with_run_at(jobs.with_status(jobs.without_lease(job), PENDING), now)
            return Success((job, (_lifecycle(job, "released"),)))
        case events.CancelRequested():
            job = jobs.with_status(job, CANCELLED)
            return Success((job, (_lifecycle(job, "cancelled"),)))
        case events.RetryRequested():
            job = jobs.with_error(jobs.with_attempts(job, 0), None)
            job = jobs.with_run_at(jobs.with_status(job, PENDING), now)
            return Success((job, (_lifecycle(job, "requeued"),)))
        case events.Purged():
            deletes = tuple(effects.DeleteBlob(key=key) for key in jobs.blob_keys(job))
            purge = effects.DeleteJob(job_id=jobs.id(job), version=jobs.version(job))
            return Success((job, (*deletes, purge, _lifecycle(job, "purged"))))
        case _:
            assert_never(event)


_WRITES_NOTHING: frozenset[type[events.Event]] = frozenset({events.Purged})

_REASONS: dict[Status | None, str] = {
    None: "the job has not been submitted",
    PENDING: "the job has not started",
    PROCESSING: "the job is running",
    COMPLETED: "the job has completed",
    FAILED: "the job has failed",
    CANCELLED: "the job was cancelled",
}


def step(job: jobs.Job, event: events.Event, now: datetime) -> Stepped:
    """Apply `event` to `job` at `now`; an illegal move is a `Failure` naming state and event."""
    current = jobs.status_or_none(job)
    allowed = targets(current, event.kind)
    if not allowed:
        return _refuse(
            job, event, "illegal_transition", f"cannot {event.kind}: {_REASONS[current]}"
        )
    match _apply(job, event, now):
        case Success((new_job, done)):
            if jobs.status(new_job) not in allowed:  # the table is the law; a handler broke it
                raise errors.JobkitError(f"{event.kind} led {current} to {jobs.status(new_job)}")
            if type(event) in _WRITES_NOTHING:
                return Success((new_job, done))
            return Success((jobs.touched(new_job, now), done))
        case refused:
            return refused


def apply_all(job: jobs.Job, moves: list[events.Event], now: datetime) -> Stepped:
    """Step through several events at one instant, collecting effects; stops at a refusal."""
    collected: Effects = ()
    for event in moves:
        match step(job, event, now):
            case Success((job, done)):
                collected = (*collected, *done)
            case refused:
                return refused
    return Success((job, collected))
