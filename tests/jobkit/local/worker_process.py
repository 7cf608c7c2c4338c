"""A worker process for the crash tests: `python worker_process.py FOLDER`.

Its job type `sleepy` takes 20-200 ms, writes a result naming its attempt, and
completes; short leases so that killed workers' jobs are taken over quickly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from returns.result import Success

from jobkit import effects, jobs, pipeline, plugins, ports, registry, retry
from jobkit.local import Runtime
from jobkit.worker.process import run_until_signalled
from jobkit.worker.worker import WorkerConfig


def sleepy(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    seconds = float(jobs.params(job)["seconds"])
    yield effects.ReportProgress(current=0, total=1, message="sleeping")
    yield effects.Analyze(key=f"sleep/{seconds}", content_type="text/plain", instructions="")
    key = pipeline.result_key(job, claim)
    body = json.dumps({"jobId": jobs.id(job), "attempt": claim}).encode()
    written = yield effects.WriteBlob(key=key, data=body, content_type="application/json")
    return Success(pipeline.Completion(document=written))


SLEEPY = registry.JobType(
    name="sleepy",
    pipeline=sleepy,
    retry=retry.RetryPolicy(max_attempts=50, backoff=retry.Backoff(base=0.05, cap=0.2)),
)
TYPES = registry.register(plugins.discover(), SLEEPY)
CONFIG = WorkerConfig(
    concurrency=8,
    lease_seconds=1.5,
    heartbeat_seconds=0.3,
    reap_seconds=0.3,
    idle_seconds=0.1,
    grace_seconds=2.0,
)


class SleepAnalyzer:
    """Analyses nothing: takes as long as the key says (`sleep/0.05`)."""

    async def analyze(self, effect: effects.Analyze, progress: ports.Progress) -> Any:
        await asyncio.sleep(float(effect.key.split("/")[1]))
        return Success(effects.Analysis(model="sleep", output={}))


async def main(folder: str) -> None:
    async with Runtime(folder, types=TYPES, analyzer=SleepAnalyzer()) as runtime:
        print("ready", flush=True)
        await run_until_signalled(runtime.worker(CONFIG))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1]))
