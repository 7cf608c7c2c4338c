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
from jobkit.local import Runtime, bounded
from jobkit.worker import orphans
from jobkit.worker.config import Hook
from jobkit.worker.dispatch import Dispatcher
from jobkit.worker.worker import WorkerConfig, utc_now
from jobkit_http import (
    access,
    analyzers,
    auth,
    backends,
    callers,
    cors,
    headers,
    internal,
    problems,
    web,
)
from jobkit_http.gauges import Gauges
from jobkit_http.metrics import Metrics, kinds
from jobkit_http.routes import ROUTES
from jobkit_http.service import Service
from jobkit_http.settings import Settings, orphan_age
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
        poll_seconds=settings.poll_seconds,
    )


def push_dispatcher(
    settings: Settings, runtime: Runtime, clock: Callable[[], datetime], on_effect: Hook
) -> Dispatcher:
    """Push dispatch's worker: one due job per Cloud Tasks request, as many at once as
    Cloud Run sends (its concurrency), with the pull worker's leases and grace period."""
    return Dispatcher(
        store=runtime.store,
        types=runtime.types,
        performers_for=runtime.performers,
        doorbell=runtime.doorbell,
        config=worker_config(settings),
        clock=clock,
        on_effect=on_effect,
    )


def push_callers(settings: Settings, http: httpx.AsyncClient) -> callers.Callers:
    """Who may ring: Cloud Tasks' OIDC token for the dispatch service account, or the secret."""
    assert settings.dispatch_url is not None  # settings.from_env requires it with `push`
    return callers.callers(
        service_account=settings.dispatch_service_account,
        audience=settings.dispatch_audience or settings.dispatch_url,
        secret=settings.dispatch_secret,
        metadata_url=settings.dispatch_metadata_url,
        http=http,
    )


def on_shutdown(app: Starlette) -> Callable[[], None]:
    """What the server calls first when it begins to shut down (SIGTERM), before it waits
    for the open requests: end the event streams, and start the dispatches' grace period
    (their attempts finish or are released, then their requests answer)."""

    def stopping() -> None:
        app.state.streams.stop()
        push = getattr(app.state, "push", None)
        if push is not None:
            push.dispatcher.stop()

    return stopping


def document_pool(settings: Settings) -> bounded.Pool:
    """The child processes that parse uploaded documents, bounded as the settings say: the
    offline analyzer's work and the Gemini analyzer's checks before a call."""
    limits = bounded.Limits(
        cpu_seconds=settings.document_cpu_seconds,
        memory_bytes=settings.document_memory_mb * 1024 * 1024,
    )
    return bounded.Pool(workers=settings.document_workers, limits=limits)


def create_app(
    settings: Settings,
    *,
    types: registry.Registry | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Starlette:
    """The service on the backend `settings.backend` names (the embedded default: SQLite and
    a folder under `settings.data`; or Firestore and Cloud Storage), with the analyzer the
    settings choose. `errors.ConfigurationError` if it cannot be set up."""
    metrics = Metrics(role="serve")
    types = analyzers.job_types(settings, types if types is not None else plugins.discover())
    client = analyzers.connect(settings)  # at start-up: no credentials, no service

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            httpx.AsyncClient(timeout=10) as http,
            document_pool(settings) as pool,
            backends.doorbell_for(settings, observer=metrics.on_call) as doorbell,
            backends.runtime_for(
                settings, types=types, clock=clock, observer=metrics.on_call, doorbell=doorbell
            ) as runtime,
        ):
            await backends.verify(runtime, settings)
            runtime.analyzer = analyzers.build(
                settings, runtime.blobs, metrics, clock, client=client, pool=pool
            )
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

            sweeper = asyncio.create_task(
                orphans.sweep_every(
                    runtime.store,
                    runtime.blobs,
                    clock=clock,
                    older_than_seconds=orphan_age(settings),
                    every_seconds=settings.orphan_sweep_seconds,
                ),
                name="jobkit-orphan-sweep",
            )

            task = None
            dispatcher = None
            if settings.dispatch == "push":  # Cloud Tasks' requests run the jobs: no loop
                dispatcher = push_dispatcher(settings, runtime, clock, service.on_effect)
                app.state.push = internal.Push(
                    dispatcher=dispatcher, callers=push_callers(settings, http)
                )
            elif settings.worker:
                worker = runtime.worker(worker_config(settings), on_effect=service.on_effect)
                service.workers.append(worker)
                task = asyncio.create_task(worker.run(), name="jobkit-worker")
            metrics.watch([*service.workers, *([dispatcher] if dispatcher else [])])
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
                    "backend": backends.describe(settings),
                    "auth": settings.auth,
                    "worker": settings.worker,
                    "dispatch": settings.dispatch,
                },
            )
            try:
                yield
            finally:
                log.info("service stopping")
                sweeper.cancel()
                refresh.cancel()
                for worker in service.workers:
                    worker.stop()
                if task is not None:
                    await task
                if dispatcher is not None:
                    await dispatcher.close()
                await asyncio.gather(sweeper, refresh, return_exceptions=True)
                await analyzers.close(runtime.analyzer)
                log.info("service stopped")

    app = Starlette(
        routes=[
            *ROUTES,
            *(internal.ROUTES if settings.dispatch == "push" else ()),
            *(web.ROUTES if settings.web else ()),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(headers.SecurityHeaders),
            *cors.middleware(settings),
            Middleware(access.Observed, metrics=metrics, access_log=settings.access_log),
        ],
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
