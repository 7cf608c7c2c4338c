"""A worker process for the doorbell tests: `python doorbell_worker.py FOLDER`.

It looks for work only when its doorbell rings, or at a job's due time: its safety-net
poll is an hour away, so a job it runs soon after a submission was rung for. One slot,
so that the jobs due at once run one after another, in claim order.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from returns.result import Success

from jobkit import jobs, pipeline, plugins, registry
from jobkit.local import Runtime
from jobkit.worker.process import run_until_signalled
from jobkit.worker.worker import WorkerConfig

HOUR = 3600.0


def noop(job: jobs.Job, claim: int) -> pipeline.Pipeline:
    yield from ()
    return Success(pipeline.Completion())


TYPES = registry.register(plugins.discover(), registry.JobType(name="noop", pipeline=noop))
CONFIG = WorkerConfig(concurrency=1, idle_seconds=HOUR, poll_seconds=HOUR, reap_seconds=HOUR)


async def main(folder: str) -> None:
    async with Runtime(folder, types=TYPES) as runtime:
        print("ready", flush=True)
        await run_until_signalled(runtime.worker(CONFIG))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1]))
