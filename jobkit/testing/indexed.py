"""The simulator's store: `MemoryJobStore` answering its scheduling reads from heaps, not scans.

The answers are the same (a test runs both stores and compares reports); a scan per claim,
and per submission for its turn, would make a 10,000-job run quadratic. Entries are
dropped lazily, once the job they name has moved on: claims and stalls are filed by (job
id, version); turns by (turn, job id), still good while the job holds that turn in the
right status (a job's turn changes only when its owner retries it by hand): a band's
claimed jobs, a user's live ones, and a user's claimed ones by turn.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from datetime import datetime
from typing import Any

from jobkit import jobs, schedule
from jobkit.status import ACTIVE, PENDING, PROCESSING
from jobkit.testing import memory

Band = tuple[str, int]  # (queue, priority)


class IndexedStore(memory.MemoryJobStore):
    """`MemoryJobStore` with its claims, stalls, wake-ups and turns read from heaps."""

    def __init__(self) -> None:
        super().__init__()
        self._future: list[tuple[datetime, str, int]] = []  # pending, by runAt
        self._due: list[tuple[tuple[Any, ...], int]] = []  # pending and due, in claim order
        self._leases: list[tuple[datetime, str, int]] = []  # processing, by lease expiry
        self._served: dict[Band, list[tuple[int, str]]] = {}  # claimed: (-turn, id)
        self._lasts: dict[schedule.Line, list[tuple[int, str]]] = {}  # pending or processing
        self._claimed_at: dict[tuple[schedule.Line, int], set[str]] = {}  # a user's, by turn

    def _index(self, job: jobs.Job) -> None:
        state, key = jobs.status_or_none(job), (jobs.id(job), jobs.version(job))
        if state == PENDING:
            heapq.heappush(self._future, (jobs.run_at(job), *key))
        elif state == PROCESSING and (expires := jobs.lease_expires_at(job)) is not None:
            heapq.heappush(self._leases, (expires, *key))
        turn = (-jobs.turn(job), jobs.id(job))
        line = schedule.line_of(job)
        if state in schedule.SERVED:
            band = (jobs.queue(job), jobs.priority(job))
            heapq.heappush(self._served.setdefault(band, []), turn)
            self._claimed_at.setdefault((line, jobs.turn(job)), set()).add(jobs.id(job))
        if state in ACTIVE:
            heapq.heappush(self._lasts.setdefault(line, []), turn)

    def _current(self, job_id: str, version: int) -> jobs.Job | None:
        job = self.get_now(job_id)
        return job if job is not None and jobs.version(job) == version else None

    def insert_now(self, job: jobs.Job) -> bool:
        done = super().insert_now(job)
        if done:
            self._index(job)
        return done

    def compare_and_set_now(self, expected_version: int, job: jobs.Job) -> bool:
        done = super().compare_and_set_now(expected_version, job)
        if done:
            self._index(job)
        return done

    def claimable_now(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> list[jobs.Job]:
        if queues is not None:
            return super().claimable_now(now, queues, limit)
        while self._future and self._future[0][0] <= now:
            _, job_id, version = heapq.heappop(self._future)
            if (job := self._current(job_id, version)) is not None:
                heapq.heappush(self._due, (schedule.claim_key(job), version))
        found: list[jobs.Job] = []
        kept: list[tuple[tuple[Any, ...], int]] = []
        while self._due and len(found) < limit:
            entry = heapq.heappop(self._due)
            if (job := self._current(entry[0][-1], entry[1])) is not None:
                found.append(job)
                kept.append(entry)
        for entry in kept:
            heapq.heappush(self._due, entry)
        return found

    def stalled_now(self, now: datetime, limit: int) -> list[jobs.Job]:
        found: list[jobs.Job] = []
        kept: list[tuple[datetime, str, int]] = []
        while self._leases and self._leases[0][0] <= now and len(found) < limit:
            entry = heapq.heappop(self._leases)
            if (job := self._current(entry[1], entry[2])) is not None:
                found.append(job)
                kept.append(entry)
        for entry in kept:
            heapq.heappush(self._leases, entry)
        return found

    def next_wakeup_now(self) -> datetime | None:
        """What `schedule.next_wakeup` answers for every queue: the earliest pending runAt
        or lease expiry."""
        while self._future and self._current(self._future[0][1], self._future[0][2]) is None:
            heapq.heappop(self._future)
        while self._leases and self._current(self._leases[0][1], self._leases[0][2]) is None:
            heapq.heappop(self._leases)
        self._due = [entry for entry in self._due if self._current(entry[0][-1], entry[1])]
        heapq.heapify(self._due)
        times = [jobs.run_at(self._jobs[entry[0][-1]]) for entry in self._due]
        times += [heap[0][0] for heap in (self._future, self._leases) if heap]
        return min(times, default=None)

    def turns_now(self, lines: Collection[schedule.Line]) -> dict[schedule.Line, schedule.Turns]:
        found = {}
        for line in lines:
            served = self._top(self._served.get((line.queue, line.priority)), _served)
            held = self._top(self._lasts.get(line), _live)
            if served is not None and self._holds_at(line, served):
                held = served if held is None else max(held, served)
            found[line] = schedule.standing(served, held)
        return found

    def _holds_at(self, line: schedule.Line, turn: int) -> bool:
        """Whether the user holds a claimed job at `turn` in the line's band."""
        ids = self._claimed_at.get((line, turn), set())
        for job_id in list(ids):
            job = self.get_now(job_id)
            if job is not None and jobs.turn(job) == turn and _served(jobs.status_or_none(job)):
                return True
            ids.discard(job_id)
        return False

    def _top(self, heap: list[tuple[int, str]] | None, holds: Any) -> int | None:
        """The largest turn in `heap` still held by its job in a status `holds` accepts."""
        while heap:
            turn, job_id = heap[0]
            job = self.get_now(job_id)
            if job is not None and jobs.turn(job) == -turn and holds(jobs.status_or_none(job)):
                return -turn
            heapq.heappop(heap)
        return None


def _served(state: object) -> bool:
    return state in schedule.SERVED


def _live(state: object) -> bool:
    return state in ACTIVE
