"""The queue gauges: the store's counts of live jobs by queue (`JobStore.counts`), read on an
interval in a background task, never per scrape, so a dashboard's cost is bounded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from datetime import datetime

from jobkit import ports, registry
from jobkit_http.metrics import Metrics

log = logging.getLogger("jobkit.metrics")


class Gauges:
    """Reads `store.counts` every `seconds` into `metrics`.

    The queues asked about: the configured ones, every job type's default queue, and every
    queue seen since (in counts, or in this process's lifecycle events), so a queue that
    empties reads 0 instead of keeping its last value."""

    def __init__(
        self,
        *,
        store: ports.JobStore,
        metrics: Metrics,
        clock: Callable[[], datetime],
        seconds: float,
        types: registry.Registry | None = None,
        queues: Collection[str] | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._seconds = seconds
        self.queues: set[str] = {"default", *(queues or ())}
        if types is not None:
            self.queues |= {job_type.queue for job_type in types.types.values()}
        self._failing = False

    async def refresh(self) -> None:
        """Read the counts once and set the gauges."""
        self.queues |= self._metrics.queues
        now = self._clock()
        started = time.perf_counter()
        counts = await self._store.counts(now, sorted(self.queues))
        self._metrics.on_counts(counts, now.timestamp(), time.perf_counter() - started)
        self.queues |= counts.keys()

    async def run(self) -> None:
        """Refresh until cancelled; a failed read is logged (once until one succeeds)."""
        while True:
            try:
                await self.refresh()
                self._failing = False
            except Exception:
                if not self._failing:
                    log.exception("reading the queue gauges failed; they keep their values")
                self._failing = True
            await asyncio.sleep(self._seconds)
