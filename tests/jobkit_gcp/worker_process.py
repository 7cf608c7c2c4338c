"""A worker process over the emulators, for the crash test: `python worker_process.py PROJECT
BUCKET [--idle]` (the emulators' variables come from the environment).

It runs the crash test's `sleepy` jobs (see `tests/jobkit/local/worker_process.py`) with short
leases, so that a killed worker's jobs are taken over quickly; a little longer than the SQLite
test's, since each heartbeat is a request to the emulator, on a machine other work shares.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import attrs

import jobkit_gcp
from jobkit.worker.process import run_until_signalled
from tests.jobkit.local.worker_process import CONFIG, TYPES, SleepAnalyzer

LEASES = attrs.evolve(CONFIG, lease_seconds=3.0, heartbeat_seconds=0.5, reap_seconds=0.5)
# `--idle`: a worker that, idle, looks at the store only once a minute unless a ring wakes it.
IDLE = attrs.evolve(LEASES, idle_seconds=60.0, poll_seconds=60.0)


async def main(project: str, bucket: str, idle: bool) -> None:
    config = jobkit_gcp.Config(project=project, bucket=bucket)
    async with jobkit_gcp.runtime(config, types=TYPES, analyzer=SleepAnalyzer()) as runtime:
        await runtime.ready()
        print("ready", flush=True)
        await run_until_signalled(runtime.worker(IDLE if idle else LEASES))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1], sys.argv[2], "--idle" in sys.argv[3:]))
