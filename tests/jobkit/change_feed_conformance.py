"""The `ChangeFeed` conformance suite: what every change feed does (`ports.ChangeFeed`).

To run it against a feed, subclass `ChangeFeedConformance` in that feed's test module and
give the class a `harness` fixture: an async context manager factory yielding a `Harness`
on a fresh, empty database:

- `feed`: the feed under test;
- `store`: the store this process writes through (the feed learns of these writes at once:
  on the embedded default, the runtime's ringing store; on Firestore, the store itself);
- `other`: another writer on the same data that the feed is not told about (another
  process: on the embedded default, a second SQLite handle on the file; on Firestore, a
  second client), whose writes the feed must report within `latency` seconds.

A feed may report more than happened (that is the doorbell's contract), so the suite
asserts that what happened is reported, in time, and that a quiet watch times out empty;
the only report it forbids is another user's job on a user's watch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs

from jobkit import events, jobs, ports
from tests.jobkit.conformance import T0, at, claimed, moved, new, succeeded

QUICK = 2.0  # seconds a report of this process's write may take (it should be at once)


@attrs.frozen(kw_only=True)
class Harness:
    feed: ports.ChangeFeed
    store: ports.JobStore
    other: ports.JobStore
    latency: float


Opener = Callable[[], AbstractAsyncContextManager[Harness]]
Body = Callable[[Any, Harness], Coroutine[Any, Any, None]]


def scenario(body: Body) -> Callable[[Any, Opener], None]:
    """Turn `async def test_x(self, h)` into a sync test run on a fresh harness."""

    def test(self: Any, harness: Opener) -> None:
        async def main() -> None:
            async with harness() as opened:
                await body(self, opened)

        asyncio.run(main())

    test.__name__, test.__qualname__, test.__doc__ = body.__name__, body.__qualname__, body.__doc__
    return test


async def reported(watch: ports.Watch, job_id: str, within: float) -> float:
    """Wait until `watch` reports `job_id` (or says `more`); how long it took."""
    started = time.monotonic()
    deadline = started + within
    while (left := deadline - time.monotonic()) > 0:
        rung = await watch.next(left)
        if job_id in rung.job_ids or rung.more:
            return time.monotonic() - started
    raise AssertionError(f"{job_id} was not reported within {within} s")


async def drained(watch: ports.Watch) -> None:
    """Take what the watch holds now (reports from earlier writes, spurious ones)."""
    while await watch.next(0.05):
        pass


def progressed(job: jobs.Job, current: int) -> jobs.Job:
    event = events.ProgressReported(worker="w", claim=jobs.claim(job), current=current, total=9)
    return moved(job, event, at(2 + current))


class ChangeFeedConformance:
    """What every `ports.ChangeFeed` does. Subclasses provide the `harness` fixture."""

    # -- this process's writes -----------------------------------------------------------

    @scenario
    async def test_every_kind_of_write_to_a_watched_job_is_reported(self, h: Harness) -> None:
        job = new(1)
        async with h.feed.watch_job(jobs.id(job)) as watch:
            assert await h.store.insert(job)  # a job that did not exist when watched
            await reported(watch, jobs.id(job), QUICK)
            running = claimed(job, T0)
            assert await h.store.compare_and_set(jobs.version(job), running)
            await reported(watch, jobs.id(job), QUICK)
            first = progressed(running, 1)  # progress: not a lifecycle event, still a write
            assert await h.store.compare_and_set(jobs.version(running), first)
            await reported(watch, jobs.id(job), QUICK)
            second = progressed(first, 2)
            assert await h.store.compare_and_set_many([(jobs.version(first), second)]) == [True]
            await reported(watch, jobs.id(job), QUICK)
            done = succeeded(second, at(9))
            assert await h.store.compare_and_set(jobs.version(second), done)
            await reported(watch, jobs.id(job), QUICK)
            assert await h.store.delete(jobs.id(done), jobs.version(done))
            await reported(watch, jobs.id(job), QUICK)

    @scenario
    async def test_a_user_watch_reports_each_of_the_users_jobs(self, h: Harness) -> None:
        mine, also_mine = new(1, user="user-1"), new(2, user="user-1")
        async with h.feed.watch_user("user-1") as watch:
            assert await h.store.insert(mine)
            await reported(watch, jobs.id(mine), QUICK)
            assert await h.store.insert_many([also_mine]) == [True]
            await reported(watch, jobs.id(also_mine), QUICK)
            running = claimed(mine, T0)
            assert await h.store.compare_and_set(jobs.version(mine), running)
            await reported(watch, jobs.id(mine), QUICK)
            assert await h.store.compare_and_set(jobs.version(running), progressed(running, 1))
            await reported(watch, jobs.id(mine), QUICK)
            cancelled = moved(also_mine, events.CancelRequested(), at(1))
            assert await h.store.compare_and_set(jobs.version(also_mine), cancelled)
            await reported(watch, jobs.id(also_mine), QUICK)
            assert await h.store.delete(jobs.id(cancelled), jobs.version(cancelled))
            await reported(watch, jobs.id(also_mine), QUICK)

    @scenario
    async def test_a_user_watch_never_names_another_users_job(self, h: Harness) -> None:
        theirs, mine = new(1, user="user-2"), new(2, user="user-1")
        async with h.feed.watch_user("user-1") as watch:
            assert await h.store.insert(theirs)
            assert await h.other.compare_and_set(jobs.version(theirs), claimed(theirs, T0))
            assert await h.store.insert(mine)  # a write it must report, to know it has looked
            assert await h.other.delete(jobs.id(theirs), jobs.version(theirs) + 1)
            seen: set[str] = set()
            deadline = time.monotonic() + h.latency * 3 + QUICK
            while time.monotonic() < deadline:
                rung = await watch.next(deadline - time.monotonic())
                assert not rung.more
                seen |= rung.job_ids
            assert seen == {jobs.id(mine)}

    @scenario
    async def test_a_quiet_watch_times_out_with_an_empty_report(self, h: Harness) -> None:
        assert await h.store.insert(new(1))
        async with h.feed.watch_job(jobs.id(new(1))) as watch:
            await drained(watch)
            started = time.monotonic()
            rung = await watch.next(0.3)
            assert not rung
            assert rung == ports.Rung()
            assert time.monotonic() - started >= 0.25

    @scenario
    async def test_reports_wait_for_the_watcher(self, h: Harness) -> None:
        population = [new(n, user="user-1") for n in range(3)]
        async with h.feed.watch_user("user-1") as watch:
            for job in population:
                assert await h.store.insert(job)
            seen: set[str] = set()
            deadline = time.monotonic() + QUICK
            while len(seen) < len(population) and time.monotonic() < deadline:
                seen |= (await watch.next(0.2)).job_ids
            assert {jobs.id(job) for job in population} <= seen

    @scenario
    async def test_every_watch_of_a_job_hears_of_its_writes(self, h: Harness) -> None:
        job = new(1)
        assert await h.store.insert(job)
        async with (
            h.feed.watch_job(jobs.id(job)) as first,
            h.feed.watch_job(jobs.id(job)) as second,
            h.feed.watch_user(jobs.user_id(job)) as third,
        ):
            assert await h.store.compare_and_set(jobs.version(job), claimed(job, T0))
            for watch in (first, second, third):
                await reported(watch, jobs.id(job), QUICK)

    @scenario
    async def test_a_cancelled_wait_loses_no_report(self, h: Harness) -> None:
        job = new(1)
        async with h.feed.watch_job(jobs.id(job)) as watch:
            waiting = asyncio.ensure_future(watch.next(30))
            await asyncio.sleep(0.05)
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            assert await h.store.insert(job)
            await reported(watch, jobs.id(job), QUICK)

    @scenario
    async def test_a_watch_left_and_taken_again_still_hears(self, h: Harness) -> None:
        job = new(1)
        async with h.feed.watch_job(jobs.id(job)):
            pass
        assert await h.store.insert(job)  # nobody watches: nothing to tell, nothing breaks
        async with h.feed.watch_job(jobs.id(job)) as watch:
            assert await h.store.compare_and_set(jobs.version(job), claimed(job, T0))
            await reported(watch, jobs.id(job), QUICK)

    # -- other writers ----------------------------------------------------------------------

    @scenario
    async def test_another_writers_changes_to_a_watched_job_are_reported(self, h: Harness) -> None:
        job = new(1)
        assert await h.store.insert(job)
        async with h.feed.watch_job(jobs.id(job)) as watch:
            await drained(watch)
            running = claimed(job, T0)
            assert await h.other.compare_and_set(jobs.version(job), running)
            await reported(watch, jobs.id(job), h.latency + QUICK)
            first = progressed(running, 1)
            assert await h.other.compare_and_set(jobs.version(running), first)
            await reported(watch, jobs.id(job), h.latency + QUICK)
            done = succeeded(first, at(9))
            assert await h.other.compare_and_set(jobs.version(first), done)
            await reported(watch, jobs.id(job), h.latency + QUICK)

    @scenario
    async def test_another_writers_jobs_of_a_watched_user_are_reported(self, h: Harness) -> None:
        async with h.feed.watch_user("user-1") as watch:
            await drained(watch)
            job = new(1, user="user-1")
            assert await h.other.insert(job)  # submitted elsewhere
            await reported(watch, jobs.id(job), h.latency + QUICK)
            running = claimed(job, T0)
            assert await h.other.compare_and_set(jobs.version(job), running)
            await reported(watch, jobs.id(job), h.latency + QUICK)
            done = succeeded(running, at(9))  # finished elsewhere
            assert await h.other.compare_and_set(jobs.version(running), done)
            await reported(watch, jobs.id(job), h.latency + QUICK)

    @scenario
    async def test_a_write_between_the_first_read_and_the_first_look_is_reported(
        self, h: Harness
    ) -> None:
        job = new(1)
        assert await h.store.insert(job)
        async with h.feed.watch_job(jobs.id(job)) as watch:
            # The watcher reads the job now; another process moves it at once.
            assert await h.store.get(jobs.id(job)) == job
            assert await h.other.compare_and_set(jobs.version(job), claimed(job, T0))
            await reported(watch, jobs.id(job), h.latency + QUICK)
