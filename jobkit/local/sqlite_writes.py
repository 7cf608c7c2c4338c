"""The SQLite store's writes: a group of queued writes applied in one transaction.

The store's writer thread takes every write queued (`Write`, with its payload: a row, rows,
or a compare-and-set's expected version and row) and hands them to `apply_group` as one
group; each write gets its own answer. Rows are `sqlite_schema.Row`s, addressed by column
name: each statement is written from a list of column names, and its parameters are read
from a row with the same list (`sqlite_schema.getter`), so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import enum
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final, assert_never

from jobkit.local import sqlite_schema as schema
from jobkit.local import sqlite_turns as turns
from jobkit.local.sqlite_schema import COLUMNS, Row


class Write(enum.Enum):
    """What one queued write is; its payload is the row(s) or key it needs."""

    INSERT = "insert"  # Row
    INSERT_MANY = "insert_many"  # list[Row]
    IN_TURN = "in_turn"  # InTurn: submissions, stored in turn
    REPLACE = "replace"  # (expected version, Row)
    REPLACE_MANY = "replace_many"  # list[(expected version, Row)]
    DELETE = "delete"  # (id, expected version)
    PRAGMAS = "pragmas"  # None


Answer = Any  # bool, list[bool], list[int | None] (turns), dict (pragmas), or an exception


PRAGMAS: Final = (
    "journal_mode",
    "synchronous",
    "busy_timeout",
    "wal_autocheckpoint",
    "user_version",
)

# -- the statements of one write ---------------------------------------------------------

# The machine never changes id, userId, type, priority, queue or createdAt, so a compare-and-set
# sets only the other columns (user indexes untouched); the guard on the fixed columns sends a
# write that changes them to REPLACE_ALL. (A retry by hand gives a job a new turn.)
_MUTABLE: Final = ("status", "turn", "run_at", "lease_expires_at", "version", "doc")
_FIXED: Final = ("user_id", "type", "priority", "queue", "created_at")
_ALL_BUT_ID: Final = COLUMNS[1:]
if set(_MUTABLE) | set(_FIXED) != set(_ALL_BUT_ID):
    raise AssertionError("every column but id is either fixed or mutable")


def _update(sets: tuple[str, ...], guards: tuple[str, ...]) -> str:
    """A compare-and-set of one row; parameters: `sets`, the id, `guards`, the version
    expected."""
    return (
        f"UPDATE jobs SET {', '.join(f'{column} = ?' for column in sets)} WHERE id = ?"
        + "".join(f" AND {column} IS ?" for column in guards)
        + " AND version = ?"
    )


REPLACE: Final = _update(_MUTABLE, _FIXED)
REPLACE_ALL: Final = _update(_ALL_BUT_ID, ())
DELETE: Final = "DELETE FROM jobs WHERE id = ? AND version = ?"

_replace_values: Final = schema.getter(*_MUTABLE, "id", *_FIXED)
_replace_all_values: Final = schema.getter(*_ALL_BUT_ID, "id")
_fixed_values: Final = schema.getter(*_FIXED)


def replace_parameters(expected_version: int, row: Row) -> tuple[Any, ...]:
    return (*_replace_values(row), expected_version)


def replace_all_parameters(expected_version: int, row: Row) -> tuple[Any, ...]:
    return (*_replace_all_values(row), expected_version)


# -- a group ---------------------------------------------------------------------------


def apply_group(
    connection: sqlite3.Connection,
    group: Sequence[tuple[Write, Any, Any]],
    *,
    optimistic: bool = True,
) -> list[Answer]:
    """Apply a group in one transaction; a busy error escapes to be retried whole.

    Consecutive inserts, and consecutive compare-and-sets, are applied as one run each:
    a few statements for the whole run rather than one per row. That is less work for
    SQLite, and above all fewer hand-overs of Python's GIL: each statement gives it up
    while SQLite works and must win it back from the event loop's thread, which is busy
    exactly when the queue is.

    A group of such runs is first tried optimistically (`_optimistic`): each run as
    guarded statements that say by their count of changed rows whether every write won,
    with nothing read first. That is the common case, a worker's claims and completions.
    When one write loses (or one fails), the transaction is rolled back and the group
    applied exactly (`_exact`), each write answering for itself. Workers that race for
    the same jobs lose in bursts: a caller that saw a write lose may ask for the exact way
    at once (`optimistic=False`) until a group wins whole again (`all_won`).
    """
    runs = _runs(group)
    cursor = connection.cursor()
    try:
        answers = _optimistic(cursor, runs) if optimistic else None
        return answers if answers is not None else _exact(cursor, runs)
    finally:
        cursor.close()


_Run = tuple[Write | None, list[tuple[Write, Any]]]


def all_won(answers: Sequence[Answer]) -> bool:
    """Whether every write of a group won (an insert or compare-and-set of many: each row;
    a submission in turn: each took a turn)."""
    return all(
        answer is True
        or (type(answer) is list and all(row is True or type(row) is int for row in answer))
        for answer in answers
    )


def _optimistic(cursor: sqlite3.Cursor, runs: list[_Run]) -> list[Answer] | None:
    """Every write of `runs` winning, in one transaction with one statement per run and
    chunk; None, with nothing written, when that is not so or cannot be told this way: a
    write lost or failed, or the group has another sort of write or one job twice in a run.
    Submissions take their turns as their run comes (`_in_turn`): after the runs before it.
    """
    for sort, items in runs:
        if sort is None:
            return None
        ids = _ids(items)
        if len(set(ids)) < len(ids):
            return None
    cursor.execute("BEGIN IMMEDIATE")
    try:
        for sort, items in runs:
            shape = "insert" if sort is Write.INSERT_MANY else "update"
            rows: Sequence[tuple[Any, ...]] = (
                _in_turn(cursor, items)
                if sort is Write.INSERT_MANY
                else [_guarded(expected, row) for expected, row in _flat(items)]
            )
            for sql, parameters in _statements(shape, rows):
                cursor.execute(sql, parameters)
                if cursor.rowcount != len(parameters) // _WIDTH[shape]:
                    cursor.execute("ROLLBACK")
                    return None
        cursor.execute("COMMIT")
    except sqlite3.Error as exc:
        if cursor.connection.in_transaction:
            cursor.connection.rollback()
        if schema.is_busy(exc):
            raise
        return None  # a bad row: the exact way finds it, and fails it alone
    except BaseException:
        if cursor.connection.in_transaction:
            cursor.connection.rollback()
        raise
    return [answer for _, items in runs for answer in _answers(items, [True] * len(_ids(items)))]


def _in_turn(cursor: sqlite3.Cursor, items: list[tuple[Write, Any]]) -> list[Row]:
    """The rows of a run of inserts, each submission's given its turn: `schedule.next_turn`
    of where its line stands in this transaction, each row counted as stored for the next
    (the run's other rows too). Every row is taken to be new: the optimistic way undoes the
    run when one is not."""
    lines = {
        turns.line(r) for kind, payload in items if kind is Write.IN_TURN for r in payload.rows
    }
    if not lines:
        return _flat(items)
    found = {line: turns.read(cursor, line) for line in lines}
    rows: list[Row] = []
    for kind, payload in items:
        if kind is Write.IN_TURN:
            rows += turns.give(found, payload)
            continue
        for row in _flat([(kind, payload)]):
            turns.count(found, row)
            rows.append(row)
    return rows


def _exact(cursor: sqlite3.Cursor, runs: list[_Run]) -> list[Answer]:
    """Apply `runs` in one transaction, each write answering for itself: a compare-and-set
    that loses answers False and one that fails answers its error; the rest go on."""
    cursor.execute("BEGIN IMMEDIATE")
    try:
        answers: list[Answer] = []
        for kind, items in runs:
            if kind is None:
                answers += [_apply_one(cursor, item_kind, payload) for item_kind, payload in items]
            else:
                answers += _apply_run(cursor, kind, items)
        cursor.execute("COMMIT")
    except BaseException:
        if cursor.connection.in_transaction:
            cursor.connection.rollback()
        raise
    return answers


_RUN_OF: Final[dict[Write, Write]] = {
    Write.INSERT: Write.INSERT_MANY,
    Write.INSERT_MANY: Write.INSERT_MANY,
    Write.IN_TURN: Write.INSERT_MANY,
    Write.REPLACE: Write.REPLACE_MANY,
    Write.REPLACE_MANY: Write.REPLACE_MANY,
}


def _runs(group: Sequence[tuple[Write, Any, Any]]) -> list[_Run]:
    """The group cut into runs, in order: consecutive writes of one batchable sort (named
    by its `_MANY` kind), and single others (named None)."""
    runs: list[_Run] = []
    for kind, payload, _ in group:
        sort = _RUN_OF.get(kind)
        if sort is not None and runs and runs[-1][0] is sort:
            runs[-1][1].append((kind, payload))
        else:
            runs.append((sort, [(kind, payload)]))
    return runs


def _flat(items: list[tuple[Write, Any]]) -> list[Any]:
    """The rows (or compare-and-sets) of a run's writes, in order (submissions not yet in turn)."""
    flat: list[Any] = []
    for kind, payload in items:
        if kind is Write.INSERT or kind is Write.REPLACE:
            flat.append(payload)
        elif kind is Write.IN_TURN:
            flat += payload.rows
        else:
            flat += payload
    return flat


def _ids(items: list[tuple[Write, Any]]) -> list[str]:
    """The ids of the jobs a run's writes name, in order."""
    return [entry[1].id if type(entry) is tuple else entry.id for entry in _flat(items)]


def _apply_run(cursor: sqlite3.Cursor, sort: Write, items: list[tuple[Write, Any]]) -> list[Answer]:
    """A run of inserts or compare-and-sets, batched; each item answers in its own shape."""
    flat = _flat(items)
    if len(flat) == 1 or any(kind is Write.IN_TURN for kind, _ in items):
        # One row: its own statement is quicker than a batch's two. Submissions in turn,
        # each in its own statement, which gives the turn where the writes before left it.
        return [_apply_one(cursor, kind, payload) for kind, payload in items]
    decide = _insert_run if sort is Write.INSERT_MANY else _replace_run
    try:
        rows, statements = decide(cursor, flat)
        # One statement undoes itself if it fails; more need a savepoint to undo together.
        with _whole(cursor, "run", len(statements) > 1):
            for sql, parameters in statements:
                cursor.execute(sql, parameters)
    except sqlite3.Error as exc:
        if schema.is_busy(exc) or not cursor.connection.in_transaction:
            raise  # the whole group is lost (or retried)
        return [_apply_one(cursor, kind, payload) for kind, payload in items]
    return _answers(items, rows)


def _answers(items: list[tuple[Write, Any]], rows: list[bool]) -> list[Answer]:
    """Each write's answer in its own shape, from the answers of its run's rows in order:
    one for a write of one row, a list for a write of many."""
    answers: list[Answer] = []
    at = 0
    for kind, payload in items:
        if kind is Write.INSERT or kind is Write.REPLACE:
            answers.append(rows[at])
            at += 1
        elif kind is Write.IN_TURN:
            won = rows[at : at + len(payload.rows)]
            answers.append(
                [turn if ok else None for turn, ok in zip(payload.turns, won, strict=True)]
            )
            at += len(payload.rows)
        else:
            answers.append(rows[at : at + len(payload)])
            at += len(payload)
    return answers


# -- batched statements ------------------------------------------------------------------

_CHUNK: Final = 500  # rows per batched statement: well under SQLite's 32,766 parameters
_EXPECTED: Final = "expected"  # the version a compare-and-set expects: not a column
# Each batched statement's parameters per row, by name: how `_sql` writes the statement and
# how its rows are built (`_guarded`, `_replace_run`).
_LAYOUT: Final[dict[str, tuple[str, ...]]] = {
    "insert": COLUMNS,
    "update": ("id", *_MUTABLE, *_FIXED, _EXPECTED),  # sets _MUTABLE, expects _FIXED
    "update_all": (*COLUMNS, _EXPECTED),  # sets every column but the id
    "current": ("id",),
}
_WIDTH: Final = {shape: len(layout) for shape, layout in _LAYOUT.items()}
_update_row_values: Final = schema.getter(*_LAYOUT["update"][:-1])
_SQL: dict[tuple[str, int], str] = {}  # batched statements by shape and row count


def _sql(shape: str, count: int) -> str:
    """The batched statement `shape` for `count` rows (one text per count, so prepared once).

    The updates read their rows as `(VALUES ...) AS w`, whose columns are `column1`...,
    named here by `_LAYOUT`: a statement that begins with UPDATE counts the rows it
    changes (`rowcount`), which `_optimistic` relies on. Each row names the job's id and
    the version it expects; "update" also expects the fixed columns unchanged (written
    `+jobs.user_id`: not a way in, the key is), and sets only the others.
    """
    found = _SQL.get((shape, count))
    if found is not None:
        return found
    marks = ",".join(["?"] * count)
    row = "(" + ",".join(["?"] * _WIDTH[shape]) + ")"
    if shape == "current":
        columns = ", ".join(("id", "version", *_FIXED))
        sql = f"SELECT json_group_array(json_array({columns})) FROM jobs WHERE id IN ({marks})"
    elif shape == "insert":
        sql = (
            f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES {','.join([row] * count)}"
            " ON CONFLICT (id) DO NOTHING"
        )
    else:
        sets, guards = (_MUTABLE, _FIXED) if shape == "update" else (_ALL_BUT_ID, ())
        column = {name: f"w.column{n}" for n, name in enumerate(_LAYOUT[shape], 1)}
        sql = (
            f"UPDATE jobs SET {', '.join(f'{name} = {column[name]}' for name in sets)}"
            f" FROM (VALUES {','.join([row] * count)}) AS w"
            f" WHERE jobs.id = {column['id']} AND jobs.version = {column[_EXPECTED]}"
            + "".join(f" AND +jobs.{name} IS {column[name]}" for name in guards)
        )
    if len(_SQL) < 4 * _CHUNK:
        _SQL[(shape, count)] = sql
    return sql


def _guarded(expected: int, row: Row) -> tuple[Any, ...]:
    """An "update" row: the compare-and-set of `row` against `expected`, which also expects
    the fixed columns as `row` has them."""
    return (*_update_row_values(row), expected)


def _current(cursor: sqlite3.Cursor, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Each stored job among `ids`: (version, *fixed columns), read in one row per chunk."""
    found: dict[str, tuple[Any, ...]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        (text,) = cursor.execute(_sql("current", len(chunk)), chunk).fetchone()
        for job_id, *rest in json.loads(text):
            found[job_id] = tuple(rest)
    return found


_Statements = list[tuple[str, list[Any]]]


def _insert_run(cursor: sqlite3.Cursor, rows: list[Row]) -> tuple[list[bool], _Statements]:
    """Which rows to insert: those whose id is new (to the store and to the run), True;
    and the statements that insert them."""
    stored = _current(cursor, [row.id for row in rows])
    fresh: dict[str, Row] = {}
    answers = []
    for row in rows:
        new = row.id not in stored and row.id not in fresh
        if new:
            fresh[row.id] = row
        answers.append(new)
    return answers, _statements("insert", list(fresh.values()))


def _replace_run(
    cursor: sqlite3.Cursor, writes: list[tuple[int, Row]]
) -> tuple[list[bool], _Statements]:
    """Compare-and-set each write in order, as `_replace` would one by one: a write wins
    when the job's version (as the run leaves it so far) is the one it expects. Only the
    last winning row of each job is written, against the version stored. A row that keeps
    the job's fixed columns sets only the others, so the user indexes are left alone."""
    stored = _current(cursor, [row.id for _, row in writes])
    versions = {job_id: found[0] for job_id, found in stored.items()}
    final: dict[str, Row] = {}
    answers = []
    for expected, row in writes:
        won = versions.get(row.id) == expected
        if won:
            versions[row.id] = row.version
            final[row.id] = row
        answers.append(won)
    same: list[tuple[Any, ...]] = []
    changed: list[tuple[Any, ...]] = []
    for job_id, row in final.items():
        version, *fixed = stored[job_id]
        if tuple(fixed) == _fixed_values(row):
            same.append(_guarded(version, row))
        else:
            changed.append((*row, version))  # "update_all": the row, then the version
    return answers, _statements("update", same) + _statements("update_all", changed)


def _statements(shape: str, rows: Sequence[tuple[Any, ...]]) -> _Statements:
    """The batched statements `shape` for `rows`, `_CHUNK` rows at most each."""
    statements: _Statements = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        statements.append((_sql(shape, len(chunk)), [value for row in chunk for value in row]))
    return statements


# -- one write at a time -------------------------------------------------------------------


def _apply_one(cursor: sqlite3.Cursor, kind: Write, payload: Any) -> Answer:
    """One write of a group, alone: if it fails, it is undone whole (a write of many rows
    too) and answers with its error; the rest of the group goes on."""
    several = kind in (Write.INSERT_MANY, Write.REPLACE_MANY, Write.IN_TURN)
    try:
        with _whole(cursor, "write", several):
            answer = _perform(cursor, kind, payload)
    except sqlite3.Error as exc:
        if schema.is_busy(exc) or not cursor.connection.in_transaction:
            raise  # the whole group is lost (or retried)
        return exc
    return answer


@contextlib.contextmanager
def _whole(cursor: sqlite3.Cursor, name: str, needed: bool) -> Iterator[None]:
    """When `needed`, the statements inside under savepoint `name`: if one fails, all are
    undone (the transaction goes on) and the error is raised."""
    if not needed:
        yield
        return
    cursor.execute(f"SAVEPOINT {name}")
    try:
        yield
    except sqlite3.Error:
        if cursor.connection.in_transaction:
            cursor.execute(f"ROLLBACK TO {name}")
            cursor.execute(f"RELEASE {name}")
        raise
    cursor.execute(f"RELEASE {name}")


def _perform(cursor: sqlite3.Cursor, kind: Write, payload: Any) -> Answer:
    match kind:
        case Write.INSERT:
            return _insert(cursor, payload)
        case Write.INSERT_MANY:
            return [_insert(cursor, row) for row in payload]
        case Write.IN_TURN:
            return [_insert_in_turn(cursor, row) for row in payload.rows]
        case Write.REPLACE:
            return _replace(cursor, *payload)
        case Write.REPLACE_MANY:
            return [_replace(cursor, version, row) for version, row in payload]
        case Write.DELETE:
            cursor.execute(DELETE, payload)
            return cursor.rowcount == 1
        case Write.PRAGMAS:
            return {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}
        case _:
            assert_never(kind)


def _insert(cursor: sqlite3.Cursor | sqlite3.Connection, row: Row) -> bool:
    return cursor.execute(schema.INSERT, row).rowcount == 1


def _insert_in_turn(cursor: sqlite3.Cursor | sqlite3.Connection, row: Row) -> int | None:
    """Store `row` in turn, in one statement (`sqlite_schema.INSERT_IN_TURN`): the turn it
    took, or None when its id exists."""
    taken = cursor.execute(schema.INSERT_IN_TURN, schema.in_turn_parameters(row)).fetchall()
    return taken[0][0] if taken else None


def _replace(cursor: sqlite3.Cursor | sqlite3.Connection, expected_version: int, row: Row) -> bool:
    if cursor.execute(REPLACE, replace_parameters(expected_version, row)).rowcount == 1:
        return True
    # Lost, or a write that changes a fixed column: only the version may refuse it.
    replaced = cursor.execute(REPLACE_ALL, replace_all_parameters(expected_version, row))
    return replaced.rowcount == 1


# A lone write, outside any group: on a connection in autocommit mode, each statement is
# its own transaction (a compare-and-set's second statement is guarded by the version too).
insert = _insert
insert_in_turn = _insert_in_turn
replace = _replace
