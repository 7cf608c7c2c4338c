"""The SQLite job table: its migrations, its rows, and every statement the store runs.

One row per job: the columns the store filters and sorts on, copied from the
job, and the whole job as its document's compact JSON text (`records.to_json`), which
is what reads return. Instants are `instants.format` text, fixed width, so text
order is time order and `listing.sort_key` tuples compare the same in SQL.

The scheduling indexes are partial (`WHERE status = ...`): they hold only the
pending or processing jobs, so finished jobs cost them nothing. Statements name
their index (`INDEXED BY`): the plan cannot drift with the planner's statistics,
and a missing index is an error at prepare time rather than a silent full scan.
"""

from __future__ import annotations

import contextlib
import enum
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final, assert_never

from jobkit import errors, instants, jobs, listing, records

# Each step moves the file from version n to n + 1 (`PRAGMA user_version`).
# Append only: a shipped step is never edited, since files in the field ran it.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: the table
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY NOT NULL,
            user_id TEXT NOT NULL,
            type TEXT NOT NULL,
            status TEXT,
            priority INTEGER NOT NULL,
            queue TEXT NOT NULL,
            run_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            lease_expires_at TEXT,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL
        )""",
    ),
    (  # 2: a user's listings, claim order, due times and lease expiries
        "CREATE INDEX jobs_user_created ON jobs (user_id, created_at, id)",
        "CREATE INDEX jobs_user_priority ON jobs (user_id, priority, created_at, id)",
        "CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, created_at, id)"
        " WHERE status = 'pending'",
        "CREATE INDEX jobs_claim_queue ON jobs (queue, priority DESC, run_at, created_at, id)"
        " WHERE status = 'pending'",
        "CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 'pending'",
        "CREATE INDEX jobs_due_queue ON jobs (queue, run_at) WHERE status = 'pending'",
        "CREATE INDEX jobs_lease ON jobs (lease_expires_at, id) WHERE status = 'processing'",
    ),
    (  # 3: one fact, one field: a result's place is its succeeded history entry's resultKey
        "UPDATE jobs SET doc = json_remove(doc, '$.resultUrl', '$.result.resultKey')"
        " WHERE json_type(doc, '$.resultUrl') IS NOT NULL"
        " OR json_type(doc, '$.result.resultKey') IS NOT NULL",
    ),
    (  # 4: a user's unfinished jobs, counted for quotas
        "CREATE INDEX jobs_user_active ON jobs (user_id) WHERE status IN ('pending', 'processing')",
    ),
)
VERSION: Final = len(MIGRATIONS)


def user_version(connection: sqlite3.Connection) -> int:
    found: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return found


def migrate(connection: sqlite3.Connection, name: str, target: int = VERSION) -> int:
    """Bring the file up to `target` in one transaction; returns the version found.

    `connection` must be in autocommit mode (`isolation_level=None`). Several
    processes may open one file at once: `BEGIN IMMEDIATE` lets one migrate
    while the others wait, then find nothing left to do.
    """
    found = user_version(connection)
    if found > VERSION:
        raise errors.JobkitError(
            f"{name} has job table version {found}, newer than this jobkit knows ({VERSION});"
            " upgrade jobkit to open it"
        )
    if found >= target:
        return found
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = user_version(connection)  # another process may have migrated meanwhile
        for step in MIGRATIONS[found:target]:
            for statement in step:
                connection.execute(statement)
        if found < target:
            connection.execute(f"PRAGMA user_version = {int(target)}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return found


# -- writes ------------------------------------------------------------------------

COLUMNS: Final = (
    "id, user_id, type, status, priority, queue, run_at, created_at, lease_expires_at, version, doc"
)
INSERT: Final = (
    f"INSERT INTO jobs ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING"
)

# The machine never changes id, userId, type, priority, queue or createdAt, so a
# compare-and-set sets only the other columns and leaves the user indexes alone;
# the guard on the fixed columns sends a write that does change them to
# REPLACE_ALL, keeping the columns true to the document in every case.
REPLACE: Final = (
    "UPDATE jobs SET status = ?, run_at = ?, lease_expires_at = ?, version = ?, doc = ?"
    " WHERE id = ? AND version = ?"
    " AND user_id IS ? AND type IS ? AND priority IS ? AND queue IS ? AND created_at IS ?"
)
REPLACE_ALL: Final = (
    "UPDATE jobs SET user_id = ?, type = ?, status = ?, priority = ?, queue = ?, run_at = ?,"
    " created_at = ?, lease_expires_at = ?, version = ?, doc = ? WHERE id = ? AND version = ?"
)
DELETE: Final = "DELETE FROM jobs WHERE id = ? AND version = ?"

Row = tuple[Any, ...]  # the INSERT parameters, in COLUMNS order


def replace_parameters(expected_version: int, row: Row) -> Row:
    job_id, user, type_name, status, priority, queue, run_at, created, lease, version, doc = row
    return (
        status, run_at, lease, version, doc, job_id, expected_version,
        user, type_name, priority, queue, created,
    )  # fmt: skip


def replace_all_parameters(expected_version: int, row: Row) -> Row:
    return (*row[1:], row[0], expected_version)


# -- reads ---------------------------------------------------------------------------

GET: Final = "SELECT doc FROM jobs WHERE id = ?"
COUNT_ACTIVE: Final = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_user_active"
    " WHERE user_id = ? AND status IN ('pending', 'processing') LIMIT ?)"
)

_CLAIM_ORDER = "ORDER BY priority DESC, run_at, created_at, id"
CLAIMABLE: Final = (
    "SELECT doc FROM jobs INDEXED BY jobs_claim WHERE status = 'pending' AND run_at <= ?"
    f" {_CLAIM_ORDER} LIMIT ?"
)
_CLAIMABLE_IN_QUEUE = (
    "SELECT * FROM (SELECT doc, priority, run_at, created_at, id FROM jobs"
    " INDEXED BY jobs_claim_queue WHERE status = 'pending' AND queue = ? AND run_at <= ?"
    f" {_CLAIM_ORDER} LIMIT ?)"
)
STALLED: Final = (
    "SELECT doc FROM jobs INDEXED BY jobs_lease WHERE status = 'processing'"
    " AND lease_expires_at <= ? ORDER BY lease_expires_at, id LIMIT ?"
)
_NEXT_LEASE = (
    "SELECT MIN(lease_expires_at) FROM jobs INDEXED BY jobs_lease WHERE status = 'processing'"
)
NEXT_WAKEUP: Final = (
    "SELECT (SELECT MIN(run_at) FROM jobs INDEXED BY jobs_due WHERE status = 'pending'),"
    f" ({_NEXT_LEASE})"
)

# Gauges: the live jobs by queue, read from the partial indexes alone (finished jobs, the
# many, are in neither). Pending: one pass over the pending entries of `jobs_due_queue`, in
# its (queue, run_at) order, so each group's first run_at is its oldest. Processing: as
# many rows as leases held (worker slots), each looked up for its queue.
COUNT_PENDING: Final = (
    "SELECT queue, COUNT(*), COUNT(CASE WHEN run_at <= ? THEN 1 END), MIN(run_at)"
    " FROM jobs INDEXED BY jobs_due_queue WHERE status = 'pending' GROUP BY queue"
)
COUNT_PROCESSING: Final = (
    "SELECT queue, COUNT(*) FROM jobs INDEXED BY jobs_lease WHERE status = 'processing'"
    " GROUP BY queue"
)


def claimable_in(queues: Sequence[str], now: str, limit: int) -> tuple[str, list[Any]]:
    """Claim order within some queues: each queue's own head, merged (one index seek each)."""
    parts = " UNION ALL ".join([_CLAIMABLE_IN_QUEUE] * len(queues))
    sql = f"SELECT doc FROM ({parts}) {_CLAIM_ORDER} LIMIT ?"
    parameters: list[Any] = []
    for name in queues:
        parameters += (name, now, limit)
    parameters.append(limit)
    return sql, parameters


