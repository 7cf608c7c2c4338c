"""The service's state for one process: runtime, settings, auth, and the waits of pollers."""

from __future__ import annotations

import asyncio
import contextlib
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

POLL_SECONDS = 0.2


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
        self._waiting: dict[str, set[asyncio.Event]] = {}

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
        (the shell has logged it: `jobkit.worker.journal`): counted, and passed to the
        long-pollers waiting on the job."""
        if type(effect) is not effects.Lifecycle:
            return
        self.metrics.on_lifecycle(effect, job)
        self.changed(effect.job_id)

    def submitted(self, job: jobs.Job) -> None:
        """A job became due (or will be, at its `runAt`): ring the doorbell, so that idle
        workers, in this process (`workers`) and in others, look for it now."""
        self.runtime.doorbell.ring(jobs.run_at(job))

    def changed(self, job_id: str) -> None:
        """A worker in this process moved a job: wake its long-pollers now."""
        for event in self._waiting.get(job_id, ()):
            event.set()

    async def wait_for_change(self, job: jobs.Job, since: str, seconds: float) -> jobs.Job:
        """The job once its ETag differs from `since`, or as it is after `seconds`.

        Polls the store (other processes may move the job) and wakes early on
        changes made in this process.
        """
        job_id = jobs.id(job)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        event = asyncio.Event()  # one per waiter: each is woken, none unhooks another
        self._waiting.setdefault(job_id, set()).add(event)
        try:
            while f'"v{jobs.version(job)}"' in since and loop.time() < deadline:
                event.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(POLL_SECONDS, deadline - loop.time())):
                        await event.wait()
                latest = await self.runtime.store.get(job_id)
                if latest is None:
                    break
                job = latest
        finally:
            waiters = self._waiting[job_id]
            waiters.discard(event)
            if not waiters:
                del self._waiting[job_id]
        return job
