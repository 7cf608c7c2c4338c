"""A deterministic asyncio event loop on virtual time.

`VirtualLoop.time()` starts at 0 and moves only when every task waits: when no callback is
ready, the loop jumps straight to its next timer instead of sleeping. `asyncio.sleep`,
`asyncio.timeout`, `wait_for` and `call_later` all work as usual, in virtual seconds, so a
week of heartbeats and idle polls takes as long as the callbacks themselves. Callbacks
run in the order they were scheduled (timers by due time, then by the order they were
set), so the same program does the same thing on every run.

There is no real I/O on it (sockets, subprocesses, threads, signals): whatever needs
the outside world raises. Waiting with nothing scheduled (every task waiting for
something that can no longer happen) is a deadlock, and raises `Deadlock`.

`run(main)` runs a coroutine on a fresh loop, as `asyncio.run` does; `clock(start)` is a
datetime clock that reads the running loop's virtual time, for code that takes a
`Clock` (the worker, the commands); `until_idle()` waits until every other task waits;
`block(seconds)` stands for a synchronous call that takes that long.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from jobkit import instants

T = TypeVar("T")

START = instants.from_epoch(1_800_000_000)  # what clock() reads at virtual time 0


class Deadlock(RuntimeError):
    """Every task waits and no timer is set: nothing can ever happen again."""


class NoRealIO(RuntimeError):
    """Real I/O, threads or signals were asked of a virtual-time loop."""


class _Selector:
    """Stands where a selector would: instead of waiting up to `timeout`, time jumps."""

    def __init__(self, loop: VirtualLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        if timeout is None:
            raise Deadlock("every task waits and no timer is set: nothing can happen again")
        if timeout > 0.0:
            loop = self._loop
            target = loop._now + timeout
            scheduled = loop._scheduled  # type: ignore[attr-defined]
            # To the timer's own instant: `now + (when - now)` can fall short by a rounding.
            if scheduled and target - 1e-9 <= scheduled[0]._when <= target + 1e-9:
                target = scheduled[0]._when
            loop._now = max(loop._now, target)
        return []

    def close(self) -> None:
        pass


class VirtualLoop(asyncio.BaseEventLoop):
    """An event loop whose `time()` is virtual: see the module's docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        self._selector = _Selector(self)
        self._clock_resolution = 1e-9
        self._tasks: dict[asyncio.Task[Any], None] = {}  # unfinished, in the order made

    def time(self) -> float:
        return self._now

    def create_task(self, coro: Any, **options: Any) -> asyncio.Task[Any]:
        task = super().create_task(coro, **options)
        self._tasks[task] = None
        task.add_done_callback(self._tasks.pop)
        return task

    def block(self, seconds: float) -> None:
        """A synchronous call that keeps the thread busy for `seconds`: time moves on, and
        nothing else runs meanwhile (what `time.sleep` does on a real loop)."""
        if seconds < 0:
            raise ValueError("time never goes back")
        self._now += seconds

    def unfinished(self) -> list[asyncio.Task[Any]]:
        """The tasks not done yet, in the order they were made (unlike `asyncio.all_tasks`,
        whose order depends on memory addresses)."""
        return [task for task in self._tasks if not task.done()]

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        raise NoRealIO("call_soon_threadsafe: there are no other threads on a virtual loop")

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> Any:  # type: ignore[override]
        raise NoRealIO("run_in_executor: there are no threads on a virtual loop")

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        raise NoRealIO("set_default_executor: there are no threads on a virtual loop")

    def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:  # type: ignore[override]
        raise NoRealIO("add_signal_handler: there are no signals on a virtual loop")

    def _make_self_pipe(self) -> None:  # pragma: no cover - BaseEventLoop never calls it
        pass


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on a fresh `VirtualLoop` to its end and return its result, as
    `asyncio.run` does: tasks still pending afterwards are cancelled and awaited."""
    loop = VirtualLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: VirtualLoop) -> None:
    pending = loop.unfinished()
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def block(seconds: float) -> None:
    """A synchronous call taking `seconds` on the running virtual loop (`VirtualLoop.block`)."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualLoop):
        raise TypeError("block() needs a VirtualLoop")
    loop.block(seconds)


async def until_idle() -> None:
    """Return once every other task waits (for a timer, an event, a future): what a test
    awaits, instead of sleeping, for whatever it set in motion to happen. Time does not move."""
    loop = asyncio.get_running_loop()
    ready = loop._ready  # type: ignore[attr-defined]
    while ready:
        await asyncio.sleep(0)


def clock(
    start: datetime = START, loop: asyncio.AbstractEventLoop | None = None
) -> Callable[[], datetime]:
    """A datetime clock reading an event loop's time: `start` plus `loop.time()` seconds.
    Without `loop`, the loop running when it is read."""
    if loop is not None:
        time = loop.time
        return lambda: start + timedelta(seconds=time())

    def now() -> datetime:
        return start + timedelta(seconds=asyncio.get_running_loop().time())

    return now
