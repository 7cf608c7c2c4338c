"""A worker outlives Firestore going away: through a loopback proxy that is cut for a while,
`/readyz`'s probe fails while the store does not answer, and the same worker, still
running, takes the jobs submitted once it is back. (A store error that outlasts the
client's own retries is logged and waited out by the worker's loop: the simulator shows
that with writes that fail, `tests/jobkit/testing/test_simulator.py`.)"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest
from google.cloud import firestore

import jobkit_gcp
from jobkit import jobs
from jobkit.local import Runtime
from jobkit.local.blobs import FileBlobStore
from jobkit.status import COMPLETED
from jobkit.worker.worker import WorkerConfig
from tests.jobkit.local.worker_process import TYPES, SleepAnalyzer
from tests.jobkit_gcp.conftest import Emulators, unique


class Proxy:
    """TCP from a loopback port to `target`; `cut()` closes every connection and refuses
    new ones until `mend()`."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.open = True
        self._pipes: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._ends: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        sock: socket.socket = self._server.sockets[0]
        return f"127.0.0.1:{sock.getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._ends.add(writer)
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._ends.add(up_writer)
        pipes = [
            asyncio.ensure_future(_pipe(reader, up_writer)),
            asyncio.ensure_future(_pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        for pipe in pipes:
            self._pipes.discard(pipe)
        for end in (writer, up_writer):
            end.close()

    def cut(self) -> None:
        self.open = False
        for pipe in list(self._pipes):
            pipe.cancel()

    def mend(self) -> None:
        self.open = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for end in self._ends:
            end.close()
            with contextlib.suppress(Exception):
                await end.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def test_a_running_worker_outlives_firestore_going_away(
    emulators: Emulators, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = unique("outage")

    async def main() -> None:
        proxy = Proxy(emulators.firestore)
        address = await proxy.start()
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", address)
        store = jobkit_gcp.FirestoreJobStore(firestore.AsyncClient(project=project))
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulators.firestore)
        direct = jobkit_gcp.FirestoreJobStore(firestore.AsyncClient(project=project))
        blobs = FileBlobStore(tmp_path / "blobs")
        submitter = Runtime(store=direct, blobs=blobs, types=TYPES)
        runtime = Runtime(store=store, blobs=blobs, types=TYPES, analyzer=SleepAnalyzer())
        config = WorkerConfig(idle_seconds=0.1, poll_seconds=0.2, lease_seconds=30.0)
        worker = runtime.worker(config)
        running = asyncio.ensure_future(worker.run())
        try:
            first = await _done(submitter, 10.0)
            assert jobs.status(first) == COMPLETED
            proxy.cut()
            with pytest.raises(Exception):  # noqa: B017, PT011 (whatever the client raises)
                await store.ready(timeout=1.0)
            await asyncio.sleep(3.0)  # the worker's calls fail or wait meanwhile
            assert not running.done()
            proxy.mend()
            second = await _done(submitter, 60.0)  # the client reconnects, the loop goes on
            assert jobs.status(second) == COMPLETED
            await store.ready(timeout=5.0)
            assert not running.done()
        finally:
            worker.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running, 30.0)
            await proxy.close()
            await store.close()
            await direct.close()

    asyncio.run(main())


async def _done(submitter: Runtime, within: float) -> jobs.Job:
    job = (await submitter.submit({"type": "sleepy", "params": {"seconds": 0.01}})).unwrap()
    async with asyncio.timeout(within):
        while True:
            found = await submitter.get(jobs.id(job))
            assert found is not None
            if jobs.status(found) == COMPLETED:
                return found
            await asyncio.sleep(0.05)
