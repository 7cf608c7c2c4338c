"""The Firestore change feed (`ports.ChangeFeed`): snapshot listeners instead of a poll, and
the latest version of recently polled jobs, kept current, so that status polls need no read.

Theory of operation
-------------------
`StoreChangeFeed` hears this process's writes at once (`observe(store)`); this feed
replaces its poll of the store, for other instances' writes, with listeners:

- **A job** watched (a long-poll, a job's event stream) or polled lately is *kept*: a
  document listener holds its latest version, decoded (`kept`), and rings the job's
  watchers on each change. It costs one read when it starts (the document, which the
  poll that started it would have read anyway) and one per change of the job; nothing
  per poll. A job is kept while it is watched, and `LINGER_SECONDS` after its last poll
  or watch; at most `MAX_KEPT` at once (past that, polls read the store as before).
- **A user** watched (the user's event stream) is heard through a query listener on the
  user's live jobs (`userId == user`, `status in [pending, processing]`: the quota's
  count query, served by its index): one read per job in it at the start, one per
  change of a live job, one when a job leaves it by finishing. Deleting a job already
  finished is not heard from another instance (a reader re-reads on reconnecting), as
  with the embedded feed's poll.

A listener whose stream fails is started again (`firestore_listen`); until its first
snapshot after that, its job is not `kept` (polls read the store) and its watchers get
a ring (look again), so nothing is missed meanwhile. Listeners run on the sync client's
threads; every callback is handed to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final

from google.cloud import firestore

from jobkit import jobs, ports
from jobkit.local.feed import StoreChangeFeed
from jobkit_gcp import firestore_documents as documents
from jobkit_gcp import firestore_queries as queries
from jobkit_gcp.firestore_listen import Listening, Snapshot

log = logging.getLogger("jobkit.gcp.feed")

LINGER_SECONDS: Final = 60.0  # a job polled is kept this long after its last poll
MAX_KEPT: Final = 256  # jobs kept at once, per process (a listener and a thread each)
FIRST_SNAPSHOT_SECONDS: Final = 5.0  # the longest wait for a new listener's first snapshot
SWEEP_SECONDS: Final = 5.0


class _Kept:
    """One job's document listener, its latest version, and who needs it."""

    def __init__(self) -> None:
        self.listening: Listening | None = None
        self.job: jobs.Job | None = None  # None: no such job (when `live`)
        self.version: int | None = None
        self.watchers = 0
        self.until = 0.0  # loop time after which, unwatched, it stops


