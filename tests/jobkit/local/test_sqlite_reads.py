"""The SQLite store's reads: `get` remembers decoded jobs, never serving a stale one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jobkit import jobs
from jobkit.local import sqlite
from tests.jobkit.conformance import T0, at, claimed, new, succeeded


def test_an_unchanged_row_is_decoded_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with sqlite.SqliteJobStore(tmp_path / "jobs.db") as store:
            assert await store.insert(new(1))
            first = await store.get(jobs.id(new(1)))
            assert first == new(1)
            assert await store.get(jobs.id(new(1))) is first

    asyncio.run(main())


def test_a_changed_row_is_decoded_afresh(tmp_path: Path) -> None:
    async def main() -> None:
        path = tmp_path / "jobs.db"
        async with (
            sqlite.SqliteJobStore(path) as store,
            sqlite.SqliteJobStore(path) as other,  # another process's writes, say
        ):
            job = new(1)
            assert await store.insert(job)
            before = await store.get(jobs.id(job))
            running = claimed(job, T0)
            assert await store.compare_and_set(jobs.version(job), running)
            assert await store.get(jobs.id(job)) == running
            done = succeeded(running, at(1))
            assert await other.compare_and_set(jobs.version(running), done)
            after = await store.get(jobs.id(job))
            assert after == done
            assert after is not None
            assert before is not None
            assert jobs.version(after) > jobs.version(running) > jobs.version(before)
            assert await store.delete(jobs.id(job), jobs.version(done))
            assert await store.get(jobs.id(job)) is None

    asyncio.run(main())


# Bounded by count, and by the text's size: a store over the size remembers one job at most.
@pytest.mark.parametrize(("count", "chars", "most"), [(3, 1 << 22, 3), (1024, 1, 1)])
def test_the_remembered_jobs_stay_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, chars: int, most: int
) -> None:
    monkeypatch.setattr(sqlite, "_MAX_DECODED", count)
    monkeypatch.setattr(sqlite, "_MAX_DECODED_CHARS", chars)

    async def main() -> None:
        async with sqlite.SqliteJobStore(tmp_path / "jobs.db") as store:
            population = [new(n) for n in range(10)]
            assert all(await store.insert_many(population))
            for _ in range(2):
                for job in population:
                    assert await store.get(jobs.id(job)) == job
                    assert 1 <= len(store._decoded) <= most

    asyncio.run(main())
