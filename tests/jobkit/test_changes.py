"""Building a job's next version: each change sets what it names and nothing else."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from pyrsistent import freeze, pmap

from jobkit import changes, documents, errors, instants, jobs
from jobkit.status import PENDING, PROCESSING
from tests.jobkit import strategies
from tests.jobkit.jobs_support import at, new_draft, without

ERROR = errors.error("timeout", "took too long", retryable=True, context={"after": 30}, at=at(5))


def change(job: jobs.Job) -> changes.Change:
    return changes.Change(job)


def history_document(job: jobs.Job) -> tuple[int, list[dict[str, Any]]]:
    """The claim number and the history as its document shows it (every entry key present)."""
    return jobs.claim(job), documents.to_document(job)["history"]


def started_entry(attempt: int, worker: str, seconds: float) -> dict[str, Any]:
    return {
        "attempt": attempt,
        "worker": worker,
        "startedAt": instants.format(at(seconds)),
        "endedAt": None,
        "outcome": None,
        "error": None,
        "nextRunAt": None,
        "delaySeconds": None,
        "resultKey": None,
    }


# (name, updater, reader, expected reading, the raw keys the updater may change)
Update = tuple[str, Callable[[jobs.Job], jobs.Job], Callable[[jobs.Job], Any], Any, tuple[str, ...]]
UPDATES: list[Update] = [
    ("status", lambda j: change(j).status(PROCESSING).done(), jobs.status, PROCESSING, ("status",)),
    (
        "lease",
        lambda j: change(j).lease("w1", at(60)).done(),
        lambda j: (jobs.lease_owner(j), jobs.lease_expires_at(j)),
        ("w1", at(60)),
        ("leaseOwner", "leaseExpiresAt"),
    ),
    (
        "no_lease",
        lambda j: change(change(j).lease("w1", at(60)).done()).no_lease().done(),
        lambda j: (jobs.lease_owner(j), jobs.lease_expires_at(j)),
        (None, None),
        ("leaseOwner", "leaseExpiresAt"),
    ),
    ("run_at", lambda j: change(j).run_at(at(90)).done(), jobs.run_at, at(90), ("runAt",)),
    ("attempts", lambda j: change(j).attempts(4).done(), jobs.attempts, 4, ("attempts",)),
    ("error", lambda j: change(j).error(ERROR).done(), jobs.error, ERROR, ("error",)),
    (
        "error None",
        lambda j: change(change(j).error(ERROR).done()).error(None).done(),
        jobs.error,
        None,
        ("error",),
    ),
    (
        "result",
        lambda j: change(j).result({"pages": [1, 2], "ok": True}).done(),
        jobs.result,
        freeze({"pages": [1, 2], "ok": True}),
        ("result",),
    ),
    (
        "result None",
        lambda j: change(change(j).result({"a": 1}).done()).result(None).done(),
        jobs.result,
        None,
        ("result",),
    ),
    (
        "progress",
        lambda j: change(j).progress(2, 5, "pages").done(),
        jobs.progress,
        pmap({"current": 2, "total": 5, "message": "pages"}),
        ("progress",),
    ),
    (
        "no_progress",
        lambda j: change(change(j).progress(2, 5, "pages").done()).no_progress().done(),
        jobs.progress,
        None,
        ("progress",),
    ),
    (
        "attempt_started",
        lambda j: change(j).attempt_started("w1", at(3)).done(),
        history_document,
        (1, [started_entry(1, "w1", 3)]),
        ("history",),
    ),
    (
        "attempt_ended",
        lambda j: (
            change(change(j).attempt_started("w1", at(3)).done())
            .attempt_ended(
                at=at(4),
                outcome=jobs.FAILED,
                error=ERROR,
                next_run_at=at(9),
                delay_seconds=5.0,
                result_key="results/job-1/attempt-1.json",
            )
            .done()
        ),
        history_document,
        (
            1,
            [
                started_entry(1, "w1", 3)
                | {
                    "endedAt": instants.format(at(4)),
                    "outcome": jobs.FAILED,
                    "error": errors.to_document(ERROR),
                    "nextRunAt": instants.format(at(9)),
                    "delaySeconds": 5.0,
                    "resultKey": "results/job-1/attempt-1.json",
                }
            ],
        ),
        ("history",),
    ),
    (
        "touched",
        lambda j: change(j).touched(at(8)).done(),
        lambda j: (jobs.version(j), jobs.updated_at(j)),
        (1, at(8)),
        ("version", "updatedAt"),
    ),
    (
        "several fields",
        lambda j: change(j).status(PENDING).attempts(2).run_at(at(7)).touched(at(6)).done(),
        lambda j: (jobs.status(j), jobs.attempts(j), jobs.run_at(j), jobs.version(j)),
        (PENDING, 2, at(7), 1),
        ("status", "attempts", "runAt", "version", "updatedAt"),
    ),
]


@pytest.mark.parametrize(
    ("update", "read", "expected", "keys"),
    [pytest.param(*row[1:], id=row[0]) for row in UPDATES],
)
def test_a_change_sets_what_it_names_and_nothing_else(
    update: Callable[[jobs.Job], jobs.Job],
    read: Callable[[jobs.Job], Any],
    expected: Any,
    keys: tuple[str, ...],
) -> None:
    job = new_draft()
    updated = update(job)
    assert read(updated) == expected
    assert without(updated, *keys) == without(job, *keys)


def test_a_change_of_nothing_is_the_same_job() -> None:
    job = new_draft()
    assert changes.Change(job).done() is job


def test_ending_an_attempt_closes_only_the_latest_entry() -> None:
    first = change(change(new_draft()).attempt_started("w1", at(1)).done())
    first_done = first.attempt_ended(at=at(2), outcome=jobs.STALLED).done()
    second = change(first_done).attempt_started("w2", at(3)).done()
    ended = change(second).attempt_ended(at=at(4), outcome=jobs.RELEASED).done()
    closed = started_entry(1, "w1", 1) | {"endedAt": instants.format(at(2)), "outcome": "stalled"}
    assert history_document(ended) == (
        2,
        [
            closed,
            started_entry(2, "w2", 3) | {"endedAt": instants.format(at(4)), "outcome": "released"},
        ],
    )


@given(strategies.submitted_jobs())
def test_changes_never_mutate_their_input(job: jobs.Job) -> None:
    started = change(job).attempt_started("w9", at(1)).done()
    for original in (job, started):
        before, document = copy.deepcopy(original), documents.to_document(original)
        for _, update, *_ in UPDATES:
            update(original)
        if jobs.history(original):
            change(original).attempt_ended(at=at(2), outcome=jobs.RELEASED, result_key="k").done()
        assert original == before
        assert documents.to_document(original) == document
