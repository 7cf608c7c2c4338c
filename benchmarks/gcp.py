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
from jobkit import effects, jobs, pipeline, plugins, registry
from jobkit.local.offline import OfflinePdfAnalyzer
from jobkit.worker.worker import WorkerConfig, utc_now
from jobkit_gcp.firestore import FirestoreJobStore
from jobkit_gcp.firestore_doorbell import FirestoreDoorbell
from jobkit_gcp.firestore_feed import FirestoreChangeFeed
from jobkit_http import samples

SCRIPT = str(Path(__file__).resolve())
# JOBKIT_FIRESTORE_LISTEN=false: no listeners (the worker polls, readers poll the store), to
# compare with.
LISTEN = os.environ.get("JOBKIT_FIRESTORE_LISTEN", "true") != "false"
# JOBKIT_FAIR_CLAIMING=false: submissions without turns (no turn queries), to compare with.
FAIR = os.environ.get("JOBKIT_FAIR_CLAIMING", "true") != "false"
DRAIN_JOBS = 2_000
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
    store = runtime.raw_store
    assert isinstance(store, FirestoreJobStore)
    return store.usage


def _listened(runtime: Any) -> int:
    """The reads its listeners cost: the doorbell's heads, the change feed's documents."""
    bell, feed = runtime.doorbell, runtime.changes
    heads = bell.snapshots if isinstance(bell, FirestoreDoorbell) else 0
    return heads + (feed.reads if isinstance(feed, FirestoreChangeFeed) else 0)


# -- what a job costs ----------------------------------------------------------------


def _wait(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    """A job of `seconds` (its analyzer sleeps), reporting progress once as it starts."""
    yield effects.ReportProgress(current=0, total=1, message="waiting")
    yield effects.Analyze(
        key=f"sleep/{jobs.params(job)['seconds']}", content_type="", instructions=""
    )
    return Success(pipeline.Completion())


class _Sleeps:
    async def analyze(self, effect: effects.Analyze, progress: Any) -> Any:
        await asyncio.sleep(float(effect.key.split("/")[1]))
        return Success(effects.Analysis(model="sleep", output={}))


WAIT = registry.JobType(name="wait", pipeline=_wait)
ALL_TYPES = registry.register(TYPES, WAIT)


async def _lifecycle(count: int, kind: str) -> dict[str, float]:
    """`count` jobs one at a time, as a service sees them: submitted on an API instance,
    run by an idle serving worker on another (woken by its doorbell), and polled once on
    the API instance when done. Every read and write of both instances, listeners too."""
    config = _config()
    sample = Path(samples.__file__).with_name("sample.pdf").read_bytes()
    async with (
        jobkit_gcp.runtime(config, types=ALL_TYPES, listen=LISTEN, fair=FAIR) as api,
        jobkit_gcp.runtime(config, types=ALL_TYPES, listen=LISTEN, fair=FAIR) as host,
    ):
        host.analyzer = OfflinePdfAnalyzer(host.blobs)
        worker = host.worker(WorkerConfig(concurrency=8))
        running = asyncio.ensure_future(worker.run())
        await asyncio.sleep(1.0)  # idle: its first looks are done
        service = _service(api)
        before = (_usage(api).reads, _usage(api).writes, _usage(host).reads, _usage(host).writes)
        listened = (_listened(api), _listened(host))
        for _ in range(count):
            if kind == "pdf":
                job = (
                    await api.submit(
                        {"type": "pdf-analysis"}, document=sample, filename="sample.pdf"
                    )
                ).unwrap()
            else:
                job = (await api.submit({"type": "noop"})).unwrap()
            finished = worker.finished
            while worker.finished == finished:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.3)  # the worker goes idle again
            polled = await service.polled(jobs.id(job), "local") or await api.get(jobs.id(job))
            assert polled is not None
            assert jobs.status(polled) == "completed", polled
        worker.stop()
        await running
        api_reads = _usage(api).reads - before[0]
        api_writes = _usage(api).writes - before[1]
        host_reads = _usage(host).reads - before[2]
        host_writes = _usage(host).writes - before[3]
        api_listened = _listened(api) - listened[0]
        host_listened = _listened(host) - listened[1]
    return {
        "writes/job": (api_writes + host_writes) / count,
        "reads/job (store)": (api_reads + host_reads) / count,
        "reads/job (doorbell)": host_listened / count,
        "reads/job (status poll, feed)": api_listened / count,
        "reads/job (all)": (api_reads + host_reads + api_listened + host_listened) / count,
    }


