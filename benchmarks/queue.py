"""The embedded runner's speed on this machine: enqueue and drain rates, latency at a steady
rate, claim latency against table size, and a worker's peak memory.

Run: `python benchmarks/queue.py [--runs N]` (each figure: the median of N fresh processes).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib's `queue`: its folder leaves the import path, and the
# project's root joins it, so `queue` is the stdlib's and `benchmarks._harness` is found.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import asyncio
import json
import resource
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta

from returns.result import Success

from benchmarks import _harness
from jobkit import events, instants, jobs, machine, pipeline, plugins, registry, submission
from jobkit.local import Runtime
from jobkit.local.sqlite_schema import encode
from jobkit.worker.process import run_until_signalled, tune_process
from jobkit.worker.worker import WorkerConfig, utc_now

JOBS = 10_000
SCRIPT = str(Path(__file__).resolve())


def _noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


TYPES = registry.register(plugins.discover(), registry.JobType(name="noop", pipeline=_noop))
# No-op jobs cost nothing to hold: many slots let one claim (and one commit) take many.
DRAIN = WorkerConfig(concurrency=256, idle_seconds=0.05)
SERVE = WorkerConfig(concurrency=8, idle_seconds=0.05)


# -- worker processes ------------------------------------------------------------


async def _worker(folder: str, mode: str) -> None:
    async with Runtime(folder, types=TYPES) as runtime:
        print("ready", flush=True)
        if mode == "drain":
            tune_process()  # as `run_until_signalled` does for a worker process
            await asyncio.to_thread(sys.stdin.readline)  # wait for "go"
            done = await runtime.worker(DRAIN).drain()
            print(json.dumps({"done": done}), flush=True)
        else:
            await run_until_signalled(runtime.worker(SERVE))


def _spawn(folder: str, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, SCRIPT, "--worker", folder, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise SystemExit("a worker process failed to start")
    return process


# -- measures --------------------------------------------------------------------


async def _enqueue(folder: str, count: int, chunk: int = 500) -> float:
    async with Runtime(folder, types=TYPES) as runtime:
        started = time.perf_counter()
        for offset in range(0, count, chunk):
            batch = [runtime.submit({"type": "noop"}) for _ in range(min(chunk, count - offset))]
            for outcome in await asyncio.gather(*batch):
                outcome.unwrap()
        return time.perf_counter() - started


def enqueue() -> dict[str, float]:
    """One producer, the library API (`Runtime.submit`), 500 submissions in flight."""
    with tempfile.TemporaryDirectory() as folder:
        elapsed = asyncio.run(_enqueue(folder, JOBS))
    return {"enqueued jobs/s": JOBS / elapsed}


async def _enqueue_many(folder: str, count: int, chunk: int = 500) -> float:
    async with Runtime(folder, types=TYPES) as runtime:
        started = time.perf_counter()
        for offset in range(0, count, chunk):
            size = min(chunk, count - offset)
            for outcome in await runtime.submit_many([{"type": "noop"}] * size):
                outcome.unwrap()
        return time.perf_counter() - started


def enqueue_many() -> dict[str, float]:
    """One producer, the library API's bulk form (`Runtime.submit_many`), 500 per call."""
    with tempfile.TemporaryDirectory() as folder:
        elapsed = asyncio.run(_enqueue_many(folder, JOBS))
    return {"enqueued jobs/s, submit_many": JOBS / elapsed}


def _drain(processes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(_enqueue(folder, JOBS))
        workers = [_spawn(folder, "drain") for _ in range(processes)]
        started = time.perf_counter()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        done = 0
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            done += json.loads(out.strip().splitlines()[-1])["done"]
        elapsed = time.perf_counter() - started
        if done != JOBS:
            raise SystemExit(f"drained {done} of {JOBS}")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"drained jobs/s": JOBS / elapsed, "worker peak RSS MiB": peak_kib / 1024}


def drain_1() -> dict[str, float]:
    """10,000 no-op jobs, one worker process (concurrency 256), go to last completion."""
    return _drain(1)


def drain_2() -> dict[str, float]:
    return _drain(2)


