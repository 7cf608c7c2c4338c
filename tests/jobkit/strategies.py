"""The core's own strategies, on top of the public ones in `jobkit.testing.strategies`:
retry policies of every shape, the test job types, and events with stale leases.

Jobs are drawn by the public strategies (a draft from `submission.new_job`,
moved by `machine.step`), here for the two test types and random policies.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st
from returns.result import Success

from jobkit import effects, errors, events, jobs, pipeline, registry, retry
from jobkit.status import TERMINAL
from jobkit.testing import strategies as public
from jobkit.testing.strategies import (
    ERROR_CODES,
    WORKERS,
    accepted,
    error_values,
    json_objects,
    json_values,
    later,
    lease_seconds,
    queues,
    utc_datetimes,
)

__all__ = [
    "DOCUMENT",
    "ECHO",
    "TYPES",
    "WORKERS",
    "accepted",
    "backoffs",
    "classifiers",
    "drafts",
    "error_values",
    "events_for",
    "events_of",
    "histories",
    "json_objects",
    "json_values",
    "later",
    "lease_seconds",
    "leases",
    "queues",
    "retry_policies",
    "samples",
    "seconds",
    "submitted_jobs",
    "utc_datetimes",
]


def seconds(high: float = 3600.0) -> st.SearchStrategy[float]:
    return st.floats(min_value=0.0, max_value=high)


def samples() -> st.SearchStrategy[float]:
    """A uniform sample as the retry policy expects it: in [0, 1)."""
    return st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


# -- retry policies ------------------------------------------------------------


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


def drafts() -> st.SearchStrategy[tuple[jobs.Job, datetime]]:
    """A draft of a test type, and the instant it was made."""
    return public.drafts(TYPES).map(lambda draft: (draft, jobs.created_at(draft)))


# -- events, with stale leases and invalid progress -----------------------------

Lease = tuple[str, int]


def leases(job: jobs.Job) -> st.SearchStrategy[Lease]:
    """A worker and claim number: the job's own lease when it has one, or a plausible stale one."""
    claim = jobs.claim(job)
    stale = st.tuples(
        st.sampled_from(WORKERS), st.sampled_from(sorted({max(claim - 1, 0), claim, claim + 1}))
    )
    owner = jobs.lease_owner(job)
    return stale if owner is None else st.just((owner, claim)) | stale


def events_of(
    kind: type[events.Event],
    job: jobs.Job,
    lease: st.SearchStrategy[Lease] | None = None,
    valid_progress: bool = False,
) -> st.SearchStrategy[events.Event]:
    """An event of class `kind` aimed at `job`, under its own or a stale lease, any policy."""
    return public.events_of(
        kind,
        job,
        policies=retry_policies(),
        lease=leases(job) if lease is None else lease,
        valid_progress=valid_progress,
    )


def events_for(job: jobs.Job) -> st.SearchStrategy[events.Event]:
    """Any event at all for `job`, legal or not, with its own or a stale lease."""
    return st.sampled_from(events.ALL).flatmap(lambda kind: events_of(kind, job))


# -- real jobs: a draft moved by a random legal sequence of events --------------


def histories(
    max_steps: int = 10, finished: bool = False
) -> st.SearchStrategy[tuple[jobs.Job, datetime]]:
    """A submitted test job after up to `max_steps` legal moves under any retry policy, and
    the instant of the last one; with `finished`, then on until it is completed, failed or
    cancelled."""
    statuses = TERMINAL if finished else None
    return public.histories(TYPES, statuses, max_steps, policies=retry_policies())


def submitted_jobs(max_steps: int = 10) -> st.SearchStrategy[jobs.Job]:
    return histories(max_steps).map(lambda history: history[0])
