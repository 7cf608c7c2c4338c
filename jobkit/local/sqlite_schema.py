"""The SQLite job table: its migrations, its rows, and the statements that read it.

The writes, applied in groups by the store's writer thread, are `sqlite_writes`.

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

import operator
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

from jobkit import errors, instants, jobs, listing, records

# The jobs a claim has taken, whose turns make a band's clock; and a user's live jobs, whose
# turns count for their next (`schedule.turns`): the statements below repeat these terms,
# so that SQLite may use the partial indexes they define.
_SERVED: Final = "status IN ('processing', 'completed', 'failed')"
_LIVE: Final = "status IN ('pending', 'processing')"

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
    (  # 5: claims and due times across queues go queue by queue (`PENDING_QUEUES`), so
        # a pending job is filed under two scheduling indexes rather than four
        "DROP INDEX jobs_claim",
        "DROP INDEX jobs_due",
    ),
    (  # 6: turns, for claims fair across users (`schedule`): the claim order takes them in;
        # a band's clock is read from claimed jobs (an index a submission does not touch),
        # and a user's last turn from the index of their live jobs, which quotas count,
        # reshaped: no index more to file a submission under. Jobs stored before hold turn 0
        # (their documents lack it: `documents.from_document`), but for pending ones,
        # numbered 0, 1, ... in each user's line in claim order, as if taken one by one.
        "ALTER TABLE jobs ADD COLUMN turn INTEGER NOT NULL DEFAULT 0",
        "UPDATE jobs SET turn = ranked.turn, doc = json_set(doc, '$.turn', ranked.turn)"
        " FROM (SELECT id, row_number() OVER (PARTITION BY user_id, queue, priority"
        " ORDER BY run_at, created_at, id) - 1 AS turn FROM jobs WHERE status = 'pending')"
        " AS ranked WHERE jobs.id = ranked.id",
        "DROP INDEX jobs_claim_queue",
        "CREATE INDEX jobs_claim_queue ON jobs"
        " (queue, priority DESC, turn, run_at, created_at, id) WHERE status = 'pending'",
        f"CREATE INDEX jobs_band_served ON jobs (queue, priority, turn, user_id) WHERE {_SERVED}",
        "DROP INDEX jobs_user_active",
        f"CREATE INDEX jobs_user_active ON jobs (user_id, queue, priority, turn) WHERE {_LIVE}",
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


# -- rows --------------------------------------------------------------------------

Row = records.Record
"""A job as its row: a NamedTuple whose fields are the table's columns, in COLUMNS order
(`records.Record` is that shape; its `type_name` is the column `type`)."""

COLUMNS: Final[tuple[str, ...]] = (
    "id",
    "user_id",
    "type",
    "status",
    "priority",
    "queue",
    "turn",
    "run_at",
    "created_at",
    "lease_expires_at",
    "version",
    "doc",
)
FIELD: Final[dict[str, str]] = dict(zip(COLUMNS, Row._fields, strict=True))
"""Each column's field on `Row`."""
if [name.removesuffix("_name") for name in Row._fields] != list(COLUMNS):
    raise AssertionError(f"records.Record's fields {Row._fields} are not the columns {COLUMNS}")


def getter(*columns: str) -> Callable[[Row], tuple[Any, ...]]:
    """A function from a row to the values of `columns`, in that order: the parameters of
    a statement written with the same names."""
    return operator.attrgetter(*(FIELD[column] for column in columns))


def encode(job: jobs.Job) -> Row:
    """The job's row: indexed columns read from the job, then the job as JSON (`records.to_json`).

    Instants go through `instants.format` both here and in the JSON, so a
    column always holds exactly the text its document does.
    """
    return records.to_record(job)  # one pass over the job


def decode(doc: str) -> jobs.Job:
    return records.from_json(doc)


INSERT: Final = (
    f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
    " ON CONFLICT (id) DO NOTHING"
)  # parameters: the row itself

# -- turns (`schedule.turns`) ---------------------------------------------------------

# A line's `Turns`, read where it stands (`schedule.turns`): the band's clock, one seek; the
# user's last, the larger of their live jobs' last turn (one seek) and the clock, if they
# hold a claimed job at it (one seek).
_SERVED_IN = (
    f"SELECT turn FROM jobs INDEXED BY jobs_band_served WHERE {_SERVED}"
    " AND queue = {queue} AND priority = {priority} ORDER BY turn DESC LIMIT 1"
)
_LIVE_IN = (
    f"SELECT turn FROM jobs INDEXED BY jobs_user_active WHERE {_LIVE}"
    " AND user_id = {user} AND queue = {queue} AND priority = {priority}"
    " ORDER BY turn DESC LIMIT 1"
)
_AT_CLOCK = (
    f"SELECT turn FROM jobs INDEXED BY jobs_band_served WHERE {_SERVED} AND queue = {{queue}}"
    " AND priority = {priority} AND turn = {served} AND user_id = {user} LIMIT 1"
)
# Turns are never negative: -1 stands for none.
_LAST_IN = f"max(coalesce(({_LIVE_IN}), -1), coalesce(({_AT_CLOCK}), -1))"
_AT = {"queue": "?1", "priority": "?2", "user": "?3", "served": "band.served"}
TURNS: Final = (
    f"SELECT band.served, nullif({_LAST_IN.format(**_AT)}, -1)"
    f" FROM (SELECT ({_SERVED_IN.format(**_AT)}) AS served) AS band"
)

