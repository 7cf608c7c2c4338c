"""The embedded doorbell: rings reach idle workers in other processes, lost and duplicate
rings are harmless, sockets of dead listeners are cleaned up, and a worker that listens
still honours due times and its safety-net poll."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobkit import instants, jobs, submission
from jobkit.local import Runtime
from jobkit.local.doorbell import SUFFIX, SocketDoorbell
from jobkit.status import Status
from jobkit.worker import commands
from jobkit.worker.worker import WorkerConfig
from tests.jobkit.local import doorbell_worker

HERE = Path(__file__).resolve().parent
HOUR = doorbell_worker.HOUR
TYPES = doorbell_worker.TYPES
DEADLINE = 60.0  # generous: a ring is answered in milliseconds; only a hang takes this long


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "doorbell_worker.py"), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def sockets(folder: Path) -> list[str]:
    found = folder / "doorbell"
    return sorted(p.name for p in found.iterdir()) if found.exists() else []


async def finished(runtime: Runtime, *ids: str) -> list[jobs.Job]:
    """The jobs once all are completed (polled here, in the test, not by the worker)."""
    async with asyncio.timeout(DEADLINE):
        while True:
            found = [await runtime.get(job_id) for job_id in ids]
            done = [job for job in found if job is not None]
            if len(done) == len(ids) and all(jobs.status(j) == Status.COMPLETED for j in done):
                return done
            await asyncio.sleep(0.01)


def started(job: jobs.Job) -> Any:
    return jobs.entry_started_at(jobs.history(job)[-1])


def test_a_submission_in_one_process_wakes_an_idle_worker_in_another(
    tmp_path: Path, worker_process: subprocess.Popen[str]
) -> None:
    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as runtime:
            first = (await runtime.submit({"type": "noop"})).unwrap()
            await finished(runtime, jobs.id(first))  # the worker is up and has looked
            await asyncio.sleep(0.2)  # and now sleeps: its next poll is an hour away
            # Due at once, one slot: the store's order decides, whatever the rings say.
            low, high = await runtime.submit_many(
                [{"type": "noop", "priority": 10}, {"type": "noop", "priority": 90}]
            )
            done_low, done_high = await finished(
                runtime, jobs.id(low.unwrap()), jobs.id(high.unwrap())
            )
            assert started(done_high) < started(done_low)
            for _ in range(3):  # again and again: each ring heard, none needed twice
                await asyncio.sleep(0.05)
                job = (await runtime.submit({"type": "noop"})).unwrap()
                (done,) = await finished(runtime, jobs.id(job))
                assert len(jobs.history(done)) == 1

    asyncio.run(main())


def test_a_worker_process_wakes_for_a_scheduled_job_when_due(
    tmp_path: Path, worker_process: subprocess.Popen[str]
) -> None:
    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as runtime:
            warm = (await runtime.submit({"type": "noop"})).unwrap()
            await finished(runtime, jobs.id(warm))
            due = instants.format(runtime.clock() + timedelta(seconds=0.5))
            job = (await runtime.submit({"type": "noop", "runAt": due})).unwrap()
            (done,) = await finished(runtime, jobs.id(job))
            assert started(done) >= jobs.run_at(job)  # not before it was due

    asyncio.run(main())


def test_a_killed_listeners_socket_is_removed_by_the_next_ring(
    tmp_path: Path, worker_process: subprocess.Popen[str]
) -> None:
    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as runtime:
            job = (await runtime.submit({"type": "noop"})).unwrap()
            await finished(runtime, jobs.id(job))
            assert len(sockets(tmp_path)) == 1  # the worker's
            worker_process.send_signal(signal.SIGKILL)
            worker_process.wait(timeout=30)
            assert len(sockets(tmp_path)) == 1  # left behind by the dead process
            runtime.doorbell.ring()
            await asyncio.sleep(0)  # the ring is sent at the end of the loop's turn
            assert sockets(tmp_path) == []

    asyncio.run(main())


def test_a_worker_stopped_gracefully_removes_its_socket(
    tmp_path: Path, worker_process: subprocess.Popen[str]
) -> None:
    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as runtime:
            job = (await runtime.submit({"type": "noop"})).unwrap()
            await finished(runtime, jobs.id(job))

    asyncio.run(main())
    assert len(sockets(tmp_path)) == 1
    worker_process.send_signal(signal.SIGTERM)
    worker_process.communicate(timeout=30)
    assert sockets(tmp_path) == []


def test_rings_reach_listeners_and_duplicates_coalesce(tmp_path: Path) -> None:
    async def main() -> None:
        ringer, other = SocketDoorbell(tmp_path), SocketDoorbell(tmp_path)
        calls: list[str] = []
        heard = asyncio.Event()

        def on_ring() -> None:
            calls.append("rung")
            heard.set()

        mine = await ringer.listen(lambda: calls.append("mine"))
        listener = await other.listen(on_ring)
        try:
            for _ in range(5000):  # far more than a socket's queue holds: the rest are dropped
                ringer.ring()
            assert calls.count("mine") == 5000  # this process's listener, called back directly
            await heard.wait()
            assert calls.count("rung") == 1  # one datagram per turn of the loop: one call
            heard.clear()
            ringer.ring(
                instants.parse("2999-01-01T00:00:00.000000Z")
            )  # later: rung now all the same
            await heard.wait()
        finally:
            await listener.close()
            await mine.close()
            ringer.close()
            other.close()
        assert [p for p in tmp_path.iterdir() if p.suffix == SUFFIX] == []

    asyncio.run(main())


def test_a_ring_with_nobody_listening_or_no_loop_is_harmless(tmp_path: Path) -> None:
    bell = SocketDoorbell(tmp_path / "nowhere")
    bell.ring()  # no loop: sent at once, to nobody
    bell.close()
    assert not (tmp_path / "nowhere").exists()


def test_a_pending_ring_is_sent_on_close(tmp_path: Path) -> None:
    async def main() -> None:
        ringer, other = SocketDoorbell(tmp_path), SocketDoorbell(tmp_path)
        heard = asyncio.Event()
        listener = await other.listen(heard.set)
        try:
            ringer.ring()
            ringer.close()  # before the loop's turn ends: sent now, not lost
            await heard.wait()
        finally:
            await listener.close()

    asyncio.run(main())


def test_a_socket_nobody_reads_is_removed_and_the_others_still_rung(tmp_path: Path) -> None:
    async def main() -> None:
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(tmp_path / f"1-dead{SUFFIX}"))
        dead.close()  # as a killed process leaves it: the file, and nobody reading
        ringer, other = SocketDoorbell(tmp_path), SocketDoorbell(tmp_path)
        heard = asyncio.Event()
        listener = await other.listen(heard.set)
        try:
            ringer.ring()
            await heard.wait()
            assert not (tmp_path / f"1-dead{SUFFIX}").exists()
        finally:
            await listener.close()
            ringer.close()

    asyncio.run(main())


def test_a_folder_too_deep_for_a_socket_address_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(os.fsencode(deep)) > 108

    async def main() -> None:
        ringer, other = SocketDoorbell(deep), SocketDoorbell(deep)
        heard = asyncio.Event()
        listener = await other.listen(heard.set)
        try:
            assert len(list(deep.iterdir())) == 1
            ringer.ring()
            await heard.wait()
        finally:
            await listener.close()
            ringer.close()
            other.close()
        assert list(deep.iterdir()) == []

    asyncio.run(main())


# -- a worker in this process --------------------------------------------------------------

LISTENING = WorkerConfig(concurrency=2, idle_seconds=HOUR, poll_seconds=HOUR)


def test_an_idle_listening_worker_sleeps_until_the_next_due_time(tmp_path: Path) -> None:
    """Submitted with no ring (straight into the store), a scheduled job is still run when
    due: the worker read its due time before it went to sleep."""

    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as runtime:
            later = runtime.clock() + timedelta(seconds=0.3)
            draft = await _draft(runtime, run_at=later)
            await commands.submit(runtime.store, draft, runtime.clock())  # no ring
            worker = runtime.worker(LISTENING)
            task = asyncio.create_task(worker.run())
            try:
                (done,) = await finished(runtime, jobs.id(draft))
                assert started(done) >= later
            finally:
                worker.stop()
                await task

    asyncio.run(main())


def test_a_listening_worker_still_polls_for_what_nobody_rang(tmp_path: Path) -> None:
    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as runtime:
            worker = runtime.worker(WorkerConfig(idle_seconds=HOUR, poll_seconds=0.05))
            task = asyncio.create_task(worker.run())
            try:
                await asyncio.sleep(0.1)  # idle by now
                draft = await _draft(runtime)
                await commands.submit(runtime.store, draft, runtime.clock())  # no ring
                await finished(runtime, jobs.id(draft))
            finally:
                worker.stop()
                await task

    asyncio.run(main())


def test_a_worker_that_cannot_listen_polls_instead(tmp_path: Path) -> None:
    (tmp_path / "doorbell").write_text("not a folder")  # listening fails: OSError

    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as runtime:
            worker = runtime.worker(WorkerConfig(idle_seconds=0.05, poll_seconds=HOUR))
            task = asyncio.create_task(worker.run())
            try:
                await asyncio.sleep(0.1)
                draft = await _draft(runtime)
                await commands.submit(runtime.store, draft, runtime.clock())  # no ring
                await finished(runtime, jobs.id(draft))
            finally:
                worker.stop()
                await task

    asyncio.run(main())


async def _draft(runtime: Runtime, run_at: datetime | None = None) -> jobs.Job:
    request: dict[str, Any] = {"type": "noop"}
    if run_at is not None:
        request["runAt"] = instants.format(run_at)
    draft = submission.new_job(
        request, types=TYPES, job_id=commands.new_id(), user_id="u", now=runtime.clock()
    )
    return draft.unwrap()


def test_a_drain_never_waits_for_a_claim_already_landed(tmp_path: Path) -> None:
    """The loop a landed claim wakes must not still count it as on its way. Two drains race
    for one file (claims that win nothing); with idle sleeps an hour long, a drain that
    waited for a claim already landed would hang at its end."""

    async def main() -> None:
        async with Runtime(tmp_path, types=TYPES) as one, Runtime(tmp_path, types=TYPES) as two:
            config = WorkerConfig(concurrency=4, idle_seconds=HOUR, poll_seconds=HOUR)
            for _ in range(5):
                for outcome in await one.submit_many([{"type": "noop"}] * 100):
                    outcome.unwrap()
                async with asyncio.timeout(DEADLINE):
                    done = await asyncio.gather(one.drain(config), two.drain(config))
                assert sum(done) == 100

    asyncio.run(main())