async def _steady(folder: str, rate: float, seconds: float) -> list[str]:
    async with Runtime(folder, types=TYPES) as runtime:
        ids = []
        start = time.perf_counter()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ids.append((await runtime.submit({"type": "noop"})).unwrap()["id"])
        return ids


def latency() -> dict[str, float]:
    """A steady 50 jobs/s for 10 s from another process; latency = createdAt to completion."""
    with tempfile.TemporaryDirectory() as folder:
        worker = _spawn(folder, "serve")
        try:
            ids = asyncio.run(_steady(folder, 50.0, 10.0))
            deadline = time.monotonic() + 30
            with sqlite3.connect(Path(folder) / "jobs.db") as db:
                while db.execute(
                    "SELECT count(*) FROM jobs WHERE status != 'completed'"
                ).fetchone()[0]:
                    if time.monotonic() > deadline:
                        raise SystemExit("jobs did not complete")
                    time.sleep(0.05)
                docs = [json.loads(d) for (d,) in db.execute("SELECT doc FROM jobs")]
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.communicate(timeout=30)
    assert len(docs) == len(ids)
    waits = sorted(
        instants.seconds_between(
            instants.parse(doc["createdAt"]), instants.parse(doc["history"][-1]["endedAt"])
        )
        * 1000
        for doc in docs
    )
    return {
        "latency p50 ms": statistics.median(waits),
        "latency p99 ms": waits[int(len(waits) * 0.99) - 1],
    }


def _seed(path: Path, count: int) -> None:
    """`count` pending jobs written straight into the table (rows from one template job)."""
    now = utc_now() - timedelta(minutes=1)
    draft = submission.new_job({"type": "noop"}, types=TYPES, job_id="x", user_id="u", now=now)
    job, _ = machine.step(draft.unwrap(), events.Submitted(), now).unwrap()
    row = encode(job)
    doc = row[-1]
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        for offset in range(0, count, 50_000):
            rows = [
                (f"seed-{n:08d}", *row[1:-1], doc.replace('"id":"x"', f'"id":"seed-{n:08d}"'))
                for n in range(offset, min(offset + 50_000, count))
            ]
            db.executemany(f"INSERT INTO jobs VALUES ({','.join('?' * len(row))})", rows)
            db.commit()


async def _claims(folder: str, count: int, rounds: int) -> list[float]:
    async with Runtime(folder, types=TYPES) as runtime:
        pass  # creates and migrates the file
    _seed(Path(folder) / "jobs.db", count)
    timings = []
    async with Runtime(folder, types=TYPES) as runtime:
        store = runtime.store
        claim = events.Claimed(worker="bench", lease_seconds=30)
        for _ in range(rounds):
            started = time.perf_counter()
            now = utc_now()
            found = await store.claimable(now, None, 1)
            claimed, _ = machine.step(found[0], claim, now).unwrap()
            assert await store.compare_and_set_many([(jobs.version(found[0]), claimed)]) == [True]
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def _claim_latency(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        timings = sorted(asyncio.run(_claims(folder, count, 500)))
    return {
        f"claim p50 ms, {count:,} jobs": statistics.median(timings),
        f"claim p99 ms, {count:,} jobs": timings[int(len(timings) * 0.99) - 1],
    }


def claim_1k() -> dict[str, float]:
    """One claim transaction (read the next due job, compare-and-set it) vs table size."""
    return _claim_latency(1_000)


def claim_100k() -> dict[str, float]:
    return _claim_latency(100_000)


def claim_1m() -> dict[str, float]:
    return _claim_latency(1_000_000)


MEASURES = {
    "enqueue": enqueue,
    "enqueue_many": enqueue_many,
    "drain_1": drain_1,
    "drain_2": drain_2,
    "latency": latency,
    "claim_1k": claim_1k,
    "claim_100k": claim_100k,
    "claim_1m": claim_1m,
}

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        asyncio.run(_worker(sys.argv[2], sys.argv[3]))
        sys.exit(0)
    if len(sys.argv) >= 3 and sys.argv[1] == "--only":
        names = sys.argv[2].split(",")
        sys.exit(_harness.main({n: MEASURES[n] for n in names}, sys.argv[3:], runs=3))
    sys.exit(_harness.main(MEASURES, sys.argv[1:], runs=3))
