"""Turns given in the writer's transaction (`sqlite_writes`), for a burst of submissions stored
in one group commit: each line's `schedule.Turns` read once, then carried along the run's
rows as `schedule.take_turns` would, the rows stored as they are counted too. A lone
submission takes its turn in its own statement instead (`sqlite_schema.INSERT_IN_TURN`)."""

from __future__ import annotations

import sqlite3
from typing import Final

from jobkit import records, schedule
from jobkit.local import sqlite_schema as schema
from jobkit.local.sqlite_schema import Row
from jobkit.status import ACTIVE

Found = dict[schedule.Line, schedule.Turns]


class InTurn:
    """An `IN_TURN` write: rows of submissions (`JobStore.insert_in_turn`), whose turns the
    transaction that stores them gives; `turns`, once given by the optimistic way."""

    __slots__ = ("rows", "turns")

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.turns: list[int] = []


def line(row: Row) -> schedule.Line:
    return schedule.Line(row.user_id, row.queue, row.priority)


def read(cursor: sqlite3.Cursor, at: schedule.Line) -> schedule.Turns:
    served, last = cursor.execute(schema.TURNS, (at.queue, at.priority, at.user_id)).fetchone()
    return schedule.standing(served, last)


def give(found: Found, write: InTurn) -> list[Row]:
    """`write`'s rows holding their turns (kept in `write.turns`), `found` moved on."""
    write.turns = []
    rows: list[Row] = []
    for row in write.rows:
        at = line(row)
        turns = found[at]
        turn = schedule.next_turn(turns)
        found[at] = schedule.Turns(served=turns.served, last=turn)
        write.turns.append(turn)
        rows.append(records.with_turn(row, turn))
    return rows


_SERVED: Final = frozenset(status.value for status in schedule.SERVED)
_LIVE: Final = frozenset(status.value for status in ACTIVE)


def count(found: Found, row: Row) -> None:
    """`found` once `row`, a job stored as it is (not in turn), is stored too: as
    `schedule.turns` would read it, for `next_turn`'s sake."""
    for at, turns in found.items():
        if (at.queue, at.priority) != (row.queue, row.priority):
            continue
        served, last = turns.served, turns.last
        if row.status in _SERVED and (served is None or row.turn > served):
            served = row.turn
        mine = at.user_id == row.user_id
        holds = row.status in _LIVE or (row.status in _SERVED and row.turn == served)
        if mine and holds and (last is None or row.turn > last):
            last = row.turn
        found[at] = schedule.standing(served, last)
