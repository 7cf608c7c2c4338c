"""The SQLite `JobStore`: one database file shared by API and worker processes.

Theory of operation
-------------------
The file is in WAL mode, where readers never wait for the writer and the
writer never waits for readers. Reads (`get`, `list`, `claimable`, `stalled`,
`next_wakeup`) therefore run inline on a connection owned by the event-loop
thread: an indexed read is cheaper than a hop to another thread.

Writes never run on the event loop. Each store has one writer thread that owns
the write connection; a caller encodes its write, queues it and awaits a
future. The writer takes everything queued, applies it in one `BEGIN
IMMEDIATE` transaction (group commit: under load many writes share a commit),
then answers every future with its own result. The writes of a group stay
independent: a compare-and-set that loses, or a statement that fails, does not
touch the others. A commit that meets another process's lock is retried, whole,
with exponential backoff (on top of SQLite's own `busy_timeout` wait).

A future is answered only after the commit, so a caller that saw `True` can
read its write back on the read connection at once.

A lone write does not pay for the group commit built for many. When nothing is queued
for the writer nor on its way back, and no other write is asked for in the same turn of
the event loop, a single insert or compare-and-set (or a batch of one: a worker's one
claim or completion under a light load) is written at
once, on the event-loop thread, by a third connection that never waits for a lock: one
statement in its own transaction, with no hand-over to the writer thread and back (two
thread wake-ups, each a wait for a core and for the GIL: on a busy machine, most of a
lone write's time). That is done only at `synchronous` OFF or NORMAL, where a commit in
WAL mode does not sync; at FULL a commit's fsync would hold up the event loop, so writes
always go through the writer thread, one fsync per group. If the lock is taken (another
process is writing), or the statement fails, the write is queued for the writer as any
other, which waits for the lock and reports errors the usual way.

Checkpoints (copying the WAL back into the database file, and syncing it) run on a
third thread, not in the commit that happens to fill the WAL: a checkpoint ends in
an fsync, which would hold up every write queued behind that commit. The writer
wakes the checkpointer after each commit, and it checkpoints at most every
`sqlite_checkpoints.EVERY` seconds, passively: it never waits for, nor blocks, a reader or
a writer of any process.

`get` remembers the jobs it decoded, keyed by their stored text: a poller reads
an unchanged job over and over, and decoding dominates such a read. Jobs are
immutable values, and every write changes a row's text (its `version` and
`updatedAt`), so a remembered job is never stale.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from jobkit import errors, instants, jobs, listing, schedule
from jobkit.local import sqlite_schema as schema
from jobkit.local import sqlite_turns, sqlite_writer, sqlite_writes
from jobkit.local.sqlite_writer import connect

Synchronous = sqlite_writer.Synchronous
T = TypeVar("T")

log = logging.getLogger("jobkit.local.sqlite")

_MAX_DECODED: Final = 1024  # jobs remembered by `get`; cleared when full, like `_frozen`'s caches
_MAX_DECODED_CHARS: Final = 1 << 22  # and by the size of their text, so big jobs cannot hoard


class SqliteJobStore:
    """`ports.JobStore` on one SQLite file; safe for several processes and stores at once.

    `synchronous` trades durability for speed. `"NORMAL"` (the default) never
    corrupts the file, but in WAL mode the last commits before a power loss or
    OS crash may be lost (not on a mere process crash). `"FULL"` syncs the WAL
    on every commit: nothing acknowledged is ever lost, at the price of one
    fsync per group commit. Group commit amortises that fsync across every
    write that arrived meanwhile, so FULL costs far less under load than per
    write.

    `fair` False: first come, first served within a priority (every job takes turn 0, and a
    submission is a plain insert, about a fifth cheaper: see `docs/explanation/scheduling.md`).

    `busy_timeout` (seconds) is how long one statement waits for another
    process's lock before the writer backs off and retries its whole group.
    Reads wait for no lock in WAL mode, save the rare recovery of a crashed
    writer's WAL, when a read may block the loop up to that long.

    A store belongs to the event loop that started it: use it as
    `async with SqliteJobStore(path) as store:`, or `await SqliteJobStore.open(path)`
    and later `await store.close()`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 5.0,
        fair: bool = True,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise errors.ConfigurationError(
                f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}"
            )
        self.path = os.fspath(path)
        if self.path in ("", ":memory:"):  # private to each connection: nothing to share
            raise errors.ConfigurationError(
                "SqliteJobStore needs a file path (its reader and writer share it)"
            )
        self.synchronous: Synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.fair = fair
        self._queued = 0  # writes queued or being written: the loop thread's count
        self._asking = 0  # lone writes waiting out this turn of the loop (`_alone`)
        self._direct: sqlite3.Connection | None = None  # lone writes, when idle (above)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite_writer.Writer | None = None  # the writer thread
        self._open = False
        self._decoded: dict[str, jobs.Job] = {}
        self._decoded_chars = 0

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout: float = 5.0,
        fair: bool = True,
    ) -> SqliteJobStore:
        store = cls(path, synchronous=synchronous, busy_timeout=busy_timeout, fair=fair)
        await store.start()
        return store

    async def start(self) -> None:
        """Open (creating or migrating the file) and start the writer thread."""
        if self._loop is not None:
            raise errors.JobkitError("a SqliteJobStore starts once")
        self._loop = loop = asyncio.get_running_loop()
        self._writer = sqlite_writer.Writer(
            self.path,
            synchronous=self.synchronous,
            busy_timeout=self.busy_timeout,
            loop=loop,
            written=self._written,
        )
        await self._writer.start()  # the file is in WAL mode and migrated, or it raises
        reader = connect(self.path, self.busy_timeout, check_same_thread=True)
        direct = None
        try:
            reader.execute("PRAGMA query_only = ON")
            reader.execute(f"PRAGMA synchronous = {self.synchronous}")
            if self.synchronous in ("OFF", "NORMAL"):
                direct = connect(self.path, 0.0, check_same_thread=True)  # never waits
                direct.execute(f"PRAGMA synchronous = {self.synchronous}")
                direct.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
        except BaseException:
            reader.close()
            if direct is not None:
                direct.close()
            await self._stop_writer()
            raise
        self._reader = reader
        self._direct = direct
        self._open = True

    async def close(self) -> None:
        """Finish every queued write, then close both connections. Idempotent."""
        self._open = False
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._direct is not None:
            self._direct.close()
            self._direct = None
        await self._stop_writer()

    async def _stop_writer(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the port: reads, inline on the event-loop thread -------------------------------

    def _rows(self, sql: str, parameters: Sequence[Any]) -> builtins.list[Any]:
        if self._reader is None:
            raise errors.JobkitError("the SqliteJobStore is not open")
        return self._reader.execute(sql, parameters).fetchall()

    async def get(self, job_id: str) -> jobs.Job | None:
        rows = self._rows(schema.GET, (job_id,))
        return self._decode(rows[0][0]) if rows else None

    def _decode(self, doc: str) -> jobs.Job:
        """The job stored as `doc`, decoded once for as long as it is remembered."""
        job = self._decoded.get(doc)
        if job is None:
            job = schema.decode(doc)
            if len(self._decoded) >= _MAX_DECODED or self._decoded_chars > _MAX_DECODED_CHARS:
                self._decoded.clear()
                self._decoded_chars = 0
            self._decoded[doc] = job
            self._decoded_chars += len(doc)
        return job

    async def list(self, user_id: str, query: listing.Query) -> listing.Page:
        sql, parameters = schema.list_page(user_id, query)
        found = [schema.decode(doc) for (doc,) in self._rows(sql, parameters)]
        chosen = tuple(found[: query.limit])
        cursor = None
        if len(found) > query.limit:
            cursor = listing.encode_cursor(listing.sort_key(chosen[-1], query.sort), query)
        return listing.Page(jobs=chosen, next_cursor=cursor)

    async def count_active(self, user_id: str, limit: int) -> int:
        if limit <= 0:
            return 0
        counted: int = self._rows(schema.COUNT_ACTIVE, (user_id, limit))[0][0]
        return counted

    async def claimable(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> Sequence[jobs.Job]:
        if limit <= 0:
            return []
        at = instants.format(now)
        if queues is None:  # every queue that has pending jobs, each queue's head merged
            wanted = [name for (name,) in self._rows(schema.PENDING_QUEUES, ())]
        else:
            wanted = sorted(set(queues))
        if not wanted:
            return []
        rows = self._rows(*schema.claimable_in(wanted, at, limit))
        # Remembered: a worker reads the jobs of its claims still on their way once more.
        return [self._decode(doc) for (doc,) in rows]

    async def count_due(self, now: datetime, queues: Collection[str] | None, limit: int) -> int:
        if limit <= 0:
            return 0
        if queues is None:
            wanted = [name for (name,) in self._rows(schema.PENDING_QUEUES, ())]
        else:
            wanted = sorted(set(queues))
        if not wanted:
            return 0
        counted: int = self._rows(*schema.count_due_in(wanted, instants.format(now), limit))[0][0]
        return counted

    async def stalled(self, now: datetime, limit: int) -> Sequence[jobs.Job]:
        if limit <= 0:
            return []
        return [
            schema.decode(doc)
            for (doc,) in self._rows(schema.STALLED, (instants.format(now), limit))
        ]

    async def next_wakeup(self, queues: Collection[str] | None) -> datetime | None:
        if queues is None:
            due, lease = self._rows(schema.NEXT_WAKEUP, ())[0]
        else:
            wanted = sorted(set(queues))
            if wanted:
                due, lease = self._rows(schema.next_wakeup_in(wanted), wanted)[0]
            else:  # no queue: no due time, but stalls are every queue's business
                due, lease = None, self._rows(schema.NEXT_WAKEUP, ())[0][1]
        times = [text for text in (due, lease) if text is not None]
        return instants.parse(min(times)) if times else None

    async def counts(self, now: datetime, queues: Collection[str]) -> schedule.Counts:
        at = instants.format(now)
        tallies: dict[str, dict[str, Any]] = {name: {} for name in queues}
        for queue_name, pending, due, oldest in self._rows(schema.COUNT_PENDING, (at,)):
            tallies[queue_name] = {
                "pending": pending,
                "due": due,
                "oldest_due": instants.parse(oldest) if due else None,
            }
        for queue_name, processing in self._rows(schema.COUNT_PROCESSING, ()):
            tallies.setdefault(queue_name, {})["processing"] = processing
        return {name: schedule.QueueCounts(**tally) for name, tally in sorted(tallies.items())}

    # -- the port: writes, queued for the writer thread ---------------------------------

    def _write(self, kind: sqlite_writes.Write, payload: Any) -> asyncio.Future[Any]:
        if not self._open or self._loop is None or self._writer is None:
            raise errors.JobkitError("the SqliteJobStore is not open")
        future = self._loop.create_future()
        self._queued += 1
        self._writer.put((kind, payload, future))
        return future

    def _written(
        self, futures: builtins.list[asyncio.Future[Any]], answers: builtins.list[Any]
    ) -> None:
        self._queued -= len(futures)
        sqlite_writer.answer(futures, answers)

    async def _alone(self, write: Callable[[sqlite3.Connection], T]) -> T | _NotAlone:
        """`write` done at once on the direct connection, when it is alone: the writer has
        nothing to do, and no other write was asked for in this turn of the event loop
        (many at once, as a burst of submissions, share a group commit instead). NOT_ALONE
        when it was not done (or failed, undone): queue it."""
        if self._direct is None or self._queued:
            return NOT_ALONE
        self._asking += 1
        try:
            await asyncio.sleep(0)  # the rest of this turn: do others ask too?
        finally:
            self._asking -= 1
        direct = self._direct
        if direct is None or self._queued or self._asking or not self._open:
            return NOT_ALONE
        try:
            answer = write(direct)
        except sqlite3.Error:  # busy, or a bad row: the writer's way waits, or says why
            if direct.in_transaction:
                direct.rollback()
            return NOT_ALONE
        if self._writer is not None and self._writer.checkpointer is not None:
            self._writer.checkpointer.wake()
        return answer

    async def insert(self, job: jobs.Job) -> bool:
        row = schema.encode(job)
        done = await self._alone(lambda connection: sqlite_writes.insert(connection, row))
        if not isinstance(done, _NotAlone):
            return done
        answer: bool = await self._write(sqlite_writes.Write.INSERT, row)
        return answer

    async def insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        """Each job's turn given where it is written: by the insert statement itself for a
        lone submission (`sqlite_schema.INSERT_IN_TURN`), or by the writer's transaction
        (`sqlite_turns`). Reading the turns first, as a store that cannot do this
        must, would cost a statement of its own: a tenth of a submission's time here."""
        if not self.fair:  # first come, first served: every job takes turn 0
            return [0 if stored else None for stored in await self.insert_many(batch)]
        rows = [schema.encode(job) for job in batch]
        if len(rows) == 1:  # a lone write, maybe written at once
            row = rows[0]
            done = await self._alone(lambda c: sqlite_writes.insert_in_turn(c, row))
            if not isinstance(done, _NotAlone):
                return [done]
        if not rows:
            return []
        answers: builtins.list[int | None] = await self._write(
            sqlite_writes.Write.IN_TURN, sqlite_turns.InTurn(rows)
        )
        return answers

    async def turns(
        self, lines: Collection[schedule.Line]
    ) -> Mapping[schedule.Line, schedule.Turns]:
        if not self.fair:
            return {line: schedule.Turns() for line in lines}  # turn 0, for a retry too
        found = {}
        for line in lines:
            served, last = self._rows(schema.TURNS, (line.queue, line.priority, line.user_id))[0]
            found[line] = schedule.standing(served, last)
        return found

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]:
        if len(batch) <= 1:  # a lone write, maybe written at once
            return [await self.insert(job) for job in batch]
        answers: builtins.list[bool] = await self._write(
            sqlite_writes.Write.INSERT_MANY, [schema.encode(job) for job in batch]
        )
        return answers

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        row = schema.encode(job)
        done = await self._alone(lambda c: sqlite_writes.replace(c, expected_version, row))
        if not isinstance(done, _NotAlone):
            return done
        answer: bool = await self._write(sqlite_writes.Write.REPLACE, (expected_version, row))
        return answer

    async def compare_and_set_many(
        self, writes: Sequence[tuple[int, jobs.Job]]
    ) -> builtins.list[bool]:
        if len(writes) <= 1:  # a lone write, maybe written at once (a worker's one claim)
            return [await self.compare_and_set(version, job) for version, job in writes]
        payload = [(version, schema.encode(job)) for version, job in writes]
        answers: builtins.list[bool] = await self._write(sqlite_writes.Write.REPLACE_MANY, payload)
        return answers

    async def delete(self, job_id: str, expected_version: int) -> bool:
        answer: bool = await self._write(sqlite_writes.Write.DELETE, (job_id, expected_version))
        return answer

    async def pragmas(self) -> dict[str, Any]:
        """The settings in force on the write connection (the one durability depends on)."""
        answer: dict[str, Any] = await self._write(sqlite_writes.Write.PRAGMAS, None)
        return answer


class _NotAlone:
    """What `SqliteJobStore._alone` answers when it did not write: the writer must."""


NOT_ALONE: Final = _NotAlone()
