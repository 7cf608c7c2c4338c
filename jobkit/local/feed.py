"""The embedded change feed (`ports.ChangeFeed`) over any `JobStore`.

Theory of operation
-------------------
Two sources tell the feed that a job changed:

1. **This process's writes, at once.** `StoreChangeFeed.observe(store)` wraps the store
   the runtime hands out (to its workers, to the API, to `submit`); every write that
   succeeds through it — insert, compare-and-set (claims, heartbeats, progress, outcomes,
   user commands), delete — rings the watches of that job and of its user before the
   writer's `await` returns. When nobody watches, a ring is two dictionary misses.

2. **Other processes' writes, by a poll, only while someone watches.** One task per feed
   (not one per watch) looks every `poll_seconds` at the versions of the watched jobs,
   and of each watched user's live (pending and processing) jobs, and rings what differs
   from its last look. It reads versions through a `Versions` reader: the port's reads by
   default (`StoreVersions`, which decodes whole jobs), or a cheaper one that reads only
   the version column (`jobkit.local.sqlite_versions` for the SQLite file). Each watch
   takes its baseline when it begins, so a write between the watcher's first read and the
   poll's first look is not missed.
   The user poll sees a job that another process submitted, moved or finished (a job
   that leaves the live page was finished, cancelled or deleted), not the deletion of a
   job that had already finished, nor more than `USER_PAGE` live jobs of one user; a
   watcher re-reads what it shows when it reconnects.

A ring carries no state: watchers re-read the store, so a spurious or duplicate ring
costs a read and a lost one is repaired by the poll. `poll_seconds=None` turns the poll
off, for a process that knows it is the only writer.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from typing import Any, Final, Protocol

from jobkit import jobs, listing, ports
from jobkit.status import PENDING, PROCESSING

log = logging.getLogger("jobkit.local.feed")

MAX_PENDING: Final = 256  # ids one watch keeps between two `next` calls; past it, `more`
USER_PAGE: Final = 100  # live jobs of one user the poll compares


class Versions(Protocol):
    """What the poll reads: versions, not jobs."""

    async def of_jobs(self, job_ids: Collection[str]) -> dict[str, int]:
        """The version of each of these jobs that exists."""

    async def live_of_user(self, user_id: str, limit: int) -> dict[str, int]:
        """The versions of the user's newest `limit` pending or processing jobs, by id."""


class StoreVersions:
    """`Versions` through the `JobStore` port (any store; each job is read whole)."""

    def __init__(self, store: ports.JobStore) -> None:
        self.store = store

    async def of_jobs(self, job_ids: Collection[str]) -> dict[str, int]:
        found = {}
        for job_id in job_ids:
            job = await self.store.get(job_id)
            if job is not None:
                found[job_id] = jobs.version(job)
        return found

    async def live_of_user(self, user_id: str, limit: int) -> dict[str, int]:
        query = listing.Query(
            statuses=frozenset({PENDING, PROCESSING}),
            sort="createdAt",
            descending=True,
            limit=limit,
        )
        page = await self.store.list(user_id, query)
        return {jobs.id(job): jobs.version(job) for job in page.jobs}


class _Watch:
    """One watcher's pending reports and the event that wakes it."""

    __slots__ = ("_event", "_ids", "_more")

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._more = False
        self._event = asyncio.Event()

    def ring(self, job_id: str) -> None:
        if len(self._ids) < MAX_PENDING:
            self._ids.add(job_id)
        elif job_id not in self._ids:
            self._more = True
        self._event.set()

    async def next(self, timeout: float) -> ports.Rung:
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0.0)):
                    await self._event.wait()
        rung = ports.Rung(frozenset(self._ids), self._more)
        self._ids = set()
        self._more = False
        self._event.clear()
        return rung


