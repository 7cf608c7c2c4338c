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
from jobkit_http import access, auth, problems
from jobkit_http.gauges import Gauges
from jobkit_http.metrics import Metrics, kinds
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
    )


def guard(
    analyzer: Any, settings: Settings, metrics: Metrics, clock: Callable[[], datetime]
) -> GuardedAnalyzer:
    """The analyzer behind the rate limit and breaker the settings ask for, timed for metrics
    and logs, its usage (tokens, cost) counted."""
    bucket = ratelimit.TokenBucket.per_window(
        max_requests=settings.analyze_per_minute, window_seconds=60
    )
    breaker = breakers.CircuitBreaker.closed(
        failure_threshold=settings.breaker_failures,
        cooldown_seconds=settings.breaker_cooldown_seconds,
    )
    metrics.guarded("analyzer", breaker.state)
    return GuardedAnalyzer(
        analyzer,
        limiter=RateLimiter(bucket, clock, name="analyzer", observer=metrics.on_wait),
        breaker=Breaker(breaker, clock, name="analyzer", observer=metrics.on_breaker),
        observer=metrics.on_analyzer_call,
        slow_seconds=settings.slow_analyze_seconds,
        usage=metrics.on_model_usage,
    )


def create_app(
    settings: Settings,
    *,
    types: registry.Registry | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The service on the embedded default: SQLite and a folder under `settings.data`."""
    metrics = Metrics(role="serve")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            httpx.AsyncClient(timeout=10) as http,
            Runtime(
                settings.data,
                types=types,
                synchronous=settings.sqlite_synchronous,
                clock=clock,
                observer=metrics.on_call,
                slow_seconds=settings.slow_call_seconds,
            ) as runtime,
        ):
            runtime.analyzer = guard(OfflinePdfAnalyzer(runtime.blobs), settings, metrics, clock)
            authenticator = access.Identified(
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
            metrics.watch(service.workers)
            metrics.prime(kinds(runtime.types, settings.queues))
            gauges = Gauges(
                store=runtime.store,
                metrics=metrics,
                clock=clock,
                seconds=settings.gauge_seconds,
                types=runtime.types,
                queues=settings.queues,
            )
            refresh = asyncio.create_task(gauges.run(), name="jobkit-gauges")
            log.info(
                "service ready on http://%s:%d",
                settings.host,
                settings.port,
                extra={
                    "data": str(settings.data),
                    "auth": settings.auth,
                    "worker": settings.worker,
                },
            )
            try:
                yield
            finally:
                log.info("service stopping")
                refresh.cancel()
                for worker in service.workers:
                    worker.stop()
                if task is not None:
                    await task
                await asyncio.gather(refresh, return_exceptions=True)
                log.info("service stopped")

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[Middleware(access.Observed, metrics=metrics, access_log=settings.access_log)],
        exception_handlers={
            problems.Problem: problems.on_problem,
            HTTPException: problems.on_http_exception,
            Exception: problems.on_error,
        },
    )
    app.state.metrics = metrics
    return app
