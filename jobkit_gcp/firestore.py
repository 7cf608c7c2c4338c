"""The Firestore `JobStore`: one document per job, every change a guarded write.

Theory of operation
-------------------
A job is the document `COLLECTION/ID` whose fields are its JSON document
(`firestore_documents`). Reads are the client's: a `get`, or one query per
call built from `firestore_queries`.

Every change after `insert` is a compare-and-set on the job's `version`. The
store keeps it as a write with a precondition on the document's update time,
never a transaction: Firestore checks the precondition as it applies the
write, so a write lands only on the very document version it was computed
from, and nothing holds a lock while the caller thinks. What the store needs
is the update time of the version the caller expects. It remembers, per job,
the version and update time of the latest document it has seen: from the
answer of a read or query, and from the answer of its own writes. A worker
reads a job in its claim query, then writes the claim, the heartbeats and the
end, each against the update time the previous write answered: no read at
all between the claim query and the end. When the store has not seen the
expected version (another instance wrote it, or it was forgotten), it reads
the document first (one read), compares versions itself, and writes against
the update time it read. A write whose remembered time turns out stale is
retried once the same way, so the answer is exact in every case.

Writes go out through BatchWrite (`firestore_wire`): many guarded writes in
one request, each won or lost alone, as `compare_and_set_many` requires.
Several writes of one job in one call are sent in rounds, in order, each
against the update time the previous one answered.

`usage` counts what Firestore bills: documents read (a query that finds
nothing costs one), written and deleted, and the requests made.
"""

from __future__ import annotations

import asyncio
import builtins
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Literal, Self

import attrs
from google.api_core import exceptions
from google.cloud.firestore_v1.async_client import AsyncClient
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.types import write

from jobkit import instants, jobs, listing, schedule
from jobkit_gcp import firestore_counts as counts
from jobkit_gcp import firestore_documents as documents
from jobkit_gcp import firestore_queries as queries
from jobkit_gcp import firestore_turns as turns
from jobkit_gcp import firestore_wire as wire
from jobkit_gcp.firestore_doorbell import Head

_REMEMBERED: Final = 16_384  # jobs whose latest (version, update time) the store keeps
_DECODED: Final = 1024  # decoded jobs kept by (id, update time), for repeated reads
_RETRIES: Final = 6  # for writes Firestore did not apply for a passing reason
_FIRST_BACKOFF: Final = 0.05
_TYPE_FILTER_BATCH: Final = 100  # rows per query when types are filtered here, not there
_NO_JOB: Final = "00000000-0000-0000-0000-000000000000"


@attrs.define
class Usage:
    """What the store cost so far, as Firestore bills it."""

    reads: int = 0  # documents read; a query that finds nothing counts one
    writes: int = 0  # documents created or replaced
    deletes: int = 0
    requests: int = 0  # round trips to Firestore


Kind = Literal["insert", "replace", "delete"]
Snapshot = DocumentSnapshot[AsyncDocumentReference]


@attrs.define(eq=False)
class _Write:
    """One write of a call: what it wants, and once known, its answer."""

    kind: Kind
    job_id: str
    expected: int | None  # the version a replace or delete expects; None for an insert
    version: int | None = None  # the version it writes (None for a delete)
    fields: dict[str, Any] | None = None
    answer: bool | None = None
    update_time: Any = None  # the precondition, once known
    guessed: bool = False  # the precondition came from memory, not from a read just now
    tries: int = 0


