"""Hypothesis strategies for the core: instants, errors, policies, events and real jobs.

Jobs are only ever made the way production makes them: `submission.new_job`
gives a draft and `machine.step` moves it, so every job drawn here is one the
system can actually hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from returns.result import Success

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
from jobkit.status import PENDING, PROCESSING, TERMINAL, TRANSITIONS

# -- time ----------------------------------------------------------------------


def utc_datetimes() -> st.SearchStrategy[datetime]:
    """Aware UTC instants within the years 2000..2100."""
    return st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 12, 31, 23, 59, 59, 999999),
        timezones=st.just(UTC),
    )


def seconds(high: float = 3600.0) -> st.SearchStrategy[float]:
    return st.floats(min_value=0.0, max_value=high)


def samples() -> st.SearchStrategy[float]:
    """A uniform sample as the retry policy expects it: in [0, 1)."""
    return st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


# -- plain JSON ----------------------------------------------------------------

_SCALARS: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def json_objects(max_size: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with 1..16 character keys, valid as params or metadata."""
    return st.dictionaries(st.text(min_size=1, max_size=16), json_values, max_size=max_size)


# -- errors and retry policies ------------------------------------------------

ERROR_CODES: tuple[str, ...] = (
    *sorted(errors.DEFAULT_CLASSIFIER.transient),
    *sorted(errors.DEFAULT_CLASSIFIER.permanent),
    "boom",
    "quota_exceeded",
)


def error_values(codes: tuple[str, ...] = ERROR_CODES) -> st.SearchStrategy[errors.Error]:
    return st.builds(
        errors.error,
        st.sampled_from(codes),
        st.text(max_size=30),
        retryable=st.booleans(),
        context=st.dictionaries(st.text(max_size=8), _SCALARS, max_size=2),
        at=st.none() | utc_datetimes(),
    )


def backoffs() -> st.SearchStrategy[retry.Backoff]:
    return st.builds(
        retry.Backoff,
        base=st.floats(min_value=0.001, max_value=120.0),
        factor=st.floats(min_value=1.0, max_value=4.0),
        cap=st.floats(min_value=0.001, max_value=3600.0),
    )


@st.composite
def classifiers(draw: st.DrawFn) -> errors.Classifier:
    """The default classifier, or one that sorts a few codes its own way."""
    if draw(st.booleans()):
        return errors.DEFAULT_CLASSIFIER
    codes = draw(st.lists(st.sampled_from(ERROR_CODES), unique=True, max_size=4))
    permanent = draw(st.lists(st.booleans(), min_size=len(codes), max_size=len(codes)))
    return errors.Classifier(
        transient=frozenset(c for c, p in zip(codes, permanent, strict=True) if not p),
        permanent=frozenset(c for c, p in zip(codes, permanent, strict=True) if p),
    )


def retry_policies() -> st.SearchStrategy[retry.RetryPolicy]:
    return st.builds(
        retry.RetryPolicy,
        max_attempts=st.integers(min_value=1, max_value=10),
        backoff=backoffs(),
        overrides=st.dictionaries(st.sampled_from(ERROR_CODES), backoffs(), max_size=2),
        classifier=classifiers(),
    )


# -- job types -----------------------------------------------------------------


