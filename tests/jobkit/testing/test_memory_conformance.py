"""The in-memory stores against the conformance suite: the reference must meet its own bar;
the simulator's indexed store (its scheduling reads from heaps, for time that only moves
on) must give and read turns as it does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobkit import jobs, ports, schedule
from jobkit.testing import MemoryJobStore, indexed
from tests.jobkit import conformance, turns_conformance


def opening(make: Callable[[], MemoryJobStore]) -> conformance.Opener:
    stores: dict[str, MemoryJobStore] = {}

    @asynccontextmanager
    async def open_store(name: str) -> AsyncIterator[ports.JobStore]:
        yield stores.setdefault(name, make())

    return open_store


class TestMemoryJobStore(conformance.JobStoreConformance, turns_conformance.TurnsConformance):
    @pytest.fixture
    def opener(self) -> conformance.Opener:
        return opening(MemoryJobStore)


class TestIndexedStore(turns_conformance.TurnsConformance):
    @pytest.fixture
    def opener(self) -> conformance.Opener:
        return opening(indexed.IndexedStore)


@given(conformance.populations(), st.lists(st.integers(0, 2**20), max_size=5))
def test_the_indexed_store_reads_turns_as_the_reference(
    population: list[jobs.Job], renumbered: list[int]
) -> None:
    store = indexed.IndexedStore()
    for job in population:
        assert store.insert_now(job)
    for job, turn in zip(population, renumbered, strict=False):  # a retry by hand's new turn
        moved = jobs.with_turn(job, turn)
        assert store.compare_and_set_now(jobs.version(job), moved)
        population = [moved if jobs.id(j) == jobs.id(job) else j for j in population]
    lines = [
        schedule.Line(user, queue, priority)
        for user in conformance.USERS
        for queue in conformance.QUEUES
        for priority in (0, 50, 100)
    ]
    assert store.turns_now(lines) == schedule.turns(population, lines)