class FirestoreJobStore:
    """`ports.JobStore` on one Firestore collection; any number of instances share it.

    The store owns `client` and closes it on `close()`. Use it as `async with
    FirestoreJobStore(client) as store:`. It belongs to the event loop that
    first uses it (the client's channel does). `fair` False: first come, first served
    within a priority (turn 0 for every job; a submission sends no turn queries).
    """

    def __init__(self, client: AsyncClient, *, collection: str = "jobs", fair: bool = True) -> None:
        self.client = client
        self.collection = collection
        self.fair = fair
        self.usage = Usage()
        self._jobs = client.collection(collection)
        self._known: dict[str, tuple[int, Any]] = {}
        self._decoded: dict[tuple[str, Any], jobs.Job] = {}
        # The head of the pending queue a doorbell listens to (`firestore_doorbell`), read
        # instead of Firestore while current; `skipped` counts the claim queries it saved.
        self.head: Head | None = None
        self.skipped = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await wire.close(self.client)

    async def ready(self, timeout: float = 5.0) -> None:
        """Raise unless Firestore answers a read (of a job that does not exist), at once:
        no retries, for a readiness probe."""
        await self._jobs.document(_NO_JOB).get(retry=None, timeout=timeout)
        self._count(reads=1, requests=1)

    # -- reads ------------------------------------------------------------------------

    async def get(self, job_id: str) -> jobs.Job | None:
        snapshot = await self._jobs.document(job_id).get()
        self._count(reads=1, requests=1)
        return self._decode(snapshot) if snapshot.exists else None

    async def list(self, user_id: str, query: listing.Query) -> listing.Page:
        if queries.types_fit(query):
            shape = queries.page(user_id, query, with_types=True, extra=1)
            found = [self._decode(s) for s in await self._run(shape)]
        else:
            found = await self._list_typed_here(user_id, query)
        chosen = tuple(found[: query.limit])
        cursor = None
        if len(found) > query.limit:
            cursor = listing.encode_cursor(listing.sort_key(chosen[-1], query.sort), query)
        return listing.Page(jobs=chosen, next_cursor=cursor)

    async def _list_typed_here(self, user_id: str, query: listing.Query) -> builtins.list[jobs.Job]:
        """More types than one query can filter on: filter them here, reading on until the
        page (and one more row) is found or the user's jobs run out."""
        found: builtins.list[jobs.Job] = []
        batch = attrs.evolve(query, limit=_TYPE_FILTER_BATCH)
        while len(found) <= query.limit:
            shape = queries.page(user_id, batch, with_types=False, extra=0)
            rows = [self._decode(s) for s in await self._run(shape)]
            found += [job for job in rows if jobs.type_name(job) in query.types]
            if len(rows) < shape.limit:
                break
            batch = attrs.evolve(batch, after=listing.sort_key(rows[-1], query.sort))
        return found

    async def claimable(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> Sequence[jobs.Job]:
        if limit <= 0:
            return []
        head = self._head_of(queues)
        if head is not None and (head[1] is None or head[1] > instants.format(now)):
            self.skipped += 1
            return []  # the listened head is not due: the query would find nothing
        if queues is None:
            return [self._decode(s) for s in await self._run(queries.claimable(now, None, limit))]
        groups = queries.chunks(queues)
        if not groups:
            return []
        found = await asyncio.gather(
            *(self._run(queries.claimable(now, group, limit)) for group in groups)
        )
        merged = [self._decode(s) for snapshots in found for s in snapshots]
        return sorted(merged, key=schedule.claim_key)[:limit] if len(groups) > 1 else merged

    async def counts(self, now: datetime, queues: Collection[str]) -> schedule.Counts:
        """Count aggregations per queue (`firestore_counts`), bounded by the queues."""
        return await counts.counts(self._tally, self._run, now, queues)

    async def _tally(self, shape: queries.Shape) -> int:
        """A count aggregation of `shape` (up to its limit): one read per thousand counted."""
        counted = await counts.tally(self._jobs, shape)
        self._count(reads=max(1, math.ceil(counted / 1000)), requests=1)
        return counted

    async def count_active(self, user_id: str, limit: int) -> int:
        """A count aggregation over the user's unfinished jobs, stopped at `limit`: billed
        one read per thousand index entries it counts (at least one), no document read."""
        if limit <= 0:
            return 0
        return await self._tally(queries.active(user_id, limit))

    async def count_due(self, now: datetime, queues: Collection[str] | None, limit: int) -> int:
        """Count aggregations (one per 30 queues): one read per thousand jobs counted."""
        if limit <= 0 or (queues is not None and not queues):
            return 0
        groups: list[list[str] | None] = [None] if queues is None else list(queries.chunks(queues))
        found = await asyncio.gather(*(self._tally(queries.due(now, g, limit)) for g in groups))
        return min(limit, sum(found))

    async def turns(
        self, lines: Collection[schedule.Line]
    ) -> Mapping[schedule.Line, schedule.Turns]:
        if not self.fair:
            return {line: schedule.Turns() for line in lines}  # turn 0, for a retry too
        return await turns.read(self._run, lines)

    async def stalled(self, now: datetime, limit: int) -> Sequence[jobs.Job]:
        if limit <= 0:
            return []
        return [self._decode(s) for s in await self._run(queries.stalled(now, limit))]

    async def next_wakeup(self, queues: Collection[str] | None) -> datetime | None:
        head = self._head_of(queues)
        if head is not None:
            # The listened head answers, with no read. Lease expiries are left out: an
            # idle worker with a doorbell looks every `poll_seconds` anyway, and reaps
            # stalls then (a stall waits a few seconds more, for no query per wake-up).
            return None if head[1] is None else instants.parse(head[1])
        due = [queries.next_due(None)] if queues is None else []
        due += [queries.next_due(group) for group in queries.chunks(queues or ())]
        found = await asyncio.gather(
            *(self._run(shape) for shape in due), self._run(queries.next_expiry())
        )
        *heads, expiring = found
        times = [s.get("runAt") for snapshots in heads for s in snapshots]
        times += [s.get("leaseExpiresAt") for s in expiring]
        texts = [text for text in times if isinstance(text, str)]
        return instants.parse(min(texts)) if texts else None

    async def _run(self, shape: queries.Shape) -> builtins.list[Snapshot]:
        snapshots = [s async for s in queries.build(self._jobs, shape).stream()]
        self._count(reads=max(1, len(snapshots)), requests=1)
        for snapshot in snapshots:
            self._remember(snapshot.id, snapshot.get("version"), snapshot.update_time)
        return snapshots

    def _head_of(self, queues: Collection[str] | None) -> tuple[bool, str | None] | None:
        """The listened head of exactly `queues` (`firestore_doorbell.Head`), when current."""
        head = self.head
        if head is None or not head.covers(queues):
            return None
        known, due = head.first()
        return (known, due) if known else None

    def _decode(self, snapshot: Snapshot) -> jobs.Job:
        """The job in `snapshot`, decoded once per document version seen lately."""
        key = (snapshot.id, snapshot.update_time)
        job = self._decoded.get(key)
        if job is None:
            fields = snapshot.to_dict()
            assert fields is not None, "decoding a missing document"
            job = documents.from_fields(fields)
            self._remember(snapshot.id, jobs.version(job), snapshot.update_time)
            if len(self._decoded) >= _DECODED:
                self._decoded.clear()
            self._decoded[key] = job
        return job

    # -- writes -----------------------------------------------------------------------

    async def insert(self, job: jobs.Job) -> bool:
        (answer,) = await self.insert_many([job])
        return answer

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]:
        pending = [
            _Write("insert", jobs.id(job), None, jobs.version(job), self._fields(job))
            for job in batch
        ]
        seen: set[str] = set()
        for item in pending:  # a twin in the batch loses to the earlier one, unsent
            if item.job_id in seen:
                item.answer = False
            seen.add(item.job_id)
        await self._apply([item for item in pending if item.answer is None])
        return [bool(item.answer) for item in pending]

    async def insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        if not self.fair:  # first come, first served: every job takes turn 0
            return [0 if stored else None for stored in await self.insert_many(batch)]
        return await turns.insert(self, batch)

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        (answer,) = await self.compare_and_set_many([(expected_version, job)])
        return answer

    async def compare_and_set_many(
        self, writes: Sequence[tuple[int, jobs.Job]]
    ) -> builtins.list[bool]:
        pending = [
            _Write("replace", jobs.id(job), expected, jobs.version(job), self._fields(job))
            for expected, job in writes
        ]
        # Several writes of one job go in rounds, in order: the n-th of each job in round n.
        rounds: dict[int, builtins.list[_Write]] = {}
        count: dict[str, int] = {}
        for item in pending:
            n = count[item.job_id] = count.get(item.job_id, 0) + 1
            rounds.setdefault(n, []).append(item)
        for n in sorted(rounds):
            await self._apply(rounds[n])
        return [bool(item.answer) for item in pending]

    async def delete(self, job_id: str, expected_version: int) -> bool:
        item = _Write("delete", job_id, expected_version)
        await self._apply([item])
        return bool(item.answer)

    def _fields(self, job: jobs.Job) -> dict[str, Any]:
        fields = documents.to_fields(job)
        documents.check_size(self.collection, jobs.id(job), fields)
        return fields

    async def _apply(self, items: builtins.list[_Write]) -> None:
        """Answer every item (at most one per job): guard each with the update time of the
        version it expects, write them all, and settle what the answers leave open."""
        failure: Exception | None = None
        delay = _FIRST_BACKOFF
        while open_ := [item for item in items if item.answer is None]:
            await self._guard(open_)
            ready = [item for item in open_ if item.answer is None]
            chunks = [
                ready[start : start + wire.MAX_WRITES]
                for start in range(0, len(ready), wire.MAX_WRITES)
            ]
            answers = await asyncio.gather(
                *(wire.batch_write(self.client, [self._wire(i) for i in c]) for c in chunks),
                return_exceptions=True,
            )
            self._count(requests=len(chunks))
            for chunk, outcomes in zip(chunks, answers, strict=True):
                if isinstance(outcomes, BaseException):
                    if not isinstance(outcomes, exceptions.GoogleAPICallError):
                        raise outcomes
                    # No answer: whether the writes landed is unknown. A read tells.
                    failure = await self._unanswered(chunk, outcomes) or failure
                    continue
                for item, answer in zip(chunk, outcomes, strict=True):
                    failure = self._settle(item, answer) or failure
            if any(item.answer is None and item.tries for item in items):
                await asyncio.sleep(delay)  # Firestore asked for patience
                delay *= 2
        if failure is not None:
            raise failure

    async def _unanswered(
        self, items: builtins.list[_Write], error: exceptions.GoogleAPICallError
    ) -> Exception | None:
        """A BatchWrite failed without answers (after the client's own retries): read the
        documents to learn which writes landed. A document holding exactly what an item
        wrote is that write's (its version and times are in it); one still as the item
        expected is written again; anything else lost. Once an item has been tried
        `_RETRIES` times the error is raised, its outcome still unknown."""
        refs = [self._jobs.document(item.job_id) for item in items]
        try:
            found = {snapshot.id: snapshot async for snapshot in self.client.get_all(refs)}
        except exceptions.GoogleAPICallError:
            found = None
        self._count(reads=len(refs), requests=1)
        failure: Exception | None = None
        for item in items:
            item.tries += 1
            snapshot = None if found is None else found.get(item.job_id)
            if found is None:
                pass  # still unknown
            elif snapshot is None or not snapshot.exists:
                if item.kind == "delete":
                    item.answer = True  # gone, as the delete wanted
                    self._known.pop(item.job_id, None)
                    continue
                if item.kind == "replace":
                    item.answer = False
                    continue
            elif item.kind != "delete" and snapshot.to_dict() == item.fields:
                item.answer = True  # it landed
                assert item.version is not None
                self._remember(item.job_id, item.version, snapshot.update_time)
                if self.head is not None and item.fields is not None:
                    self.head.wrote(item.job_id, item.fields, snapshot.update_time)
                self._count(writes=1)
                continue
            elif item.kind == "insert" or snapshot.get("version") != item.expected:
                item.answer = False  # someone else's write is there
                continue
            else:  # as it expected: not written; write it again against what was read
                self._remember(item.job_id, item.expected, snapshot.update_time)
                item.guessed = False
            if item.tries > _RETRIES:
                item.answer = False
                failure = error
        return failure

    async def _guard(self, items: builtins.list[_Write]) -> None:
        """Set each item's precondition: from memory when it knows the expected version
        (once), else from one batched read; an item whose job is gone or moved on loses."""
        unknown: builtins.list[_Write] = []
        for item in items:
            if item.kind == "insert":
                continue
            known = self._known.get(item.job_id)
            if known is not None and known[0] == item.expected and not item.guessed:
                item.update_time, item.guessed = known[1], True
            else:
                unknown.append(item)
        if not unknown:
            return
        refs = [self._jobs.document(item.job_id) for item in unknown]
        found = {s.id: s async for s in self.client.get_all(refs)}
        self._count(reads=len(refs), requests=1)
        for item in unknown:
            snapshot = found.get(item.job_id)
            if snapshot is None or not snapshot.exists:
                item.answer = False
                continue
            version = snapshot.get("version")
            self._remember(item.job_id, version, snapshot.update_time)
            if version == item.expected:
                item.update_time, item.guessed = snapshot.update_time, False
            else:
                item.answer = False

    def _wire(self, item: _Write) -> write.Write:
        path = wire.document_path(self.client, self.collection, item.job_id)
        if item.kind == "insert":
            assert item.fields is not None
            return wire.create(path, item.fields)
        if item.kind == "replace":
            assert item.fields is not None
            return wire.replace(path, item.fields, item.update_time)
        return wire.delete(path, item.update_time)

    def _settle(self, item: _Write, answer: wire.Answer) -> Exception | None:
        """Record one write's answer; the error to raise once the others are settled."""
        match answer.outcome:
            case wire.Outcome.WON:
                item.answer = True
                if item.kind == "delete":
                    self._known.pop(item.job_id, None)
                    self._count(deletes=1)
                else:
                    assert item.version is not None
                    self._remember(item.job_id, item.version, answer.update_time)
                    if self.head is not None and item.fields is not None:
                        self.head.wrote(item.job_id, item.fields, answer.update_time)
                    self._count(writes=1)
            case wire.Outcome.LOST:
                self._known.pop(item.job_id, None)
                if item.kind == "insert" or not item.guessed:
                    item.answer = False
                # else the remembered time was stale: the next pass reads the job, decides.
            case wire.Outcome.RETRY:
                item.tries += 1
                if item.tries > _RETRIES:
                    item.answer = False
                    return answer.error()
            case wire.Outcome.ERROR:
                item.answer = False
                return answer.error()
        return None

    def _remember(self, job_id: str, version: Any, update_time: Any) -> None:
        """Keep the latest (version, update time) seen of a job, for its next guarded write."""
        if type(version) is not int or update_time is None:
            return
        known = self._known
        known.pop(job_id, None)
        if len(known) >= _REMEMBERED:
            del known[next(iter(known))]
        known[job_id] = (version, update_time)

    def _count(
        self, *, reads: int = 0, writes: int = 0, deletes: int = 0, requests: int = 0
    ) -> None:
        usage = self.usage
        usage.reads += reads
        usage.writes += writes
        usage.deletes += deletes
        usage.requests += requests
