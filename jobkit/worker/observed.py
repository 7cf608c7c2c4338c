"""A job store and a blob store whose every call is timed: each duration and outcome told to
an observer (metrics), each store write logged at DEBUG, and every call slower than a
threshold logged at WARNING, with the job or request it served (from the log context)."""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from jobkit import jobs, listing, ports, schedule

log = logging.getLogger("jobkit.store")

T = TypeVar("T")
CallObserver = Callable[[str, str, float, bool], None]
"""`observer(target, operation, seconds, succeeded)`: `target` is `store`, `blobs` or
`analyzer`, `operation` the method (or effect) called."""

SLOW_SECONDS = 1.0


class _Timed:
    def __init__(
        self, target: str, observer: CallObserver | None, slow_seconds: float | None
    ) -> None:
        self._target = target
        self.observer = observer
        self.slow_seconds = SLOW_SECONDS if slow_seconds is None else slow_seconds

    async def _timed(self, operation: str, call: Awaitable[T], writes: int = 0) -> T:
        started = time.perf_counter()
        ok = False
        try:
            answer = await call
            ok = True
            return answer
        finally:
            self._after(operation, time.perf_counter() - started, ok, writes)

    def _after(self, operation: str, seconds: float, ok: bool, writes: int) -> None:
        if self.observer is not None:
            self.observer(self._target, operation, seconds, ok)
        if seconds >= self.slow_seconds:
            log.warning(
                "slow %s call: %s took %.3g s (threshold %g s)",
                self._target,
                operation,
                seconds,
                self.slow_seconds,
                extra={
                    "target": self._target,
                    "operation": operation,
                    "seconds": round(seconds, 6),
                    "ok": ok,
                },
            )
        elif writes and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s: %d written in %.3g ms",
                self._target,
                operation,
                writes,
                seconds * 1000,
                extra={"operation": operation, "writes": writes, "seconds": round(seconds, 6)},
            )


class ObservedStore(_Timed):
    """`store`, timed. Anything else the store has (`start`, `close`, ...) passes through."""

    def __init__(
        self,
        store: ports.JobStore,
        *,
        observer: CallObserver | None = None,
        slow_seconds: float | None = None,
    ) -> None:
        super().__init__("store", observer, slow_seconds)
        self.inner = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def insert(self, job: jobs.Job) -> bool:
        return await self._timed("insert", self.inner.insert(job), 1)

    async def insert_many(self, batch: Sequence[jobs.Job]) -> builtins.list[bool]:
        return await self._timed("insert_many", self.inner.insert_many(batch), len(batch))

    async def insert_in_turn(self, batch: Sequence[jobs.Job]) -> builtins.list[int | None]:
        return await self._timed("insert_in_turn", self.inner.insert_in_turn(batch), len(batch))

    async def turns(
        self, lines: Collection[schedule.Line]
    ) -> Mapping[schedule.Line, schedule.Turns]:
        return await self._timed("turns", self.inner.turns(lines))

    async def get(self, job_id: str) -> jobs.Job | None:
        return await self._timed("get", self.inner.get(job_id))

    async def list(self, user_id: str, query: listing.Query) -> listing.Page:
        return await self._timed("list", self.inner.list(user_id, query))

    async def claimable(
        self, now: datetime, queues: Collection[str] | None, limit: int
    ) -> Sequence[jobs.Job]:
        return await self._timed("claimable", self.inner.claimable(now, queues, limit))

    async def count_due(self, now: datetime, queues: Collection[str] | None, limit: int) -> int:
        return await self._timed("count_due", self.inner.count_due(now, queues, limit))

    async def stalled(self, now: datetime, limit: int) -> Sequence[jobs.Job]:
        return await self._timed("stalled", self.inner.stalled(now, limit))

    async def next_wakeup(self, queues: Collection[str] | None) -> datetime | None:
        return await self._timed("next_wakeup", self.inner.next_wakeup(queues))

    async def counts(self, now: datetime, queues: Collection[str]) -> schedule.Counts:
        return await self._timed("counts", self.inner.counts(now, queues))

    async def compare_and_set(self, expected_version: int, job: jobs.Job) -> bool:
        return await self._timed(
            "compare_and_set", self.inner.compare_and_set(expected_version, job), 1
        )

    async def compare_and_set_many(
        self, writes: Sequence[tuple[int, jobs.Job]]
    ) -> builtins.list[bool]:
        call = self.inner.compare_and_set_many(writes)
        return await self._timed("compare_and_set_many", call, len(writes))

    async def delete(self, job_id: str, expected_version: int) -> bool:
        return await self._timed("delete", self.inner.delete(job_id, expected_version), 1)


class ObservedBlobs(_Timed):
    """`blobs`, timed. Anything else the blob store has passes through."""

    def __init__(
        self,
        blobs: ports.BlobStore,
        *,
        observer: CallObserver | None = None,
        slow_seconds: float | None = None,
    ) -> None:
        super().__init__("blobs", observer, slow_seconds)
        self.inner = blobs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        *,
        max_bytes: int | None = None,
    ) -> int:
        call = self.inner.put(key, chunks, content_type, max_bytes=max_bytes)
        return await self._timed("put", call)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._timed("put_bytes", self.inner.put_bytes(key, data, content_type))

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """Timed until the stream is open: the rest goes at the reader's pace."""
        return await self._timed("get", self.inner.get(key))

    async def read(self, key: str) -> bytes:
        return await self._timed("read", self.inner.read(key))

    async def stat(self, key: str) -> tuple[int, str]:
        return await self._timed("stat", self.inner.stat(key))

    async def delete(self, key: str) -> None:
        await self._timed("delete", self.inner.delete(key))

    def url(self, key: str) -> str | None:
        return self.inner.url(key)
