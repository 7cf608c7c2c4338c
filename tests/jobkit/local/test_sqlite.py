"""The SQLite store: the conformance suite, plus its file, its plans and its many writers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jobkit import documents, errors, instants, jobs, listing
from jobkit.local import sqlite, sqlite_schema
from jobkit.status import Status
from tests.jobkit import conformance, turns_conformance
from tests.jobkit.conformance import T0, at, claim_all, claimed, ids, new, succeeded


@pytest.fixture
def opener(tmp_path: Path) -> conformance.Opener:
    return lambda name: sqlite.SqliteJobStore(tmp_path / f"{name}.db")


class TestSqliteJobStore(conformance.JobStoreConformance, turns_conformance.TurnsConformance):
    pass


class TestSqliteFirstComeFirstServed(turns_conformance.FirstComeConformance):
    @pytest.fixture
    def opener(self, tmp_path: Path) -> conformance.Opener:
        return lambda name: sqlite.SqliteJobStore(tmp_path / f"{name}.db", fair=False)


@contextlib.contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def indexes(path: Path) -> set[str]:
    with raw(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {name for (name,) in rows if not name.startswith("sqlite_")}


# -- the file ------------------------------------------------------------------------


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_wal_and_synchronous_are_applied(tmp_path: Path, synchronous: sqlite.Synchronous) -> None:
    async def main() -> dict[str, Any]:
        async with sqlite.SqliteJobStore(tmp_path / "jobs.db", synchronous=synchronous) as store:
            return await store.pragmas()

    pragmas = asyncio.run(main())
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": {"NORMAL": 1, "FULL": 2}[synchronous],
        "busy_timeout": 5000,
        "wal_autocheckpoint": 0,  # the store's checkpointer thread does it
        "user_version": sqlite_schema.VERSION,
    }
    with raw(tmp_path / "jobs.db") as connection:  # WAL is a property of the file
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    """Commits never checkpoint (`wal_autocheckpoint` is 0): the checkpointer thread copies
    the WAL into the database file while the store is open, not only when it closes."""
    path = tmp_path / "jobs.db"

    async def main() -> int:
        async with sqlite.SqliteJobStore(path) as store:
            empty = path.stat().st_size
            population = [new(n, params={"pad": "x" * 1000}) for n in range(500)]
            assert await store.insert_many(population) == [True] * 500
            deadline = time.monotonic() + 10
            while path.stat().st_size <= empty + 500_000 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return path.stat().st_size - empty

    assert asyncio.run(main()) > 500_000


def optimistic(store: sqlite.SqliteJobStore) -> bool:
    """Whether the store's writer thread will try its next group optimistically."""
    writer = store._writer
    assert writer is not None
    return writer.optimistic


def test_after_a_lost_race_the_writer_applies_the_next_group_exactly(tmp_path: Path) -> None:
    """Lost races come in bursts (workers reading one queue head): after a group with a
    losing write the writer skips the optimistic try, until a group wins whole again."""

    async def main() -> list[bool]:
        async with sqlite.SqliteJobStore(tmp_path / "jobs.db") as store:
            population = [new(n) for n in range(1, 6)]
            await store.insert_many(population)
            one, two, three, four, five = (claimed(job, at(1)) for job in population)
            seen = [optimistic(store)]
            # Writes of many go through the writer thread (a lone write may not: see
            # test_sqlite_lone).
            assert await store.compare_and_set_many([(7, one), (1, two)]) == [False, True]
            seen.append(optimistic(store))
            assert await store.compare_and_set_many([(1, one), (1, three)]) == [True, True]
            seen.append(optimistic(store))
            assert await store.compare_and_set_many([(1, four), (1, five)]) == [True, True]
            seen.append(optimistic(store))
            return seen

    assert asyncio.run(main()) == [True, False, True, True]


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError):
        sqlite.SqliteJobStore(tmp_path / "x.db", synchronous="SOMETIMES")  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigurationError):
        sqlite.SqliteJobStore(":memory:")


