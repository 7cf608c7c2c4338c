"""The bounded pool with real child processes: answers, progress, every limit, recycling."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from returns.result import Failure, Success

from jobkit import errors
from jobkit.local import bounded
from tests.jobkit.local import bounded_tasks as tasks

T = TypeVar("T")

# The wall clock far off: a CPU limit of 1 s takes longer than 20 s of wall time to reach
# when the machine is loaded (seen with two busy loops beside the suite). The wall limit
# has its own test.
FAST = bounded.Limits(cpu_seconds=1, memory_bytes=256 * 1024 * 1024, wall_seconds=120)


def run(body: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(body)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it is gone once its parent reaped it.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def failure(outcome: Any) -> errors.Error:
    assert isinstance(outcome, Failure), outcome
    err: errors.Error = outcome.failure()
    return err


def test_a_task_answers_from_another_process() -> None:
    async def body() -> None:
        async with bounded.Pool(workers=1, limits=FAST) as pool:
            assert await pool.run(tasks.echo, {"a": [1, 2]}) == Success({"a": [1, 2]})
            child = (await pool.run(tasks.pid)).unwrap()
            assert child != os.getpid()

    run(body())


def test_progress_reaches_the_caller_in_order() -> None:
    seen: list[tuple[int, int, str]] = []

    async def progress(current: int, total: int, message: str) -> None:
        seen.append((current, total, message))

    async def body() -> None:
        async with bounded.Pool(workers=1, limits=FAST) as pool:
            assert await pool.run(tasks.counted, 3, progress=progress) == Success(3)

    run(body())
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


def test_printing_in_the_child_does_not_break_the_protocol() -> None:
    async def body() -> None:
        async with bounded.Pool(workers=1, limits=FAST) as pool:
            assert await pool.run(tasks.chatty) == Success("still fine")

    run(body())


def test_cpu_past_the_limit_is_document_too_complex_and_takes_no_other_task() -> None:
    async def body() -> None:
        async with bounded.Pool(workers=2, limits=FAST) as pool:
            spun, napped = await asyncio.gather(pool.run(tasks.spin), pool.run(tasks.nap, 1.5))
            err = failure(spun)
            assert (err.code, err.retryable, err.context["limit"]) == (
                "document_too_complex",
                False,
                "cpu",
            )
            assert isinstance(napped, Success)  # its neighbour's death cost it nothing
            again = await asyncio.gather(pool.run(tasks.echo, 1), pool.run(tasks.echo, 2))
            assert list(again) == [Success(1), Success(2)]
            assert pool.started == 3  # the killed child was replaced, its neighbour kept

    run(body())


def test_each_task_gets_its_own_cpu_allowance() -> None:
    # The kernel counts a process's total CPU time; the child moves the limit up per task,
    # so tasks that each stay under the allowance never add up to a kill.
    async def body() -> None:
        limits = bounded.Limits(cpu_seconds=1, wall_seconds=20, tasks_per_child=100)
        async with bounded.Pool(workers=1, limits=limits) as pool:
            for _ in range(3):
                assert (await pool.run(tasks.hog, 64)) == Success(64)
            assert pool.started == 1

    run(body())


def test_memory_past_the_limit_is_document_too_complex() -> None:
    async def body() -> None:
        async with bounded.Pool(workers=1, limits=FAST) as pool:
            err = failure(await pool.run(tasks.hog, 1024))
            assert (err.code, err.retryable, err.context["limit"]) == (
                "document_too_complex",
                False,
                "memory",
            )
            assert await pool.run(tasks.hog, 16) == Success(16)

    run(body())


def test_the_wall_clock_limit_kills_a_stuck_child_and_is_transient() -> None:
    async def body() -> None:
        limits = bounded.Limits(cpu_seconds=1, wall_seconds=0.5)
        async with bounded.Pool(workers=1, limits=limits) as pool:
            first = (await pool.run(tasks.pid)).unwrap()
            err = failure(await pool.run(tasks.nap, 30))
            assert (err.code, err.retryable, err.context["limit"]) == ("timeout", True, "wall")
            await asyncio.sleep(0.2)
            assert not alive(first)

    run(body())


def test_a_child_that_dies_otherwise_is_a_transient_crash() -> None:
    async def body() -> None:
        async with bounded.Pool(workers=1, limits=FAST) as pool:
            err = failure(await pool.run(tasks.die))
            assert (err.code, err.retryable) == ("worker_crashed", True)
            assert await pool.run(tasks.echo, 1) == Success(1)

    run(body())


def test_an_exception_in_the_task_is_a_bug_raised_with_its_traceback() -> None:
    async def body() -> None:
        async with bounded.Pool(workers=1, limits=FAST) as pool:
            with pytest.raises(bounded.TaskFailed, match=r"ValueError(.|\n)*boom"):
                await pool.run(tasks.fail, "boom")
            assert await pool.run(tasks.echo, 2) == Success(2)

    run(body())


def test_children_are_recycled_after_their_tasks() -> None:
    async def body() -> list[int]:
        limits = bounded.Limits(cpu_seconds=1, wall_seconds=20, tasks_per_child=2)
        async with bounded.Pool(workers=1, limits=limits) as pool:
            return [(await pool.run(tasks.pid)).unwrap() for _ in range(5)]

    pids = run(body())
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_no_more_tasks_run_at_once_than_there_are_workers() -> None:
    async def body() -> list[tuple[int, float, float]]:
        async with bounded.Pool(workers=2, limits=FAST) as pool:
            answers = await asyncio.gather(*(pool.run(tasks.nap, 0.3) for _ in range(6)))
            return [answer.unwrap() for answer in answers]

    spans = run(body())
    for _, start, _ in spans:
        running = sum(1 for _, s, e in spans if s <= start < e)
        assert running <= 2
    assert len({pid for pid, _, _ in spans}) == 2


def test_a_cancelled_task_kills_its_child() -> None:
    async def body() -> None:
        async with bounded.Pool(workers=1, limits=FAST) as pool:
            child = (await pool.run(tasks.pid)).unwrap()
            task = asyncio.create_task(pool.run(tasks.nap, 30))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.3)
            assert not alive(child)
            assert await pool.run(tasks.echo, 3) == Success(3)

    run(body())


def test_closing_the_pool_ends_every_child() -> None:
    async def body() -> list[int]:
        pool = bounded.Pool(workers=2, limits=FAST)
        answers = await asyncio.gather(pool.run(tasks.nap, 0.2), pool.run(tasks.nap, 0.2))
        await pool.close()
        with pytest.raises(errors.JobkitError):
            await pool.run(tasks.echo, 1)
        return [answer.unwrap()[0] for answer in answers]

    for pid in run(body()):
        assert not alive(pid)


def test_in_thread_runs_the_same_calls_without_limits() -> None:
    seen: list[int] = []

    async def progress(current: int, total: int, message: str) -> None:
        seen.append(current)

    async def body() -> None:
        runner = bounded.InThread()
        assert await runner.run(tasks.counted, 2, progress=progress) == Success(2)
        assert (await runner.run(tasks.pid)).unwrap() == os.getpid()

    run(body())
    assert seen == [1, 2]


@pytest.mark.parametrize(
    "changes",
    [{"cpu_seconds": 0.5}, {"memory_bytes": 1024}, {"wall_seconds": 0}, {"tasks_per_child": 0}],
)
def test_bad_limits_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigurationError):
        bounded.Limits(**changes)
