"""The GCP backend through the emulators: what a job costs in Firestore reads and writes, and
jobs/s with one and two worker processes.

Run: `python benchmarks/gcp.py [--runs N]`. It starts the Cloud Firestore emulator and
fake-gcs-server (as the tests do) unless FIRESTORE_EMULATOR_HOST and STORAGE_EMULATOR_HOST
are set. The emulator is a single local process that holds everything in memory and is
not production: its speed says nothing of Firestore's (network round trips of a few
milliseconds, per-document write limits, billing); the read and write counts are exact.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Its folder holds `http.py`, which would shadow the stdlib's: the folder leaves the import
# path and the project's root joins it (as in `queue.py`).
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import asyncio
import contextlib
import json
import os
import subprocess
import time
import uuid
from typing import Any

from returns.result import Success

import jobkit_gcp
from benchmarks import _harness
from jobkit import jobs, pipeline, plugins, registry
from jobkit.worker.worker import WorkerConfig
from jobkit_gcp.firestore import FirestoreJobStore

SCRIPT = str(Path(__file__).resolve())
DRAIN_JOBS = 2_000
COST_JOBS = 200
DRAIN = WorkerConfig(concurrency=64, idle_seconds=0.05)


def _noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


TYPES = registry.register(plugins.discover(), registry.JobType(name="noop", pipeline=_noop))


def _config() -> jobkit_gcp.Config:
    """A fresh project and bucket: every measure starts empty."""
    from google.cloud import storage

    name = f"bench-{uuid.uuid4().hex[:12]}"
    storage.Client().create_bucket(name)
    return jobkit_gcp.Config(project=name, bucket=name)


def _usage(runtime: Any) -> Any:
    store = runtime.store
    assert isinstance(store, FirestoreJobStore)
    return store.usage


# -- what a job costs ----------------------------------------------------------------


async def _costs(count: int) -> dict[str, float]:
    """`count` jobs submitted one at a time on one instance, drained by a worker on a second,
    and polled once each on a third: the reads and writes each instance's store counted."""
    config = _config()
    async with (
        jobkit_gcp.runtime(config, types=TYPES) as api,
        jobkit_gcp.runtime(config, types=TYPES) as worker,
        jobkit_gcp.runtime(config, types=TYPES) as poller,
    ):
        ids = []
        for _ in range(count):
            ids.append(jobs.id((await api.submit({"type": "noop"})).unwrap()))
        drained = await worker.worker(WorkerConfig(concurrency=8, idle_seconds=0.05)).drain()
        assert drained == count, drained
        for job_id in ids:
            found = await poller.get(job_id)
            assert found is not None
            assert jobs.status(found) == "completed"
        submit, work, poll = _usage(api), _usage(worker), _usage(poller)
    return {
        "submit writes/job": submit.writes / count,
        "worker reads/job": work.reads / count,
        "worker writes/job": work.writes / count,
        "poll reads/job": poll.reads / count,
        "total reads/job": (submit.reads + work.reads + poll.reads) / count,
        "total writes/job": (submit.writes + work.writes + poll.writes) / count,
    }


def cost_one() -> dict[str, float]:
    """One job alone: its claim query finds only it, and the drain's last look finds none."""
    return asyncio.run(_costs(1))


def cost_batch() -> dict[str, float]:
    """200 jobs: a claim query reads several jobs at once."""
    return asyncio.run(_costs(COST_JOBS))


# -- throughput ----------------------------------------------------------------------


async def _enqueue(config: jobkit_gcp.Config, count: int, chunk: int = 200) -> float:
    async with jobkit_gcp.runtime(config, types=TYPES) as runtime:
        started = time.perf_counter()
        for offset in range(0, count, chunk):
            batch = [runtime.submit({"type": "noop"}) for _ in range(min(chunk, count - offset))]
            for outcome in await asyncio.gather(*batch):
                outcome.unwrap()
        return time.perf_counter() - started


def enqueue() -> dict[str, float]:
    """One producer, `Runtime.submit`, 200 submissions in flight: one insert each."""
    elapsed = asyncio.run(_enqueue(_config(), DRAIN_JOBS))
    return {"enqueued jobs/s": DRAIN_JOBS / elapsed}


async def _worker(project: str, bucket: str) -> None:
    config = jobkit_gcp.Config(project=project, bucket=bucket)
    async with jobkit_gcp.runtime(config, types=TYPES) as runtime:
        await runtime.ready()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # wait for "go"
        done = await runtime.worker(DRAIN).drain()
        usage = _usage(runtime)
        print(json.dumps({"done": done, "reads": usage.reads, "writes": usage.writes}), flush=True)


def _drain(processes: int) -> dict[str, float]:
    config = _config()

    async def seed() -> None:
        async with jobkit_gcp.runtime(config, types=TYPES) as runtime:
            for _ in range(0, DRAIN_JOBS, 500):
                for outcome in await runtime.submit_many([{"type": "noop"}] * 500):
                    outcome.unwrap()

    asyncio.run(seed())
    assert config.project is not None
    workers = []
    for _ in range(processes):
        worker = subprocess.Popen(
            [sys.executable, SCRIPT, "--worker", config.project, config.bucket],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != "ready":
            raise SystemExit("a worker process failed to start")
        workers.append(worker)
    started = time.perf_counter()
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    answers = []
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        answers.append(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.perf_counter() - started
    done, reads, writes = (
        sum(answer[key] for answer in answers) for key in ("done", "reads", "writes")
    )
    if done != DRAIN_JOBS:
        raise SystemExit(f"drained {done} of {DRAIN_JOBS}")
    return {
        "drained jobs/s": DRAIN_JOBS / elapsed,
        "worker reads/job": reads / DRAIN_JOBS,
        "worker writes/job": writes / DRAIN_JOBS,
    }


def drain_1() -> dict[str, float]:
    """2,000 no-op jobs, one worker process (concurrency 64), go to last completion."""
    return _drain(1)


def drain_2() -> dict[str, float]:
    """The same, two worker processes racing for the same queue head."""
    return _drain(2)


MEASURES = {
    "cost_one": cost_one,
    "cost_batch": cost_batch,
    "enqueue": enqueue,
    "drain_1": drain_1,
    "drain_2": drain_2,
}


@contextlib.contextmanager
def _emulators() -> Any:
    """The emulators the environment names, or fresh ones for this run."""
    if os.environ.get("FIRESTORE_EMULATOR_HOST") and os.environ.get("STORAGE_EMULATOR_HOST"):
        yield
        return
    from tests.jobkit_gcp import emulators

    with emulators.running() as (firestore, gcs):
        os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.address
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://{gcs.address}"
        yield


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        asyncio.run(_worker(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "--once":
        raise SystemExit(_harness.main(MEASURES, sys.argv[1:]))
    else:
        with _emulators():
            raise SystemExit(_harness.main(MEASURES, sys.argv[1:], runs=3))
