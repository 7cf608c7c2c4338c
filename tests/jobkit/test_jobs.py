"""The job map: readers, `with_*` updaters, the JSON document form, and the blobs a job owns."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import freeze, pmap, pvector

from jobkit import _frozen, errors, events, instants, jobs, retry, submission
from jobkit.status import COMPLETED, PENDING, PROCESSING
from tests.jobkit import strategies

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DOCUMENT = {"blob": "inputs/job-1/document.pdf", "contentType": "application/pdf"}
RESULT_KEY = "results/job-1/attempt-2.json"
FLAKY = errors.transient("unavailable", "backend down")
POLICY = retry.RetryPolicy(backoff=retry.Backoff(base=10.0, factor=2.0, cap=300.0))


def at(seconds: float) -> datetime:
    return instants.plus(T0, seconds)


def new_draft(input: dict[str, Any] | None = DOCUMENT, **request: Any) -> jobs.Job:  # noqa: A002
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
                worker="w2",
                claim=2,
                result={"resultKey": RESULT_KEY, "pages": 3},
                result_url="https://blobs.example/" + RESULT_KEY,
            ),
            12,
        ),
    )


def without(job: jobs.Job, *keys: str) -> dict[str, Any]:
    return {key: value for key, value in job.items() if key not in keys}


# -- readers -------------------------------------------------------------------


def test_a_draft_reads_back_what_was_submitted() -> None:
    job = new_draft(
        params={"pages": 3},
        priority=7,
        queue="fast",
        delaySeconds=60,
        maxAttempts=2,
        metadata={"team": "docs"},
    )
    read = (
        jobs.id(job),
        jobs.user_id(job),
        jobs.type_name(job),
        jobs.status_or_none(job),
        jobs.priority(job),
        jobs.queue(job),
        jobs.run_at(job),
        jobs.params(job),
        jobs.input(job),
        jobs.result(job),
        jobs.result_url(job),
        jobs.error(job),
        jobs.attempts(job),
        jobs.max_attempts(job),
        jobs.history(job),
        jobs.claim(job),
        jobs.progress(job),
        jobs.lease_owner(job),
        jobs.lease_expires_at(job),
        jobs.version(job),
        jobs.created_at(job),
        jobs.updated_at(job),
        jobs.metadata(job),
        jobs.next_run_at(job),
        jobs.blob_keys(job),
    )
    assert read == (
        "job-1",
        "user-1",
        "echo",
        None,
        7,
        "fast",
        at(60),
        pmap({"pages": 3}),
        pmap(DOCUMENT),
        None,
        None,
        None,
        0,
        2,
        pvector(),
        0,
        None,
        None,
        None,
        0,
        T0,
        T0,
        pmap({"team": "docs"}),
        None,
        ("inputs/job-1/document.pdf",),
    )


def test_a_draft_has_no_status_to_read() -> None:
    with pytest.raises(errors.JobkitError, match="job-1 is a draft"):
        jobs.status(new_draft())


def test_next_run_at_is_run_at_only_while_pending() -> None:
    pending = walk(new_draft(delaySeconds=30), (events.Submitted(), 0))
    running = walk(pending, (events.Claimed(worker="w1", lease_seconds=60), 30))
    assert (jobs.status(pending), jobs.next_run_at(pending)) == (PENDING, at(30))
    assert (jobs.status(running), jobs.next_run_at(running)) == (PROCESSING, None)


def test_readers_of_a_job_that_failed_once_then_completed() -> None:
    job = completed_on_second_attempt()
    assert (
        jobs.status(job),
        jobs.attempts(job),
        jobs.claim(job),
        jobs.error(job),
        jobs.result(job),
        jobs.result_url(job),
        jobs.progress(job),
        jobs.version(job),
        jobs.updated_at(job),
        [entry["outcome"] for entry in jobs.history(job)],
    ) == (
        COMPLETED,
        2,
        2,
        None,
        pmap({"resultKey": RESULT_KEY, "pages": 3}),
        "https://blobs.example/" + RESULT_KEY,
        pmap({"current": 1, "total": 2, "message": "half"}),
        6,
        at(12),
        [jobs.FAILED, jobs.SUCCEEDED],
    )


# -- updaters ------------------------------------------------------------------

ERROR = errors.error("timeout", "took too long", retryable=True, context={"after": 30}, at=at(5))


def change(job: jobs.Job) -> jobs.Change:
    return jobs.Change(job)


def history_document(job: jobs.Job) -> tuple[int, list[dict[str, Any]]]:
    """The claim number and the history as the API shows it (every entry key present)."""
    return jobs.claim(job), jobs.to_document(job)["history"]


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
    (
        "with_status",
        lambda j: jobs.with_status(j, PROCESSING),
        jobs.status,
        PROCESSING,
        ("status",),
    ),
    (
        "with_lease",
        lambda j: jobs.with_lease(j, "w1", at(60)),
        lambda j: (jobs.lease_owner(j), jobs.lease_expires_at(j)),
        ("w1", at(60)),
        ("leaseOwner", "leaseExpiresAt"),
    ),
    (
        "Change.no_lease",
        lambda j: change(jobs.with_lease(j, "w1", at(60))).no_lease().done(),
        lambda j: (jobs.lease_owner(j), jobs.lease_expires_at(j)),
        (None, None),
        ("leaseOwner", "leaseExpiresAt"),
    ),
    ("with_run_at", lambda j: jobs.with_run_at(j, at(90)), jobs.run_at, at(90), ("runAt",)),
    ("Change.attempts", lambda j: change(j).attempts(4).done(), jobs.attempts, 4, ("attempts",)),
    ("with_error", lambda j: jobs.with_error(j, ERROR), jobs.error, ERROR, ("error",)),
    (
        "with_error None",
        lambda j: jobs.with_error(jobs.with_error(j, ERROR), None),
        jobs.error,
        None,
        ("error",),
    ),
    (
        "with_result",
        lambda j: jobs.with_result(j, {"pages": [1, 2], "ok": True}, "https://r"),
        lambda j: (jobs.result(j), jobs.result_url(j)),
        (freeze({"pages": [1, 2], "ok": True}), "https://r"),
        ("result", "resultUrl"),
    ),
    (
        "with_result None",
        lambda j: jobs.with_result(jobs.with_result(j, {"a": 1}, "https://r"), None, None),
        lambda j: (jobs.result(j), jobs.result_url(j)),
        (None, None),
        ("result", "resultUrl"),
    ),
    (
        "with_progress",
        lambda j: jobs.with_progress(j, 2, 5, "pages"),
        jobs.progress,
        pmap({"current": 2, "total": 5, "message": "pages"}),
        ("progress",),
    ),
    (
        "Change.no_progress",
        lambda j: change(jobs.with_progress(j, 2, 5, "pages")).no_progress().done(),
        jobs.progress,
        None,
        ("progress",),
    ),
    (
        "Change.attempt_started",
        lambda j: change(j).attempt_started("w1", at(3)).done(),
        history_document,
        (1, [started_entry(1, "w1", 3)]),
        ("history",),
    ),
    (
        "Change.attempt_ended",
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
        lambda j: jobs.touched(j, at(8)),
        lambda j: (jobs.version(j), jobs.updated_at(j)),
        (1, at(8)),
        ("version", "updatedAt"),
    ),
    (
        "Change of several fields",
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
def test_an_updater_changes_what_it_names_and_nothing_else(
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
    assert jobs.Change(job).done() is job


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
def test_updaters_never_mutate_their_input(job: jobs.Job) -> None:
    started = change(job).attempt_started("w9", at(1)).done()
    for original in (job, started):
        before, document = copy.deepcopy(original), jobs.to_document(original)
        for _, update, *_ in UPDATES:
            update(original)
        if jobs.history(original):
            change(original).attempt_ended(at=at(2), outcome=jobs.RELEASED, result_key="k").done()
        assert original == before
        assert jobs.to_document(original) == document


# -- documents -----------------------------------------------------------------


def test_the_document_of_a_completed_job() -> None:
    assert jobs.to_document(completed_on_second_attempt()) == {
        "id": "job-1",
        "userId": "user-1",
        "type": "echo",
        "status": "completed",
        "priority": 20,
        "queue": "echoes",
        "runAt": "2030-01-01T09:00:07.000000Z",
        "params": {"pages": 3},
        "input": DOCUMENT,
        "result": {"resultKey": RESULT_KEY, "pages": 3},
        "resultUrl": "https://blobs.example/" + RESULT_KEY,
        "error": None,
        "attempts": 2,
        "maxAttempts": 3,
        "history": [
            {
                "attempt": 1,
                "worker": "w1",
                "startedAt": "2030-01-01T09:00:01.000000Z",
                "endedAt": "2030-01-01T09:00:02.000000Z",
                "outcome": "failed",
                "error": {
                    "code": "unavailable",
                    "message": "backend down",
                    "retryable": True,
                    "context": {},
                    "at": "2030-01-01T09:00:02.000000Z",
                },
                "nextRunAt": "2030-01-01T09:00:07.000000Z",
                "delaySeconds": 5.0,
                "resultKey": None,
            },
            {
                "attempt": 2,
                "worker": "w2",
                "startedAt": "2030-01-01T09:00:10.000000Z",
                "endedAt": "2030-01-01T09:00:12.000000Z",
                "outcome": "succeeded",
                "error": None,
                "nextRunAt": None,
                "delaySeconds": None,
                "resultKey": RESULT_KEY,
            },
        ],
        "progress": {"current": 1, "total": 2, "message": "half"},
        "leaseOwner": None,
        "leaseExpiresAt": None,
        "version": 6,
        "createdAt": "2030-01-01T09:00:00.000000Z",
        "updatedAt": "2030-01-01T09:00:12.000000Z",
        "metadata": {"team": "docs"},
        "idempotency": None,
    }


def test_the_document_of_a_pending_job_with_an_error() -> None:
    job = walk(
        new_draft(input=None),
        (events.Submitted(), 0),
        (events.Claimed(worker="w1", lease_seconds=60), 1),
        (events.AttemptFailed(worker="w1", claim=1, error=FLAKY, policy=POLICY, sample=0.5), 2),
    )
    document = jobs.to_document(job)
    assert (document["status"], document["error"], document["runAt"]) == (
        "pending",
        {
            "code": "unavailable",
            "message": "backend down",
            "retryable": True,
            "context": {},
            "at": "2030-01-01T09:00:02.000000Z",
        },
        "2030-01-01T09:00:07.000000Z",
    )
    assert jobs.from_document(document) == job


@given(st.one_of(strategies.drafts().map(lambda drawn: drawn[0]), strategies.submitted_jobs()))
def test_documents_round_trip_through_json(job: jobs.Job) -> None:
    document = jobs.to_document(job)
    assert list(document) == list(jobs.FIELDS)
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert jobs.from_document(document) == job
    assert jobs.from_document(json.loads(json.dumps(document))) == job


def test_a_document_missing_a_field_is_a_store_bug() -> None:
    document = jobs.to_document(new_draft())
    del document["version"]
    with pytest.raises(errors.JobkitError, match=r"lacks fields \['version'\]"):
        jobs.from_document(document)


# -- blob keys -----------------------------------------------------------------


def test_a_job_without_an_input_owns_no_blob() -> None:
    assert jobs.blob_keys(new_draft(input=None)) == ()


def test_an_input_without_a_blob_name_owns_no_blob() -> None:
    assert jobs.blob_keys(new_draft(input={"blob": 3, "url": "https://elsewhere"})) == ()


def test_the_result_key_is_listed_once_after_the_input() -> None:
    assert jobs.blob_keys(completed_on_second_attempt()) == (DOCUMENT["blob"], RESULT_KEY)


def test_blob_keys_lists_input_then_each_attempt_then_the_result_without_repeats() -> None:
    job = new_draft()
    for claim in (1, 2, 3):
        key = f"results/job-1/attempt-{claim}.json" if claim != 2 else None
        job = change(job).attempt_started("w1", at(claim)).done()
        job = change(job).attempt_ended(at=at(claim), outcome=jobs.FAILED, result_key=key).done()
    job = jobs.with_result(job, {"resultKey": "results/job-1/final.json"}, None)
    assert jobs.blob_keys(job) == (
        "inputs/job-1/document.pdf",
        "results/job-1/attempt-1.json",
        "results/job-1/attempt-3.json",
        "results/job-1/final.json",
    )
    duplicate = jobs.with_result(job, {"resultKey": "results/job-1/attempt-1.json"}, None)
    assert jobs.blob_keys(duplicate) == jobs.blob_keys(job)[:3]


@given(strategies.submitted_jobs())
def test_blob_keys_are_distinct_strings(job: jobs.Job) -> None:
    keys = jobs.blob_keys(job)
    assert len(set(keys)) == len(keys)
    assert all(isinstance(key, str) for key in keys)
    source = jobs.input(job)
    if source is not None:
        assert keys[0] == source["blob"]


# -- the storage form: JSON text and the record a store files ---------------------------

every_job = st.one_of(strategies.drafts().map(lambda drawn: drawn[0]), strategies.submitted_jobs())


@given(every_job)
def test_jobs_round_trip_through_their_json_text(job: jobs.Job) -> None:
    text = jobs.to_json(job)
    assert jobs.from_json(text) == job
    assert jobs.from_json(text.encode()) == job
    assert jobs.to_json(job) == text  # again, from remembered parts: the same text
    document = json.loads(text)
    assert set(document) == set(jobs.FIELDS)
    assert document == json.loads(_frozen.ENCODER.encode(job))  # the reference encoding
    assert jobs.from_document(document) == job


@given(every_job)
def test_a_record_holds_what_the_readers_read(job: jobs.Job) -> None:
    record = jobs.to_record(job)
    state = jobs.status_or_none(job)
    expires = jobs.lease_expires_at(job)
    assert record == jobs.Record(
        id=jobs.id(job),
        user_id=jobs.user_id(job),
        type_name=jobs.type_name(job),
        status=None if state is None else state.value,
        priority=jobs.priority(job),
        queue=jobs.queue(job),
        run_at=instants.format(jobs.run_at(job)),
        created_at=instants.format(jobs.created_at(job)),
        lease_expires_at=None if expires is None else instants.format(expires),
        version=jobs.version(job),
        doc=jobs.to_json(job),
    )
    assert type(record.status) in (str, type(None))  # the plain text, not the enum


@given(strategies.submitted_jobs())
def test_json_with_extra_fields_reads_like_its_document(job: jobs.Job) -> None:
    document = {**json.loads(jobs.to_json(job)), "extra": [1, 2]}
    assert jobs.from_json(json.dumps(document)) == job  # extra fields are left out
    del document["status"]
    with pytest.raises(errors.JobkitError, match=r"lacks fields \['status'\]"):
        jobs.from_json(json.dumps(document))


# -- the value itself ------------------------------------------------------------


def test_a_job_is_a_read_only_mapping_of_every_field() -> None:
    job = new_draft(priority=7)
    assert list(job) == list(jobs.FIELDS)
    assert len(job) == len(jobs.FIELDS)
    assert job["priority"] == 7
    assert job["status"] is None
    assert "history" in job
    assert "links" not in job
    assert job.get("links") is None
    with pytest.raises(KeyError):
        job["links"]
    assert dict(job) == dict(zip(jobs.FIELDS, job.values(), strict=True))


def test_a_job_cannot_be_changed_in_place() -> None:
    job = new_draft()
    with pytest.raises(AttributeError, match="immutable"):
        job._values = ()
    with pytest.raises(AttributeError, match="immutable"):
        del job._values
    with pytest.raises(AttributeError):
        job.extra = 1
    with pytest.raises(TypeError):
        job["status"] = "completed"  # type: ignore[index]
    assert jobs.status_or_none(job) is None


def test_a_job_equals_any_mapping_with_its_items() -> None:
    job = new_draft()
    assert job == dict(job)
    assert job == pmap(dict(job))
    assert job != {**dict(job), "priority": 99}
    assert job != dict(job) | {"extra": 1}
    assert job != list(job)
    same = jobs.Job(dict(job))
    assert same == job
    assert hash(same) == hash(job)
    assert {job: 1}[same] == 1
    assert job != jobs.with_status(job, PENDING)


def test_a_job_made_from_a_mapping_freezes_its_values_and_keeps_only_the_fields() -> None:
    job = new_draft()
    made = jobs.Job({**dict(job), "params": {"pages": [1, 2]}, "extra": 1})
    assert jobs.params(made) == pmap({"pages": pvector([1, 2])})
    assert type(jobs.params(made)) is type(pmap())
    assert "extra" not in made
    assert made == {**dict(job), "params": freeze({"pages": [1, 2]})}
    lacking = {key: value for key, value in job.items() if key not in ("status", "version")}
    with pytest.raises(errors.JobkitError, match=r"lacks \['status', 'version'\]"):
        jobs.Job(lacking)


@given(every_job)
def test_a_job_survives_copies_and_pickling(job: jobs.Job) -> None:
    assert copy.copy(job) == job
    assert copy.deepcopy(job) == job
    assert pickle.loads(pickle.dumps(job)) == job
    assert jobs.Job(job) == job


def test_a_new_version_shares_what_did_not_change() -> None:
    job = jobs.with_status(new_draft(), PENDING)
    claimed = jobs.Change(job).attempt_started("w1", at(1)).lease("w1", at(31)).done()
    assert claimed is not job
    for name in ("params", "input", "metadata", "createdAt", "id"):
        assert claimed[name] is job[name]
    assert jobs.Change(claimed).status(PROCESSING).done() is not claimed
    assert jobs.Change(job).status(PENDING).run_at(jobs.run_at(job)).done() is job


# -- history entries ---------------------------------------------------------------


def opened() -> jobs.Entry:
    job = jobs.with_status(new_draft(), PENDING)
    return jobs.history(jobs.Change(job).attempt_started("w1", at(1)).done())[0]


def test_an_entry_is_a_read_only_mapping_of_the_keys_it_has() -> None:
    entry = opened()
    assert list(entry) == ["attempt", "worker", "startedAt"]
    assert len(entry) == 3
    assert entry["worker"] == "w1"
    assert "outcome" not in entry  # unset: absent, not None
    assert entry.get("outcome") is None
    assert entry.get("outcome", "open") == "open"
    with pytest.raises(KeyError):
        entry["outcome"]
    with pytest.raises(KeyError):
        entry["links"]
    with pytest.raises(AttributeError, match="immutable"):
        entry._values = ()
    with pytest.raises(AttributeError, match="immutable"):
        del entry._text


def test_an_entry_equals_any_mapping_with_its_items() -> None:
    entry = opened()
    items = {"attempt": 1, "worker": "w1", "startedAt": at(1)}
    assert entry == items
    assert entry == pmap(items)
    assert entry != {**items, "outcome": "succeeded"}
    made = jobs.Entry({**items, "outcome": None, "extra": 1})  # None is unset; extra left out
    assert made == entry
    assert hash(made) == hash(entry)
    assert pickle.loads(pickle.dumps(entry)) == entry
    with pytest.raises(errors.JobkitError, match=r"needs \['worker'\]"):
        jobs.Entry({"attempt": 1, "startedAt": at(1)})


def test_a_job_made_from_a_mapping_holds_its_history_as_entries() -> None:
    job = jobs.with_status(new_draft(), PENDING)
    claimed = jobs.Change(job).attempt_started("w1", at(1)).done()
    history = [dict(entry) for entry in jobs.history(claimed)]
    made = jobs.Job({**dict(claimed), "history": history})
    assert made == claimed
    assert all(type(entry) is jobs.Entry for entry in jobs.history(made))
    assert jobs.to_json(made) == jobs.to_json(claimed)
    for odd in (None, "entries", [1]):
        with pytest.raises(errors.JobkitError, match="history"):
            jobs.Job({**dict(claimed), "history": odd})


@given(strategies.submitted_jobs())
def test_an_entrys_text_is_what_the_reference_encoder_writes(job: jobs.Job) -> None:
    for entry in jobs.history(job):
        text = jobs._entry_text(entry)
        assert text == _frozen.ENCODER.encode(entry)
        assert jobs._entry_text(entry) is text  # written once
        odd = jobs.Entry({**dict(entry), "attempt": float(jobs.entry_attempt(entry))})
        assert jobs._entry_text(odd) == _frozen.ENCODER.encode(odd)  # the general way
