"""The writer's group commit, on a real file: runs of inserts and compare-and-sets are applied
as a few batched statements, with the answers, the order and the failures of one write at a
time."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobkit import jobs
from jobkit.local import sqlite_schema as schema
from jobkit.local import sqlite_writes
from jobkit.local.sqlite_writes import Write
from tests.jobkit.conformance import at, claimed, new, succeeded


@contextlib.contextmanager
def database(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "jobs.db", isolation_level=None)
    try:
        schema.configure(connection, "NORMAL")
        schema.migrate(connection, "jobs.db")
        yield connection
    finally:
        connection.close()


def apply(connection: sqlite3.Connection, *writes: tuple[Write, Any]) -> list[Any]:
    return sqlite_writes.apply_group(
        connection, [(kind, payload, None) for kind, payload in writes]
    )


def stored(connection: sqlite3.Connection, job_id: str) -> tuple[Any, ...] | None:
    found: tuple[Any, ...] | None = connection.execute(
        f"SELECT {', '.join(schema.COLUMNS)} FROM jobs WHERE id = ?", (job_id,)
    ).fetchone()
    return found


def row(job: jobs.Job) -> schema.Row:
    return schema.encode(job)


def cas(job: jobs.Job, expected: int) -> tuple[int, schema.Row]:
    return (expected, row(job))


def test_a_run_of_compare_and_sets_is_applied_in_order(tmp_path: Path) -> None:
    first, other = new(1), new(2)
    taken = claimed(first, at(1))  # version 2
    done = succeeded(taken, at(2))  # version 3
    stale = claimed(first, at(1), worker="late")  # also version 2, from version 1
    with database(tmp_path) as connection:
        assert apply(connection, (Write.INSERT_MANY, [row(first), row(other)])) == [[True, True]]
        answers = apply(
            connection,
            (Write.REPLACE, cas(taken, 1)),
            (Write.REPLACE_MANY, [cas(stale, 1), cas(done, 2), cas(claimed(other, at(1)), 1)]),
            (Write.REPLACE, cas(taken, 1)),  # the job moved on: refused
        )
        assert answers == [True, [False, True, True], False]
        assert stored(connection, jobs.id(first)) == row(done)
        assert stored(connection, jobs.id(other)) == row(claimed(other, at(1)))


def test_a_write_that_changes_a_fixed_column_is_written_whole(tmp_path: Path) -> None:
    job = new(1, priority=10)
    moved = jobs.Job({**dict(claimed(job, at(1))), "priority": 90, "queue": "fast"})
    with database(tmp_path) as connection:
        apply(connection, (Write.INSERT, row(job)))
        same = claimed(new(2), at(1))
        apply(connection, (Write.INSERT, row(new(2))))
        assert apply(connection, (Write.REPLACE_MANY, [cas(moved, 1), cas(same, 1)])) == [
            [True, True]
        ]
        assert stored(connection, jobs.id(job)) == row(moved)
        assert stored(connection, jobs.id(same)) == row(same)


def test_a_run_of_inserts_keeps_the_first_of_each_id(tmp_path: Path) -> None:
    there, fresh = new(1), new(2)
    twin = new(2, priority=99)
    with database(tmp_path) as connection:
        apply(connection, (Write.INSERT, row(there)))
        answers = apply(
            connection,
            (Write.INSERT_MANY, [row(fresh), row(there)]),
            (Write.INSERT, row(twin)),
        )
        assert answers == [[True, False], False]
        assert stored(connection, jobs.id(fresh)) == row(fresh)
        assert stored(connection, jobs.id(there)) == row(there)


def test_writes_of_different_kinds_keep_their_order(tmp_path: Path) -> None:
    job = new(1)
    with database(tmp_path) as connection:
        answers = apply(
            connection,
            (Write.REPLACE, cas(claimed(job, at(1)), 1)),  # before the insert: nothing to set
            (Write.INSERT, row(job)),
            (Write.REPLACE, cas(claimed(job, at(2)), 1)),
            (Write.DELETE, (jobs.id(job), 1)),  # the version is 2 by now
            (Write.INSERT, row(job)),
        )
        assert answers == [False, True, True, False, False]
        assert stored(connection, jobs.id(job)) == row(claimed(job, at(2)))


def test_a_bad_write_fails_alone_and_whole(tmp_path: Path) -> None:
    good, also, next_ = new(1), new(2), new(4)
    bad = row(new(3))._replace(user_id=None)  # type: ignore[arg-type]  # NOT NULL
    with database(tmp_path) as connection:
        answers = apply(
            connection,
            (Write.INSERT_MANY, [row(good), bad]),
            (Write.INSERT, row(also)),
            (Write.INSERT, bad),
            (Write.INSERT_MANY, [row(next_)]),
        )
        assert isinstance(answers[0], sqlite3.IntegrityError)
        assert isinstance(answers[2], sqlite3.IntegrityError)
        assert answers[1] is True
        assert answers[3] == [True]
        assert stored(connection, jobs.id(good)) is None  # its write failed: undone whole
        assert stored(connection, jobs.id(also)) == row(also)
        assert stored(connection, jobs.id(next_)) == row(next_)
        assert stored(connection, "job-0003") is None
        assert not connection.in_transaction


@pytest.mark.parametrize("count", [1, 499, 500, 501, 1234])
def test_runs_longer_than_one_statement_are_applied_whole(tmp_path: Path, count: int) -> None:
    population = [new(n, created=at(n % 60)) for n in range(count)]
    with database(tmp_path) as connection:
        assert apply(connection, (Write.INSERT_MANY, [row(job) for job in population])) == [
            [True] * count
        ]
        taken = [claimed(job, at(61)) for job in population]
        writes = [cas(job, 1) for job in taken]
        writes[-1] = cas(taken[-1], 7)  # one stale write among them
        answers = apply(connection, (Write.REPLACE_MANY, writes))
        assert answers == [[True] * (count - 1) + [False]]
        (total,) = connection.execute(
            "SELECT count(*) FROM jobs WHERE status = 'processing'"
        ).fetchone()
        assert total == count - 1
        assert stored(connection, jobs.id(population[-1])) == row(population[-1])
        if count > 1:
            assert stored(connection, jobs.id(taken[0])) == row(taken[0])


def test_batched_writes_find_jobs_by_their_key(tmp_path: Path) -> None:
    with database(tmp_path) as connection:
        for shape, width in (("update", 13), ("update_all", 13), ("current", 1)):
            details = [
                detail
                for *_, detail in connection.execute(
                    f"EXPLAIN QUERY PLAN {sqlite_writes._sql(shape, 3)}", [None] * (3 * width)
                )
            ]
            assert any("sqlite_autoindex_jobs_1 (id=?)" in d for d in details), details
            assert not any(d.startswith("SCAN jobs") for d in details), details


def traced(connection: sqlite3.Connection) -> list[str]:
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    return statements


def test_a_group_whose_writes_all_win_reads_nothing_first(tmp_path: Path) -> None:
    population = [new(n) for n in range(4)]
    with database(tmp_path) as connection:
        statements = traced(connection)
        assert apply(
            connection,
            (Write.INSERT_MANY, [row(job) for job in population[:3]]),
            (Write.INSERT, row(population[3])),
        ) == [[True] * 3, True]
        taken = [claimed(job, at(1)) for job in population]
        answers = apply(
            connection,
            (Write.REPLACE_MANY, [cas(job, 1) for job in taken[:2]]),
            (Write.REPLACE, cas(taken[2], 1)),
            (Write.REPLACE_MANY, [cas(taken[3], 1)]),
        )
        assert answers == [[True, True], True, [True]]
        assert not any("json_group_array" in sql for sql in statements), statements
        assert [sql.split()[0] for sql in statements] == [
            *("BEGIN", "INSERT", "COMMIT"),
            *("BEGIN", "UPDATE", "COMMIT"),
        ]
        assert [stored(connection, jobs.id(job)) for job in taken] == [row(j) for j in taken]


def test_a_group_with_a_losing_write_is_undone_and_applied_write_by_write(
    tmp_path: Path,
) -> None:
    first, second = new(1), new(2)
    with database(tmp_path) as connection:
        apply(connection, (Write.INSERT_MANY, [row(first), row(second)]))
        statements = traced(connection)
        won, lost = claimed(first, at(1)), claimed(second, at(1))
        answers = apply(connection, (Write.REPLACE_MANY, [cas(won, 1), cas(lost, 5)]))
        assert answers == [[True, False]]
        assert [sql.split()[0] for sql in statements][:4] == [
            "BEGIN",
            "UPDATE",
            "ROLLBACK",
            "BEGIN",
        ]
        assert stored(connection, jobs.id(won)) == row(won)
        assert stored(connection, jobs.id(second)) == row(second)


def test_a_group_can_be_applied_exactly_at_once(tmp_path: Path) -> None:
    population = [new(1), new(2)]
    with database(tmp_path) as connection:
        apply(connection, (Write.INSERT_MANY, [row(job) for job in population]))
        statements = traced(connection)
        group = [(Write.REPLACE_MANY, [cas(claimed(job, at(1)), 1) for job in population], None)]
        assert sqlite_writes.apply_group(connection, group, optimistic=False) == [[True, True]]
        assert any("json_group_array" in sql for sql in statements)
        assert "ROLLBACK" not in [sql.split()[0] for sql in statements]


def test_all_won_reads_each_answer_in_its_shape() -> None:
    assert sqlite_writes.all_won([True, [True, True], []])
    assert not sqlite_writes.all_won([True, [True, False]])
    assert not sqlite_writes.all_won([False])
    assert not sqlite_writes.all_won([sqlite3.IntegrityError("bad")])
    assert not sqlite_writes.all_won([{"journal_mode": "wal"}])
