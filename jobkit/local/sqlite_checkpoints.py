"""Checkpoints of the SQLite store's WAL on their own thread, passively, after commits.

A checkpoint copies the WAL back into the database file and syncs it; run inside the
commit that happened to fill the WAL, its fsync would hold up every write queued behind
that commit. So the writer's connection never checkpoints (`wal_autocheckpoint = 0`), and
this thread does, at most every `EVERY` seconds, passively: it never waits for, nor
blocks, a reader or a writer of any process.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Final

log = logging.getLogger("jobkit.local.sqlite")

EVERY: Final = 0.05  # seconds: the WAL grows by a few MB at most in between


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)


class Checkpointer:
    """A thread that checkpoints the WAL after commits, passively, at most every
    `EVERY` seconds (the writer's connection does not checkpoint itself)."""

    def __init__(self, path: str, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._due = threading.Event()  # a commit since the last checkpoint
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"jobkit-sqlite-checkpointer:{path}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._due.set()

    def stop(self) -> None:
        self._stopping.set()
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            connection = _connect(self._path, self._busy_timeout)
        except sqlite3.Error as exc:  # the last connection to close still checkpoints
            log.warning("the WAL checkpointer could not start: %s", exc, extra={"path": self._path})
            return
        try:
            while True:
                self._due.wait()
                if self._stopping.is_set():
                    return
                self._due.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next commit wakes it to try again
                    log.warning("checkpointing the WAL failed: %s", exc, extra={"path": self._path})
                if self._stopping.wait(EVERY):
                    return
        finally:
            connection.close()
