"""Prometheus metrics: job lifecycle events, effect timings, HTTP requests, served on `/metrics`."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobkit import effects

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.lifecycle = Counter(
            "jobkit_job_events",
            "Job lifecycle events: created, started, completed, attempt_failed, stalled,"
            " retried, failed, released, cancelled, requeued, purged.",
            ["event", "type", "queue"],
            registry=self.registry,
        )
        self.effect_seconds = Histogram(
            "jobkit_effect_seconds",
            "Time spent performing one effect (analyze, blob reads and writes).",
            ["effect", "outcome"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge(
            "jobkit_jobs_running", "Attempts running in this process.", registry=self.registry
        )
        self.requests = Histogram(
            "jobkit_http_request_seconds",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        # `labels()` takes a lock and builds its key on every call; a request needs only
        # the child, and routes x methods x statuses are few.
        self._request_children: dict[tuple[str, str, int], Histogram] = {}

    def on_request(self, route: str, method: str, status: int, seconds: float) -> None:
        child = self._request_children.get((route, method, status))
        if child is None:
            child = self.requests.labels(route, method, str(status))
            self._request_children[(route, method, status)] = child
        child.observe(seconds)

    def on_lifecycle(self, effect: effects.Lifecycle) -> None:
        self.lifecycle.labels(effect.name, effect.job_type, effect.queue).inc()
        if effect.name == "started":
            self.running.inc()
        elif effect.name in {"completed", "attempt_failed", "released", "deferred"}:
            self.running.dec()

    def on_effect(self, name: str, seconds: float, ok: bool) -> None:
        self.effect_seconds.labels(name, "ok" if ok else "error").observe(seconds)


async def endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """ASGI middleware: each request's duration, labelled by its route template (bounded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[object, str] | None = None  # one middleware per app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            metrics: Metrics = scope["app"].state.metrics
            metrics.on_request(
                self._route(scope), scope["method"], status, time.perf_counter() - started
            )

    def _route(self, scope: Scope) -> str:
        """The matched route's template: the router leaves its endpoint in the scope."""
        if self._templates is None:
            self._templates = {route.endpoint: route.path for route in scope["app"].router.routes}
        return self._templates.get(scope.get("endpoint"), "unmatched")
