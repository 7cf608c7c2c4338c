"""Jobs moved from their draft by random legal events, optionally on to a chosen status."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import attrs
from hypothesis import strategies as st

from jobkit import errors, events, jobs, machine, pipeline, registry, retry
from jobkit.status import CANCELLED, COMPLETED, FAILED, PENDING, PROCESSING, TRANSITIONS, Status
from jobkit.testing.strategies import _drafts as made
from jobkit.testing.strategies import _values as values

WORKERS: tuple[str, ...] = ("worker-a", "worker-b", "worker-c")
BY_KIND: dict[str, type[events.Event]] = {kind.kind: kind for kind in events.ALL}
lease_seconds = st.floats(min_value=1.0, max_value=600.0)
Lease = tuple[str, int]


def results() -> st.SearchStrategy[dict[str, Any]]:
    """An attempt's summary (the job type's own small map)."""
    return st.fixed_dictionaries({}, optional={"pages": st.integers(min_value=0, max_value=500)})


def _own_lease(job: jobs.Job) -> st.SearchStrategy[Lease]:
    owner = jobs.lease_owner(job)
    claim = jobs.claim(job)
    return (
        st.tuples(st.sampled_from(WORKERS), st.just(claim))
        if owner is None
        else st.just((owner, claim))
    )


@st.composite
def events_of(
    draw: st.DrawFn,
    kind: type[events.Event],
    job: jobs.Job,
    *,
    policies: st.SearchStrategy[retry.RetryPolicy],
    lease: st.SearchStrategy[Lease] | None = None,
    valid_progress: bool = True,
    failures: st.SearchStrategy[errors.Error] | None = None,
) -> events.Event:
    """An event of class `kind` aimed at `job`: worker events act under a lease from `lease`
    (default: the job's own), failures and stalls under a retry policy from `policies`."""
    worker, claim = draw(_own_lease(job) if lease is None else lease)
    if kind is events.Claimed:
        return events.Claimed(
            worker=draw(st.sampled_from(WORKERS)), lease_seconds=draw(lease_seconds)
        )
    if kind is events.Heartbeat:
        return events.Heartbeat(worker=worker, claim=claim, lease_seconds=draw(lease_seconds))
    if kind is events.ProgressReported:
        total = draw(st.integers(min_value=0, max_value=50))
        low, high = (0, total) if valid_progress else (-1, total + 1)
        return events.ProgressReported(
            worker=worker,
            claim=claim,
            current=draw(st.integers(min_value=low, max_value=high)),
            total=total,
            message=draw(st.text(max_size=10)),
        )
    if kind is events.AttemptSucceeded:
        key = draw(st.none() | st.just(pipeline.result_key(job, claim)))
        return events.AttemptSucceeded(
            worker=worker, claim=claim, result=draw(results()), result_key=key
        )
    if kind is events.AttemptFailed:
        return events.AttemptFailed(
            worker=worker,
            claim=claim,
            error=draw(values.error_values() if failures is None else failures),
            policy=draw(policies),
            sample=draw(st.floats(min_value=0.0, max_value=1.0, exclude_max=True)),
        )
    if kind is events.LeaseExpired:
        sample = draw(st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
        return events.LeaseExpired(policy=draw(policies), sample=sample)
    if kind is events.LeaseReleased:
        return events.LeaseReleased(worker=worker, claim=claim)
    if kind in (events.Submitted, events.CancelRequested, events.RetryRequested, events.Purged):
        return kind()
    raise AssertionError(f"no strategy for {kind}")


def accepted(job: jobs.Job, event: events.Event, now: datetime) -> jobs.Job:
    """The job after a move the strategies promise is legal; a refusal is a bug in them."""
    moved, _ = machine.step(job, event, now).unwrap()
    return moved


_RARE = frozenset({events.CancelRequested.kind, events.Purged.kind})

# On the way to a status, the moves a walk must not take (they would make it unreachable),
# then the move that brings it one step closer from each status.
_AVOID: dict[Status | None, frozenset[str]] = {
    None: frozenset(),
    **{
        target: frozenset({"purge"})
        | ({"succeeded"} if target is not COMPLETED else set())
        | ({"cancel"} if target is not CANCELLED else set())
        for target in Status
    },
}
_TOWARD: dict[Status, dict[Status, str]] = {
    PENDING: {PROCESSING: "released", FAILED: "retry"},
    PROCESSING: {PENDING: "claimed", FAILED: "retry"},
    COMPLETED: {PENDING: "claimed", PROCESSING: "succeeded", FAILED: "retry"},
    FAILED: {PENDING: "claimed", PROCESSING: "failed"},
    CANCELLED: {PENDING: "cancel", PROCESSING: "released", FAILED: "retry"},
}


def _policies(types: registry.Registry, job: jobs.Job) -> st.SearchStrategy[retry.RetryPolicy]:
    return st.just(registry.get(types, jobs.type_name(job)).retry)


@st.composite
def histories(
    draw: st.DrawFn,
    types: made.Types,
    statuses: Collection[Status] | None = None,
    max_steps: int = 10,
    policies: st.SearchStrategy[retry.RetryPolicy] | None = None,
    params: st.SearchStrategy[Mapping[str, Any]] | None = None,
) -> tuple[jobs.Job, datetime]:
    """A submitted job after up to `max_steps` random legal moves, and when the last happened.

    With `statuses`, the walk then goes on to one of them by legal moves. Failures and
    stalls use the job type's retry policy, or one from `policies`.
    """
    types = made.as_registry(types)
    job = draw(made.drafts(types, params))
    now = jobs.created_at(job)
    job = accepted(job, events.Submitted(), now)
    target = None if statuses is None else draw(st.sampled_from(sorted(statuses)))

    def move(kind: str, steering: bool) -> None:
        nonlocal job, now
        policy = _policies(types, job) if policies is None else policies
        event = draw(events_of(BY_KIND[kind], job, policies=policy))
        if steering and isinstance(event, events.AttemptFailed):  # a retry would not fail it
            error = draw(values.permanent_errors(event.policy.classifier))
            event = attrs.evolve(event, error=error)
        earliest = now
        if kind == events.Claimed.kind:
            earliest = max(now, jobs.run_at(job))
        if kind == events.LeaseExpired.kind:
            expires = jobs.lease_expires_at(job)
            assert expires is not None
            earliest = max(now, expires)
        now = draw(values.later(earliest, 600.0))
        job = accepted(job, event, now)

    for _ in range(draw(st.integers(min_value=0, max_value=max_steps))):
        current = jobs.status(job)
        avoid = _AVOID[target]
        kinds = sorted(k for s, k in TRANSITIONS if s == current and k not in avoid)
        if not kinds:
            break
        # Cancelling or purging ends a walk early; make them rarer so walks get further.
        weighted = [kind for kind in kinds for _ in range(1 if kind in _RARE else 3)]
        move(draw(st.sampled_from(weighted)), steering=False)
    while target is not None and jobs.status(job) is not target:
        move(_TOWARD[target][jobs.status(job)], steering=True)
    return job, now


def jobs_of(
    types: made.Types,
    statuses: Collection[Status] | None = None,
    max_steps: int = 10,
    params: st.SearchStrategy[Mapping[str, Any]] | None = None,
) -> st.SearchStrategy[jobs.Job]:
    """A job of a type in `types` moved by legal events, in one of `statuses` when given.

    `jobs_of(MY_TYPE, {PENDING})` gives jobs `lifecycle.run_job` can take;
    `jobs_of(MY_TYPE, {PROCESSING})` jobs whose pipeline
    `MY_TYPE.pipeline(job, jobs.claim(job))` a worker would run now.
    """
    return histories(types, statuses, max_steps, params=params).map(lambda history: history[0])
