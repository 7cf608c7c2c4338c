"""The Firestore store on the emulator: the conformance suite, then what is Firestore's own."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import pytest
from google.cloud import firestore
from returns.result import Success

from jobkit import documents as job_documents
from jobkit import (
    errors,
    events,
    jobs,
    listing,
    pipeline,
    ports,
    registry,
    schedule,
    submission,
)
from jobkit.status import Status
from jobkit_gcp import firestore_documents as documents
from jobkit_gcp.firestore import FirestoreJobStore, Usage
from tests.jobkit import conformance, turns_conformance
from tests.jobkit.conformance import (
    POLICY,
    at,
    claim_all,
    claimed,
    ids,
    insert_all,
    moved,
    new,
    succeeded,
)
from tests.jobkit_gcp.conftest import Emulators, unique

T = TypeVar("T")


@pytest.fixture
def opener(emulators: Emulators) -> conformance.Opener:
    project = unique("conformance")

    @asynccontextmanager
    async def open_store(name: str) -> AsyncIterator[ports.JobStore]:
        async with FirestoreJobStore(firestore.AsyncClient(project=f"{project}-{name}")) as store:
            yield store

    return open_store


class TestFirestoreJobStore(conformance.JobStoreConformance, turns_conformance.TurnsConformance):
    COUNTS_FIND_QUEUES = False  # count aggregations cannot group by queue


class TestFirestoreFirstComeFirstServed(turns_conformance.FirstComeConformance):
    @pytest.fixture
    def opener(self, emulators: Emulators) -> conformance.Opener:
        project = unique("first-come")

        @asynccontextmanager
        async def open_store(name: str) -> AsyncIterator[ports.JobStore]:
            client = firestore.AsyncClient(project=f"{project}-{name}")
            async with FirestoreJobStore(client, fair=False) as store:
                yield store

        return open_store


def store_on(project: str) -> FirestoreJobStore:
    return FirestoreJobStore(firestore.AsyncClient(project=project))


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- the document ---------------------------------------------------------------------


def test_the_stored_document_is_the_job_as_the_api_shows_it(emulators: Emulators) -> None:
    """Fields named as the API names them, instants as its fixed-width text: the console
    shows what `GET /jobs/{id}` does."""
    project = unique("document")
    job = claimed(new(1, params={"text": "naïve", "n": [1, 2.5, None]}), at(1))

    async def main() -> dict[str, Any] | None:
        async with store_on(project) as store:
            assert await store.insert(job)
            raw = await store.client.collection("jobs").document(jobs.id(job)).get()
            return raw.to_dict()

    assert run(main()) == job_documents.to_document(job)


AWKWARD: list[dict[str, Any]] = [
    {"grid": [[1, 2], [3, 4]]},  # an array in an array
    {"": "empty key"},
    {"__name__": "reserved key"},
    {"deep": functools.reduce(lambda inner, _: {"x": inner}, range(30), cast(Any, 1))},
    {"huge": 2**70},
    {"lone": "\ud800"},
    {"$json": "looks like the wrapper"},
    {"fine": {"a.b": 1, "`": 2, "with/slash": [True, None]}},
]


@pytest.mark.parametrize("params", AWKWARD, ids=lambda p: next(iter(p)) or "empty")
def test_any_json_value_round_trips(emulators: Emulators, params: dict[str, Any]) -> None:
    """What Firestore cannot hold as it is (`firestore_documents.storable`) is kept as JSON
    text under one key, and read back as the value it was."""
    job = new(1, params=params)
    failure = errors.error("boom", "x", retryable=True, context=params)
    event = events.AttemptFailed(worker="w", claim=1, error=failure, policy=POLICY, sample=0.5)
    failed = moved(claimed(job, at(1)), event, at(2))

    async def main() -> tuple[jobs.Job | None, dict[str, Any] | None]:
        async with store_on(unique("awkward")) as store:
            assert await store.insert(failed)
            raw = await store.client.collection("jobs").document(jobs.id(job)).get()
            return await store.get(jobs.id(job)), raw.to_dict()

    back, raw = run(main())
    assert back == failed
    assert raw is not None
    assert documents.is_wrapped(raw["params"]) == ("fine" not in params)


def test_a_document_past_one_mebibyte_is_refused_before_anything_is_written(
    emulators: Emulators,
) -> None:
    """Submission caps params and metadata; a job type could still keep a large result in
    the job, which the store refuses with a clear error rather than Firestore's."""

    def with_result(job: jobs.Job, size: int) -> jobs.Job:
        return job_documents.from_document(
            {**job_documents.to_document(job), "result": {"text": "x" * size}}
        )

    small, large = new(1), with_result(new(2), documents.MAX_DOCUMENT_BYTES)

    async def main() -> None:
        async with store_on(unique("large")) as store:
            with pytest.raises(documents.DocumentTooLarge, match="job-0002"):
                await store.insert_many([small, large])
            assert await store.get(jobs.id(small)) is None
            assert await store.insert(small)
            too_big = with_result(moved(small, events.CancelRequested(), at(1)), 2**20)
            with pytest.raises(documents.DocumentTooLarge):
                await store.compare_and_set(jobs.version(small), too_big)
            assert await store.get(jobs.id(small)) == small

    run(main())


