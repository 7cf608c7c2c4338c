"""Running a worker as a process: SIGTERM and SIGINT stop claiming and start the grace period."""

from __future__ import annotations

import asyncio
import logging
import signal

from jobkit.worker.worker import Worker

log = logging.getLogger("jobkit.worker")


async def run_until_signalled(*workers: Worker) -> None:
    """Run `workers` until SIGTERM/SIGINT; running jobs get the grace period, then their
    leases are released so another worker takes them at once. A second signal is ignored:
    the grace period is already bounded."""
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
