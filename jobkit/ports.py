"""Ports: the small interfaces every interpreter (memory, SQLite, Firestore, GCS) provides."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

import attrs
from returns.result import Result

from jobkit import effects, errors, jobs, listing

Progress = Callable[[int, int, str], Awaitable[None]]
"""`progress(current, total, message)`: best-effort progress of the running attempt."""


class JobStore(Protocol):
    """Job records. Every change after `insert` is a compare-and-set on `version`.

    Every `limit` is at least 1. A store belongs to the event loop that opened it.

    The in-memory store in `jobkit.testing` is the reference semantics; the
    conformance suite holds every store to it.
    """

    async def insert(self, job: jobs.Job) -> bool:
        """Store a new job; False (and nothing written) if its id exists."""

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]:
        """Several independent inserts in one round trip; one answer per job, as `insert`'s."""

    async def get(self, job_id: str) -> jobs.Job | None: ...

    async def list(self, user_id: str, query: listing.Query) -> listing.Page:
        """One page of `user_id`'s jobs, as `listing.page` defines it."""

    async def claimable(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> Sequence[jobs.Job]:
        """Due pending jobs in `schedule.claim_key` order."""

    async def stalled(self, now: datetime, limit: int) -> Sequence[jobs.Job]:
        """Processing jobs whose lease expired at or before `now`."""

    async def next_wakeup(self, queues: Collection[str] | None) -> datetime | None:
        """The earliest pending `runAt` (in `queues`) or lease expiry (in any queue: every
        worker reaps stalls), for an idle worker's sleep."""

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        """Replace the job with id `jobs.id(job)` if its stored version is `expected_version`."""

    async def compare_and_set_many(
        self, writes: Sequence[tuple[int, jobs.Job]]
    ) -> builtins.list[bool]:
        """Several independent compare-and-sets in one round trip; one answer per write."""

    async def delete(self, job_id: str, expected_version: int) -> bool:
        """Remove the record if its version is `expected_version`."""


class BlobStore(Protocol):
    """Files: uploaded documents and result documents, addressed by validated keys."""

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Write atomically from a stream; returns the size in bytes. Past `max_bytes` it
        stops reading, writes nothing and raises `BlobTooLarge`."""

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the blob; `BlobNotFound` if missing."""

    async def read(self, key: str) -> bytes: ...

    async def stat(self, key: str) -> tuple[int, str]:
        """(size, content type); `BlobNotFound` if missing."""

    async def delete(self, key: str) -> None:
        """Idempotent: deleting a missing blob succeeds."""

    def url(self, key: str) -> str | None:
        """Where other services can read the blob (`gs://…`), recorded as a job's input
        `uri`; None when the blobs are private to this service (a local folder)."""


class Analyzer(Protocol):
    """Document analysis: the offline PDF reader locally, Gemini in production."""

    async def analyze(
        self, effect: effects.Analyze, progress: Progress
    ) -> Result[effects.Analysis, errors.Error]:
        """Perform `effect` (see `effects.Analyze` for the contract), reporting progress."""


class ChangeFeed(Protocol):
    """Which jobs may have changed: a doorbell for the readers of jobs (the status long-poll,
    the event streams), as `JobStore` is their truth.

    The contract every feed keeps (`tests/jobkit/change_feed_conformance.py` checks it):

    - **Complete.** Every write committed after a watch was entered, to a job it watches,
      is reported by a later `Watch.next`: inserts, every compare-and-set (claims,
      heartbeats, progress, outcomes, user commands) and deletions. A `watch_user` watches
      every job whose `userId` is that user, including jobs created after it was entered.
      Writes made through this feed's process are reported at once; other writers' within
      the feed's stated latency (a poll's period, a listener's delay).
    - **No truth.** A report says only "look again": it may be spurious (the job did not
      change), duplicated, or coalesce several writes into one. So a lost or extra
      notification is harmless, because the watcher re-reads the store and compares
      versions; it never takes a job's state from the feed.
    - **Private.** A user's watch reports only that user's jobs, so that a reader may tell
      its user that a reported job is gone (deleted) without a job of someone else's
      being named.
    - **Bounded.** Reports accumulate between calls to `next` (nothing is lost while the
      watcher is busy) up to a bound, past which `Rung.more` says "re-read them all".
    - **Cheap when unwatched.** Background work (a poll, a listener) runs only while some
      watch is open, and leaving a watch's context releases what it held.
    """

    def watch_job(self, job_id: str) -> AbstractAsyncContextManager[Watch]:
        """Watch one job (which may not exist yet, or may be deleted meanwhile)."""

    def watch_user(self, user_id: str) -> AbstractAsyncContextManager[Watch]:
        """Watch every job of one user."""


class Watch(Protocol):
    """One watcher's reports, from `ChangeFeed.watch_job` or `ChangeFeed.watch_user`."""

    async def next(self, timeout: float) -> Rung:
        """The jobs reported since the last call (or since the watch began), as soon as
        there is one; an empty `Rung` after `timeout` seconds without any. Never raises on
        a timeout; may be cancelled without losing the reports it was waiting for."""


@attrs.frozen
class Rung:
    """What `Watch.next` reports: jobs that may have changed. Empty after a quiet timeout."""

    job_ids: frozenset[str] = frozenset()
    more: bool = False
    """More jobs were reported than the watch keeps: any watched job may have changed."""

    def __bool__(self) -> bool:
        return bool(self.job_ids) or self.more


class BlobTooLarge(ValueError):
    """A `put` stream went past its `max_bytes`; nothing was written."""

    def __init__(self, key: str, max_bytes: int) -> None:
        super().__init__(f"blob {key!r} is larger than the limit of {max_bytes} bytes")
        self.key = key
        self.max_bytes = max_bytes


class BlobNotFound(LookupError):
    """Raised by a `BlobStore` for a key that holds no blob; performers turn it into `not_found`."""