# A submission stored in turn, in one statement: its turn is `schedule.next_turn` of where
# its line stands as it is written, set in its column and in its document's text (given
# cut around the turn: `records.around_turn`). Parameters: `in_turn_parameters(row)`;
# answers the turn taken, or no row when the id exists.
_GIVEN = [column for column in COLUMNS if column not in ("turn", "doc")]
_PLACE = {column: f"?{n}" for n, column in enumerate(_GIVEN, 1)}
_BEFORE, _AFTER = f"?{len(_GIVEN) + 1}", f"?{len(_GIVEN) + 2}"
_WHERE = {
    "queue": _PLACE["queue"],
    "priority": _PLACE["priority"],
    "user": _PLACE["user_id"],
    "served": "band.served",
}
_VALUE = {**_PLACE, "turn": "taken.turn", "doc": f"{_BEFORE} || taken.turn || {_AFTER}"}
INSERT_IN_TURN: Final = (
    f"INSERT INTO jobs ({', '.join(COLUMNS)})"
    f" SELECT {', '.join(_VALUE[column] for column in COLUMNS)}"
    f" FROM (SELECT max(coalesce(band.served, 0), {_LAST_IN.format(**_WHERE)} + 1)"
    f" AS turn FROM (SELECT ({_SERVED_IN.format(**_WHERE)}) AS served) AS band) AS taken"
    " WHERE true ON CONFLICT (id) DO NOTHING RETURNING turn"
)
_given_values: Final = operator.attrgetter(*(FIELD[column] for column in _GIVEN))


def in_turn_parameters(row: Row) -> tuple[Any, ...]:
    """INSERT_IN_TURN's parameters for a row (its own turn is not read)."""
    return (*_given_values(row), *records.around_turn(row.doc))


# -- reads ---------------------------------------------------------------------------

GET: Final = "SELECT doc FROM jobs WHERE id = ?"
COUNT_ACTIVE: Final = (
    "SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_user_active"
    " WHERE user_id = ? AND status IN ('pending', 'processing') LIMIT ?)"
)


def count_due_in(queues: Sequence[str], now: str, limit: int) -> tuple[str, list[Any]]:
    """The due pending jobs of some queues, counted up to `limit` (index seeks, no rows)."""
    marks = ", ".join("?" * len(queues))
    sql = (
        "SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_due_queue"
        f" WHERE status = 'pending' AND queue IN ({marks}) AND run_at <= ? LIMIT ?)"
    )
    return sql, [*queues, now, limit]


_CLAIM_ORDER = "ORDER BY priority DESC, turn, run_at, created_at, id"
# The queues that have pending jobs, one index seek each (a skip-scan of jobs_due_queue):
# claims and due times across every queue are each queue's, merged. Every pending job is
# filed under the per-queue indexes only, which halves what filing it costs.
_QUEUES = (
    "WITH RECURSIVE queues(name) AS ("
    "SELECT (SELECT MIN(queue) FROM jobs INDEXED BY jobs_due_queue WHERE status = 'pending')"
    " UNION ALL SELECT (SELECT MIN(queue) FROM jobs INDEXED BY jobs_due_queue"
    " WHERE status = 'pending' AND queue > queues.name) FROM queues WHERE name IS NOT NULL)"
)
PENDING_QUEUES: Final = f"{_QUEUES} SELECT name FROM queues WHERE name IS NOT NULL"
_CLAIMABLE_IN_QUEUE = (
    "SELECT * FROM (SELECT doc, priority, turn, run_at, created_at, id FROM jobs"
    " INDEXED BY jobs_claim_queue WHERE status = 'pending' AND queue = ? AND run_at <= ?"
    f" {_CLAIM_ORDER} LIMIT ?)"
)
STALLED: Final = (
    "SELECT doc FROM jobs INDEXED BY jobs_lease WHERE status = 'processing'"
    " AND lease_expires_at <= ? ORDER BY lease_expires_at, id LIMIT ?"
)
_CLAIMABLE_IN_ONE = (
    "SELECT doc FROM jobs INDEXED BY jobs_claim_queue WHERE status = 'pending' AND queue = ?"
    f" AND run_at <= ? {_CLAIM_ORDER} LIMIT ?"
)
_NEXT_LEASE = (
    "SELECT MIN(lease_expires_at) FROM jobs INDEXED BY jobs_lease WHERE status = 'processing'"
)
_DUE_IN = (
    "(SELECT MIN(run_at) FROM jobs INDEXED BY jobs_due_queue"
    " WHERE status = 'pending' AND queue = {queue})"
)
NEXT_WAKEUP: Final = (
    f"{_QUEUES} SELECT (SELECT MIN({_DUE_IN.format(queue='queues.name')}) FROM queues"
    f" WHERE name IS NOT NULL), ({_NEXT_LEASE})"
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
    if len(queues) == 1:  # its head is in order already
        return _CLAIMABLE_IN_ONE, [queues[0], now, limit]
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
    due = f"SELECT MIN({_DUE_IN.format(queue='wanted.column1')}) FROM (VALUES {rows}) AS wanted"
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


# -- connections ---------------------------------------------------------------------


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