class StoreChangeFeed:
    """`ports.ChangeFeed` for one process: rung by the writes made through `observe(store)`,
    and polling `versions` (by default, `store`'s) every `poll_seconds` for other writers
    while any watch is open."""

    def __init__(
        self,
        store: ports.JobStore,
        *,
        poll_seconds: float | None = 1.0,
        versions: Versions | None = None,
    ) -> None:
        if poll_seconds is not None and poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be > 0 or None, got {poll_seconds}")
        self.store = store
        self.versions = versions if versions is not None else StoreVersions(store)
        self.poll_seconds = poll_seconds
        self._by_job: dict[str, set[_Watch]] = {}
        self._by_user: dict[str, set[_Watch]] = {}
        # The poll's last look: a watched job's version (None: no such job), a watched
        # user's live jobs by id.
        self._versions: dict[str, int | None] = {}
        self._live: dict[str, dict[str, int]] = {}
        self._poller: asyncio.Task[None] | None = None
        self.polls = 0  # looks taken, for tests and benchmarks

    def observe(self, store: ports.JobStore) -> RingingStore:
        """`store`, whose successful writes ring this feed's watches."""
        return RingingStore(store, self)

    # -- ringing ----------------------------------------------------------------------

    @property
    def watched_users(self) -> bool:
        return bool(self._by_user)

    def ring(self, job_id: str, user_id: str | None) -> None:
        """`job_id` (of `user_id`, when known) may have changed: tell its watchers."""
        for watch in self._by_job.get(job_id, ()):
            watch.ring(job_id)
        if user_id is not None:
            for watch in self._by_user.get(user_id, ()):
                watch.ring(job_id)

    def ring_jobs(self, written: Iterable[jobs.Job]) -> None:
        """These jobs were written through this feed: ring, and keep the poll's last look
        current, so that the poll does not ring them a second time."""
        if not (self._by_job or self._by_user):
            return
        for job in written:
            job_id, user_id = jobs.id(job), jobs.user_id(job)
            if job_id in self._versions:
                self._versions[job_id] = jobs.version(job)
            live = self._live.get(user_id)
            if live is not None:
                if jobs.status(job) in (PENDING, PROCESSING):
                    live[job_id] = jobs.version(job)
                else:
                    live.pop(job_id, None)
            self.ring(job_id, user_id)

    def ring_deleted(self, job_id: str, user_id: str | None) -> None:
        if job_id in self._versions:
            self._versions[job_id] = None
        if user_id is not None and user_id in self._live:
            self._live[user_id].pop(job_id, None)
        self.ring(job_id, user_id)

    # -- watching ---------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch_job(self, job_id: str) -> AsyncIterator[ports.Watch]:
        watch = _Watch()
        if self.poll_seconds is not None and job_id not in self._by_job:
            self._versions[job_id] = (await self.versions.of_jobs((job_id,))).get(job_id)
        self._by_job.setdefault(job_id, set()).add(watch)
        self._started()
        try:
            yield watch
        finally:
            self._leave(self._by_job, job_id, watch)
            if job_id not in self._by_job:
                self._versions.pop(job_id, None)

    @contextlib.asynccontextmanager
    async def watch_user(self, user_id: str) -> AsyncIterator[ports.Watch]:
        watch = _Watch()
        if self.poll_seconds is not None and user_id not in self._by_user:
            self._live[user_id] = await self.versions.live_of_user(user_id, USER_PAGE)
        self._by_user.setdefault(user_id, set()).add(watch)
        self._started()
        try:
            yield watch
        finally:
            self._leave(self._by_user, user_id, watch)
            if user_id not in self._by_user:
                self._live.pop(user_id, None)

    def _leave(self, index: dict[str, set[_Watch]], key: str, watch: _Watch) -> None:
        watches = index[key]
        watches.discard(watch)
        if not watches:
            del index[key]
        if not (self._by_job or self._by_user) and self._poller is not None:
            self._poller.cancel()
            self._poller = None

    def _started(self) -> None:
        if self.poll_seconds is None or self._poller is not None:
            return
        self._poller = asyncio.get_running_loop().create_task(
            self._poll(self.poll_seconds), name="jobkit-change-feed-poll"
        )

    async def close(self) -> None:
        """Stop the poll (watches still open stop hearing other processes' writes)."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    # -- the poll -----------------------------------------------------------------------

    async def _poll(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.look()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store that fails now may answer next time
                log.warning("the change feed's poll failed", exc_info=True)

    async def look(self) -> None:
        """One look at the store for every watched job and user; rings what differs."""
        self.polls += 1
        watched = builtins.list(self._by_job)
        found = await self.versions.of_jobs(watched) if watched else {}
        for job_id in watched:
            version = found.get(job_id)
            if job_id in self._by_job and self._versions.get(job_id, -1) != version:
                self._versions[job_id] = version
                self.ring(job_id, None)
        for user_id in builtins.list(self._by_user):
            live = await self.versions.live_of_user(user_id, USER_PAGE)
            before = self._live.get(user_id, {})
            if user_id not in self._by_user or live == before:
                continue
            self._live[user_id] = live
            for job_id in _differing(before, live):
                for watch in self._by_user.get(user_id, ()):
                    watch.ring(job_id)


def _differing(before: dict[str, int], after: dict[str, int]) -> builtins.list[str]:
    changed = [key for key, version in after.items() if before.get(key) != version]
    return changed + [key for key in before if key not in after]


class RingingStore:
    """A `JobStore` whose successful writes ring a `StoreChangeFeed`; reads go straight to
    the store it wraps (bound once: no extra call on the hot read paths), and so does
    anything else the store has (`start`, `close`, ...)."""

    def __init__(self, store: ports.JobStore, feed: StoreChangeFeed) -> None:
        self.inner = store
        self._feed = feed
        self.get = store.get
        self.list = store.list
        self.claimable = store.claimable
        self.stalled = store.stalled
        self.next_wakeup = store.next_wakeup

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def insert(self, job: jobs.Job) -> bool:
        written = await self.inner.insert(job)
        if written:
            self._feed.ring_jobs((job,))
        return written

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]:
        answers = await self.inner.insert_many(batch)
        self._feed.ring_jobs(job for job, ok in zip(batch, answers, strict=True) if ok)
        return answers

    async def insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        answers = await self.inner.insert_in_turn(batch)
        self._feed.ring_jobs(
            job for job, turn in zip(batch, answers, strict=True) if turn is not None
        )
        return answers

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        written = await self.inner.compare_and_set(expected_version, job)
        if written:
            self._feed.ring_jobs((job,))
        return written

    async def compare_and_set_many(
        self, writes: Sequence[tuple[int, jobs.Job]]
    ) -> builtins.list[bool]:
        answers = await self.inner.compare_and_set_many(writes)
        self._feed.ring_jobs(job for (_, job), ok in zip(writes, answers, strict=True) if ok)
        return answers

    async def delete(self, job_id: str, expected_version: int) -> bool:
        # A deletion names no user: look the owner up first, when a user's watch may care.
        owner = None
        if self._feed.watched_users:
            found = await self.inner.get(job_id)
            owner = None if found is None else jobs.user_id(found)
        deleted = await self.inner.delete(job_id, expected_version)
        if deleted:
            self._feed.ring_deleted(job_id, owner)
        return deleted
