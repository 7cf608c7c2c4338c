"""Real processes sharing one SQLite file: killed with SIGKILL at random, or stopped with
SIGTERM mid-work, they lose no job, complete none twice, and record every stall."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobkit import documents, jobs, listing
from jobkit.local import Runtime
from tests.jobkit.local import worker_process

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker_process.py"

USER = "crash-test"


def start_worker(folder: Path) -> subprocess.Popen[str]:
    with (folder / "workers.log").open("a") as log:  # a full stderr pipe would block a worker
        process = subprocess.Popen(
            [sys.executable, str(WORKER), str(folder)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()
    if process.stdout:
        process.stdout.close()


def counts(folder: Path) -> Counter[str]:
    with sqlite3.connect(folder / "jobs.db") as db:
        return Counter(
            dict(db.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
        )


async def submit(folder: Path, durations: list[float]) -> None:
    async with Runtime(folder, types=worker_process.TYPES) as runtime:
        for seconds in durations:
            done = await runtime.submit(
                {"type": "sleepy", "params": {"seconds": seconds}}, user_id=USER
            )
            done.unwrap()


async def all_jobs(folder: Path) -> list[jobs.Job]:
    found: list[jobs.Job] = []
    async with Runtime(folder, types=worker_process.TYPES) as runtime:
        query = listing.Query(limit=100, descending=False)
        while True:
            page = await runtime.store.list(USER, query)
            found += page.jobs
            if page.next_cursor is None:
                return found
            query = listing.decode_cursor(page.next_cursor, query).unwrap()


def wait_for(folder: Path, predicate: object, timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    while True:
        seen = counts(folder)
        if predicate(seen):  # type: ignore[operator]
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"timed out; job statuses: {dict(seen)}")
        time.sleep(0.1)


def stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def pid_of(worker_id: str) -> int:
    return int(worker_id.split(":")[1])


@pytest.mark.slow
def test_sigkilled_workers_lose_nothing_and_complete_nothing_twice(tmp_path: Path) -> None:
    seed = int(os.environ.get("JOBKIT_CRASH_SEED", "20261128"))
    rng = random.Random(seed)
    total = 500
    asyncio.run(submit(tmp_path, [rng.uniform(0.02, 0.2) for _ in range(total)]))
    workers = [start_worker(tmp_path) for _ in range(3)]
    killed: set[int] = set()
    deadline = time.monotonic() + 90
    try:
        while counts(tmp_path)["completed"] < total:
            assert time.monotonic() < deadline, f"seed {seed}: stuck at {dict(counts(tmp_path))}"
            time.sleep(1.0)
            if counts(tmp_path)["completed"] == total:
                break
            victim = rng.randrange(len(workers))
            kill(workers[victim])
            killed.add(workers[victim].pid)
            workers[victim] = start_worker(tmp_path)
    finally:
        stop(workers)

    found = asyncio.run(all_jobs(tmp_path))
    check_completed_once(
        found, total, killed, lambda key: json.loads((tmp_path / "blobs" / key).read_bytes()), seed
    )


def check_completed_once(
    found: list[jobs.Job],
    total: int,
    killed: set[int],
    written: Callable[[str], Any],
    seed: int,
) -> None:
    """Every job completed, once, with the result its winning attempt wrote (`written(key)`);
    every stall is a killed worker's, and the kills did stall some."""
    assert len(found) == total, f"seed {seed}"
    stalls = 0
    for job in found:
        entries = jobs.history(job)
        outcomes = [jobs.entry_outcome(entry) for entry in entries]
        assert jobs.status(job) == "completed", (seed, documents.to_document(job))
        assert outcomes.count("succeeded") == 1
        assert outcomes[-1] == "succeeded"
        winner = entries[-1]
        key = jobs.result_key(job)
        assert key is not None
        assert jobs.entry_result_key(winner) == key
        assert written(key) == {"jobId": jobs.id(job), "attempt": jobs.entry_attempt(winner)}
        assert jobs.attempts(job) == sum(o in {"succeeded", "failed", "stalled"} for o in outcomes)
        for entry in entries:
            if jobs.entry_outcome(entry) == "stalled":
                stalls += 1
                assert pid_of(jobs.entry_worker(entry)) in killed, "only killed workers stall"
    assert killed
    assert stalls > 0, "kills during work are recorded as stalls"


@pytest.mark.slow
def test_sigterm_finishes_or_releases_running_jobs(tmp_path: Path) -> None:
    asyncio.run(submit(tmp_path, [0.3] * 4 + [30.0] * 4 + [0.05] * 20))
    worker = start_worker(tmp_path)
    try:
        wait_for(tmp_path, lambda seen: seen["processing"] >= 8, timeout=30)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        stop([worker])
    after_stop = asyncio.run(all_jobs(tmp_path))
    long_ones = [j for j in after_stop if float(jobs.params(j)["seconds"]) == 30.0]
    for job in long_ones:  # outlived the grace period: handed back, no attempt spent
        assert jobs.status(job) == "pending"
        assert jobs.lease_owner(job) is None
        assert jobs.attempts(job) == 0
        assert jobs.entry_outcome(jobs.history(job)[-1]) == "released"
    for job in after_stop:
        assert "stalled" not in [jobs.entry_outcome(e) for e in jobs.history(job)]
        if float(jobs.params(job)["seconds"]) == 0.3:  # finished within the grace period
            assert jobs.status(job) == "completed"
    assert all(jobs.status(j) != "processing" for j in after_stop)