def _one_step(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield effects.ReportProgress(current=1, total=1)
    return Success(pipeline.Completion(result={"claim": claim}))


ECHO = registry.JobType(
    name="echo",
    pipeline=_one_step,
    retry=retry.RetryPolicy(max_attempts=3),
    priority=20,
    queue="echoes",
)
DOCUMENT = registry.JobType(name="document", pipeline=_one_step, input_required=True)
TYPES = registry.of([ECHO, DOCUMENT])

# -- drafts --------------------------------------------------------------------

job_ids = st.text(alphabet="0123456789abcdef", min_size=8, max_size=8).map(lambda s: f"job-{s}")
user_ids = st.sampled_from(("user-1", "user-2", "service"))
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
queues = st.builds(
    "{}{}".format,
    st.sampled_from(_LOWER),
    st.text(alphabet=_LOWER + "_-", max_size=62),
)


@st.composite
def drafts(draw: st.DrawFn) -> tuple[jobs.Job, datetime]:
    """A valid submission turned into a draft by `submission.new_job`, and its instant."""
    now = draw(utc_datetimes())
    job_id = draw(job_ids)
    type_name = draw(st.sampled_from(("echo", "document")))
    request: dict[str, Any] = {"type": type_name}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "params": json_objects(),
        "priority": st.integers(min_value=0, max_value=100),
        "queue": queues,
        "maxAttempts": st.integers(min_value=1, max_value=4),
        "metadata": json_objects(),
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            request[name] = draw(values)
    match draw(st.sampled_from(("now", "delay", "runAt"))):
        case "delay":
            request["delaySeconds"] = draw(st.integers(0, 3600) | seconds())
        case "runAt":
            offset = timezone(timedelta(minutes=draw(st.integers(-12 * 60, 14 * 60))))
            at = instants.plus(now, draw(st.floats(min_value=-3600.0, max_value=3600.0)))
            request["runAt"] = at.astimezone(offset).isoformat()
    document = None
    if type_name == "document" or draw(st.booleans()):
        document = jobs.Input(
            blob=pipeline.input_key(job_id, "pdf"), content_type="application/pdf"
        )
    draft: jobs.Job = submission.new_job(
        request, types=TYPES, job_id=job_id, user_id=draw(user_ids), now=now, input=document
    ).unwrap()
    return draft, now


# -- events --------------------------------------------------------------------

WORKERS: tuple[str, ...] = ("worker-a", "worker-b", "worker-c")
BY_KIND: dict[str, type[events.Event]] = {kind.kind: kind for kind in events.ALL}

lease_seconds = st.floats(min_value=1.0, max_value=600.0)

Lease = tuple[str, int]


def leases(job: jobs.Job) -> st.SearchStrategy[Lease]:
    """A worker and claim number: the job's own lease when it has one, or a plausible stale one."""
    claim = jobs.claim(job)
    stale = st.tuples(
        st.sampled_from(WORKERS), st.sampled_from(sorted({max(claim - 1, 0), claim, claim + 1}))
    )
    owner = jobs.lease_owner(job)
    return stale if owner is None else st.just((owner, claim)) | stale


def results() -> st.SearchStrategy[dict[str, Any]]:
    """An attempt's summary."""
    return st.fixed_dictionaries({}, optional={"pages": st.integers(min_value=0, max_value=500)})


@st.composite
def events_of(
    draw: st.DrawFn,
    kind: type[events.Event],
    job: jobs.Job,
    lease: st.SearchStrategy[Lease] | None = None,
    valid_progress: bool = False,
) -> events.Event:
    """An event of class `kind` aimed at `job`; worker events name a lease drawn from `lease`."""
    worker, claim = draw(leases(job) if lease is None else lease)
    if kind is events.Submitted:
        return events.Submitted()
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
            error=draw(error_values()),
            policy=draw(retry_policies()),
            sample=draw(samples()),
        )
    if kind is events.LeaseExpired:
        return events.LeaseExpired(policy=draw(retry_policies()), sample=draw(samples()))
    if kind is events.LeaseReleased:
        return events.LeaseReleased(worker=worker, claim=claim)
    if kind is events.CancelRequested:
        return events.CancelRequested()
    if kind is events.RetryRequested:
        return events.RetryRequested()
    if kind is events.Purged:
        return events.Purged()
    raise AssertionError(f"no strategy for {kind}")


def events_for(job: jobs.Job) -> st.SearchStrategy[events.Event]:
    """Any event at all for `job`, legal or not, with its own or a stale lease."""
    return st.sampled_from(events.ALL).flatmap(lambda kind: events_of(kind, job))


def later(now: datetime, high: float = 7200.0) -> st.SearchStrategy[datetime]:
    """An instant not before `now`: far enough apart to pass due times and lease ends, or not."""
    return seconds(high).map(lambda s: instants.plus(now, s))


# -- real jobs: a draft moved by a random legal sequence of events --------------


def accepted(job: jobs.Job, event: events.Event, now: datetime) -> jobs.Job:
    """The job after a move the strategies promise is legal; a refusal is a bug in them."""
    moved, _ = machine.step(job, event, now).unwrap()
    return moved


_RARE = frozenset({events.CancelRequested.kind, events.Purged.kind})


@st.composite
def legal_moves(
    draw: st.DrawFn, job: jobs.Job, now: datetime, only: frozenset[str] | None = None
) -> tuple[events.Event, datetime]:
    """An event the machine accepts from `job` (of a kind in `only`), and when it happens."""
    current = jobs.status_or_none(job)
    kinds = sorted(
        kind for source, kind in TRANSITIONS if source == current and (only is None or kind in only)
    )
    # Cancelling or purging ends a walk early; make them rarer so walks get further.
    weighted = [kind for kind in kinds for _ in range(1 if kind in _RARE else 3)]
    kind = BY_KIND[draw(st.sampled_from(weighted))]
    owner = jobs.lease_owner(job)
    own = None if owner is None else st.just((owner, jobs.claim(job)))
    event = draw(events_of(kind, job, lease=own, valid_progress=True))
    earliest = now
    if kind is events.Claimed:
        earliest = max(now, jobs.run_at(job))
    if kind is events.LeaseExpired:
        expires = jobs.lease_expires_at(job)
        assert expires is not None
        earliest = max(now, expires)
    return event, draw(later(earliest, 600.0))


_FINISHING: dict[object, frozenset[str]] = {
    PENDING: frozenset({events.Claimed.kind, events.CancelRequested.kind}),
    PROCESSING: frozenset({events.AttemptSucceeded.kind}),
}


@st.composite
def histories(
    draw: st.DrawFn, max_steps: int = 10, finished: bool = False
) -> tuple[jobs.Job, datetime]:
    """A submitted job after up to `max_steps` legal moves, and the instant of the last one.

    With `finished`, the walk goes on until the job is completed, failed or cancelled.
    """
    job, now = draw(drafts())
    job = accepted(job, events.Submitted(), now)
    for _ in range(draw(st.integers(min_value=0, max_value=max_steps))):
        event, now = draw(legal_moves(job, now))
        job = accepted(job, event, now)
    while finished and jobs.status(job) not in TERMINAL:
        event, now = draw(legal_moves(job, now, only=_FINISHING[jobs.status(job)]))
        job = accepted(job, event, now)
    return job, now


def submitted_jobs(max_steps: int = 10) -> st.SearchStrategy[jobs.Job]:
    return histories(max_steps).map(lambda history: history[0])
