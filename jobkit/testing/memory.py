"""The in-memory `JobStore`: the reference semantics every other store is tested against."""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from jobkit import jobs, listing, schedule
from jobkit.status import PENDING, PROCESSING

ACTIVE = frozenset({PENDING, PROCESSING})


class MemoryJobStore:
    """A dict of immutable jobs. Each method is atomic (no await inside), like one transaction.

    The synchronous `*_now` methods are what the simulator calls; the async
    methods implement the `ports.JobStore` port on top of them.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, jobs.Job] = {}
        self.writes = 0

    # -- synchronous core ---------------------------------------------------

    def insert_now(self, job: jobs.Job) -> bool:
        if jobs.id(job) in self._jobs:
            return False
        self._jobs[jobs.id(job)] = job
        self.writes += 1
        return True

    def insert_in_turn_now(self, batch: Sequence[jobs.Job]) -> list[int | None]:
        """`insert_in_turn`: the jobs whose ids are new take their turns, in order."""
        fresh: dict[str, jobs.Job] = {}
        for job in batch:
            if jobs.id(job) not in self._jobs:
                fresh.setdefault(jobs.id(job), job)
        kept = list(fresh.values())
        found = self.turns_now({schedule.line_of(job) for job in kept})
        taken = dict(zip(fresh, schedule.take_turns(found, kept), strict=True))
        answers: list[int | None] = []
        for job in batch:
            turn = taken.pop(jobs.id(job), None)
            if turn is not None:
                self.insert_now(jobs.with_turn(job, turn))
            answers.append(turn)
        return answers

    def turns_now(self, lines: Collection[schedule.Line]) -> dict[schedule.Line, schedule.Turns]:
        return schedule.turns(self._jobs.values(), lines)

    def get_now(self, job_id: str) -> jobs.Job | None:
        return self._jobs.get(job_id)

    def compare_and_set_now(self, expected_version: int, job: jobs.Job) -> bool:
        current = self._jobs.get(jobs.id(job))
        if current is None or jobs.version(current) != expected_version:
            return False
        self._jobs[jobs.id(job)] = job
        self.writes += 1
        return True

    def delete_now(self, job_id: str, expected_version: int) -> bool:
        current = self._jobs.get(job_id)
        if current is None or jobs.version(current) != expected_version:
            return False
        del self._jobs[job_id]
        self.writes += 1
        return True

    def claimable_now(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> list[jobs.Job]:
        return schedule.claimable(self._jobs.values(), now, queues, limit)

    def stalled_now(self, now: datetime, limit: int) -> list[jobs.Job]:
        return schedule.stalled(self._jobs.values(), now, limit)

    def all(self) -> list[jobs.Job]:
        return list(self._jobs.values())

    # -- the port -------------------------------------------------------------

    async def insert(self, job: jobs.Job) -> bool:
        return self.insert_now(job)

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]:
        return [self.insert_now(job) for job in batch]

    async def insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        return self.insert_in_turn_now(batch)

    async def turns(
        self, lines: Collection[schedule.Line]
    ) -> Mapping[schedule.Line, schedule.Turns]:
        return self.turns_now(lines)

    async def get(self, job_id: str) -> jobs.Job | None:
        return self.get_now(job_id)

    async def list(self, user_id: str, query: listing.Query) -> listing.Page:
        mine = (job for job in self._jobs.values() if jobs.user_id(job) == user_id)
        return listing.page(mine, query)

    async def count_active(self, user_id: str, limit: int) -> int:
        return self.count_active_now(user_id, limit)

    def count_active_now(self, user_id: str, limit: int) -> int:
        active = (
            job
            for job in self._jobs.values()
            if jobs.user_id(job) == user_id and jobs.status(job) in ACTIVE
        )
        return sum(1 for _ in itertools.islice(active, limit))

    async def claimable(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> Sequence[jobs.Job]:
        return self.claimable_now(now, queues, limit)

    async def count_due(self, now: datetime, queues: Collection[str] | None, limit: int) -> int:
        return schedule.count_due(self._jobs.values(), now, queues, limit)

    async def stalled(self, now: datetime, limit: int) -> Sequence[jobs.Job]:
        return self.stalled_now(now, limit)

    async def next_wakeup(self, queues: Collection[str] | None) -> datetime | None:
        return schedule.next_wakeup(self._jobs.values(), queues)

    async def counts(self, now: datetime, queues: Collection[str]) -> schedule.Counts:
        return schedule.counts(self._jobs.values(), now, queues)

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        return self.compare_and_set_now(expected_version, job)

    async def compare_and_set_many(
        self, writes: Sequence[tuple[int, jobs.Job]]
    ) -> builtins.list[bool]:
        return [self.compare_and_set_now(version, job) for version, job in writes]

    async def delete(self, job_id: str, expected_version: int) -> bool:
        return self.delete_now(job_id, expected_version)
