"""A job as a Firestore document, purely: every job round-trips, what Firestore holds as it is
is stored as it is, the rest as JSON text, and the size is counted as Firestore counts it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.cloud import firestore
from hypothesis import given
from hypothesis import strategies as st

from jobkit import documents as job_documents
from jobkit import jobs
from jobkit_gcp import firestore_documents as documents
from jobkit_gcp.firestore import FirestoreJobStore
from tests.jobkit import strategies
from tests.jobkit.conformance import new
from tests.jobkit_gcp.conftest import Emulators, unique


def with_free_form(job: jobs.Job, params: Any, metadata: Any) -> jobs.Job:
    return job_documents.from_document(
        {**job_documents.to_document(job), "params": params, "metadata": metadata}
    )


free_form = st.dictionaries(st.text(max_size=8), strategies.json_values, max_size=4)


@given(job=strategies.submitted_jobs(), params=free_form, metadata=free_form)
def test_every_job_round_trips(job: jobs.Job, params: Any, metadata: Any) -> None:
    job = with_free_form(job, params, metadata)
    fields = documents.to_fields(job)
    assert documents.from_fields(fields) == job
    for name, value in fields.items():  # everything sent is something Firestore holds
        assert documents.storable(value, documents.MAX_NESTING), (name, value)


@given(job=strategies.submitted_jobs())
def test_what_firestore_holds_is_stored_as_the_api_shows_it(job: jobs.Job) -> None:
    doc = job_documents.to_document(job)
    fields = documents.to_fields(job)
    for name in documents.FREE_FORM:
        value = doc[name]
        if documents.storable(value, documents.MAX_NESTING) and not documents.is_wrapped(value):
            assert fields[name] == value
        else:
            assert documents.is_wrapped(fields[name])


@pytest.mark.parametrize(
    "value",
    [[[1]], {"": 1}, {"__x__": 1}, 2**63, -(2**63) - 1, "\udc00", {"k": {"\ud800": 1}}],
)
def test_what_firestore_cannot_hold(value: Any) -> None:
    assert not documents.storable(value, documents.MAX_NESTING)


def test_nesting_is_counted_to_firestore_s_limit() -> None:
    deep: Any = 1
    for _ in range(documents.MAX_NESTING):
        deep = [deep] if isinstance(deep, dict) else {"k": deep}
    assert documents.storable(deep, documents.MAX_NESTING)
    assert not documents.storable({"k": deep}, documents.MAX_NESTING)


def sized(size: int, n: int = 1) -> jobs.Job:
    """Job `n` with a document of exactly `size` bytes as Firestore counts them."""
    base = job_documents.from_document(
        {**job_documents.to_document(new(n)), "result": {"text": ""}}
    )
    empty = documents.document_size("jobs", jobs.id(base), documents.to_fields(base))
    text = "x" * (size - empty)
    return job_documents.from_document(
        {**job_documents.to_document(base), "result": {"text": text}}
    )


def test_documents_past_the_limit_are_refused_before_they_are_sent(emulators: Emulators) -> None:
    """Sizes are counted by Firestore's documented rules (name, fields, 32 bytes). The
    emulator sizes a few types its own way (an empty array or a null as 8 bytes), so only a
    document clearly inside the limit is checked against it."""
    inside = sized(documents.MAX_DOCUMENT_BYTES - 1024)
    over = sized(documents.MAX_DOCUMENT_BYTES + 1, n=2)

    async def main() -> None:
        async with FirestoreJobStore(firestore.AsyncClient(project=unique("size"))) as store:
            assert await store.insert(inside)
            assert await store.get(jobs.id(inside)) == inside
            with pytest.raises(documents.DocumentTooLarge, match="1048577 bytes"):
                await store.insert(over)
            assert await store.get(jobs.id(over)) is None

    asyncio.run(main())


def test_sizes_follow_firestore_s_rules() -> None:
    fields = {"s": "abc", "n": 1, "f": 1.5, "b": True, "z": None, "a": [1, "x"], "m": {"k": 1}}
    # name: "jobs" 5 + "id" 3 + 16; keys 2 each; values 4, 8, 8, 1, 1, 8 + 2, 2 + 8; and 32.
    assert documents.document_size("jobs", "id", fields) == 24 + 14 + 42 + 32