def _service(runtime: Any) -> Any:
    """The API's service object over `runtime`, for its status reads (no HTTP)."""
    from jobkit_http.service import Service
    from jobkit_http.settings import Settings

    return Service(
        runtime=runtime,
        settings=Settings(),
        authenticator=None,  # type: ignore[arg-type]
        clock=utc_now,
        metrics=None,  # type: ignore[arg-type]
    )


def cost_noop() -> dict[str, float]:
    """20 no-op jobs, one at a time, each polled once when done."""
    return asyncio.run(_lifecycle(20, "noop"))


def cost_pdf() -> dict[str, float]:
    """20 PDF jobs (the bundled 3-page sample, the offline analyzer), each polled once."""
    return asyncio.run(_lifecycle(20, "pdf"))


async def _polling(client: str, count: int, seconds: float) -> dict[str, float]:
    """`count` jobs of `seconds` each, polled on the API instance from submission to the
    end as a client does: `readme`, `?wait=25` with `If-None-Match` (the long-poll), or
    `naive`, a plain poll every 2 s. The API instance's reads: its store and its listeners."""
    config = _config()
    options: dict[str, Any] = {"types": ALL_TYPES, "listen": LISTEN, "fair": FAIR}
    async with (
        jobkit_gcp.runtime(config, analyzer=_Sleeps(), **options) as api,
        jobkit_gcp.runtime(config, analyzer=_Sleeps(), **options) as host,
    ):
        running = asyncio.ensure_future(host.worker(WorkerConfig(concurrency=8)).run())
        service = _service(api)
        reads, listened = _usage(api).reads, _listened(api)
        polls = 0
        for _ in range(count):
            job = (await api.submit({"type": "wait", "params": {"seconds": seconds}})).unwrap()
            job_id = jobs.id(job)
            while jobs.status(job) not in ("completed", "failed"):
                polls += 1
                if client == "readme":
                    tag = f'"v{jobs.version(job)}"'
                    found = await service.polled(job_id, "local") or await api.get(job_id)
                    assert found is not None
                    job = await service.wait_for_change(found, tag, 25.0)
                else:
                    await asyncio.sleep(2.0)
                    found = await service.polled(job_id, "local") or await api.get(job_id)
                    assert found is not None
                    job = found
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        store_reads = _usage(api).reads - reads
        feed_reads = _listened(api) - listened
    return {
        "polls/job": polls / count,
        "reads/job (store)": store_reads / count,
        "reads/job (listeners)": feed_reads / count,
        "reads/job (all)": (store_reads + feed_reads) / count,
    }


def poll_readme() -> dict[str, float]:
    """Five 8-second jobs, each long-polled (`?wait=25`, `If-None-Match`) to the end."""
    return asyncio.run(_polling("readme", 5, 8.0))


def poll_naive() -> dict[str, float]:
    """Five 8-second jobs, each polled every 2 s to the end."""
    return asyncio.run(_polling("naive", 5, 8.0))


# -- throughput ----------------------------------------------------------------------


async def _enqueue(config: jobkit_gcp.Config, count: int, chunk: int = 200) -> float:
    async with jobkit_gcp.runtime(config, types=TYPES, fair=FAIR) as runtime:
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
    async with jobkit_gcp.runtime(config, types=TYPES, listen=LISTEN, fair=FAIR) as runtime:
        await runtime.ready()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # wait for "go"
        done = await runtime.worker(DRAIN).drain()
        usage = _usage(runtime)
        print(json.dumps({"done": done, "reads": usage.reads, "writes": usage.writes}), flush=True)


def _drain(processes: int) -> dict[str, float]:
    config = _config()

    async def seed() -> None:
        async with jobkit_gcp.runtime(config, types=TYPES, fair=FAIR) as runtime:
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
    "cost_noop": cost_noop,
    "cost_pdf": cost_pdf,
    "poll_readme": poll_readme,
    "poll_naive": poll_naive,
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