def next_wakeup_in(queues: Sequence[str]) -> str:
    """Like NEXT_WAKEUP, the earliest due time found per queue (one index seek each)."""
    rows = ", ".join(["(?)"] * len(queues))
    due = (
        "SELECT MIN((SELECT MIN(run_at) FROM jobs INDEXED BY jobs_due_queue"
        f" WHERE status = 'pending' AND queue = wanted.column1)) FROM (VALUES {rows}) AS wanted"
    )
    return f"SELECT ({due}), ({_NEXT_LEASE})"


_SORTS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "createdAt": ("jobs_user_created", ("created_at", "id")),
    "priority": ("jobs_user_priority", ("priority", "created_at", "id")),
}


def _cursor_key(after: tuple[Any, ...], columns: tuple[str, ...]) -> tuple[Any, ...]:
    """The cursor's key, checked against the sort's columns: a bound value can't misbehave."""
    shaped = len(after) == len(columns) and all(
        isinstance(value, str)
        if column != "priority"
        else isinstance(value, int | float) and not isinstance(value, bool)
        for column, value in zip(columns, after, strict=True)
    )
    if not shaped:
        raise errors.JobkitError(f"cursor key {after!r} does not fit the sort {columns}")
    return after


def list_page(user_id: str, query: listing.Query) -> tuple[str, list[Any]]:
    """`listing.page` as one indexed range scan; fetches one row past the page to see more.

    Status and type filters are written `+status`/`+type` so the planner can't
    be tempted by the partial scheduling indexes and sort afterwards.
    """
    index, columns = _SORTS[query.sort]
    where = ["user_id = ?"]
    parameters: list[Any] = [user_id]
    if query.statuses:
        where.append(f"+status IN ({','.join('?' * len(query.statuses))})")
        parameters += sorted(status.value for status in query.statuses)
    if query.types:
        where.append(f"+type IN ({','.join('?' * len(query.types))})")
        parameters += sorted(query.types)
    start = None if query.created_from is None else instants.format(query.created_from)
    end = None if query.created_to is None else instants.format(query.created_to)
    key = None if query.after is None else _cursor_key(query.after, columns)
    if key is not None and query.sort == "createdAt":
        # The cursor and the range bound on its side overlap; SQLite seeks on one
        # range per column, so keep only the tighter one (keeps deep pages O(log n)).
        if query.descending and end is not None:
            key, end = (key, None) if key[0] < end else (None, end)
        elif not query.descending and start is not None:
            key, start = (key, None) if key[0] >= start else (None, start)
    if start is not None:
        where.append("created_at >= ?")
        parameters.append(start)
    if end is not None:
        where.append("created_at < ?")
        parameters.append(end)
    if key is not None:
        where.append(
            f"({', '.join(columns)}) {'<' if query.descending else '>'}"
            f" ({','.join('?' * len(key))})"
        )
        parameters += key
    direction = " DESC" if query.descending else ""
    order = ", ".join(column + direction for column in columns)
    sql = f"SELECT doc FROM jobs INDEXED BY {index} WHERE {' AND '.join(where)} ORDER BY {order}"
    parameters.append(query.limit + 1)
    return f"{sql} LIMIT ?", parameters


