"""Ports: the small interfaces every interpreter (memory, SQLite, Firestore, GCS) provides."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

import attrs
from returns.result import Result

from jobkit import effects, errors, jobs, listing, schedule

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

    async def insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        """Store new pending jobs (submissions), each with its turn: `jobs.with_turn(job,
        turn)`, the turn `schedule.take_turns` gives it where the store stands at the write
        (every job of `batch` as if stored one after another). One answer per job: its
        turn, or None (and nothing written) if its id exists. In one round trip where the
        store can: the SQLite store reads and writes in one statement or transaction; a
        store that must read first (Firestore) may give two concurrent submissions of one
        user the same turn, which costs fairness nothing (the tie goes by `runAt`)."""

    async def turns(
        self, lines: Collection[schedule.Line]
    ) -> Mapping[schedule.Line, schedule.Turns]:
        """Where each of `lines` stands (`schedule.turns` is the reference), from indexes."""

    async def get(self, job_id: str) -> jobs.Job | None: ...

    async def list(self, user_id: str, query: listing.Query) -> listing.Page:
        """One page of `user_id`'s jobs, as `listing.page` defines it."""

    async def count_active(self, user_id: str, limit: int) -> int:
        """How many of `user_id`'s jobs are pending or processing, counted up to `limit`: the
        answer is `min(the count, limit)`, so a user with a huge backlog costs no more to
        count than `limit` jobs. For per-user quotas, across every process on the store."""

    async def claimable(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> Sequence[jobs.Job]:
        """Due pending jobs in `schedule.claim_key` order."""

    async def count_due(self, now: datetime, queues: Collection[str] | None, limit: int) -> int:
        """How many pending jobs (in `queues`; None: every queue) are due at `now`, counted up
        to `limit` (`schedule.count_due` is the reference). For push dispatch's sweep, which
        compares it with the doorbells waiting: a count, so a long backlog costs no reads."""

    async def stalled(self, now: datetime, limit: int) -> Sequence[jobs.Job]:
        """Processing jobs whose lease expired at or before `now`."""

    async def next_wakeup(self, queues: Collection[str] | None) -> datetime | None:
        """The earliest pending `runAt` (in `queues`) or lease expiry (in any queue: every
        worker reaps stalls), for an idle worker's sleep."""

    async def counts(self, now: datetime, queues: Collection[str]) -> schedule.Counts:
        """The live jobs by queue, for gauges (`schedule.counts` is the reference): each of
        `queues`, and every other queue holding a pending or processing job where the same
        reads find it (a store whose counts cannot group by queue answers for `queues`
        only). Called on an interval, never per request: it may cost one read per queue."""

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

    def scan(self, prefix: str) -> AsyncIterator[BlobEntry]:
        """Every blob whose key starts with `prefix` (`"inputs/"`), in no set order, with its
        size and when it was last written; a write not yet committed is not a blob. For
        housekeeping (the orphan sweep), so it may be slow, but must not hold everything
        in memory at once."""

    async def discard_partial(self, older_than: datetime) -> int:
        """Remove what writes that never finished left behind (a crashed process's), last
        touched before `older_than`; how many were removed. A store whose unfinished writes
        leave nothing to see (GCS: an upload is an object only once it completes) returns 0."""


class Analyzer(Protocol):
    """Document analysis: the offline PDF reader locally, Gemini in production."""

    async def analyze(
        self, effect: effects.Analyze, progress: Progress
    ) -> Result[effects.Analysis, errors.Error]:
        """Perform `effect` (see `effects.Analyze` for the contract), reporting progress."""


@runtime_checkable
class Probed(Protocol):
    """A store that can say whether its backing service answers, beyond what its port
    reads show (Cloud Storage: whether the bucket exists). Optional; `/readyz` asks it."""

    async def ready(self) -> None:
        """Return if the service answers; raise (any error) if it does not."""


@attrs.frozen(kw_only=True)
class BlobEntry:
    """One blob as `BlobStore.scan` lists it; `updated` is aware (UTC)."""

    key: str
    size: int
    updated: datetime


class Doorbell(Protocol):
    """A wake-up: how a runner learns that work is due without polling hard.

    A local notification on the embedded default (`jobkit.local.doorbell`), a Firestore
    listener for pull workers on GCP, a Cloud Tasks task per due moment for push dispatch
    on Cloud Run. A doorbell carries no truth: the store decides what is due and in what
    order, so a lost, late or duplicate ring is harmless. A listener that hears a ring
    looks at the store (claims what is due, then reads `JobStore.next_wakeup` to know how
    long it may sleep); a runner still polls now and then, as a safety net for lost rings
    and for writers that do not ring.
    """

    def ring(self, at: datetime | None = None) -> None:
        """Work is due now (`at` None or past), or will be at `at`: tell the listeners.

        Called after the write that made the work due is committed, so that a listener
        looking at once finds it. Never blocks and never raises: a doorbell that needs I/O
        to ring starts it in the background, and a ring it cannot deliver is dropped.
        Listeners in this process may be called back before `ring` returns.
        """

    async def listen(self, on_ring: Callable[[], None]) -> Listener:
        """Call `on_ring()` on this event loop's thread, soon after each ring from now on
        (rings may be coalesced: several rings, one call). Rings at a later `at` may be
        delivered early, when rung, or at `at`. Raises `OSError` if it cannot listen:
        the caller then polls instead."""


@runtime_checkable
class QueuedRings(Protocol):
    """A doorbell whose rings wait in a queue until they are delivered, and can be counted
    there (Cloud Tasks: one task per ring). Push dispatch's sweep compares the rings waiting
    with the jobs due, and rings again for the difference: a lost ring never strands a job."""

    async def waiting(self, until: datetime) -> int:
        """The rings due by `until` that are neither delivered nor being delivered. May
        raise (the queue does not answer): the caller then rings nothing more."""


class Listener(Protocol):
    """What `Doorbell.listen` returns: stop it with `close()` (idempotent)."""

    async def close(self) -> None: ...


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


@runtime_checkable
class KeptJobs(Protocol):
    """A change feed that also keeps the latest version of jobs read lately, current (the
    Firestore feed's listeners), so that a status poll needs no read of the store."""

    async def kept(self, job_id: str) -> tuple[bool, jobs.Job | None]:
        """(True, the job, or None if there is none) when this feed keeps it current, and
        keeps it a while longer; (False, None) when it does not: read the store then."""


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
