"""Run untrusted parsing work bounded: in child processes with CPU, memory and time limits.

Theory of operation. Parsing a document someone uploaded can cost far more than its size
suggests (a 12 KB PDF can ask for minutes of CPU and hundreds of MB). So such work never runs
in the service's process: `Pool.run(fn, *args)` sends it to a child process
(`jobkit.local.bounded_child`), one task per child at a time, and the child runs it under

- a CPU-time limit per task (`RLIMIT_CPU`, moved up by the task's allowance before each
  task): past it the kernel ends the child with `SIGXCPU`;
- an address-space limit (`RLIMIT_AS`): an allocation past it fails, the task ends in
  `MemoryError` and the child reports it, then exits;
- a wall-clock limit, kept here: past it the child is killed.

A child runs `tasks_per_child` tasks, then is replaced, so memory a parser kept returns to
the system. A child killed by a limit is replaced too; the next task starts a fresh one.
Because each child runs one task at a time, a death is always charged to the one task that
caused it: no other task is lost with it.

Outcomes are values. `run` returns `Success(fn's answer)`, or a `Failure`: the permanent
`document_too_complex` when the task went past the CPU or memory limit (the document's own
cost, so a retry cannot help); the transient `timeout` past the wall clock (a busy machine
can cause that) and the transient `worker_crashed` when the child died of anything else. An
exception raised by `fn` is a bug, not an outcome: `run` raises `TaskFailed` with the child's
traceback.

`fn` and its arguments and answer cross a pipe by pickle, so `fn` is a module-level function
(importable by the child) and its answer plain data. It is called as `fn(report, *args)`;
`report(current, total, message)` sends progress back, which `run` passes to its `progress`
callback. `InThread` runs the same calls in a thread of this process, with no limits: for
trusted documents (a library's own files, tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct
import sys
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Protocol, Self, TypeVar

import attrs
from returns.result import Failure, Result, Success

from jobkit import errors

__all__ = [
    "TOO_COMPLEX",
    "InThread",
    "Limits",
    "Pool",
    "Progress",
    "Report",
    "Runner",
    "TaskFailed",
]

T = TypeVar("T")
Progress = Callable[[int, int, str], Awaitable[None]]
Report = Callable[[int, int, str], None]

log = logging.getLogger("jobkit.local.bounded")

CHILD_MODULE: Final = "jobkit.local.bounded_child"
TOO_COMPLEX: Final = "document_too_complex"
_HEADER: Final = struct.Struct("!Q")
_STOP_SECONDS: Final = 5.0  # how long a retiring child may take to exit before it is killed
_START_SECONDS: Final = 60.0  # how long a new child may take to be ready (a loaded machine)


class TaskFailed(errors.JobkitError):
    """`fn` raised in the child: a bug in the parsing code, with the child's traceback."""


@attrs.frozen(kw_only=True)
class Limits:
    """What one task may use. `wall_seconds` None: ten times the CPU allowance plus 30 s,
    since a busy machine (and the children's lower priority) stretches CPU time on the wall
    clock; the wall limit only catches a child that is stuck, not one that is slow."""

    cpu_seconds: float = 60.0
    memory_bytes: int = 512 * 1024 * 1024
    wall_seconds: float | None = None
    tasks_per_child: int = 200

    def __attrs_post_init__(self) -> None:
        if not self.cpu_seconds >= 1:
            raise errors.ConfigurationError(f"cpu_seconds must be >= 1, got {self.cpu_seconds}")
        if self.memory_bytes < 64 * 1024 * 1024:
            raise errors.ConfigurationError("memory_bytes must be at least 64 MiB")
        if self.wall_seconds is not None and not self.wall_seconds > 0:
            raise errors.ConfigurationError(f"wall_seconds must be > 0, got {self.wall_seconds}")
        if self.tasks_per_child < 1:
            raise errors.ConfigurationError("tasks_per_child must be >= 1")

    @property
    def wall(self) -> float:
        return self.wall_seconds if self.wall_seconds is not None else 10 * self.cpu_seconds + 30


class Runner(Protocol):
    """Runs `fn(report, *args)` somewhere: in a bounded child (`Pool`) or a thread (`InThread`)."""

    async def run(
        self, fn: Callable[..., T], *args: Any, progress: Progress | None = None
    ) -> Result[T, errors.Error]: ...


class InThread:
    """`Runner` in a thread of this process, unbounded: only for documents you trust."""

    async def run(
        self, fn: Callable[..., T], *args: Any, progress: Progress | None = None
    ) -> Result[T, errors.Error]:
        loop = asyncio.get_running_loop()

        async def reported(current: int, total: int, message: str) -> None:
            if progress is not None:
                await progress(current, total, message)

        def report(current: int, total: int, message: str) -> None:
            asyncio.run_coroutine_threadsafe(reported(current, total, message), loop).result()

        return Success(await asyncio.to_thread(fn, report, *args))


