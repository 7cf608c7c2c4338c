"""The Firestore change feed on the emulator: the conformance suite, with another instance's
writes heard through listeners, and status polls answered from the listeners."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from google.cloud import firestore

import jobkit_gcp
from jobkit import jobs
from jobkit_gcp.firestore_feed import FirestoreChangeFeed
from tests.jobkit import change_feed_conformance as conformance
from tests.jobkit.conformance import T0, claimed, new
from tests.jobkit_gcp.conftest import Emulators, unique

LATENCY = 1.0  # a listener hears another instance's write within this (it is ms here)


@contextlib.asynccontextmanager
async def opened_feed() -> AsyncIterator[
    tuple[FirestoreChangeFeed, jobkit_gcp.FirestoreJobStore, jobkit_gcp.FirestoreJobStore]
]:
    project = unique("feed")
    mine = jobkit_gcp.FirestoreJobStore(firestore.AsyncClient(project=project))
    theirs = jobkit_gcp.FirestoreJobStore(firestore.AsyncClient(project=project))
    feed = FirestoreChangeFeed(mine, firestore.Client(project=project))
    try:
        yield feed, mine, theirs
    finally:
        await feed.close()
        await mine.close()
        await theirs.close()


@pytest.mark.usefixtures("emulators")
class TestOnFirestore(conformance.ChangeFeedConformance):
    @pytest.fixture
    def harness(self) -> conformance.Opener:
        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[conformance.Harness]:
            async with opened_feed() as (feed, mine, theirs):
                yield conformance.Harness(
                    feed=feed, store=feed.observe(mine), other=theirs, latency=LATENCY
                )

        return opened


def test_a_kept_job_is_answered_without_a_read(emulators: Emulators) -> None:
    """The first poll of a job costs its listener's first read; later polls cost nothing
    until the job changes, and then one read, whichever instance wrote it."""

    async def main() -> None:
        async with opened_feed() as (feed, mine, theirs):
            job = new(1)
            assert await theirs.insert(job)
            assert await feed.kept(jobs.id(job)) == (True, job)
            assert feed._kept[jobs.id(job)].listening.snapshots == 1  # type: ignore[union-attr]
            for _ in range(20):
                assert await feed.kept(jobs.id(job)) == (True, job)
            assert mine.usage.reads == 0  # the store was never asked
            running = claimed(job, T0)
            assert await theirs.compare_and_set(jobs.version(job), running)
            async with asyncio.timeout(5.0):
                while (await feed.kept(jobs.id(job)))[1] != running:
                    await asyncio.sleep(0.01)
            assert feed._kept[jobs.id(job)].listening.snapshots == 2  # type: ignore[union-attr]
            assert await feed.kept("00000000-0000-0000-0000-000000000001") == (True, None)

    asyncio.run(main())


def test_past_the_bound_polls_read_the_store(emulators: Emulators) -> None:
    async def main() -> None:
        async with opened_feed() as (feed, _, theirs):
            feed.max_kept = 1
            first, second = new(1), new(2)
            assert await theirs.insert_many([first, second]) == [True, True]
            assert await feed.kept(jobs.id(first)) == (True, first)
            assert await feed.kept(jobs.id(second)) == (False, None)

    asyncio.run(main())
