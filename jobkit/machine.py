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

from jobkit import changes, effects, errors, events, instants, jobs, retry
from jobkit.status import CANCELLED, COMPLETED, FAILED, PENDING, PROCESSING, Status, targets

Effects = tuple[effects.MachineEffect, ...]
Stepped = Result[tuple[jobs.Job, Effects], errors.JobError]


def _refuse(
    job: jobs.Job, event: events.Event, code: str, message: str
) -> Failure[errors.JobError]:
    current = jobs.status_or_none(job)  # refusals are rare: read again rather than thread it
    return Failure(
        errors.JobError(
            code=code,
            message=message,
            status=None if current is None else current.value,
            event=event.kind,
        )
    )


def _lifecycle(job: jobs.Job, name: str, attempt: int) -> effects.Lifecycle:
    return effects.Lifecycle(
        name=name,
        job_id=jobs.id(job),
        job_type=jobs.type_name(job),
        queue=jobs.queue(job),
        attempt=attempt,
    )


def _holds_lease(job: jobs.Job, worker: str, claim: int) -> bool:
    return jobs.lease_owner(job) == worker and jobs.claim(job) == claim


def _lost(job: jobs.Job, event: events.Event, worker: str) -> Failure[errors.JobError]:
    return _refuse(job, event, "lease_lost", f"{worker} no longer holds the lease")


# What a legal event writes (the changes, the new status, the effects), or why it is
# refused. Not a `Result`: `step` makes that, once, from this.
Moved = tuple[changes.Change, Status, Effects] | Failure[errors.JobError]


# The lifecycle event an attempt's end emits, before the job's own (`retried` or `failed`).
_EVENT = {jobs.FAILED: "attempt_failed", jobs.STALLED: "stalled"}


def _end_attempt(
    job: jobs.Job,
    err: errors.Error,
    policy: retry.RetryPolicy,
    sample: float,
    now: datetime,
    outcome: str,
) -> Moved:
    """Count a failed or stalled attempt and let the retry policy choose its fate (a
    deferred one is not counted)."""
    attempts = jobs.attempts(job) + 1
    claim = jobs.claim(job)
    err = err if err.at is not None else attrs.evolve(err, at=now)
    decision = retry.decide(
        policy, err, attempts=attempts, max_attempts=jobs.max_attempts(job), now=now, sample=sample
    )
    change = changes.Change(job).no_lease().error(err)
    if type(decision) is not retry.Defer:
        change.attempts(attempts)
    match decision:
        case retry.Defer(at=at, delay=delay):
            change.attempt_ended(
                at=now, outcome=jobs.DEFERRED, error=err, next_run_at=at, delay_seconds=delay
            )
            change.status(PENDING).run_at(at)
            return change, PENDING, (_lifecycle(job, "deferred", claim),)
        case retry.RetryAt(at=at, delay=delay):
            change.attempt_ended(
                at=now, outcome=outcome, error=err, next_run_at=at, delay_seconds=delay
            )
            change.status(PENDING).run_at(at)
            done = (_lifecycle(job, _EVENT[outcome], claim), _lifecycle(job, "retried", claim))
            return change, PENDING, done
        case retry.GiveUp():
            change.attempt_ended(at=now, outcome=outcome, error=err).status(FAILED)
            done = (_lifecycle(job, _EVENT[outcome], claim), _lifecycle(job, "failed", claim))
            return change, FAILED, done
        case _:
            assert_never(decision)


def _apply(job: jobs.Job, current: Status | None, event: events.Event, now: datetime) -> Moved:
    """What a legal event writes: the changes, the new status, and the effects."""
    same = changes.Change(job)
    match event:
        case events.Submitted():
            created = _lifecycle(job, "created", jobs.claim(job))
            return same.status(PENDING), PENDING, (created,)
        case events.Claimed(worker=worker, lease_seconds=seconds):
            due = jobs.run_at(job)
            if due > now:
                return _refuse(job, event, "not_due", f"job is not due until {due}")
            claim = jobs.claim(job) + 1
            change = same.attempt_started(worker, now).lease(worker, instants.plus(now, seconds))
            change.status(PROCESSING).no_progress()
            return change, PROCESSING, (_lifecycle(job, "started", claim),)
        case events.Heartbeat(worker=worker, claim=claim, lease_seconds=seconds):
            if not _holds_lease(job, worker, claim):
                return _lost(job, event, worker)
            return same.lease(worker, instants.plus(now, seconds)), PROCESSING, ()
        case events.ProgressReported(worker=worker, claim=claim, current=done, total=total):
            if not _holds_lease(job, worker, claim):
                return _lost(job, event, worker)
            if not 0 <= done <= total:
                return _refuse(job, event, "invalid_progress", f"progress {done}/{total}")
            return same.progress(done, total, event.message), PROCESSING, ()
        case events.AttemptSucceeded(worker=worker, claim=claim, result=result, result_key=key):
            if not _holds_lease(job, worker, claim):
                return _lost(job, event, worker)
            change = same.attempts(jobs.attempts(job) + 1).no_lease().result(result)
            change.attempt_ended(at=now, outcome=jobs.SUCCEEDED, result_key=key)
            change.error(None).status(COMPLETED)
            if event.progress is not None:
                done, total, message = event.progress
                if not 0 <= done <= total:
                    return _refuse(job, event, "invalid_progress", f"progress {done}/{total}")
                change.progress(done, total, message)
            return change, COMPLETED, (_lifecycle(job, "completed", claim),)
        case events.AttemptFailed(worker=worker, claim=claim, error=err, policy=policy):
            if not _holds_lease(job, worker, claim):
                return _lost(job, event, worker)
            return _end_attempt(job, err, policy, event.sample, now, jobs.FAILED)
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
            return _end_attempt(job, err, policy, sample, now, jobs.STALLED)
        case events.LeaseReleased(worker=worker, claim=claim):
            if not _holds_lease(job, worker, claim):
                return _lost(job, event, worker)
            change = same.attempt_ended(at=now, outcome=jobs.RELEASED)
            change.no_lease().status(PENDING).run_at(now)
            return change, PENDING, (_lifecycle(job, "released", claim),)
        case events.CancelRequested():
            cancelled = _lifecycle(job, "cancelled", jobs.claim(job))
            return same.status(CANCELLED), CANCELLED, (cancelled,)
        case events.RetryRequested(turn=turn):
            change = same.attempts(0).error(None).status(PENDING).run_at(now)
            if turn is not None:
                change.turn(turn)
            return change, PENDING, (_lifecycle(job, "requeued", jobs.claim(job)),)
        case events.Purged():
            assert current is not None
            deletes = tuple(effects.DeleteBlob(key=key) for key in jobs.blob_keys(job))
            purge = effects.DeleteJob(job_id=jobs.id(job), version=jobs.version(job))
            purged = _lifecycle(job, "purged", jobs.claim(job))
            return same, current, (*deletes, purge, purged)
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
    moved = _apply(job, current, event, now)
    if type(moved) is Failure:  # not isinstance: Result's ABC check costs more than the rest
        return moved
    change, target, done = moved
    if target not in allowed:  # the table is the law; a handler broke it
        raise errors.JobkitError(f"{event.kind} led {current} to {target}")
    if type(event) in _WRITES_NOTHING:
        return Success((job, done))
    return Success((change.touched(now).done(), done))


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
