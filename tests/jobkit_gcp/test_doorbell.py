"""The Firestore doorbell on the emulator: a listener on the head of the pending queue wakes
idle workers in other processes, and the store reads the head instead of Firestore."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from google.cloud import firestore, storage

import jobkit_gcp
from jobkit import instants, jobs
from jobkit.status import PENDING
from jobkit_gcp import backend
from jobkit_gcp.firestore_doorbell import FirestoreDoorbell
from tests.jobkit.conformance import T0, at, new
from tests.jobkit.local import worker_process
from tests.jobkit.local.test_crash import stop
from tests.jobkit_gcp.conftest import Emulators, unique

ROOT = Path(__file__).resolve().parents[2]


async def _heard(rings: asyncio.Event, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            await rings.wait()
    except TimeoutError:
        return False
    rings.clear()
    return True


def test_a_write_by_another_instance_rings_and_moves_the_head(emulators: Emulators) -> None:
    project = unique("bell")

    async def main() -> None:
        store = jobkit_gcp.FirestoreJobStore(firestore.AsyncClient(project=project))
        other = jobkit_gcp.FirestoreJobStore(firestore.AsyncClient(project=project))
        bell = FirestoreDoorbell(firestore.Client(project=project), queues=None)
        store.head = bell.head
        rings = asyncio.Event()
        listener = await bell.listen(rings.set)
        try:
            assert await _heard(rings, 10.0)  # the first snapshot: an empty queue
            assert bell.head.first() == (True, None)
            reads = store.usage.reads
            assert await store.claimable(T0, None, 10) == []  # not sent: nothing is pending
            assert store.usage.reads == reads
            job = new(1)  # due at T0
            assert await other.insert(job)
            assert await _heard(rings, 5.0)
            assert bell.head.first() == (True, instants.format(jobs.run_at(job)))
            assert await store.claimable(at(5), None, 10) == [job]  # due: read
            assert store.usage.reads == reads + 1
            assert await store.claimable(at(-5), None, 10) == []  # not yet due: not sent
            assert store.usage.reads == reads + 1
            assert await store.next_wakeup(None) == jobs.run_at(job)  # no query at all
            assert store.usage.reads == reads + 1
        finally:
            await listener.close()
            assert bell.head.first() == (False, None)  # nobody listens: the store reads
            await store.close()
            await other.close()

    asyncio.run(main())


def test_own_writes_count_before_the_listener_confirms_them(emulators: Emulators) -> None:
    """A submission followed at once by a look in the same process finds its job, even if the
    listener has not heard of it yet."""
    project = unique("bell")

    async def main() -> None:
        store = jobkit_gcp.FirestoreJobStore(firestore.AsyncClient(project=project))
        bell = FirestoreDoorbell(firestore.Client(project=project), queues=["default"])
        store.head = bell.head
        rings = asyncio.Event()
        listener = await bell.listen(rings.set)
        try:
            assert await _heard(rings, 10.0)
            skipped = store.skipped
            for n in range(20):
                job = new(n)
                assert jobs.status(job) == PENDING
                assert await store.insert(job)
                found = await store.claimable(at(9), ["default"], 50)
                assert jobs.id(job) in {jobs.id(one) for one in found}
            assert store.skipped == skipped
        finally:
            await listener.close()
            await store.close()

    asyncio.run(main())


def test_an_idle_worker_in_another_process_starts_a_new_job_at_once(
    emulators: Emulators, tmp_path: Path
) -> None:
    """The worker looks at the store once a minute when idle: only the doorbell can start the
    job within seconds."""
    name = unique("bell")
    storage.Client().create_bucket(name)
    log = tmp_path / "worker.log"
    with log.open("a") as errors:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.jobkit_gcp.worker_process", name, name, "--idle"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=ROOT,
        )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready", log.read_text()[-2000:]
        time.sleep(2.0)  # its first looks are done: it sleeps

        async def main() -> float:
            config = backend.Config(project=name, bucket=name)
            async with jobkit_gcp.runtime(config, types=worker_process.TYPES, listen=False) as rt:
                job = (await rt.submit({"type": "sleepy", "params": {"seconds": 0.01}})).unwrap()
                submitted = time.monotonic()
                while time.monotonic() - submitted < 30:
                    found = await rt.get(jobs.id(job))
                    assert found is not None
                    if jobs.status(found) != PENDING:
                        return time.monotonic() - submitted
                    await asyncio.sleep(0.05)
                raise AssertionError("the idle worker did not start the job")

        started = asyncio.run(main())
        assert started < 10.0, log.read_text()[-2000:]  # its poll would take 60 s
    finally:
        stop([worker])
