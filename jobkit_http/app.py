"""The composition root: settings in, a Starlette app out, with its runtime, auth and worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from jobkit import breaker as breakers
from jobkit import ratelimit, registry
from jobkit.local import Runtime
from jobkit.local.offline import OfflinePdfAnalyzer
from jobkit.worker.worker import WorkerConfig, utc_now
from jobkit.worker.wrappers import Breaker, GuardedAnalyzer, RateLimiter
from jobkit_http import auth, problems
from jobkit_http.metrics import Metrics, RequestMetrics
from jobkit_http.routes import ROUTES
from jobkit_http.service import Service
from jobkit_http.settings import Settings

log = logging.getLogger("jobkit.service")


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        concurrency=settings.concurrency,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.lease_seconds / 3,
        grace_seconds=settings.grace_seconds,
        queues=settings.queues,
        poll_seconds=settings.poll_seconds,
    )


def guard(
    analyzer: Any, settings: Settings, metrics: Metrics, clock: Callable[[], datetime]
) -> GuardedAnalyzer:
    """The analyzer behind the rate limit and breaker the settings ask for, timed for metrics."""
    bucket = ratelimit.TokenBucket.per_window(
        max_requests=settings.analyze_per_minute, window_seconds=60
    )
    breaker = breakers.CircuitBreaker.closed(
        failure_threshold=settings.breaker_failures,
        cooldown_seconds=settings.breaker_cooldown_seconds,
    )
    return GuardedAnalyzer(
        analyzer,
        limiter=RateLimiter(bucket, clock),
        breaker=Breaker(breaker, clock),
        observer=metrics.on_effect,
    )


def create_app(
    settings: Settings,
    *,
    types: registry.Registry | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The service on the embedded default: SQLite and a folder under `settings.data`."""
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            httpx.AsyncClient(timeout=10) as http,
            Runtime(
                settings.data, types=types, synchronous=settings.sqlite_synchronous, clock=clock
            ) as runtime,
        ):
            runtime.analyzer = guard(OfflinePdfAnalyzer(runtime.blobs), settings, metrics, clock)
            authenticator = (
                auth.entra_authenticator(settings, http)
                if settings.auth == "entra"
                else auth.local_authenticator(settings.data)
            )
            service = Service(
                runtime=runtime,
                settings=settings,
                authenticator=authenticator,
                clock=clock,
                metrics=metrics,
            )
            app.state.service = service

            task = None
            if settings.worker:
                worker = runtime.worker(worker_config(settings), on_effect=service.on_effect)
                service.workers.append(worker)
                task = asyncio.create_task(worker.run(), name="jobkit-worker")
            log.info(
                "service ready",
                extra={
                    "data": str(settings.data),
                    "auth": settings.auth,
                    "worker": settings.worker,
                },
            )
            try:
                yield
            finally:
                for worker in service.workers:
                    worker.stop()
                if task is not None:
                    await task

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[Middleware(RequestMetrics)],
        exception_handlers={
            problems.Problem: problems.on_problem,
            HTTPException: problems.on_http_exception,
            Exception: problems.on_error,
        },
    )
    app.state.metrics = metrics
    return app
