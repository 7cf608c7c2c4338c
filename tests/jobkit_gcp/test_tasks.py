"""The Cloud Tasks doorbell against the Cloud Tasks emulator, with the real client on an
insecure channel: a ring becomes a task that calls the dispatch URL at its time (not
before), with the secret header and no job data; what waits is counted; a ring the queue
refuses is dropped, not raised; rings still being created at close are sent first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import grpc
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport

from jobkit_gcp import tasks
from tests.jobkit_gcp.conftest import unique
from tests.loopback import Loopback, Quiet

SECRET = "a-secret-of-enough-length"


@attrs.frozen
class Hit:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver(Loopback):
    """Where the doorbells go: records each request and answers 200."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        receiver = self

        class Handler(Quiet):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                receiver.hits.append(
                    Hit(time.time(), self.path, dict(self.headers), self.rfile.read(size))
                )
                self.reply(200)

        super().__init__(Handler)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def make_queue(emulator: str) -> str:
    name = f"projects/{unique('tasks')}/locations/here/queues/doorbells"

    async def create() -> None:
        client = tasks_v2.CloudTasksAsyncClient(
            transport=CloudTasksGrpcAsyncIOTransport(channel=grpc.aio.insecure_channel(emulator))
        )
        parent = name.rsplit("/queues/", 1)[0]
        await client.create_queue(parent=parent, queue=tasks_v2.Queue(name=name))
        await client.transport.close()  # type: ignore[no-untyped-call]

    asyncio.run(create())
    return name


def config(emulator: str, queue: str, url: str) -> tasks.TasksConfig:
    return tasks.TasksConfig(
        queue=queue,
        url=url,
        service_account="dispatch@test-project.iam.gserviceaccount.com",
        secret=SECRET,
        emulator_host=emulator,
    )


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_ring_calls_the_dispatch_endpoint_at_its_time_with_the_secret_and_no_job_data(
    tasks_emulator: str, receiver: Receiver
) -> None:
    queue = make_queue(tasks_emulator)
    rung_at = time.time()

    async def main() -> int:
        async with tasks.CloudTasksDoorbell(
            config(tasks_emulator, queue, receiver.base_url)
        ) as bell:
            bell.ring(datetime.now(UTC) + timedelta(seconds=2))
            bell.ring(None)
            await asyncio.sleep(0.5)
            return bell.rung

    assert asyncio.run(main()) == 2
    wait_for(lambda: len(receiver.hits) == 2, 10)
    now, later = receiver.hits
    assert now.at - rung_at < 1.5
    assert later.at - rung_at >= 2.0  # not before its time
    for hit in receiver.hits:
        assert hit.path == "/internal/dispatch"
        assert hit.headers["X-Jobkit-Dispatch-Secret"] == SECRET
        assert hit.body == b"{}"


def test_waiting_counts_the_tasks_due_by_a_time(tasks_emulator: str, receiver: Receiver) -> None:
    queue = make_queue(tasks_emulator)

    async def main() -> tuple[int, int, int]:
        async with tasks.CloudTasksDoorbell(
            config(tasks_emulator, queue, receiver.base_url)
        ) as bell:
            now = datetime.now(UTC)
            for minutes in (10, 10, 20):
                bell.ring(now + timedelta(minutes=minutes))
            await asyncio.sleep(0.5)
            return (
                await bell.waiting(now),
                await bell.waiting(now + timedelta(minutes=15)),
                await bell.waiting(now + timedelta(hours=1)),
            )

    assert asyncio.run(main()) == (0, 2, 3)


def test_a_ring_the_queue_refuses_is_dropped_and_counted(
    tasks_emulator: str, receiver: Receiver
) -> None:
    missing = f"projects/{unique('tasks')}/locations/here/queues/none"

    async def main() -> tuple[int, int]:
        async with tasks.CloudTasksDoorbell(
            config(tasks_emulator, missing, receiver.base_url)
        ) as bell:
            bell.ring(None)
            await asyncio.sleep(0.5)
            return bell.rung, bell.failed

    assert asyncio.run(main()) == (0, 1)


def test_rings_made_just_before_closing_are_sent(tasks_emulator: str, receiver: Receiver) -> None:
    queue = make_queue(tasks_emulator)

    async def main() -> int:
        async with tasks.CloudTasksDoorbell(
            config(tasks_emulator, queue, receiver.base_url)
        ) as bell:
            for _ in range(40):  # more than one batch
                bell.ring(None)
        return bell.rung

    assert asyncio.run(main()) == 40
    wait_for(lambda: len(receiver.hits) == 40, 20)
