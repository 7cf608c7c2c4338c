"""The Firestore doorbell (`ports.Doorbell`) for pull workers: a snapshot listener on the head
of the pending queue.

Theory of operation
-------------------
While a worker of this process listens, one listener watches the query "the pending job
due first" (`status == "pending"`, in the workers' queues, ordered by `runAt`, limit 1:
the store's own `next_due` query, served by the same index). Any change of that head —
a job submitted to an empty queue or due before the head, the head claimed, cancelled or
moved — reaches the listener from whichever instance wrote it, and rings this process's
listeners (the idle workers), which look at the store. A ring made in this process (a
submission through its API) calls them back at once, without waiting for the listener.

The listener also keeps `head`, the due time of the first pending job as last heard, which
the store reads instead of Firestore while it is live (`FirestoreJobStore.head`): a claim
query when the head is not due finds nothing, so it is not sent, and an idle worker's
`next_wakeup` takes the head's due time from it (only the lease-expiry query is sent).
This process's own writes of pending jobs are folded in at once (`Head.wrote`), until a
snapshot read after them confirms them, so a submission followed by a look in the same
process never misses its own job.

What it costs: the listener's first snapshot (one read), then one read each time a job
enters the head and one each time it leaves it by changing (claimed, cancelled): about two
reads per job that passes through an idle queue's head, per listening instance, and
nothing for the jobs behind the head while the queue is busy. In exchange, an idle worker
sends no claim query and no due-time query on each wake-up and each poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Final

from google.cloud import firestore

from jobkit import instants
from jobkit.status import PENDING
from jobkit_gcp import firestore_queries as queries
from jobkit_gcp.firestore_listen import Listening, Snapshot

log = logging.getLogger("jobkit.gcp.doorbell")

_UNCONFIRMED: Final = 1024  # own writes waiting for a snapshot; past it the head is unknown


class Head:
    """The due time of the first pending job in `queues` (None: all queues), as the
    listeners last heard it, with this process's own pending writes folded in.

    `first()` answers (known, due): known False while any listener has no current
    snapshot; due None when no job is pending.
    """

    def __init__(self, queues: frozenset[str] | None, parts: int) -> None:
        self.queues = queues
        self._heads: list[str | None] = [None] * parts
        self._read: list[Any] = [None] * parts  # each part's last read time
        self._live = [False] * parts
        self._own: dict[str, tuple[str, Any]] = {}  # job id: (runAt, update time)
        self._overflow = False

    def covers(self, queues: Collection[str] | None) -> bool:
        """Whether this head is the head of exactly these queues."""
        return (frozenset(queues) if queues is not None else None) == self.queues

    def first(self) -> tuple[bool, str | None]:
        if not all(self._live) or self._overflow:
            return False, None
        times = [due for due in self._heads if due is not None]
        times += [due for due, _ in self._own.values()]
        return True, min(times) if times else None

    def heard(self, part: int, due: str | None, read_time: Any) -> None:
        self._heads[part] = due
        self._read[part] = read_time
        self._live[part] = True
        if read_time is not None and all(self._live):
            oldest = min(self._read)
            self._own = {
                job_id: (due, written)
                for job_id, (due, written) in self._own.items()
                if written is None or oldest is None or written > oldest
            }
            if not self._own:
                self._overflow = False

    def lost(self, part: int) -> None:
        self._live[part] = False

    def wrote(self, job_id: str, fields: dict[str, Any], update_time: Any) -> None:
        """This process wrote `fields` at `update_time`: a pending job in these queues is
        due by its `runAt` at the latest, until a snapshot read after the write says more."""
        if fields.get("status") != PENDING.value:
            return
        if self.queues is not None and fields.get("queue") not in self.queues:
            return
        due = fields.get("runAt")
        if not isinstance(due, str):
            return
        if len(self._own) >= _UNCONFIRMED:
            self._overflow = True
            return
        self._own[job_id] = (due, update_time)


class FirestoreDoorbell:
    """`ports.Doorbell` on a Firestore listener; one per process, for workers taking `queues`
    (None: every queue). The listener runs while at least one listener of this process is
    open. `client` is a sync client (its listeners run on their own threads)."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        collection: str = "jobs",
        queues: Collection[str] | None = None,
    ) -> None:
        self.client = client
        self.collection = collection
        self.queues = frozenset(queues) if queues is not None else None
        groups: list[list[str] | None] = (
            [None] if self.queues is None else list(queries.chunks(self.queues)) or [None]
        )
        self._groups = groups
        self.head = Head(self.queues, len(groups))
        self._listeners: dict[int, _Listener] = {}
        self._listening: list[Listening] = []
        self._starting: asyncio.Lock | None = None
        self.snapshots = 0  # snapshots heard (one read each: a head holds one job)

    def ring(self, at: datetime | None = None) -> None:
        """Call this process's listeners back; other instances hear the write itself."""
        for listener in list(self._listeners.values()):
            listener.on_ring()

    async def listen(self, on_ring: Callable[[], None]) -> _Listener:
        listener = _Listener(self, on_ring)
        self._listeners[id(listener)] = listener
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if not self._listening:
                try:
                    self._listening = [
                        self._open(part, group) for part, group in enumerate(self._groups)
                    ]
                except Exception as exc:
                    del self._listeners[id(listener)]
                    raise OSError(f"cannot listen to Firestore: {exc}") from exc
        return listener

    def _open(self, part: int, group: list[str] | None) -> Listening:
        shape = queries.next_due(group)
        query = queries.build_listened(self.client.collection(self.collection), shape)

        def heard(documents: Sequence[Snapshot], read_time: Any) -> None:
            self.snapshots += 1
            due = documents[0].get("runAt") if documents else None
            self.head.heard(part, due if isinstance(due, str) else None, read_time)
            self.ring()

        return Listening(
            query.on_snapshot,
            heard,
            name=f"head:{','.join(group) if group else '*'}",
            on_lost=lambda: self.head.lost(part),
        )

    async def _last_left(self) -> None:
        listening, self._listening = self._listening, []
        for part, item in enumerate(listening):
            self.head.lost(part)
            await item.close()

    def close(self) -> None:
        """Stop the listener if listeners were left open (`Runtime` calls this last)."""
        self._listeners.clear()
        listening, self._listening = self._listening, []
        for part, item in enumerate(listening):
            self.head.lost(part)
            with contextlib.suppress(RuntimeError):  # its loop is gone: its thread is daemonic
                asyncio.get_running_loop().create_task(item.close())


class _Listener:
    def __init__(self, doorbell: FirestoreDoorbell, on_ring: Callable[[], None]) -> None:
        self._doorbell = doorbell
        self.on_ring = on_ring

    async def close(self) -> None:
        doorbell = self._doorbell
        if doorbell._listeners.pop(id(self), None) is not None and not doorbell._listeners:
            await doorbell._last_left()


def due_at(now: datetime) -> str:
    """`now` as the head's due times are written (text order is time order)."""
    return instants.format(now)
