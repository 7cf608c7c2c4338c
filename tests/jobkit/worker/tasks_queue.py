"""A queue of doorbells on the virtual-time loop, delivered as Cloud Tasks delivers tasks:
each ring is a task due at its time; a delivery sends it to a dispatcher, several at once,
and sends it again later when the dispatch asks for that (`Outcome.again`). It counts what
waits (`ports.QueuedRings`), so the dispatcher's sweep can be tested against it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from jobkit import instants
from jobkit.testing import loop as virtual
from jobkit.worker.dispatch import Dispatcher, Outcome
from tests.jobkit.worker.support import NOW

RETRY_SECONDS = 0.05  # how long a task asking to come again waits


class Listening:
    async def close(self) -> None:
        return None


class TasksQueue:
    """`ports.Doorbell` and `ports.QueuedRings`: `tasks` holds the due time of each waiting
    task; `rung` every ring ever made (None: now)."""

    def __init__(self) -> None:
        self.tasks: list[datetime] = []
        self.rung: list[datetime | None] = []
        self.outcomes: list[Outcome] = []

    def ring(self, at: datetime | None = None) -> None:
        self.rung.append(at)
        try:
            now = NOW()
        except RuntimeError:  # rung before the loop runs: at its start
            now = virtual.START
        self.tasks.append(at or now)

    async def listen(self, on_ring: Callable[[], None]) -> Listening:
        return Listening()  # push dispatch: nobody pulls

    async def waiting(self, until: datetime) -> int:
        return sum(1 for due in self.tasks if due <= until)

    def lose(self) -> int:
        """Every waiting task is lost (a purged queue); how many there were."""
        lost = len(self.tasks)
        self.tasks.clear()
        return lost

    async def deliver(
        self,
        dispatchers: list[Dispatcher],
        done: Callable[[], bool],
        *,
        concurrency: int = 8,
        timeout: float = 5.0,
    ) -> None:
        """Deliver the due tasks, round-robin over `dispatchers`, at most `concurrency` at
        once, until `done()`; a task whose dispatch asks to come again is queued again."""
        running: set[asyncio.Task[None]] = set()
        turn = 0

        async def send(dispatcher: Dispatcher) -> None:
            outcome = await dispatcher.dispatch()
            self.outcomes.append(outcome)
            if outcome.again:
                self.tasks.append(instants.plus(NOW(), RETRY_SECONDS))

        async with asyncio.timeout(timeout):
            while not done():
                now = NOW()
                due = sorted(at for at in self.tasks if at <= now)
                while due and len(running) < concurrency:
                    self.tasks.remove(due.pop(0))
                    task = asyncio.create_task(send(dispatchers[turn % len(dispatchers)]))
                    turn += 1
                    running.add(task)
                    task.add_done_callback(running.discard)
                await asyncio.sleep(0.001)
            await asyncio.gather(*running)
