"""The service's state for one process: runtime, settings, auth, and the waits of pollers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Protocol

from returns.result import Result

from jobkit import effects, jobs, ports, quotas, registry
from jobkit.worker.worker import Worker
from jobkit_http import admission, auth
from jobkit_http.metrics import Metrics
from jobkit_http.problems import Problem
from jobkit_http.settings import Settings


class Backend(Protocol):
    """What the API needs of a runtime: the embedded one (`jobkit.local.Runtime`) or GCP's."""

    @property
    def store(self) -> ports.JobStore: ...

    @property
    def blobs(self) -> ports.BlobStore: ...

    @property
    def types(self) -> registry.Registry: ...

    async def ready(self) -> None:
        """Raise unless the job store and the blob store answer."""

    @property
    def doorbell(self) -> ports.Doorbell:
        """Rung once a job is due (submitted, retried): wakes workers in every process."""

    @property
    def changes(self) -> ports.ChangeFeed:
        """Which jobs changed: what the status long-poll and the event streams wait on."""


class Authenticator(Protocol):
    """Who is calling: `auth.Authenticator` (Entra ID or local tokens) in the service."""

    async def authenticate(
        self, authorization: str | None
    ) -> Result[auth.Principal, auth.AuthFailure]: ...


class Service:
    def __init__(
        self,
        *,
        runtime: Backend,
        settings: Settings,
        authenticator: Authenticator,
        clock: Callable[[], datetime],
        metrics: Metrics,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.settings = settings
        self.authenticator = authenticator
        self.clock = clock
        self.workers: list[Worker] = []
        quota = quotas.Quotas(
            per_minute=settings.user_submits_per_minute, max_active=settings.user_max_pending
        )
        self.admission = admission.Admission(quota, runtime.store, clock)
        self._in_flight: set[tuple[str, str]] = set()

    @contextlib.asynccontextmanager
    async def in_flight(self, user: str, key: str | None) -> AsyncIterator[None]:
        """While a request with this Idempotency-Key runs, its twin gets a `409`."""
        if key is None:
            yield
            return
        if (user, key) in self._in_flight:
            raise Problem(409, "conflict", "a request with this Idempotency-Key is in progress")
        self._in_flight.add((user, key))
        try:
            yield
        finally:
            self._in_flight.discard((user, key))

    def on_effect(self, effect: effects.MachineEffect, job: jobs.Job) -> None:
        """Every lifecycle event, from this process's workers and users alike, once stored
        (the shell has logged it: `jobkit.worker.journal`): counted. (Readers waiting on the
        job hear of it from the change feed.)"""
        if type(effect) is not effects.Lifecycle:
            return
        self.metrics.on_lifecycle(effect, job)

    def submitted(self, job: jobs.Job) -> None:
        """A job became due (or will be, at its `runAt`): ring the doorbell, so that idle
        workers, in this process (`workers`) and in others, look for it now."""
        self.runtime.doorbell.ring(jobs.run_at(job))

    async def wait_for_change(self, job: jobs.Job, since: str, seconds: float) -> jobs.Job:
        """The job once its ETag differs from `since`, or as it is after `seconds` (or as it
        was last, if it is deleted meanwhile).

        Waits on the change feed, which hears of every write this process makes at once
        and of other processes' writes by its shared poll (or listeners); it re-reads the
        job after each report, and once after the watch began, so no write slips in
        between: from the feed when it keeps the job current (no read), else the store.
        """
        job_id = jobs.id(job)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        async with self.runtime.changes.watch_job(job_id) as watch:
            latest = await self._latest(job_id)
            while latest is not None:
                job = latest
                left = deadline - loop.time()
                if f'"v{jobs.version(job)}"' not in since or left <= 0:
                    break
                if await watch.next(left):
                    latest = await self._latest(job_id)
        return job

    async def polled(self, job_id: str, user: str) -> jobs.Job | None:
        """The caller's job as the change feed keeps it current (`ports.KeptJobs`: no read
        of the store); None when the feed does not keep it (the caller reads the store). A
        job of someone else's is reported as missing, as a read would."""
        feed = self._kept_jobs
        if feed is None:
            return None
        known, job = await feed.kept(job_id)
        if not known:
            return None
        if job is None or jobs.user_id(job) != user:
            raise Problem(404, "not-found", f"no job {job_id}")
        return job

    @functools.cached_property
    def _kept_jobs(self) -> ports.KeptJobs | None:
        """The change feed, if it keeps jobs; looked at once, at the first poll (an
        `isinstance` of a protocol cost 7% of a status poll's time)."""
        feed = self.runtime.changes
        return feed if isinstance(feed, ports.KeptJobs) else None

    async def _latest(self, job_id: str) -> jobs.Job | None:
        feed = self._kept_jobs
        if feed is not None:
            known, job = await feed.kept(job_id)
            if known:
                return job
        return await self.runtime.store.get(job_id)