# -- rows and writes -------------------------------------------------------------------


class Write(enum.Enum):
    """What one queued write is; its payload is the row(s) or key it needs."""

    INSERT = "insert"  # Row
    INSERT_MANY = "insert_many"  # list[Row]
    REPLACE = "replace"  # (expected version, Row)
    REPLACE_MANY = "replace_many"  # list[(expected version, Row)]
    DELETE = "delete"  # (id, expected version)
    PRAGMAS = "pragmas"  # None


Answer = Any  # bool, list[bool], dict (pragmas), or the exception the write met alone
PRAGMAS: Final = (
    "journal_mode",
    "synchronous",
    "busy_timeout",
    "wal_autocheckpoint",
    "user_version",
)


def encode(job: jobs.Job) -> Row:
    """The job's row: indexed columns read from the job, then the job as JSON (`records.to_json`).

    Instants go through `instants.format` both here and in the JSON, so a
    column always holds exactly the text its document does.
    """
    return records.to_record(job)  # in COLUMNS order: the row itself, one pass over the job


def decode(doc: str) -> jobs.Job:
    return records.from_json(doc)


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock: worth retrying, unlike every other error."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def configure(connection: sqlite3.Connection, synchronous: str) -> None:
    mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise errors.ConfigurationError(f"the database refused WAL mode (got {mode!r})")
    connection.execute(f"PRAGMA synchronous = {synchronous}")


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
    """Whether every write of a group won (an insert or compare-and-set of many: each row)."""
    return all(
        answer is True or (type(answer) is list and all(row is True for row in answer))
        for answer in answers
    )