class FirestoreChangeFeed(StoreChangeFeed):
    """`ports.ChangeFeed` on Firestore listeners, for one process; `client` is a sync client.
    Also `ports.KeptJobs`: `kept(job_id)` answers status polls from the listeners."""

    # The embedded feed's rings and watches, and its poll turned off.

    def __init__(
        self,
        store: ports.JobStore,
        client: firestore.Client,
        *,
        collection: str = "jobs",
        linger_seconds: float = LINGER_SECONDS,
        max_kept: int = MAX_KEPT,
    ) -> None:
        super().__init__(store, poll_seconds=None)
        self.client = client
        self.collection = collection
        self.linger_seconds = linger_seconds
        self.max_kept = max_kept
        self._kept: dict[str, _Kept] = {}
        self._users: dict[str, tuple[Listening, dict[str, int]]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.reads = 0  # documents its listeners were sent (what Firestore bills them)

    # -- kept jobs --------------------------------------------------------------------

    async def kept(self, job_id: str) -> tuple[bool, jobs.Job | None]:
        """(True, the job as its listener last heard it: None if there is none), kept for
        `linger_seconds` more; (False, None) when it is not kept (too many are, or its
        listener has no current snapshot): read the store then."""
        kept = await self._keep(job_id)
        if kept is None or kept.listening is None or not kept.listening.live:
            return False, None
        return True, kept.job

    async def _keep(self, job_id: str) -> _Kept | None:
        loop = asyncio.get_running_loop()
        kept = self._kept.get(job_id)
        if kept is None:
            if len(self._kept) >= self.max_kept:
                return None
            kept = self._kept[job_id] = _Kept()
            kept.listening = self._listen_to(job_id, kept)
            self._sweeping()
        kept.until = loop.time() + self.linger_seconds
        assert kept.listening is not None
        await kept.listening.first(FIRST_SNAPSHOT_SECONDS)
        return kept

    def _listen_to(self, job_id: str, kept: _Kept) -> Listening:
        reference = self.client.collection(self.collection).document(job_id)

        def heard(found: Sequence[Snapshot], read_time: Any) -> None:
            self.reads += 1  # the document, or its absence (billed as one read)
            snapshot = found[0] if found else None
            if snapshot is None or not snapshot.exists:
                job, version = None, None
            else:
                fields = snapshot.to_dict()
                assert fields is not None
                job = documents.from_fields(fields)
                version = jobs.version(job)
            if kept.version is not None and version is not None and version < kept.version:
                return  # older than a write of ours it already holds
            changed = version != kept.version or kept.job is None
            kept.job, kept.version = job, version
            if changed:
                self.ring(job_id, None if job is None else jobs.user_id(job))

        return Listening(
            reference.on_snapshot,
            heard,
            name=f"job:{job_id}",
            on_lost=lambda: self.ring(job_id, None),
        )

    def _sweeping(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep(), name="jobkit-feed-sweep"
            )

    async def _sweep(self) -> None:
        """Stop the listeners of jobs nobody watches or polled lately."""
        loop = asyncio.get_running_loop()
        while self._kept:
            await asyncio.sleep(SWEEP_SECONDS)
            now = loop.time()
            idle = [
                job_id
                for job_id, kept in self._kept.items()
                if kept.watchers == 0 and kept.until <= now
            ]
            for job_id in idle:
                kept = self._kept.pop(job_id)
                if kept.listening is not None:
                    await kept.listening.close()
        self._sweeper = None

    # -- this process's writes keep kept jobs current at once ---------------------------

    def ring_jobs(self, written: Iterable[jobs.Job]) -> None:
        if self._kept:
            written = list(written)
            for job in written:
                kept = self._kept.get(jobs.id(job))
                if kept is not None and (kept.version or 0) < jobs.version(job):
                    kept.job, kept.version = job, jobs.version(job)
        super().ring_jobs(written)

    def ring_deleted(self, job_id: str, user_id: str | None) -> None:
        kept = self._kept.get(job_id)
        if kept is not None:
            kept.job, kept.version = None, None
        super().ring_deleted(job_id, user_id)

    # -- watching -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch_job(self, job_id: str) -> AsyncIterator[ports.Watch]:
        kept = await self._keep(job_id)
        if kept is not None:
            kept.watchers += 1
        try:
            async with super().watch_job(job_id) as watch:
                yield watch
        finally:
            if kept is not None:
                kept.watchers -= 1
                kept.until = asyncio.get_running_loop().time() + self.linger_seconds

    @contextlib.asynccontextmanager
    async def watch_user(self, user_id: str) -> AsyncIterator[ports.Watch]:
        async with super().watch_user(user_id) as watch:
            listening = self._users.get(user_id)
            if listening is None:
                listening = self._users[user_id] = (self._listen_to_user(user_id), {})
            try:
                await listening[0].first(FIRST_SNAPSHOT_SECONDS)
                yield watch
            finally:
                if user_id not in self._by_user and user_id in self._users:
                    await self._users.pop(user_id)[0].close()

    def _listen_to_user(self, user_id: str) -> Listening:
        query = queries.build_listened(
            self.client.collection(self.collection), queries.live(user_id)
        )

        def heard(found: Sequence[Snapshot], read_time: Any) -> None:
            state = self._users.get(user_id)
            if state is None:
                return
            listening, before = state
            after = {snapshot.id: snapshot.get("version") for snapshot in found}
            # Billed: each document that entered or changed, and one that left by changing.
            changed = [key for key, version in after.items() if before.get(key) != version]
            self.reads += max(1, len(changed) + len(before.keys() - after.keys()))
            if listening.snapshots == 1:  # the first: what is live now, nothing changed yet
                before.update({snapshot.id: snapshot.get("version") for snapshot in found})
                return
            for job_id, version in after.items():
                if before.get(job_id) != version:
                    self.ring(job_id, user_id)
            for job_id in before.keys() - after.keys():
                self.ring(job_id, user_id)  # finished, cancelled or deleted
            before.clear()
            before.update(after)

        return Listening(query.on_snapshot, heard, name=f"user:{user_id}", on_lost=lambda: None)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        kept, self._kept = self._kept, {}
        users, self._users = self._users, {}
        for item in kept.values():
            if item.listening is not None:
                await item.listening.close()
        for listening, _ in users.values():
            await listening.close()
        await super().close()
