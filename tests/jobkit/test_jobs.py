"""The job value and its readers: every field, the derived readings, history entries, inputs."""

from __future__ import annotations

import copy
import pickle

import attrs
import pytest
from hypothesis import given
from pyrsistent import freeze, pmap, pvector

from jobkit import changes, errors, events, jobs, records
from jobkit.status import COMPLETED, PENDING, PROCESSING
from tests.jobkit import strategies
from tests.jobkit.jobs_support import (
    DOCUMENT,
    FLAKY,
    RESULT_KEY,
    T0,
    at,
    completed_on_second_attempt,
    every_job,
    new_draft,
    walk,
)


def pending(job: jobs.Job) -> jobs.Job:
    return changes.Change(job).status(PENDING).done()


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
        jobs.result_key(job),
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
        jobs.idempotency(job),
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
        DOCUMENT,
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
        None,
        ("inputs/job-1/document.pdf",),
    )


def test_a_draft_has_no_status_to_read() -> None:
    with pytest.raises(errors.JobkitError, match="job-1 is a draft"):
        jobs.status(new_draft())


def test_next_run_at_is_run_at_only_while_pending() -> None:
    waiting = walk(new_draft(delaySeconds=30), (events.Submitted(), 0))
    running = walk(waiting, (events.Claimed(worker="w1", lease_seconds=60), 30))
    assert (jobs.status(waiting), jobs.next_run_at(waiting)) == (PENDING, at(30))
    assert (jobs.status(running), jobs.next_run_at(running)) == (PROCESSING, None)


def test_readers_of_a_job_that_failed_once_then_completed() -> None:
    job = completed_on_second_attempt()
    assert (
        jobs.status(job),
        jobs.attempts(job),
        jobs.claim(job),
        jobs.error(job),
        jobs.result(job),
        jobs.result_key(job),
        jobs.progress(job),
        jobs.version(job),
        jobs.updated_at(job),
        [jobs.entry_outcome(entry) for entry in jobs.history(job)],
        [jobs.entry_worker(entry) for entry in jobs.history(job)],
        [jobs.entry_result_key(entry) for entry in jobs.history(job)],
    ) == (
        COMPLETED,
        2,
        2,
        None,
        pmap({"pages": 3}),
        RESULT_KEY,
        pmap({"current": 1, "total": 2, "message": "half"}),
        6,
        at(12),
        [jobs.FAILED, jobs.SUCCEEDED],
        ["w1", "w2"],
        [None, RESULT_KEY],
    )
    failed = jobs.history(job)[0]
    assert (jobs.entry_attempt(failed), jobs.entry_error(failed)) == (
        1,
        attrs.evolve(FLAKY, at=at(2)),
    )
    assert (failed["startedAt"], failed["endedAt"], failed["nextRunAt"]) == (at(1), at(2), at(7))


# -- where the result is: one fact, the succeeded entry's key -------------------------


def test_the_result_key_is_the_succeeded_attempts_and_nothing_before_completion() -> None:
    job = completed_on_second_attempt()
    assert jobs.result_key(job) == jobs.entry_result_key(jobs.history(job)[-1]) == RESULT_KEY
    before = walk(new_draft(), (events.Submitted(), 0))
    assert jobs.result_key(before) is None
    no_document = walk(
        before,
        (events.Claimed(worker="w1", lease_seconds=60), 1),
        (events.AttemptSucceeded(worker="w1", claim=1, result={"ok": True}), 2),
    )
    assert (jobs.status(no_document), jobs.result_key(no_document)) == (COMPLETED, None)


@given(strategies.submitted_jobs())
def test_only_a_completed_job_has_a_result_key(job: jobs.Job) -> None:
    key = jobs.result_key(job)
    if jobs.status(job) != COMPLETED:
        assert key is None
    elif key is not None:
        assert key == jobs.entry_result_key(jobs.history(job)[-1])
        assert jobs.entry_outcome(jobs.history(job)[-1]) == jobs.SUCCEEDED


# -- blob keys -----------------------------------------------------------------


def test_a_job_without_an_input_owns_no_blob() -> None:
    assert jobs.blob_keys(new_draft(input=None)) == ()


def test_the_result_key_is_listed_once_after_the_input() -> None:
    assert jobs.blob_keys(completed_on_second_attempt()) == (DOCUMENT.blob, RESULT_KEY)


