"""Running a worker as a process: SIGTERM and SIGINT stop claiming and start the grace period."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from typing import Final

from jobkit.worker.worker import Worker

log = logging.getLogger("jobkit.worker")

# Objects allocated, net of those freed, between two young-generation collections.
YOUNG_COLLECTION_EVERY: Final = 50_000
# Seconds a thread waiting for the GIL waits before it asks the running one to let go.
SWITCH_INTERVAL: Final = 0.002


def tune_process() -> None:
    """Set up a long-running worker process: its garbage collector and its thread switches.
    Call it once start-up is done.

    Threads: the SQLite store's writer thread gives up Python's GIL while SQLite works and
    then waits for it again, behind the event loop, which is busy exactly when writes are
    queued. CPython's default switch interval (5 ms) makes every such wait up to 5 ms, and
    a group commit takes several; at 2 ms the writer's commits keep pace with the loop,
    which then spends less time waiting for them (a no-op drain ran about 20% faster).

    The collector:

    Every write makes a new immutable version of a job, which is many small containers.
    Nearly all of them are freed by reference counting the moment the next version
    replaces them, but CPython's default (a young collection every 700 allocations, and
    every tenth of those a walk of everything older) still scans them every few jobs:
    10-20% of a worker's time on no-op jobs. Here, what start-up made (modules,
    settings, the registry) is moved out of the collector's sight for good (`gc.freeze`),
    and young collections run every YOUNG_COLLECTION_EVERY allocations instead. Cycles are
    still collected, only later; memory grows by a few megabytes at most.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL)


async def run_until_signalled(*workers: Worker) -> None:
    """Run `workers` until SIGTERM/SIGINT; running jobs get the grace period, then their
    leases are released so another worker takes them at once. A second signal is ignored:
    the grace period is already bounded. The process is tuned (`tune_process`)."""
    tune_process()
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        for worker in workers:
            worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await asyncio.gather(*(worker.run() for worker in workers))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