def _optimistic(cursor: sqlite3.Cursor, runs: list[_Run]) -> list[Answer] | None:
    """Every write of `runs` winning, in one transaction with one statement per run and
    chunk; None, with nothing written, when that is not so or cannot be told this way: a
    write lost or failed, or the group has another sort of write or one job twice in a run.
    """
    plans: list[tuple[str, list[Row]]] = []
    for sort, items in runs:
        if sort is None:
            return None
        rows = _flat(items)
        if sort is Write.INSERT_MANY:
            if len({row[0] for row in rows}) < len(rows):
                return None
            plans.append(("insert", rows))
        else:
            if len({row[0] for _, row in rows}) < len(rows):
                return None
            plans.append(("update", [_guarded(expected, row) for expected, row in rows]))
    cursor.execute("BEGIN IMMEDIATE")
    try:
        for shape, rows in plans:
            for sql, parameters in _statements(shape, rows):
                cursor.execute(sql, parameters)
                if cursor.rowcount != len(parameters) // _WIDTH[shape]:
                    cursor.execute("ROLLBACK")
                    return None
        cursor.execute("COMMIT")
    except sqlite3.Error as exc:
        if cursor.connection.in_transaction:
            cursor.connection.rollback()
        if is_busy(exc):
            raise
        return None  # a bad row: the exact way finds it, and fails it alone
    except BaseException:
        if cursor.connection.in_transaction:
            cursor.connection.rollback()
        raise
    return [answer for _, items in runs for answer in _answers(items, [True] * len(_flat(items)))]


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
    """The rows (or compare-and-sets) of a run's writes, in order."""
    flat: list[Any] = []
    for kind, payload in items:
        if kind is Write.INSERT or kind is Write.REPLACE:
            flat.append(payload)
        else:
            flat += payload
    return flat


def _apply_run(cursor: sqlite3.Cursor, sort: Write, items: list[tuple[Write, Any]]) -> list[Answer]:
    """A run of inserts or compare-and-sets, batched; each item answers in its own shape."""
    flat = _flat(items)
    if len(flat) == 1:  # one row: its own statement is quicker than a batch's two
        return [_apply_one(cursor, kind, payload) for kind, payload in items]
    decide = _insert_run if sort is Write.INSERT_MANY else _replace_run
    try:
        rows, statements = decide(cursor, flat)
        # One statement undoes itself if it fails; more need a savepoint to undo together.
        with _whole(cursor, "run", len(statements) > 1):
            for sql, parameters in statements:
                cursor.execute(sql, parameters)
    except sqlite3.Error as exc:
        if is_busy(exc) or not cursor.connection.in_transaction:
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
        else:
            answers.append(rows[at : at + len(payload)])
            at += len(payload)
    return answers


_CHUNK: Final = 500  # rows per batched statement: well under SQLite's 32,766 parameters
_MUTABLE: Final = ("status", "run_at", "lease_expires_at", "version", "doc")
_FIXED: Final = ("user_id", "type", "priority", "queue", "created_at")
# Parameters per row of each batched statement.
_WIDTH: Final = {"insert": 11, "update": 12, "update_all": 12, "current": 1}
_SQL: dict[tuple[str, int], str] = {}  # batched statements by shape and row count


