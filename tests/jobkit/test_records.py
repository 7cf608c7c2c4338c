"""A job as a store writes it: its document's JSON text, written by hand, and its record."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobkit import _frozen, documents, errors, instants, jobs, records
from tests.jobkit import strategies
from tests.jobkit.jobs_support import completed_on_second_attempt, every_job


@given(every_job)
def test_the_text_is_the_documents_reference_encoding(job: jobs.Job) -> None:
    text = records.to_json(job)
    assert text == _frozen.encode(documents.to_document(job))
    assert records.to_json(job) == text  # again, from remembered parts: the same text


@given(every_job)
def test_jobs_round_trip_through_their_json_text(job: jobs.Job) -> None:
    text = records.to_json(job)
    assert records.from_json(text) == job
    assert records.from_json(text.encode()) == job
    assert documents.from_document(json.loads(text)) == job


@given(every_job)
def test_a_record_holds_what_the_readers_read(job: jobs.Job) -> None:
    record = records.to_record(job)
    state = jobs.status_or_none(job)
    expires = jobs.lease_expires_at(job)
    assert record == records.Record(
        id=jobs.id(job),
        user_id=jobs.user_id(job),
        type_name=jobs.type_name(job),
        status=None if state is None else state.value,
        priority=jobs.priority(job),
        queue=jobs.queue(job),
        turn=jobs.turn(job),
        run_at=instants.format(jobs.run_at(job)),
        created_at=instants.format(jobs.created_at(job)),
        lease_expires_at=None if expires is None else instants.format(expires),
        version=jobs.version(job),
        doc=records.to_json(job),
    )
    assert type(record.status) in (str, type(None))  # the plain text, not the enum


@given(every_job, st.integers(0, 2**62))
def test_a_turn_given_in_the_text_is_the_text_of_the_job_holding_it(
    job: jobs.Job, turn: int
) -> None:
    before, after = records.around_turn(records.to_json(job))
    assert before + str(turn) + after == records.to_json(jobs.with_turn(job, turn))
    given_ = records.with_turn(records.to_record(job), turn)
    assert given_ == records.to_record(jobs.with_turn(job, turn))


@given(strategies.submitted_jobs(), st.sampled_from(['a,"turn":1', '","turn":"', "turn"]))
def test_the_turns_place_is_found_whatever_the_strings_before_it_hold(
    job: jobs.Job, text: str
) -> None:
    odd = jobs.Job({**dict(job), "id": text, "userId": text, "type": text, "queue": text})
    before, after = records.around_turn(records.to_json(jobs.with_turn(odd, 7)))
    assert before + "12" + after == records.to_json(jobs.with_turn(odd, 12))


def test_a_document_stored_before_jobs_took_turns_reads_as_turn_0() -> None:
    job = jobs.with_turn(completed_on_second_attempt(), 0)
    document = json.loads(records.to_json(job))
    del document["turn"]
    assert records.from_json(json.dumps(document)) == job
    assert documents.from_document(document) == job


@given(strategies.submitted_jobs())
def test_json_with_extra_fields_reads_like_its_document(job: jobs.Job) -> None:
    document = {**json.loads(records.to_json(job)), "extra": [1, 2]}
    assert records.from_json(json.dumps(document)) == job  # extra fields are left out
    del document["status"]
    with pytest.raises(errors.JobkitError, match=r"lacks fields \['status'\]"):
        records.from_json(json.dumps(document))
    with pytest.raises(errors.JobkitError, match="object, not list"):
        records.from_json("[]")


@given(strategies.submitted_jobs())
def test_an_entrys_text_is_written_once_and_is_the_reference_encoding(job: jobs.Job) -> None:
    for entry in jobs.history(job):
        text = records._entry_text(entry)
        assert text == _frozen.encode(documents.entry_to_document(entry))
        assert records._entry_text(entry) is text  # written once
        odd = jobs.Entry({**dict(entry), "attempt": float(jobs.entry_attempt(entry))})
        assert records._entry_text(odd) == _frozen.encode(documents.entry_to_document(odd))


@given(strategies.submitted_jobs())
def test_a_job_holding_odd_values_takes_the_reference_way(job: jobs.Job) -> None:
    odd = jobs.Job({**dict(job), "priority": float(jobs.priority(job))})
    assert records.to_json(odd) == _frozen.encode(documents.to_document(odd))
