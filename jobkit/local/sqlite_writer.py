"""The SQLite store's writer thread: it owns the write connection, takes every write queued
for it, applies them as one group commit (`sqlite_writes.apply_group`), retries a group
that meets another process's lock, and hands each answer back to the event loop.

`SqliteJobStore` (`jobkit.local.sqlite`) queues writes with `put` and stops the thread with
`stop`; the thread also migrates the file when it starts, and runs the checkpointer.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Literal, TypeVar

from jobkit.local import sqlite_checkpoints, sqlite_writes
from jobkit.local import sqlite_schema as schema

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
Write = tuple[sqlite_writes.Write, Any, asyncio.Future[Any]]
# What the loop is told once a group is committed: the group's futures and their answers.
Written = Callable[[list[asyncio.Future[Any]], list[sqlite_writes.Answer]], None]
T = TypeVar("T")

MAX_GROUP: Final = 2000  # writes per transaction; bounds one commit's latency
_RETRIES: Final = 12
_FIRST_BACKOFF: Final = 0.005
_MAX_BACKOFF: Final = 1.0


def connect(path: str, busy_timeout: float, *, check_same_thread: bool) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN; every transaction here is explicit.
    return sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=check_same_thread,
        cached_statements=256,
    )


class Writer:
    """One writer thread for the file at `path`, answering on `loop` through `written`."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: Synchronous,
        busy_timeout: float,
        loop: asyncio.AbstractEventLoop,
        written: Written,
    ) -> None:
        self.path = path
        self.synchronous: Synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.checkpointer: sqlite_checkpoints.Checkpointer | None = None
        self.optimistic = True  # whether its last group won whole
        self._loop = loop
        self._written = written
        self._writes: queue.SimpleQueue[Write | None] = queue.SimpleQueue()
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        """Start the thread; returns once the file is in WAL mode and migrated, or raises
        what the thread met."""
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"jobkit-sqlite-writer:{self.path}", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except BaseException:
            await self.stop()
            raise

    def put(self, write: Write) -> None:
        self._writes.put(write)

    async def stop(self) -> None:
        """Finish every queued write, then end the thread."""
        if self._thread is not None:
            self._writes.put(None)
            await self._stopped
            self._thread.join()
            self._thread = None

    # -- on the thread ------------------------------------------------------------------

    def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            connection = self._open()
        except BaseException as exc:  # reported to start(), which raises it
            self._call(_settle, ready, exc)
            self._call(_settle, self._stopped, None)
            return
        self.checkpointer = checkpointer = sqlite_checkpoints.Checkpointer(
            self.path, self.busy_timeout
        )
        self._call(_settle, ready, None)
        try:
            running = True
            while running:
                group: list[Write] = []
                item = self._writes.get()
                while item is not None:
                    group.append(item)
                    if len(group) >= MAX_GROUP:
                        break
                    try:
                        item = self._writes.get_nowait()
                    except queue.Empty:
                        break
                running = item is not None
                if group:
                    answers = self._commit(connection, group)
                    self._call(self._written, [future for _, _, future in group], answers)
                    checkpointer.wake()
        finally:
            checkpointer.stop()
            connection.close()
            self._call(_settle, self._stopped, None)

    def _open(self) -> sqlite3.Connection:
        connection = connect(self.path, self.busy_timeout, check_same_thread=True)
        try:
            _retry(lambda: schema.configure(connection, self.synchronous))
            # The checkpointer thread checkpoints; a commit never does it in passing.
            connection.execute("PRAGMA wal_autocheckpoint = 0")
            _retry(lambda: schema.migrate(connection, self.path))
        except BaseException:
            connection.close()
            raise
        return connection

    def _commit(
        self, connection: sqlite3.Connection, group: list[Write]
    ) -> list[sqlite_writes.Answer]:
        optimistic = self.optimistic
        try:
            answers = _retry(
                lambda: sqlite_writes.apply_group(connection, group, optimistic=optimistic)
            )
        except Exception as exc:  # the group is rolled back: every write in it failed
            return [exc] * len(group)
        self.optimistic = sqlite_writes.all_won(answers)
        return answers

    def _call(self, callback: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(callback, *args)


def _retry(action: Callable[[], T]) -> T:
    """`action`, again with a doubling pause while another process holds the lock."""
    delay = _FIRST_BACKOFF
    for attempt in range(_RETRIES + 1):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not schema.is_busy(exc) or attempt == _RETRIES:
                raise
            time.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)
    raise AssertionError("unreachable")  # pragma: no cover


def _settle(future: asyncio.Future[Any] | None, outcome: BaseException | None) -> None:
    if future is None or future.done():
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)


def answer(futures: list[asyncio.Future[Any]], answers: list[sqlite_writes.Answer]) -> None:
    """Each future its answer: a result, or the exception its write met."""
    for future, given in zip(futures, answers, strict=True):
        if future.done():  # the caller was cancelled; its write still happened
            continue
        if isinstance(given, BaseException):
            future.set_exception(given)
        else:
            future.set_result(given)