def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    async def main() -> None:
        store = await sqlite.SqliteJobStore.open(tmp_path / "jobs.db")
        await store.close()
        await store.close()  # idempotent
        with pytest.raises(errors.JobkitError):
            await store.insert(new(1))
        with pytest.raises(errors.JobkitError):
            await store.get("job-0001")

    asyncio.run(main())


def test_reopening_a_file_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    population = [new(n, created=at(n)) for n in range(20)]

    async def write() -> None:
        async with sqlite.SqliteJobStore(path, synchronous="FULL") as store:
            await conformance.insert_all(store, population)
            assert await store.compare_and_set(1, claimed(population[0], T0))

    async def read() -> list[jobs.Job | None]:
        async with sqlite.SqliteJobStore(path) as store:
            return [await store.get(jobs.id(job)) for job in population]

    asyncio.run(write())
    assert asyncio.run(read()) == [claimed(population[0], T0), *population[1:]]


def test_a_write_waits_out_another_process_lock(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"

    async def main() -> None:
        async with sqlite.SqliteJobStore(path, busy_timeout=0.01) as store:
            with raw(path) as other:
                other.execute("BEGIN IMMEDIATE")  # holds the write lock past busy_timeout
                pending = asyncio.ensure_future(store.insert(new(1)))
                await asyncio.sleep(0.2)
                assert not pending.done()
                other.execute("COMMIT")
                assert await pending  # retried with backoff until the lock was free
            assert await store.get("job-0001") == new(1)

    asyncio.run(main())


# -- migrations ----------------------------------------------------------------------


def test_an_empty_file_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    path.touch()

    async def main() -> None:
        async with sqlite.SqliteJobStore(path) as store:
            assert await store.insert(new(1))

    asyncio.run(main())
    with raw(path) as connection:
        assert sqlite_schema.user_version(connection) == sqlite_schema.VERSION
    assert {"jobs_claim_queue", "jobs_lease", "jobs_user_created"} <= indexes(path)


# The columns before migration 6 (turns), and a job's row as a file of that age holds it.
OLD_COLUMNS = tuple(column for column in sqlite_schema.COLUMNS if column != "turn")
OLD_INSERT = f"INSERT INTO jobs ({', '.join(OLD_COLUMNS)}) VALUES ({','.join('?' * 11)})"


def old_row(job: jobs.Job) -> tuple[Any, ...]:
    row = sqlite_schema.encode(job)
    document = json.loads(row.doc)
    del document["turn"]
    return (*(getattr(row, sqlite_schema.FIELD[c]) for c in OLD_COLUMNS[:-1]), json.dumps(document))


def test_an_older_file_is_migrated_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    old = new(1)
    with raw(path) as connection:
        assert sqlite_schema.migrate(connection, "old", target=1) == 0
        connection.execute(OLD_INSERT, old_row(old))
    assert indexes(path) == set()

    async def main() -> None:
        async with sqlite.SqliteJobStore(path) as store:
            assert await store.get(jobs.id(old)) == old
            assert await store.claimable(T0, None, 5) == [old]

    asyncio.run(main())
    with raw(path) as connection:
        assert sqlite_schema.user_version(connection) == sqlite_schema.VERSION
        assert sqlite_schema.migrate(connection, "new") == sqlite_schema.VERSION  # nothing left


# A completed job's row as version 2 wrote it: the result's place said three ways (the
# stored `resultUrl`, the summary's `resultKey`, the entry's `resultKey`), unset entry
# keys left out.
VERSION_2_DOC = {
    "id": "9f0c2a52-6b9e-4f7e-8d4e-0a1b2c3d4e5f",
    "userId": "alice",
    "type": "pdf-analysis",
    "status": "completed",
    "priority": 50,
    "queue": "default",
    "runAt": "2030-01-01T09:00:00.000000Z",
    "params": {"instructions": "Summarise."},
    "input": {
        "blob": "inputs/9f0c2a52-6b9e-4f7e-8d4e-0a1b2c3d4e5f/document.pdf",
        "filename": "a.pdf",
        "size": 1234,
        "contentType": "application/pdf",
    },
    "result": {
        "resultKey": "results/9f0c2a52-6b9e-4f7e-8d4e-0a1b2c3d4e5f/attempt-1.json",
        "model": "offline-pypdf",
        "pages": 3,
        "bytes": 1234,
    },
    "resultUrl": "file:///data/blobs/results/9f0c2a52-6b9e-4f7e-8d4e-0a1b2c3d4e5f/attempt-1.json",
    "error": None,
    "attempts": 1,
    "maxAttempts": 5,
    "history": [
        {
            "attempt": 1,
            "worker": "host:12:abcdef",
            "startedAt": "2030-01-01T09:00:01.000000Z",
            "endedAt": "2030-01-01T09:00:02.000000Z",
            "outcome": "succeeded",
            "resultKey": "results/9f0c2a52-6b9e-4f7e-8d4e-0a1b2c3d4e5f/attempt-1.json",
        }
    ],
    "progress": {"current": 1, "total": 1, "message": "done"},
    "leaseOwner": None,
    "leaseExpiresAt": None,
    "version": 4,
    "createdAt": "2030-01-01T09:00:00.000000Z",
    "updatedAt": "2030-01-01T09:00:02.000000Z",
    "metadata": {},
    "idempotency": None,
}


def test_a_version_2_row_is_migrated_to_one_place_for_its_result(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    doc = VERSION_2_DOC
    with raw(path) as connection:
        sqlite_schema.migrate(connection, "old", target=2)
        connection.execute(
            OLD_INSERT,
            (doc["id"], "alice", "pdf-analysis", "completed", 50, "default", doc["runAt"],
             doc["createdAt"], None, 4, json.dumps(doc)),
        )  # fmt: skip

    async def main() -> jobs.Job | None:
        async with sqlite.SqliteJobStore(path) as store:
            return await store.get(str(doc["id"]))

    job = asyncio.run(main())
    assert job is not None
    assert dict(jobs.result(job) or {}) == {"model": "offline-pypdf", "pages": 3, "bytes": 1234}
    assert jobs.result_key(job) == f"results/{doc['id']}/attempt-1.json"
    assert jobs.entry_error(jobs.history(job)[0]) is None
    with raw(path) as connection:
        (text,) = connection.execute("SELECT doc FROM jobs").fetchone()
    stored = json.loads(text)
    assert "resultUrl" not in stored
    assert "resultKey" not in stored["result"]
    assert documents.from_document(stored) == job


def test_a_version_5_file_gives_its_pending_jobs_turns_in_each_users_line(
    tmp_path: Path,
) -> None:
    """Migration 6: the jobs waiting when it runs are numbered in each user's line (queue,
    priority) in claim order, so that the backlogs already there are claimed in rounds; the
    others take turn 0, their documents as they were (read as turn 0)."""
    path = tmp_path / "jobs.db"
    backlog = [new(n, user="user-1", created=at(n)) for n in range(4)]
    urgent = [new(10 + n, user="user-1", priority=90, created=at(n)) for n in range(2)]
    theirs = [new(20, user="user-2", created=at(5)), new(21, user="user-2", created=at(9))]
    done = succeeded(claimed(new(30, user="user-2"), T0), T0)
    with raw(path) as connection:
        sqlite_schema.migrate(connection, "old", target=5)
        for job in [*backlog, *urgent, *theirs, done]:
            connection.execute(OLD_INSERT, old_row(job))

    async def main() -> tuple[list[jobs.Job | None], list[str]]:
        async with sqlite.SqliteJobStore(path) as store:
            found = [await store.get(f"job-{n:04d}") for n in (0, 1, 2, 3, 10, 11, 20, 21, 30)]
            return found, ids(await store.claimable(at(60), None, 20))

    found, order = asyncio.run(main())
    assert [jobs.turn(job) for job in found if job is not None] == [0, 1, 2, 3, 0, 1, 0, 1, 0]
    assert found == [
        jobs.with_turn(job, turn)
        for job, turn in zip(
            [*backlog, *urgent, *theirs, done], [0, 1, 2, 3, 0, 1, 0, 1, 0], strict=True
        )
    ]
    assert order == [
        "job-0010", "job-0011",  # priority 90 first
        "job-0000", "job-0020", "job-0001", "job-0021", "job-0002", "job-0003",
    ]  # fmt: skip
    with raw(path) as connection:
        rows = connection.execute("SELECT turn, doc FROM jobs").fetchall()
    assert all(json.loads(doc).get("turn", 0) == turn for turn, doc in rows)
    assert "turn" not in json.loads(next(doc for _, doc in rows if '"completed"' in doc))
    with raw(path) as connection:
        columns = {
            name: [row[2] for row in connection.execute(f"PRAGMA index_info({name})")]
            for name in ("jobs_claim_queue", "jobs_band_served", "jobs_user_active")
        }
    assert columns == {  # no index more than before to file a submission under
        "jobs_claim_queue": ["queue", "priority", "turn", "run_at", "created_at", "id"],
        "jobs_band_served": ["queue", "priority", "turn", "user_id"],
        "jobs_user_active": ["user_id", "queue", "priority", "turn"],
    }
    assert "jobs_user_turn" not in indexes(path)


def test_a_file_from_a_newer_jobkit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with raw(path) as connection:
        connection.execute(f"PRAGMA user_version = {sqlite_schema.VERSION + 1}")
    threads = threading.active_count()

    async def main() -> None:
        async with sqlite.SqliteJobStore(path):
            pass  # pragma: no cover

    with pytest.raises(errors.JobkitError, match="newer than this jobkit knows"):
        asyncio.run(main())
    assert threading.active_count() == threads  # the writer thread is gone


# -- plans -----------------------------------------------------------------------------


def plan(connection: sqlite3.Connection, sql: str, parameters: Any) -> list[str]:
    rows = connection.execute(f"EXPLAIN QUERY PLAN {sql}", parameters).fetchall()
    return [detail for *_, detail in rows]


def assert_indexed(details: list[str], index: str, *, merge: bool = False) -> None:
    """Every table access goes through `index`; only a small merge of heads may sort."""
    reads = [d for d in details if d.startswith(("SCAN jobs", "SEARCH jobs"))]
    assert reads, details
    assert all(f"INDEX {index}" in d for d in reads), details
    assert merge or not any("TEMP B-TREE" in d for d in details), details


def test_every_statement_uses_its_index(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"

    async def fill() -> None:
        async with sqlite.SqliteJobStore(path) as store:
            population = [
                new(n, user=f"user-{n % 7}", queue=conformance.QUEUES[n % 3]) for n in range(300)
            ]
            await conformance.insert_all(store, population)

    asyncio.run(fill())
    now = instants.format(at(1))
    cursor_created = (now, "job-0001")
    with raw(path) as connection:
        connection.execute("ANALYZE")  # statistics must not move a statement off its index
        assert_indexed(
            plan(connection, sqlite_schema.GET, ("job-0001",)), "sqlite_autoindex_jobs_1"
        )
        assert any("(id=?)" in d for d in plan(connection, sqlite_schema.GET, ("job-0001",)))
        pending = plan(connection, sqlite_schema.PENDING_QUEUES, ())
        assert_indexed(pending, "jobs_due_queue")  # a skip-scan: one seek per queue
        assert any("(queue>?)" in d for d in pending), pending
        claim_in = sqlite_schema.claimable_in(["default", "slow"], now, 10)
        assert_indexed(plan(connection, *claim_in), "jobs_claim_queue", merge=True)
        assert all("(queue=?)" in d for d in plan(connection, *claim_in) if "jobs_claim" in d)
        claim_one = plan(connection, *sqlite_schema.claimable_in(["default"], now, 10))
        assert_indexed(claim_one, "jobs_claim_queue")  # no merge, no sort
        assert all("(queue=?)" in d for d in claim_one if "jobs_claim" in d)
        stalled = plan(connection, sqlite_schema.STALLED, (now, 10))
        assert_indexed(stalled, "jobs_lease")
        assert any("lease_expires_at<?" in d for d in stalled)
        wakeup = plan(connection, sqlite_schema.NEXT_WAKEUP, ())
        assert {d for d in wakeup if "INDEX" in d} == {
            "SEARCH jobs USING INDEX jobs_due_queue",  # the skip-scan's first seek
            "SEARCH jobs USING INDEX jobs_due_queue (queue>?)",
            "SEARCH jobs USING INDEX jobs_due_queue (queue=?)",
            "SEARCH jobs USING INDEX jobs_lease",
        }
        wakeup_in = plan(connection, sqlite_schema.next_wakeup_in(["a", "b"]), ["a", "b"])
        assert "SEARCH jobs USING INDEX jobs_due_queue (queue=?)" in wakeup_in
        queries = [
            listing.Query(),
            listing.Query(descending=False, after=cursor_created),
            listing.Query(statuses=frozenset({Status.PENDING}), types=frozenset({"echo"})),
            listing.Query(created_from=at(0), created_to=at(9), after=cursor_created),
            listing.Query(sort="priority", after=(50, now, "job-0001")),
            listing.Query(sort="priority", descending=False, statuses=frozenset({Status.PENDING})),
        ]
        for query in queries:
            index = "jobs_user_priority" if query.sort == "priority" else "jobs_user_created"
            details = plan(connection, *sqlite_schema.list_page("user-1", query))
            assert_indexed(details, index)
            assert all("SEARCH jobs" in d and "user_id=?" in d for d in details), details
            if query.after is not None:
                assert all(") < (" not in d for d in details)
                assert any("id)" in d for d in details), details  # the cursor is a seek


def test_a_malformed_cursor_key_is_refused() -> None:
    with pytest.raises(errors.JobkitError, match="cursor"):
        sqlite_schema.list_page("u", listing.Query(after=("only-one",)))
    with pytest.raises(errors.JobkitError, match="cursor"):
        sqlite_schema.list_page("u", listing.Query(sort="priority", after=("x", "y", "z")))


# -- several stores, threads and processes on one file -------------------------------------


def test_threads_with_their_own_stores_claim_each_job_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    population = [new(n, priority=n % 4) for n in range(200)]

    async def seed() -> None:
        async with sqlite.SqliteJobStore(path) as store:
            await conformance.insert_all(store, population)

    async def claimer(worker: str) -> list[str]:
        async with sqlite.SqliteJobStore(path) as store:
            return await claim_all(store, worker, batch=8, many=worker.endswith("1"))

    asyncio.run(seed())
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda worker: asyncio.run(claimer(worker)), ["t0", "t1", "t2", "t3"])
        )
    assert sorted(key for won in results for key in won) == ids(population)


def _process(path: str, prefix: str, count: int, barrier: Any, out: str) -> None:
    """One worker process: insert its own jobs while the other does, then claim all it can."""

    async def main() -> dict[str, Any]:
        async with sqlite.SqliteJobStore(path) as store:
            barrier.wait()
            mine = [new(n, prefix=prefix) for n in range(count)]
            inserted = await asyncio.gather(*(store.insert(job) for job in mine))
            won = await claim_all(store, prefix, batch=16)
            return {"inserted": sum(inserted), "won": won}

    Path(out).write_text(json.dumps(asyncio.run(main())))


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    seeded = [new(n, prefix="seed") for n in range(200)]

    async def seed() -> None:
        async with sqlite.SqliteJobStore(path) as store:
            await conformance.insert_all(store, seeded)

    asyncio.run(seed())
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    outs = [tmp_path / f"p{i}.json" for i in range(2)]
    processes = [
        context.Process(target=_process, args=(str(path), f"p{i}", 300, barrier, str(outs[i])))
        for i in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    reports = [json.loads(out.read_text()) for out in outs]
    assert [report["inserted"] for report in reports] == [300, 300]
    won = sorted(key for report in reports for key in report["won"])
    expected = sorted([*ids(seeded), *(f"p{i}-{n:04d}" for i in range(2) for n in range(300))])
    assert won == expected  # every job stored and claimed, each exactly once