# -- what a job costs -------------------------------------------------------------------


def test_a_short_job_costs_four_writes_and_two_reads_across_instances(
    emulators: Emulators,
) -> None:
    """Submitted on one instance, claimed, beaten and completed on another, polled on a
    third: each store counts what Firestore bills it."""
    project = unique("cost")
    job = new(1)

    async def main() -> tuple[Usage, Usage, Usage]:
        async with store_on(project) as api, store_on(project) as worker, store_on(project) as poll:
            assert await api.insert(job)
            (found,) = await worker.claimable(at(1), None, 4)
            mine = claimed(found, at(1))
            assert await worker.compare_and_set_many([(jobs.version(found), mine)]) == [True]
            beat = moved(mine, events.Heartbeat(worker="w", claim=1, lease_seconds=60), at(2))
            assert await worker.compare_and_set(jobs.version(mine), beat)
            done = succeeded(beat, at(3))
            assert await worker.compare_and_set_many([(jobs.version(beat), done)]) == [True]
            assert await poll.get(jobs.id(job)) == done
            return api.usage, worker.usage, poll.usage

    api, worker, poll = run(main())
    assert api == Usage(writes=1, requests=1)
    assert worker == Usage(reads=1, writes=3, requests=4)  # no read between claim and end
    assert poll == Usage(reads=1, requests=1)


def test_a_write_the_store_cannot_guard_from_memory_reads_the_job_first(
    emulators: Emulators,
) -> None:
    project = unique("unseen")
    job = new(1)

    async def main() -> tuple[Usage, bool, bool]:
        async with store_on(project) as first, store_on(project) as second:
            assert await first.insert(job)
            stale = await second.compare_and_set(jobs.version(job) + 1, claimed(job, at(1)))
            fresh = await second.compare_and_set(jobs.version(job), claimed(job, at(1)))
            return second.usage, stale, fresh

    usage, stale, fresh = run(main())
    assert (stale, fresh) == (False, True)
    assert usage == Usage(reads=1, writes=1, requests=2)  # the read is remembered too


def test_a_remembered_update_time_gone_stale_is_checked_by_reading(emulators: Emulators) -> None:
    """Another instance purged the job and a resubmission (the same id, from an
    Idempotency-Key) brought it back to the version this store remembers: the version
    matches though the document is not the one remembered, and the write wins, exactly."""
    project = unique("stale")
    job = new(1)

    async def main() -> tuple[bool, bool]:
        async with store_on(project) as first, store_on(project) as second:
            assert await first.insert(job)
            assert await first.get(jobs.id(job)) == job  # remembers version 1's update time
            assert await second.delete(jobs.id(job), jobs.version(job))
            assert await second.insert(job)  # version 1 again, written later
            won = await first.compare_and_set(jobs.version(job), claimed(job, at(1)))
            replayed = await first.compare_and_set(jobs.version(job), claimed(job, at(1)))
            return won, replayed

    assert run(main()) == (True, False)


def test_two_instances_never_both_claim_a_job(emulators: Emulators) -> None:
    project = unique("race")
    population = [new(n, priority=n % 3 * 10) for n in range(40)]

    async def main() -> tuple[list[str], list[str]]:
        async with store_on(project) as first, store_on(project) as second:
            await insert_all(first, population)
            return await asyncio.gather(
                claim_all(first, "a", now=at(1), batch=6, many=True),
                claim_all(second, "b", now=at(1), batch=6, many=True),
            )

    won_a, won_b = run(main())
    assert sorted(won_a + won_b) == ids(population)
    assert not set(won_a) & set(won_b)


def test_more_types_and_queues_than_one_query_filters_on(emulators: Emulators) -> None:
    """Past Firestore's 30 disjunctions, types are filtered here and queues split into
    several queries; the answers are still the reference's."""
    types = [f"type-{n}" for n in range(40)]
    queues = [f"queue-{n}" for n in range(40)]
    many_types = conformance.TYPES
    for name in types:
        many_types = registry.register(many_types, registry.JobType(name=name, pipeline=noop))
    population = []
    for n in range(60):
        request = {"type": types[n % 40], "queue": queues[n % 40], "priority": n % 7 * 10}
        draft = submission.new_job(
            request, types=many_types, job_id=f"job-{n:04d}", user_id="user-1", now=at(n % 5)
        ).unwrap()
        population.append(moved(draft, events.Submitted(), at(n % 5)))

    async def main() -> None:
        async with store_on(unique("many")) as store:
            await insert_all(store, population)
            wanted = frozenset(types[::3])
            query = listing.Query(types=wanted, statuses=frozenset({Status.PENDING}), limit=4)
            while True:
                page = await store.list("user-1", query)
                assert page == listing.page(population, query)
                if page.next_cursor is None:
                    break
                query = listing.decode_cursor(page.next_cursor, query).unwrap()
            chosen = queues[5:38]
            expected = schedule.claimable(population, at(9), chosen, 9)
            assert list(await store.claimable(at(9), chosen, 9)) == expected
            assert await store.next_wakeup(chosen) == schedule.next_wakeup(population, chosen)

    run(main())


def noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())
