"""Push dispatch against pull, on the emulators: jobs/s, and what each job costs in Firestore
reads and writes and in Cloud Tasks tasks.

- `push_emulator`: `jobkit`'s app in push mode under uvicorn; each submission rings (one
  task each) and the Cloud Tasks emulator delivers the tasks to `POST /internal/dispatch`.
  The emulator delivers one task at a time per queue (Cloud Tasks delivers up to the
  queue's max concurrent dispatches), so this is one dispatch at a time, end to end.
- `push_concurrent`: the same app and rings (the queue paused, so that the emulator holds
  them); the benchmark delivers the doorbells itself, `CONCURRENCY` at once, as Cloud Tasks
  would: the dispatch endpoint's own throughput.
- `pull`: the pull worker (`concurrency=CONCURRENCY`) draining the same jobs.

Jobs are no-ops: what is measured is dispatch, not work. Run: `python benchmarks/dispatch.py
[--runs N]`; it starts the Firestore emulator, fake-gcs-server and the Cloud Tasks emulator
(from JOBKIT_TASKS_EMULATOR or .venv-tasks-emulator / .nox/tasks-emulator) unless
FIRESTORE_EMULATOR_HOST, STORAGE_EMULATOR_HOST and CLOUD_TASKS_EMULATOR_HOST are set. The
emulators are local processes, not Google's services: the counts are exact, the speeds say
how much each mode adds on top of the store's round trips, nothing of production's.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from returns.result import Success

import jobkit_gcp
from benchmarks import _harness
from jobkit import jobs, pipeline, plugins, registry
from jobkit.worker.worker import WorkerConfig
from jobkit_gcp.firestore import FirestoreJobStore
from jobkit_http import settings as settings_module
from jobkit_http.app import create_app

JOBS = 200
CONCURRENCY = 16
SECRET = "benchmark-dispatch-secret-0123456789"


def _noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


TYPES = registry.register(plugins.discover(), registry.JobType(name="noop", pipeline=_noop))


def _names() -> tuple[str, str]:
    from google.cloud import storage

    name = f"bench-{uuid.uuid4().hex[:12]}"
    storage.Client().create_bucket(name)
    return name, name


async def _queue(project: str, *, paused: bool) -> str:
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import (
        CloudTasksGrpcAsyncIOTransport,
    )

    name = f"projects/{project}/locations/here/queues/bench"
    channel = grpc.aio.insecure_channel(os.environ["CLOUD_TASKS_EMULATOR_HOST"])
    client = tasks_v2.CloudTasksAsyncClient(
        transport=CloudTasksGrpcAsyncIOTransport(channel=channel)
    )
    await client.create_queue(parent=name.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(name=name))
    if paused:
        await client.pause_queue(name=name)
    await client.transport.close()  # type: ignore[no-untyped-call]
    return name


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _finished(config: jobkit_gcp.Config, count: int) -> None:
    """Wait until `count` jobs have completed, reading through a store of its own."""
    async with jobkit_gcp.runtime(config, types=TYPES) as watcher:
        while True:
            counts = await watcher.store.counts(watcher.clock(), ["default"])
            live = counts["default"]
            if live.pending == 0 and live.processing == 0:
                return
            await asyncio.sleep(0.05)


async def _push(deliver: bool) -> dict[str, float]:
    project, bucket = _names()
    queue = await _queue(project, paused=deliver)
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        environ = {
            "JOBKIT_BACKEND": "gcp",
            "JOBKIT_GCP_PROJECT": project,
            "JOBKIT_GCS_BUCKET": bucket,
            "JOBKIT_DISPATCH": "push",
            "JOBKIT_TASKS_QUEUE": queue,
            "JOBKIT_DISPATCH_URL": f"http://127.0.0.1:{port}",
            "JOBKIT_DISPATCH_SECRET": SECRET,
            "CLOUD_TASKS_EMULATOR_HOST": os.environ["CLOUD_TASKS_EMULATOR_HOST"],
            "JOBKIT_CONCURRENCY": str(CONCURRENCY),
            "JOBKIT_WEB": "false",
            "JOBKIT_DATA": data,
            "JOBKIT_LOG_LEVEL": "WARNING",
            "JOBKIT_GAUGE_SECONDS": "3600",
        }
        app = create_app(settings_module.from_env(environ), types=TYPES)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
            )
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        runtime = app.state.service.runtime
        store = runtime.raw_store
        assert isinstance(store, FirestoreJobStore)
        doorbell = runtime.doorbell
        config = jobkit_gcp.Config(project=project, bucket=bucket)
        started = time.perf_counter()
        for offset in range(0, JOBS, 50):
            batch = [runtime.submit({"type": "noop"}) for _ in range(min(50, JOBS - offset))]
            for outcome in await asyncio.gather(*batch):
                outcome.unwrap()
        submitted = (store.usage.reads, store.usage.writes)
        if deliver:
            await _deliver(f"http://127.0.0.1:{port}", JOBS)
        await _finished(config, JOBS)
        elapsed = time.perf_counter() - started
        reads, writes = store.usage.reads - submitted[0], store.usage.writes - submitted[1]
        tasks = doorbell.rung
        server.should_exit = True
        await serving
    return {
        "jobs/s": JOBS / elapsed,
        "dispatch reads/job": reads / JOBS,
        "dispatch writes/job": writes / JOBS,
        "tasks/job": tasks / JOBS,
    }


async def _deliver(base: str, count: int) -> None:
    """Cloud Tasks' part: `count` deliveries, CONCURRENCY at once, each sent again while it
    asks to be (503)."""
    left = list(range(count))
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def one() -> None:
            while left:
                left.pop()
                while True:
                    answer = await http.post(
                        "/internal/dispatch", headers={"X-Jobkit-Dispatch-Secret": SECRET}
                    )
                    if answer.status_code == 200:
                        break
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(one() for _ in range(CONCURRENCY)))


def push_emulator() -> dict[str, float]:
    """200 no-op jobs, submitted and dispatched by the Cloud Tasks emulator (one at a time)."""
    return asyncio.run(_push(deliver=False))


def push_concurrent() -> dict[str, float]:
    """200 no-op jobs, their doorbells delivered 16 at a time by the benchmark."""
    return asyncio.run(_push(deliver=True))


async def _pull() -> dict[str, float]:
    project, bucket = _names()
    config = jobkit_gcp.Config(project=project, bucket=bucket)
    async with jobkit_gcp.runtime(config, types=TYPES) as api:
        started = time.perf_counter()
        for offset in range(0, JOBS, 50):
            batch = [api.submit({"type": "noop"}) for _ in range(min(50, JOBS - offset))]
            for outcome in await asyncio.gather(*batch):
                outcome.unwrap()
        async with jobkit_gcp.runtime(config, types=TYPES) as worker:
            done = await worker.worker(
                WorkerConfig(concurrency=CONCURRENCY, idle_seconds=0.05)
            ).drain()
            elapsed = time.perf_counter() - started
            usage = worker.raw_store.usage  # type: ignore[attr-defined]
    assert done == JOBS, done
    return {
        "jobs/s": JOBS / elapsed,
        "dispatch reads/job": usage.reads / JOBS,
        "dispatch writes/job": usage.writes / JOBS,
        "tasks/job": 0.0,
    }


def pull() -> dict[str, float]:
    """200 no-op jobs, submitted, then drained by a pull worker (concurrency 16)."""
    return asyncio.run(_pull())


MEASURES = {"push_emulator": push_emulator, "push_concurrent": push_concurrent, "pull": pull}


@contextlib.contextmanager
def _emulators() -> Iterator[None]:
    """The emulators the environment names, or fresh ones for this run."""
    named = ("FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST")
    if all(os.environ.get(name) for name in named):
        yield
        return
    from tests.jobkit_gcp import emulators

    with emulators.running() as (firestore, gcs), tempfile.TemporaryDirectory() as logs:
        tasks = emulators.start_tasks(Path(logs), [])
        try:
            emulators.wait_ready(tasks)
            os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.address
            os.environ["STORAGE_EMULATOR_HOST"] = f"http://{gcs.address}"
            os.environ["CLOUD_TASKS_EMULATOR_HOST"] = tasks.address
            yield
        finally:
            tasks.stop()


def _main(argv: list[str]) -> Any:
    if len(argv) == 2 and argv[0] == "--once":
        return _harness.main(MEASURES, argv)
    with _emulators():
        return _harness.main(MEASURES, argv, runs=3)


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
