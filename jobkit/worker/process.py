"""Running a worker as a process: SIGTERM and SIGINT stop claiming and start the grace period."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Final

from jobkit.worker.worker import Worker

log = logging.getLogger("jobkit.worker")

# Objects allocated, net of those freed, between two young-generation collections.
YOUNG_COLLECTION_EVERY: Final = 50_000


def tune_gc() -> None:
    """Set up the garbage collector for a long-running worker process; call it once start-up
    is done.

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


async def run_until_signalled(*workers: Worker) -> None:
    """Run `workers` until SIGTERM/SIGINT; running jobs get the grace period, then their
    leases are released so another worker takes them at once. A second signal is ignored:
    the grace period is already bounded. The process's collector is tuned (`tune_gc`)."""
    tune_gc()
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