def test_blob_keys_lists_the_input_then_each_attempts_document_without_repeats() -> None:
    job = new_draft()
    for claim, key in enumerate(
        ["results/job-1/attempt-1.json", None, "results/job-1/attempt-1.json", "results/b"], 1
    ):
        job = changes.Change(job).attempt_started("w1", at(claim)).done()
        job = (
            changes.Change(job)
            .attempt_ended(at=at(claim), outcome=jobs.FAILED, result_key=key)
            .done()
        )
    assert jobs.blob_keys(job) == (
        "inputs/job-1/document.pdf",
        "results/job-1/attempt-1.json",
        "results/b",
    )


@given(strategies.submitted_jobs())
def test_blob_keys_are_distinct_strings_input_first(job: jobs.Job) -> None:
    keys = jobs.blob_keys(job)
    assert len(set(keys)) == len(keys)
    assert all(isinstance(key, str) for key in keys)
    source = jobs.input(job)
    if source is not None:
        assert keys[0] == source.blob


# -- the value itself ------------------------------------------------------------


def test_a_job_is_a_read_only_mapping_of_every_field() -> None:
    job = new_draft(priority=7)
    assert list(job) == list(jobs.FIELDS)
    assert len(job) == len(jobs.FIELDS)
    assert job["priority"] == 7
    assert job["status"] is None
    assert job["input"] == DOCUMENT
    assert "history" in job
    assert "links" not in job
    assert "resultUrl" not in job  # not stored: the API derives its link (`jobs.result_key`)
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
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        DOCUMENT.blob = "elsewhere"  # type: ignore[misc]
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
    assert job != pending(job)


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


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("error", {"code": "x", "message": "y", "retryable": True}, "errors.Error"),
        ("input", {"blob": "inputs/x", "contentType": "application/pdf"}, "jobs.Input"),
        ("history", "entries", "history"),
        ("history", [1], "history"),
    ],
)
def test_a_job_made_from_a_mapping_takes_typed_nested_values_only(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(errors.JobkitError, match=message):
        jobs.Job({**dict(new_draft()), field: value})


@given(every_job)
def test_a_job_survives_copies_and_pickling(job: jobs.Job) -> None:
    assert copy.copy(job) == job
    assert copy.deepcopy(job) == job
    assert pickle.loads(pickle.dumps(job)) == job
    assert jobs.Job(job) == job


def test_a_new_version_shares_what_did_not_change() -> None:
    job = pending(new_draft())
    claimed = changes.Change(job).attempt_started("w1", at(1)).lease("w1", at(31)).done()
    assert claimed is not job
    for name in ("params", "input", "metadata", "createdAt", "id"):
        assert claimed[name] is job[name]
    assert changes.Change(claimed).status(PROCESSING).done() is not claimed
    assert changes.Change(job).status(PENDING).run_at(jobs.run_at(job)).done() is job


# -- history entries ---------------------------------------------------------------


def opened() -> jobs.Entry:
    return jobs.history(changes.Change(pending(new_draft())).attempt_started("w1", at(1)).done())[0]


def test_an_entry_is_a_read_only_mapping_of_every_key() -> None:
    entry = opened()
    assert list(entry) == list(jobs.ENTRY_KEYS)
    assert len(entry) == len(jobs.ENTRY_KEYS)
    assert (entry["attempt"], entry["worker"], entry["startedAt"]) == (1, "w1", at(1))
    assert "outcome" in entry
    assert entry["outcome"] is None  # unset: None, as a job's unset fields are
    with pytest.raises(KeyError):
        entry["links"]
    with pytest.raises(AttributeError, match="immutable"):
        entry._values = ()
    with pytest.raises(AttributeError, match="immutable"):
        del entry._text


def test_an_entry_equals_any_mapping_with_its_items() -> None:
    entry = opened()
    items = dict.fromkeys(jobs.ENTRY_KEYS) | {"attempt": 1, "worker": "w1", "startedAt": at(1)}
    assert entry == items
    assert entry == pmap(items)
    assert entry != {**items, "outcome": "succeeded"}
    made = jobs.Entry({"attempt": 1, "worker": "w1", "startedAt": at(1), "extra": 1})
    assert made == entry  # missing keys unset, extra ones left out
    assert hash(made) == hash(entry)
    assert pickle.loads(pickle.dumps(entry)) == entry
    with pytest.raises(errors.JobkitError, match=r"needs \['worker'\]"):
        jobs.Entry({"attempt": 1, "startedAt": at(1)})


def test_a_job_made_from_a_mapping_holds_its_history_as_entries() -> None:
    claimed = changes.Change(pending(new_draft())).attempt_started("w1", at(1)).done()
    history = [dict(entry) for entry in jobs.history(claimed)]
    made = jobs.Job({**dict(claimed), "history": history})
    assert made == claimed
    assert all(type(entry) is jobs.Entry for entry in jobs.history(made))
    assert records.to_json(made) == records.to_json(claimed)
