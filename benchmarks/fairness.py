"""A second user's wait behind another's backlog, on the embedded default, whole-process.

User A submits a backlog of 10,000 jobs (`Runtime.submit_many`, 500 per call) of a type that
takes 1-5 ms (a CPU-bound pause in the pipeline), while one worker process (concurrency 8)
drains it; then user B submits one job. B's wait is its job's first `startedAt` less its
`createdAt`, both written by the store's clock; also reported: how many of A's jobs were
still pending when B's was stored.

Run: `python benchmarks/fairness.py [--runs N] [--code PATH ...]`. Each PATH is a checkout
with its own `.venv` (e.g. `--code /tmp/fair-base --code .`, before and after); rounds are
interleaved, PATH by PATH, so a shared machine's noise falls on each alike. Medians of N.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import asyncio
import json
import os
import random
import subprocess
import tempfile
import time

BACKLOG = 10_000
CHUNK = 500
SCRIPT = str(Path(__file__).resolve())


def _types() -> object:
    from returns.result import Success

    from jobkit import jobs, pipeline, registry

    def work(job: jobs.Job, claim: int) -> pipeline.Pipeline:
        time.sleep(random.uniform(0.001, 0.005))  # the job's own work: 1-5 ms of CPU time
        yield from ()
        return Success(pipeline.Completion())

    return registry.of([registry.JobType(name="work", pipeline=work)])


async def _worker(folder: str) -> None:
    from jobkit.local import Runtime
    from jobkit.worker.process import run_until_signalled
    from jobkit.worker.worker import WorkerConfig

    async with Runtime(folder, types=_types()) as runtime:  # type: ignore[arg-type]
        print("ready", flush=True)
        await run_until_signalled(runtime.worker(WorkerConfig(concurrency=8, idle_seconds=0.05)))


async def _measure(folder: str) -> dict[str, float]:
    from jobkit import instants, jobs
    from jobkit.local import Runtime
    from jobkit.status import PENDING

    worker = subprocess.Popen(
        [sys.executable, SCRIPT, "--worker", folder], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    if worker.stdout.readline().strip() != "ready":
        raise SystemExit("the worker process failed to start")
    try:
        async with Runtime(folder, types=_types()) as runtime:  # type: ignore[arg-type]
            for offset in range(0, BACKLOG, CHUNK):
                requests = [{"type": "work"}] * min(CHUNK, BACKLOG - offset)
                for outcome in await runtime.submit_many(requests, user_id="user-a"):
                    outcome.unwrap()
            job = (await runtime.submit({"type": "work"}, user_id="user-b")).unwrap()
            counted = await runtime.store.counts(runtime.clock(), ["default"])
            ahead = counted["default"].pending
            while True:
                found = await runtime.get(jobs.id(job))
                assert found is not None
                if jobs.status(found) != PENDING:
                    break
                await asyncio.sleep(0.005)
            started = jobs.entry_started_at(jobs.history(found)[0])
            wait = instants.seconds_between(jobs.created_at(found), started)
    finally:
        worker.terminate()
        worker.wait()
    return {"B's wait, s": wait, "A's jobs pending when B submitted": float(ahead - 1)}


def main(argv: list[str]) -> int:
    # The driver imports nothing of jobkit (each checkout's runs do, in their own process),
    # only this folder's harness.
    sys.path.insert(0, str(HERE.parent))
    from benchmarks import _harness

    runs, codes = 3, []
    while argv:
        flag, value, *argv = argv
        if flag == "--runs":
            runs = int(value)
        elif flag == "--code":
            codes.append(str(Path(value).resolve()))
        else:
            raise SystemExit(f"unknown option {flag}")
    codes = codes or [str(HERE.parent)]
    samples: dict[str, list[dict[str, float]]] = {code: [] for code in codes}
    for _ in range(runs):
        for code in codes:
            env = {**os.environ, "PYTHONPATH": code}
            done = subprocess.run(
                [f"{code}/.venv/bin/python", SCRIPT, "--once"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            samples[code].append(json.loads(done.stdout.strip().splitlines()[-1]))
    _harness.report(samples, runs, digits=3)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(_worker(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1:] == ["--once"]:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(asyncio.run(_measure(folder))))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
