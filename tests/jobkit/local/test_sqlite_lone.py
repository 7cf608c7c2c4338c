"""A lone write on the SQLite store: written at once when the writer thread is idle (at
NORMAL), and otherwise queued, in order, as every write is. It never holds up the event loop
waiting for another process's lock, and its errors are the writer's."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from jobkit import jobs
from jobkit.local import sqlite
from tests.jobkit.conformance import at, claimed, new

BOTH = pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])


@BOTH
def test_a_lone_write_waits_for_another_process_lock_without_blocking_the_loop(
    tmp_path: Path, synchronous: sqlite.Synchronous
) -> None:
    path = tmp_path / "jobs.db"

    async def main() -> None:
        async with sqlite.SqliteJobStore(path, synchronous=synchronous) as store:
            other = sqlite3.connect(path, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
                write = asyncio.ensure_future(store.insert(new(1)))
                ticks = 0
                for _ in range(10):  # the loop goes on meanwhile
                    await asyncio.sleep(0.01)
                    ticks += 1
                assert ticks == 10
                assert not write.done()  # queued for the writer, which waits for the lock
                other.execute("COMMIT")
                assert await write is True
                assert await store.get("job-0001") == new(1)
            finally:
                other.close()

    asyncio.run(main())


@BOTH
def test_a_lone_write_that_fails_raises_the_writers_error(
    tmp_path: Path, synchronous: sqlite.Synchronous
) -> None:
    path = tmp_path / "jobs.db"

    async def main() -> None:
        async with sqlite.SqliteJobStore(path, synchronous=synchronous) as store:
            with sqlite3.connect(path, isolation_level=None) as other:
                other.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.id = 'job-0002'"
                    " BEGIN SELECT RAISE(ABORT, 'refused here'); END"
                )
            other.close()
            with pytest.raises(sqlite3.IntegrityError, match="refused here"):
                await store.insert(new(2))
            assert await store.get("job-0002") is None
            assert await store.insert(new(3)) is True  # the store goes on

    asyncio.run(main())


@BOTH
def test_a_lone_write_comes_after_the_writes_queued_before_it(
    tmp_path: Path, synchronous: sqlite.Synchronous
) -> None:
    async def main() -> None:
        async with sqlite.SqliteJobStore(tmp_path / "jobs.db", synchronous=synchronous) as store:
            batch = [new(n) for n in range(1, 301)]
            first = asyncio.ensure_future(store.insert_many(batch))
            await asyncio.sleep(0)  # queued, not yet answered
            assert await store.insert(new(300, priority=99)) is False  # the batch's came first
            assert await first == [True] * 300
            taken = [(1, claimed(new(1), at(1))), (1, claimed(new(2), at(1)))]
            late = asyncio.ensure_future(store.compare_and_set_many(taken))  # the writer's
            await asyncio.sleep(0)
            assert await store.compare_and_set(1, claimed(new(1), at(2))) is False
            assert await late == [True, True]
            stored = await store.get("job-0001")
            assert stored is not None
            assert jobs.version(stored) == 2
            assert await store.get("job-0300") == new(300)

    asyncio.run(main())


def test_at_full_every_write_goes_through_the_writer(tmp_path: Path) -> None:
    """At FULL a commit syncs the WAL: done on the event loop, it would hold up everything
    else for an fsync. There is no direct connection at FULL, at NORMAL there is."""

    async def main() -> None:
        async with sqlite.SqliteJobStore(tmp_path / "full.db", synchronous="FULL") as store:
            assert store._direct is None
        async with sqlite.SqliteJobStore(tmp_path / "normal.db") as store:
            assert store._direct is not None

    asyncio.run(main())
