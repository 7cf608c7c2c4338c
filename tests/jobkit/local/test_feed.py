"""The embedded change feed: the conformance suite on the in-memory and SQLite stores, and
what it does beyond the contract (a poll only while watched, bounded memory, no poll at all
when told so)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobkit import events, jobs, ports
from jobkit.local import feed as feeds
from jobkit.local.sqlite import SqliteJobStore
from jobkit.local.sqlite_versions import SqliteVersions
from jobkit.testing import MemoryJobStore
from tests.jobkit import change_feed_conformance as conformance
from tests.jobkit.conformance import T0, at, claimed, moved, new

POLL = 0.1


class TestOnTheMemoryStore(conformance.ChangeFeedConformance):
    @pytest.fixture
    def harness(self) -> conformance.Opener:
        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[conformance.Harness]:
            store = MemoryJobStore()
            feed = feeds.StoreChangeFeed(store, poll_seconds=POLL)
            try:
                yield conformance.Harness(
                    feed=feed, store=feed.observe(store), other=store, latency=POLL
                )
            finally:
                await feed.close()

        return opened


class TestOnSqlite(conformance.ChangeFeedConformance):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> conformance.Opener:
        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[conformance.Harness]:
            path = tmp_path / "jobs.db"
            path.unlink(missing_ok=True)
            async with SqliteJobStore(path) as mine, SqliteJobStore(path) as theirs:
                feed = feeds.StoreChangeFeed(mine, poll_seconds=POLL)
                try:
                    yield conformance.Harness(
                        feed=feed, store=feed.observe(mine), other=theirs, latency=POLL
                    )
                finally:
                    await feed.close()

        return opened


class TestOnSqliteReadingOnlyVersions(conformance.ChangeFeedConformance):
    """As the runtime has it: the poll reads the version column, not whole jobs."""

    @pytest.fixture
    def harness(self, tmp_path: Path) -> conformance.Opener:
        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[conformance.Harness]:
            path = tmp_path / "jobs.db"
            path.unlink(missing_ok=True)
            async with SqliteJobStore(path) as mine, SqliteJobStore(path) as theirs:
                versions = SqliteVersions(path)
                feed = feeds.StoreChangeFeed(mine, poll_seconds=POLL, versions=versions)
                try:
                    yield conformance.Harness(
                        feed=feed, store=feed.observe(mine), other=theirs, latency=POLL
                    )
                finally:
                    await feed.close()
                    versions.close()

        return opened


def test_both_version_readers_read_the_same(tmp_path: Path) -> None:
    async def main() -> None:
        async with SqliteJobStore(tmp_path / "jobs.db") as store:
            population = [new(n, user=f"user-{n % 3}", created=at(n)) for n in range(40)]
            population = [
                claimed(job, jobs.run_at(job)) if n % 4 == 0 else job
                for n, job in enumerate(population)
            ]
            population[5] = moved(population[5], events.CancelRequested(), T0)
            assert all(await store.insert_many(population))
            columns, port = SqliteVersions(tmp_path / "jobs.db"), feeds.StoreVersions(store)
            ids = [jobs.id(job) for job in population] + ["job-missing"]
            assert await columns.of_jobs(ids) == await port.of_jobs(ids)
            for user in ("user-0", "user-1", "user-9"):
                for limit in (1, 5, 100):
                    live = await columns.live_of_user(user, limit)
                    assert live == await port.live_of_user(user, limit)
                    assert list(live) == list(await port.live_of_user(user, limit))
            columns.close()

    asyncio.run(main())


def test_the_poll_runs_only_while_someone_watches() -> None:
    async def main() -> None:
        store = MemoryJobStore()
        feed = feeds.StoreChangeFeed(store, poll_seconds=0.02)
        await asyncio.sleep(0.1)
        assert feed.polls == 0
        async with feed.watch_job("job-0001"), feed.watch_user("user-1"):
            await asyncio.sleep(0.15)
            assert feed.polls >= 3
        stopped = feed.polls
        await asyncio.sleep(0.1)
        assert feed.polls == stopped

    asyncio.run(main())


def test_without_a_poll_only_this_processs_writes_are_heard() -> None:
    async def main() -> None:
        store = MemoryJobStore()
        feed = feeds.StoreChangeFeed(store, poll_seconds=None)
        job = new(1)
        async with feed.watch_job(jobs.id(job)) as watch:
            assert await store.insert(job)  # around the feed: unheard
            assert not await watch.next(0.2)
            assert await feed.observe(store).compare_and_set(jobs.version(job), claimed(job, T0))
            assert (await watch.next(1)).job_ids == {jobs.id(job)}
        assert feed.polls == 0

    asyncio.run(main())


def test_a_watch_keeps_a_bounded_number_of_ids_then_says_more() -> None:
    async def main() -> None:
        store = MemoryJobStore()
        feed = feeds.StoreChangeFeed(store, poll_seconds=None)
        ringing = feed.observe(store)
        many = [new(n) for n in range(feeds.MAX_PENDING + 10)]
        async with feed.watch_user("user-1") as watch:
            assert all(await ringing.insert_many(many))
            rung = await watch.next(1)
            assert rung.more
            assert len(rung.job_ids) == feeds.MAX_PENDING
            assert not await watch.next(0.05)  # taken: the watch is empty again

    asyncio.run(main())


def test_the_poll_does_not_ring_again_for_this_processs_own_writes() -> None:
    async def main() -> None:
        store = MemoryJobStore()
        feed = feeds.StoreChangeFeed(store, poll_seconds=0.02)
        ringing = feed.observe(store)
        job = new(1)
        assert await ringing.insert(job)
        async with feed.watch_job(jobs.id(job)) as watch, feed.watch_user("user-1") as mine:
            assert await ringing.compare_and_set(jobs.version(job), claimed(job, T0))
            assert (await watch.next(1)).job_ids == {jobs.id(job)}
            assert (await mine.next(1)).job_ids == {jobs.id(job)}
            polls = feed.polls
            assert not await watch.next(0.2)  # the poll looked, found what it was told
            assert not await mine.next(0.05)
            assert feed.polls > polls

    asyncio.run(main())


def test_a_deletion_rings_its_users_watch_and_no_other() -> None:
    async def main() -> None:
        store = MemoryJobStore()
        feed = feeds.StoreChangeFeed(store, poll_seconds=None)
        ringing = feed.observe(store)
        job = new(1, user="user-1")
        assert await ringing.insert(job)
        async with feed.watch_user("user-1") as mine, feed.watch_user("user-2") as theirs:
            assert await ringing.delete(jobs.id(job), jobs.version(job))
            assert (await mine.next(1)).job_ids == {jobs.id(job)}
            assert not await theirs.next(0.1)

    asyncio.run(main())


def test_a_failed_write_rings_nobody() -> None:
    async def main() -> None:
        store = MemoryJobStore()
        feed = feeds.StoreChangeFeed(store, poll_seconds=None)
        ringing = feed.observe(store)
        job = new(1)
        assert await ringing.insert(job)
        async with feed.watch_job(jobs.id(job)) as watch:
            assert not await ringing.insert(job)  # a duplicate
            assert not await ringing.compare_and_set(99, claimed(job, T0))  # stale
            assert not await ringing.delete(jobs.id(job), 99)
            assert await watch.next(0.1) == ports.Rung()

    asyncio.run(main())


def test_the_ringing_store_reads_through_and_passes_the_rest_on(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteJobStore(tmp_path / "jobs.db")
        feed = feeds.StoreChangeFeed(store)
        ringing = feed.observe(store)
        await ringing.start()  # not a port method: passed on to the SQLite store
        try:
            assert ringing.get == store.get  # bound once: no extra call on a read
            assert await ringing.insert(new(1))
            assert await ringing.get(jobs.id(new(1))) == new(1)
        finally:
            await ringing.close()

    asyncio.run(main())


def test_a_poll_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="poll_seconds"):
        feeds.StoreChangeFeed(MemoryJobStore(), poll_seconds=0)