def _sql(shape: str, count: int) -> str:
    """The batched statement `shape` for `count` rows (one text per count, so prepared once).

    The updates read their rows as `(VALUES ...) AS w`, whose columns are `column1`...:
    a statement that begins with UPDATE counts the rows it changes (`rowcount`), which
    `_optimistic` relies on. Each row names the job's id and the version it expects;
    "update" also expects the fixed columns unchanged (written `+jobs.user_id`: not a way
    in, the key is), and sets only the others.
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
            f"INSERT INTO jobs ({COLUMNS}) VALUES {','.join([row] * count)}"
            " ON CONFLICT (id) DO NOTHING"
        )
    else:
        sets, guards = (_MUTABLE, _FIXED) if shape == "update" else ((*_FIXED, *_MUTABLE), ())
        column = {
            name: f"w.column{n}" for n, name in enumerate(("id", "expected", *sets, *guards), 1)
        }
        sql = (
            f"UPDATE jobs SET {', '.join(f'{name} = {column[name]}' for name in sets)}"
            f" FROM (VALUES {','.join([row] * count)}) AS w"
            f" WHERE jobs.id = {column['id']} AND jobs.version = {column['expected']}"
            + "".join(f" AND +jobs.{name} IS {column[name]}" for name in guards)
        )
    if len(_SQL) < 4 * _CHUNK:
        _SQL[(shape, count)] = sql
    return sql


def _guarded(expected: int, row: Row) -> Row:
    """An "update" row: the compare-and-set of `row` against `expected`, which also expects
    the fixed columns as `row` has them."""
    job_id, user, type_name, status, priority, queue, run_at, created, lease, version, doc = row
    return (
        job_id, expected, status, run_at, lease, version, doc,
        user, type_name, priority, queue, created,
    )  # fmt: skip


def _current(cursor: sqlite3.Cursor, ids: list[str]) -> dict[str, list[Any]]:
    """Each stored job among `ids`: [version, *fixed columns], read in one row per chunk."""
    found: dict[str, list[Any]] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        (text,) = cursor.execute(_sql("current", len(chunk)), chunk).fetchone()
        for job_id, *rest in json.loads(text):
            found[job_id] = rest
    return found


_Statements = list[tuple[str, list[Any]]]


def _insert_run(cursor: sqlite3.Cursor, rows: list[Row]) -> tuple[list[bool], _Statements]:
    """Which rows to insert: those whose id is new (to the store and to the run), True;
    and the statements that insert them."""
    stored = _current(cursor, [row[0] for row in rows])
    fresh: dict[str, Row] = {}
    answers = []
    for row in rows:
        new = row[0] not in stored and row[0] not in fresh
        if new:
            fresh[row[0]] = row
        answers.append(new)
    return answers, _statements("insert", list(fresh.values()))


def _replace_run(
    cursor: sqlite3.Cursor, writes: list[tuple[int, Row]]
) -> tuple[list[bool], _Statements]:
    """Compare-and-set each write in order, as `_replace` would one by one: a write wins
    when the job's version (as the run leaves it so far) is the one it expects. Only the
    last winning row of each job is written, against the version stored. A row that keeps
    the job's fixed columns sets only the others, so the user indexes are left alone."""
    stored = _current(cursor, [row[0] for _, row in writes])
    versions = {job_id: found[0] for job_id, found in stored.items()}
    final: dict[str, Row] = {}
    answers = []
    for expected, row in writes:
        job_id = row[0]
        won = versions.get(job_id) == expected
        if won:
            versions[job_id] = row[9]
            final[job_id] = row
        answers.append(won)
    same: list[Row] = []
    changed: list[Row] = []
    for job_id, row in final.items():
        version, *fixed = stored[job_id]
        if fixed == [row[1], row[2], row[4], row[5], row[7]]:
            same.append(_guarded(version, row))
        else:
            changed.append(
                (job_id, version, *row[1:3], row[4], row[5], row[7], row[3], row[6], *row[8:])
            )
    return answers, _statements("update", same) + _statements("update_all", changed)


def _statements(shape: str, rows: list[Row]) -> _Statements:
    """The batched statements `shape` for `rows`, `_CHUNK` rows at most each."""
    statements: _Statements = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        statements.append((_sql(shape, len(chunk)), [value for row in chunk for value in row]))
    return statements


def _apply_one(cursor: sqlite3.Cursor, kind: Write, payload: Any) -> Answer:
    """One write of a group, alone: if it fails, it is undone whole (a write of many rows
    too) and answers with its error; the rest of the group goes on."""
    several = kind is Write.INSERT_MANY or kind is Write.REPLACE_MANY
    try:
        with _whole(cursor, "write", several):
            answer = _perform(cursor, kind, payload)
    except sqlite3.Error as exc:
        if is_busy(exc) or not cursor.connection.in_transaction:
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


def _insert(cursor: sqlite3.Cursor, row: Row) -> bool:
    cursor.execute(INSERT, row)
    return cursor.rowcount == 1


def _replace(cursor: sqlite3.Cursor, expected_version: int, row: Row) -> bool:
    cursor.execute(REPLACE, replace_parameters(expected_version, row))
    if cursor.rowcount == 1:
        return True
    # Lost, or a write that changes a fixed column: only the version may refuse it.
    cursor.execute(REPLACE_ALL, replace_all_parameters(expected_version, row))
    return cursor.rowcount == 1
