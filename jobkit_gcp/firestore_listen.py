"""Firestore snapshot listeners delivered to an event loop: the doorbell and the change feed
listen through this module.

The async client has no `on_snapshot`; the sync client's does, and runs each listener on
its own background thread (a gRPC `Listen` stream and a consumer thread). `Listening`
wraps one such listener: each snapshot is handed to the event loop with
`call_soon_threadsafe` (the callback runs on the loop's thread, never on the watch's), a
listener that stopped on an error is started again with a growing pause (its first
snapshot after a restart is delivered like any other, so nothing changed meanwhile is
missed), and `close()` stops it and waits for its thread off the loop.

What a listener costs, as Firestore bills it: its first snapshot reads every document in
the result (one read at least, even when empty), and afterwards one read per document
added to the result or changed in it, and one per document that leaves the result
because it changed; deleted documents cost nothing. A listener that is disconnected for
more than 30 minutes is billed as a new one when it resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

log = logging.getLogger("jobkit.gcp.listen")

CHECK_SECONDS: Final = 1.0  # how often a listener's thread is looked at, to restart it
FIRST_PAUSE: Final = 0.5
LONGEST_PAUSE: Final = 30.0

Snapshot = Any  # the sync client's DocumentSnapshot (a query's result, or one document)
Delivered = Callable[[Sequence[Snapshot], Any], None]
"""`delivered(documents, read_time)`, on the event loop's thread: the listener's result."""


class Watch(Protocol):
    """What the sync client's `on_snapshot` returns (`google.cloud.firestore_v1.watch`)."""

    @property
    def is_active(self) -> bool: ...

    def unsubscribe(self) -> None: ...


Start = Callable[[Callable[[Any, Any, Any], None]], Watch]
"""`query.on_snapshot` or `document.on_snapshot`: starts a listener calling back on a thread."""


class Listening:
    """One snapshot listener, whose results `delivered` receives on `loop`'s thread.

    `live` says whether its last result can be trusted to be current: False until the
    first snapshot arrives, and from the moment its stream is found stopped until the
    first snapshot after the restart. `snapshots` counts the results delivered.
    """

    def __init__(
        self, start: Start, delivered: Delivered, *, name: str, on_lost: Callable[[], None]
    ) -> None:
        self.name = name
        self.live = False
        self.snapshots = 0
        self._start = start
        self._delivered = delivered
        self._on_lost = on_lost
        self._loop = asyncio.get_running_loop()
        self._watch: Watch | None = None
        self._closed = False
        self._first = asyncio.Event()
        self._open()
        self._supervisor = self._loop.create_task(self._supervise(), name=f"listen:{name}")

    def _open(self) -> None:
        self._watch = self._start(self._heard)

    def _heard(self, documents: Any, changes: Any, read_time: Any) -> None:
        """On the watch's thread: hand the result to the loop (dropped once it is closed)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self._loop.call_soon_threadsafe(self._deliver, list(documents), read_time)

    def _deliver(self, documents: list[Snapshot], read_time: Any) -> None:
        if self._closed:
            return
        self.live = True
        self.snapshots += 1
        self._first.set()
        try:
            self._delivered(documents, read_time)
        except Exception:  # a bug in a callback must not stop the listener
            log.exception("a snapshot listener's callback failed", extra={"listener": self.name})

    async def first(self, timeout: float) -> bool:
        """Wait (up to `timeout` seconds) for the first snapshot; whether it came."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._first.wait()
        return self._first.is_set()

    async def _supervise(self) -> None:
        pause = FIRST_PAUSE
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            watch = self._watch
            if watch is None or watch.is_active:
                pause = FIRST_PAUSE
                continue
            # The stream ended on an error the client does not retry: start again, and
            # until its first snapshot, nothing from it is current.
            self.live = False
            self._on_lost()
            log.warning(
                "a Firestore listener stopped; starting it again in %.3g s",
                pause,
                extra={"listener": self.name},
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
            await asyncio.to_thread(_stop, watch)
            try:
                self._open()
            except Exception:
                log.exception("a Firestore listener did not start", extra={"listener": self.name})
                self._watch = None
                await asyncio.sleep(pause)
                with contextlib.suppress(Exception):
                    self._open()

    async def close(self) -> None:
        """Stop listening (idempotent); the watch's threads are joined off the loop."""
        if self._closed:
            return
        self._closed = True
        self.live = False
        self._supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._supervisor
        watch, self._watch = self._watch, None
        if watch is not None:
            await asyncio.to_thread(_stop, watch)


def _stop(watch: Watch) -> None:
    with contextlib.suppress(Exception):  # already stopped by its own error
        watch.unsubscribe()
