"""Worker processes over the emulators, killed with SIGKILL at random while jobs flow: every
job ends completed exactly once, nothing is lost, and every stall is a killed worker's."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from google.cloud import firestore, storage

import jobkit_gcp
from jobkit import jobs, listing
from tests.jobkit.local import worker_process
from tests.jobkit.local.test_crash import check_completed_once, kill, stop
from tests.jobkit_gcp.conftest import Emulators, unique

ROOT = Path(__file__).resolve().parents[2]
USER = "crash-test"


def start_worker(project: str, bucket: str, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as errors:  # a full stderr pipe would block a worker
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.jobkit_gcp.worker_process", project, bucket],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=ROOT,
        )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", log.read_text()[-2000:]
    return process


def counts(project: str) -> Counter[str]:
    async def main() -> Counter[str]:
        client = firestore.AsyncClient(project=project)
        seen: Counter[str] = Counter()
        async for snapshot in client.collection("jobs").select(["status"]).stream():
            seen[snapshot.get("status")] += 1
        await jobkit_gcp.FirestoreJobStore(client).close()
        return seen

    return asyncio.run(main())


async def submit(config: jobkit_gcp.Config, durations: list[float]) -> None:
    async with jobkit_gcp.runtime(config, types=worker_process.TYPES) as runtime:
        requests = [{"type": "sleepy", "params": {"seconds": seconds}} for seconds in durations]
        for outcome in await runtime.submit_many(requests, user_id=USER):
            outcome.unwrap()


async def all_jobs(config: jobkit_gcp.Config) -> list[jobs.Job]:
    found: list[jobs.Job] = []
    async with jobkit_gcp.runtime(config, types=worker_process.TYPES) as runtime:
        query = listing.Query(limit=100, descending=False)
        while True:
            page = await runtime.store.list(USER, query)
            found += page.jobs
            if page.next_cursor is None:
                return found
            query = listing.decode_cursor(page.next_cursor, query).unwrap()


@pytest.mark.slow
def test_sigkilled_workers_lose_nothing_and_complete_nothing_twice(
    emulators: Emulators, tmp_path: Path
) -> None:
    seed = int(os.environ.get("JOBKIT_CRASH_SEED", "20261205"))
    rng = random.Random(seed)
    total = 400
    config = jobkit_gcp.Config(project=unique("crash"), bucket=unique("crash"))
    storage.Client().create_bucket(config.bucket)
    asyncio.run(submit(config, [rng.uniform(0.05, 0.3) for _ in range(total)]))
    log = tmp_path / "workers.log"
    assert config.project is not None
    workers = [start_worker(config.project, config.bucket, log) for _ in range(3)]
    killed: set[int] = set()
    deadline = time.monotonic() + 150
    try:
        while counts(config.project)["completed"] < total:
            assert time.monotonic() < deadline, f"seed {seed}: stuck at {counts(config.project)}"
            time.sleep(rng.uniform(0.5, 1.5))
            if counts(config.project)["completed"] == total:
                break
            victim = rng.randrange(len(workers))
            kill(workers[victim])
            killed.add(workers[victim].pid)
            workers[victim] = start_worker(config.project, config.bucket, log)
    finally:
        stop(workers)

    found = asyncio.run(all_jobs(config))
    results = storage.Client().bucket(config.bucket)
    check_completed_once(
        found, total, killed, lambda key: json.loads(results.blob(key).download_as_bytes()), seed
    )
