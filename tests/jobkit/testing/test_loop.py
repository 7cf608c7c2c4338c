"""The virtual-time event loop: timers fire in order at their virtual instants, asyncio's
timeouts work on it, time moves only when every task waits, and it is deterministic."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest

from jobkit import instants
from jobkit.testing import loop as virtual


def test_time_jumps_to_the_next_timer_without_waiting() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen = [loop.time()]
        await asyncio.sleep(3600.0)
        seen.append(loop.time())
        await asyncio.sleep(0.25)
        seen.append(loop.time())
        return seen

    started = time.perf_counter()
    assert virtual.run(main()) == [0.0, 3600.0, 3600.25]
    assert time.perf_counter() - started < 5.0  # an hour of virtual time, not of real time


def test_timers_fire_in_due_order_and_ties_in_the_order_they_were_set() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []

        def fire(name: str) -> None:
            fired.append((name, loop.time()))

        for name, delay in [("c", 3.0), ("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("b3", 2.0)]:
            loop.call_later(delay, fire, name)
        await asyncio.sleep(10.0)
        return fired

    assert virtual.run(main()) == [("a", 1.0), ("b1", 2.0), ("b2", 2.0), ("b3", 2.0), ("c", 3.0)]


def test_a_sleep_of_zero_yields_to_ready_tasks_without_moving_time() -> None:
    async def main() -> list[str]:
        order: list[str] = []

        async def other() -> None:
            order.append("other")

        task = asyncio.create_task(other())
        order.append("before")
        await asyncio.sleep(0)
        order.append("after")
        await task
        assert asyncio.get_running_loop().time() == 0.0
        return order

    assert virtual.run(main()) == ["before", "other", "after"]


def test_timeouts_strike_at_their_virtual_instant() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen: list[float] = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.sleep(60.0)
        seen.append(loop.time())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), 2.5)
        seen.append(loop.time())
        assert await asyncio.wait_for(asyncio.sleep(1.0, "done"), 2.0) == "done"
        seen.append(loop.time())
        return seen

    assert virtual.run(main()) == [5.0, 7.5, 8.5]


def test_a_deadlock_is_an_error_not_a_hang() -> None:
    async def main() -> None:
        await asyncio.Event().wait()  # nobody will ever set it, and no timer is pending

    with pytest.raises(virtual.Deadlock):
        virtual.run(main())


def test_real_io_and_threads_are_refused() -> None:
    async def threads() -> None:
        await asyncio.to_thread(time.sleep, 0)

    async def sockets() -> None:
        left, right = socket.socketpair()
        try:
            await asyncio.get_running_loop().sock_recv(left, 1)
        finally:
            left.close()
            right.close()

    with pytest.raises(virtual.NoRealIO):
        virtual.run(threads())
    with pytest.raises(NotImplementedError):
        virtual.run(sockets())


def test_tasks_left_pending_are_cancelled_when_the_run_ends() -> None:
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(1e9)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        task = asyncio.create_task(forever())
        await asyncio.sleep(1.0)
        assert not task.done()

    virtual.run(main())
    assert cancelled == [True]


def test_the_clock_reads_virtual_time_from_its_start() -> None:
    start = instants.from_epoch(1_900_000_000)

    async def main() -> list[float]:
        now = virtual.clock(start)
        bound = virtual.clock(start, asyncio.get_running_loop())
        first = now()
        await asyncio.sleep(90.5)
        assert bound() == now()
        return [instants.seconds_between(start, first), instants.seconds_between(start, now())]

    assert virtual.run(main()) == [0.0, 90.5]


def _chatter(seed: int) -> list[tuple[int, float]]:
    """Many tasks sleeping random amounts and waking each other: a trace of who ran when."""

    async def main() -> list[tuple[int, float]]:
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        trace: list[tuple[int, float]] = []
        events = [asyncio.Event() for _ in range(8)]

        async def actor(n: int) -> None:
            for _ in range(20):
                await asyncio.sleep(rng.choice([0.0, 0.001, rng.uniform(0.0, 3.0)]))
                trace.append((n, loop.time()))
                events[rng.randrange(8)].set()
                try:
                    async with asyncio.timeout(rng.uniform(0.0, 1.0)):
                        await events[n].wait()
                except TimeoutError:
                    pass
                events[n].clear()

        await asyncio.gather(*(actor(n) for n in range(8)))
        return trace

    return virtual.run(main())


def test_the_same_program_runs_the_same_way_every_time() -> None:
    assert _chatter(1) == _chatter(1)
    assert _chatter(1) != _chatter(2)
