"""The composition root: settings in, a Starlette app out, with its runtime, auth and worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from jobkit import plugins, registry
from jobkit.local import Runtime
from jobkit.worker.worker import WorkerConfig, utc_now
from jobkit_http import analyzers, auth, headers, problems, web
from jobkit_http.metrics import Metrics, RequestMetrics
from jobkit_http.routes import ROUTES
from jobkit_http.service import Service
from jobkit_http.settings import Settings
from jobkit_http.streams import Streams
from jobkit_http.web.site import Site

log = logging.getLogger("jobkit.service")


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        concurrency=settings.concurrency,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.lease_seconds / 3,
        grace_seconds=settings.grace_seconds,
        queues=settings.queues,
    )


def create_app(
    settings: Settings,
    *,
    types: registry.Registry | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The service on the embedded default: SQLite and a folder under `settings.data`, with
    the analyzer the settings choose. `errors.ConfigurationError` if it cannot be set up."""
    metrics = Metrics()
    types = analyzers.job_types(settings, types if types is not None else plugins.discover())
    client = analyzers.connect(settings)  # at start-up: no credentials, no service

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            httpx.AsyncClient(timeout=10) as http,
            Runtime(
                settings.data,
                types=types,
                synchronous=settings.sqlite_synchronous,
                clock=clock,
                changes_poll_seconds=settings.changes_poll_seconds,
            ) as runtime,
        ):
            runtime.analyzer = analyzers.build(
                settings, runtime.blobs, metrics.on_effect, clock, client=client
            )
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
                await analyzers.close(runtime.analyzer)

    app = Starlette(
        routes=[*ROUTES, *(web.ROUTES if settings.web else ())],
        lifespan=lifespan,
        middleware=[Middleware(headers.SecurityHeaders), Middleware(RequestMetrics)],
        exception_handlers={
            problems.Problem: problems.on_problem,
            HTTPException: problems.on_http_exception,
            Exception: problems.on_error,
        },
    )
    app.state.metrics = metrics
    app.state.streams = Streams(max_per_user=settings.events_max_per_user)
    if settings.web:
        app.state.site = Site(settings)
    return app