class _Child:
    """One child process and the pipes to it; used by one task at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.tasks = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    async def send(self, frame: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(_HEADER.pack(len(frame)))
        stdin.write(frame)
        await stdin.drain()

    async def receive(self) -> Any:
        stdout = self.process.stdout
        assert stdout is not None
        (size,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
        return pickle.loads(await stdout.readexactly(size))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


class Pool:
    """`Runner` in up to `workers` child processes, each task under `limits`.

    Use it as `async with Pool(workers=2) as pool:`; tasks beyond `workers` wait their turn,
    so the pool is also the bound on how much parsing runs at once.
    """

    def __init__(self, *, workers: int = 2, limits: Limits | None = None) -> None:
        if workers < 1:
            raise errors.ConfigurationError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.limits = limits or Limits()
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Child] = []
        self._reaping: set[asyncio.Task[None]] = set()
        self._closed = False
        self.started = 0  # children started so far (for tests and metrics)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the idle children and wait for every child to be gone. Idempotent."""
        self._closed = True
        idle, self._idle = self._idle, []
        for child in idle:
            self._retire(child)
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)

    async def run(
        self, fn: Callable[..., T], *args: Any, progress: Progress | None = None
    ) -> Result[T, errors.Error]:
        if self._closed:
            raise errors.JobkitError("the pool is closed")
        frame = pickle.dumps((fn, args, self.limits.cpu_seconds), protocol=pickle.HIGHEST_PROTOCOL)
        async with self._slots:
            child = self._idle.pop() if self._idle else await self._start()
            keep = False
            try:
                outcome, keep = await self._task(child, frame, progress)
            finally:
                child.tasks += 1
                if keep and not self._closed and child.tasks < self.limits.tasks_per_child:
                    self._idle.append(child)
                else:
                    self._retire(child)
        return outcome

    async def _task(
        self, child: _Child, frame: bytes, progress: Progress | None
    ) -> tuple[Result[Any, errors.Error], bool]:
        """The task's outcome, and whether its child may run another task."""
        wall = self.limits.wall
        try:
            async with asyncio.timeout(wall):
                await child.send(frame)
                while True:
                    message = await child.receive()
                    match message:
                        case ("progress", int(current), int(total), str(text)):
                            if progress is not None:
                                await progress(current, total, text)
                        case ("done", answer):
                            return Success(answer), True
                        case ("memory",):
                            return Failure(self._too_complex("memory")), False
                        case ("raised", str(kind), str(trace)):
                            raise TaskFailed(f"{kind} in a bounded task:\n{trace}")
                        case _:
                            raise errors.JobkitError(f"a bounded child said {message!r}")
        except TimeoutError:
            child.kill()
            message = f"parsing the document took longer than {wall:g} s (wall clock)"
            return Failure(errors.transient("timeout", message, limit="wall")), False
        except (asyncio.IncompleteReadError, ConnectionError):
            return Failure(await self._death(child)), False
        except BaseException:  # cancelled (the attempt timed out or stopped), or a bug
            child.kill()
            raise

    async def _death(self, child: _Child) -> errors.Error:
        """Why the child died in the middle of a task."""
        try:
            async with asyncio.timeout(_STOP_SECONDS):
                code = await child.process.wait()
        except TimeoutError:
            child.kill()
            code = await child.process.wait()
        if code == -signal.SIGXCPU:
            return self._too_complex("cpu")
        log.warning("a bounded child died", extra={"pid": child.pid, "exitCode": code})
        return errors.transient(
            "worker_crashed",
            f"the process parsing the document died (exit code {code})",
            exitCode=code,
        )

    def _too_complex(self, limit: str) -> errors.Error:
        if limit == "cpu":
            detail = f"more than {self.limits.cpu_seconds:g} s of CPU time"
        else:
            detail = f"more than {self.limits.memory_bytes // (1024 * 1024)} MiB of memory"
        return errors.permanent(
            TOO_COMPLEX,
            f"the document is too complex to process: it needed {detail}",
            limit=limit,
        )

    async def _start(self) -> _Child:
        environment = dict(os.environ)
        # The child imports `fn` by name: let it find every module this process can.
        environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            CHILD_MODULE,
            str(self.limits.memory_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=environment,
        )
        child = _Child(process)
        try:
            async with asyncio.timeout(_START_SECONDS):
                ready = await child.receive()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            child.kill()
            await process.wait()
            raise errors.JobkitError(
                f"a bounded child ({sys.executable} -m {CHILD_MODULE}) did not start: "
                f"{type(exc).__name__}; its error output says why"
            ) from None
        if ready != ("ready",):
            child.kill()
            raise errors.JobkitError(f"a bounded child said {ready!r} when starting")
        self.started += 1
        return child

    def _retire(self, child: _Child) -> None:
        """Let the child go (closing its input ends it) and reap it in the background."""
        task = asyncio.create_task(_stop(child))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)


async def _stop(child: _Child) -> None:
    stdin = child.process.stdin
    if stdin is not None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            stdin.close()
    try:
        async with asyncio.timeout(_STOP_SECONDS):
            await child.process.wait()
    except TimeoutError:
        child.kill()
        await child.process.wait()
