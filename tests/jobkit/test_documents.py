"""A job's document: every field under the API's names, plain JSON values, and back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from jobkit import documents, errors, events, jobs
from tests.jobkit.jobs_support import (
    DOCUMENT,
    FLAKY,
    POLICY,
    RESULT_KEY,
    completed_on_second_attempt,
    every_job,
    new_draft,
    walk,
)

FLAKY_AT_2 = {
    "code": "unavailable",
    "message": "backend down",
    "retryable": True,
    "context": {},
    "at": "2030-01-01T09:00:02.000000Z",
}


def test_the_document_of_a_completed_job() -> None:
    assert documents.to_document(completed_on_second_attempt()) == {
        "id": "job-1",
        "userId": "user-1",
        "type": "echo",
        "status": "completed",
        "priority": 20,
        "queue": "echoes",
        "turn": 0,
        "runAt": "2030-01-01T09:00:07.000000Z",
        "params": {"pages": 3},
        "input": {
            "blob": "inputs/job-1/document.pdf",
            "filename": "a.pdf",
            "size": 9,
            "contentType": "application/pdf",
            "uri": None,
        },
        "result": {"pages": 3},
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
                "error": FLAKY_AT_2,
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
    document = documents.to_document(job)
    assert (document["status"], document["error"], document["runAt"], document["input"]) == (
        "pending",
        FLAKY_AT_2,
        "2030-01-01T09:00:07.000000Z",
        None,
    )
    assert documents.from_document(document) == job


@given(every_job)
def test_documents_round_trip_through_json(job: jobs.Job) -> None:
    document = documents.to_document(job)
    assert list(document) == list(jobs.FIELDS)
    assert all(list(entry) == list(jobs.ENTRY_KEYS) for entry in document["history"])
    assert json.loads(json.dumps(document, allow_nan=False)) == document
    assert documents.from_document(document) == job
    assert documents.from_document(json.loads(json.dumps(document))) == job


def test_a_document_missing_a_field_is_a_store_bug() -> None:
    document = documents.to_document(new_draft())
    del document["version"]
    with pytest.raises(errors.JobkitError, match=r"lacks fields \['version'\]"):
        documents.from_document(document)


def test_an_error_converts_one_way_and_back() -> None:
    err = errors.error("x", "y", retryable=False, context={"a": [1]}, at=None)
    assert errors.to_document(err) == {
        "code": "x",
        "message": "y",
        "retryable": False,
        "context": {"a": [1]},
        "at": None,
    }
    assert errors.from_document(errors.to_document(err)) == err
    assert errors.from_document({"code": "x", "message": "y", "retryable": False}) == err.__class__(
        code="x", message="y", retryable=False
    )


def test_an_input_converts_one_way_and_back_its_optional_keys_absent_or_null() -> None:
    doc = documents.input_to_document(DOCUMENT)
    assert list(doc) == list(documents.INPUT_KEYS)
    assert documents.input_from_document(doc) == DOCUMENT
    short: dict[str, Any] = {"blob": "inputs/x", "contentType": "application/pdf"}
    assert documents.input_from_document(short) == jobs.Input(
        blob="inputs/x", content_type="application/pdf"
    )


def test_an_entry_written_before_every_key_was_kept_reads_its_missing_keys_as_unset() -> None:
    job = completed_on_second_attempt()
    document = documents.to_document(job)
    for entry in document["history"]:  # as stores kept them before: unset keys left out
        for key in [key for key, value in entry.items() if value is None]:
            del entry[key]
    assert documents.from_document(document) == job
