"""The change feed's poll on the SQLite file (`feed.Versions`): versions read from the
table's columns, never a job decoded.

The poll only compares versions, so it reads the `version` column, of many watched jobs
in one statement and of a user's live jobs through the user index, on a read-only
connection of its own (opened on first use, on the event loop's thread, as the store's
reads are: an indexed read is cheaper than a hop to another thread).
"""

from __future__ import annotations

import builtins
import os
import sqlite3
from collections.abc import Collection
from typing import Final

_CHUNK: Final = 500  # ids per statement, well under SQLite's bound on parameters
_LIVE: Final = (
    "SELECT id, version FROM jobs WHERE user_id = ? AND status IN ('pending', 'processing')"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)


class SqliteVersions:
    """`feed.Versions` on the SQLite file at `path`."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None

    def _rows(self, sql: str, parameters: tuple[object, ...]) -> builtins.list[tuple[str, int]]:
        if self._connection is None:
            self._connection = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None
            )
            self._connection.execute("PRAGMA query_only = ON")
        rows: builtins.list[tuple[str, int]] = self._connection.execute(sql, parameters).fetchall()
        return rows

    async def of_jobs(self, job_ids: Collection[str]) -> dict[str, int]:
        ids = builtins.list(job_ids)
        found: dict[str, int] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._rows(f"SELECT id, version FROM jobs WHERE id IN ({marks})", (*chunk,))
            )
        return found

    async def live_of_user(self, user_id: str, limit: int) -> dict[str, int]:
        return dict(self._rows(_LIVE, (user_id, limit)))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
