"""Prometheus metrics: every metric the service exports, the hooks that feed them, and the
`/metrics` endpoint (and, for `jobkit worker`, a server of its own).

The core's events reach these hooks from the shell: lifecycle effects through the worker's
and the commands' `on_effect` (`on_lifecycle`), every store, blob and analyzer call
through the observed wrappers (`on_call`), the rate limiter's waits (`on_wait`), the
breaker's changes (`on_breaker`), a model's usage (`on_model_usage`), each HTTP request
(`on_request`), and the store's counts, read on an interval (`jobkit_http.gauges`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from starlette.requests import Request
from starlette.responses import Response

import jobkit
from jobkit import breaker, effects, errors, instants, jobs, registry, schedule
from jobkit.worker import journal

# Seconds, from a no-op job's few milliseconds to an hour-long wait or a model's minutes.
BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
# Terminal statuses, whose end-to-end time is observed.
_TERMINAL: Final = {"completed": "completed", "failed": "failed", "cancelled": "cancelled"}
# The events that end an attempt, and the outcome its history entry records.
_ENDS: Final = {"completed", "attempt_failed", "stalled", "released", "deferred"}


class Worker(Protocol):
    """What the slot gauges read of a worker in this process."""

    @property
    def running(self) -> int: ...

    @property
    def concurrency(self) -> int: ...


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self, role: str = "serve") -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        Gauge(
            "jobkit_build_info",
            "Always 1: the version and the role (serve, worker) of this process.",
            ["version", "role"],
            registry=registry,
        ).labels(jobkit.__version__, role).set(1)
        # -- lifecycle
        self.events = Counter(
            "jobkit_job_events",
            "Job lifecycle events: created, started, completed, attempt_failed, stalled,"
            " retried, failed, released, cancelled, requeued, purged.",
            ["event", "type", "queue"],
            registry=registry,
        )
        self.attempt_failures = Counter(
            "jobkit_attempt_failures",
            "Failed or stalled attempts by error code, whether the error is retryable, and"
            " what became of the job (retried or failed).",
            ["type", "queue", "code", "retryable", "outcome"],
            registry=registry,
        )
        self.wait = Histogram(
            "jobkit_job_wait_seconds",
            "Time a job waited in its queue: from when it was due (runAt) to its claim.",
            ["type", "queue"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.attempt = Histogram(
            "jobkit_attempt_seconds",
            "Run time of one attempt, from its claim to its end, by outcome (succeeded,"
            " failed, stalled, released).",
            ["type", "queue", "outcome"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "jobkit_job_duration_seconds",
            "End-to-end time of a job, from its submission to a terminal status.",
            ["type", "queue", "status"],
            buckets=BUCKETS,
            registry=registry,
        )
        # -- gauges, refreshed on an interval (`jobkit_http.gauges`)
        self.jobs = Gauge(
            "jobkit_jobs",
            "Live jobs by queue and status (pending, processing), read from the store.",
            ["queue", "status"],
            registry=registry,
        )
        self.due = Gauge(
            "jobkit_jobs_due",
            "Pending jobs that are due now (runAt passed): the queue's backlog.",
            ["queue"],
            registry=registry,
        )
        self.oldest = Gauge(
            "jobkit_oldest_due_job_age_seconds",
            "How long the oldest due pending job of the queue has been due (0 when none).",
            ["queue"],
            registry=registry,
        )
        self.refreshed = Gauge(
            "jobkit_gauges_refreshed_timestamp_seconds",
            "When the queue gauges were last read from the store (Unix time).",
            registry=registry,
        )
        self.refresh_seconds = Gauge(
            "jobkit_gauges_refresh_seconds",
            "How long the last read of the queue gauges took.",
            registry=registry,
        )
        self.slots = Gauge(
            "jobkit_worker_slots",
            "Worker slots of this process: busy (an attempt holds it) or free.",
            ["state"],
            registry=registry,
        )
        self._workers: list[Worker] = []
        self.slots.labels("busy").set_function(self._busy)
        self.slots.labels("free").set_function(self._free)
        # -- external calls
        self.calls = Histogram(
            "jobkit_external_call_seconds",
            "Calls to the job store, the blob store and the analyzer, by operation and"
            " outcome (ok, error).",
            ["target", "operation", "outcome"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.waits = Histogram(
            "jobkit_rate_limit_wait_seconds",
            "Time a call waited for the rate limiter (0 when it did not wait).",
            ["limiter"],
            buckets=(0, *BUCKETS),
            registry=registry,
        )
        self.breaker = Gauge(
            "jobkit_breaker_state",
            "1 for the circuit breaker's current state (closed, half_open, open), else 0.",
            ["breaker", "state"],
            registry=registry,
        )
        self.transitions = Counter(
            "jobkit_breaker_transitions",
            "Changes of a circuit breaker's state, by the state entered.",
            ["breaker", "to"],
            registry=registry,
        )
        self.tokens = Counter(
            "jobkit_model_tokens",
            "Tokens a model was sent (prompt) and answered (output).",
            ["model", "kind"],
            registry=registry,
        )
        self.cost = Counter(
            "jobkit_model_cost_usd",
            "Estimated cost of the model calls, in US dollars.",
            ["model"],
            registry=registry,
        )
        # -- HTTP
        self.requests = Histogram(
            "jobkit_http_request_seconds",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            buckets=BUCKETS,
            registry=registry,
        )
        # `labels()` takes a lock and builds its key on every call; the hot hooks keep the
        # children they made (their label sets are few).
        self._children: dict[tuple[Any, ...], Any] = {}
        self.queues: set[str] = set()  # queues seen in lifecycle events, for the gauges

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def prime(self, kinds: Iterable[tuple[str, str]]) -> None:
        """Create the lifecycle series of each (job type, queue) at zero. Prometheus takes a
        series that first appears at 1 for one that never grew: without this, a type's
        first jobs after a start would be missing from every rate."""
        for kind, queue in kinds:
            self.queues.add(queue)
            for name in journal.LEVELS:
                self._child(self.events, name, kind, queue)
            self._child(self.wait, kind, queue)
            for outcome in (jobs.SUCCEEDED, jobs.FAILED, jobs.STALLED, jobs.RELEASED):
                self._child(self.attempt, kind, queue, outcome)
            for status in _TERMINAL.values():
                self._child(self.duration, kind, queue, status)

    def guarded(self, name: str, state: breaker.BreakerState) -> None:
        """A rate limiter and breaker named `name` exist, the breaker in `state`."""
        self._child(self.waits, name)
        self.breaker_state(name, state)

    # -- worker slots ---------------------------------------------------------------------

    def watch(self, workers: Sequence[Worker]) -> None:
        """Report the slots of `workers` (read at each scrape: they are in memory)."""
        self._workers = list(workers)

    def _busy(self) -> float:
        return float(sum(worker.running for worker in self._workers))

    def _free(self) -> float:
        return float(sum(max(w.concurrency - w.running, 0) for w in self._workers))

    # -- hooks ------------------------------------------------------------------------------

    def on_lifecycle(self, effect: effects.Lifecycle, job: jobs.Job) -> None:
        """A lifecycle event, once stored; `job` is the job as written."""
        name, kind, queue = effect.name, effect.job_type, effect.queue
        self._child(self.events, name, kind, queue).inc()
        if queue not in self.queues:
            self.queues.add(queue)
        if name == "purged":
            return
        history = jobs.history(job)
        entry = history[effect.attempt - 1] if 0 < effect.attempt <= len(history) else None
        if name == "started" and entry is not None:
            waited = instants.seconds_between(jobs.run_at(job), jobs.entry_started_at(entry))
            self._child(self.wait, kind, queue).observe(max(waited, 0.0))
        elif name in _ENDS and entry is not None:
            ended = jobs.entry_ended_at(entry)
            outcome = jobs.entry_outcome(entry) or "unknown"
            if ended is not None:
                ran = instants.seconds_between(jobs.entry_started_at(entry), ended)
                self._child(self.attempt, kind, queue, outcome).observe(max(ran, 0.0))
            if name in {"attempt_failed", "stalled"}:
                self._failure(kind, queue, jobs.entry_error(entry), job)
        status = _TERMINAL.get(name)
        if status is not None:
            took = instants.seconds_between(jobs.created_at(job), jobs.updated_at(job))
            self._child(self.duration, kind, queue, status).observe(max(took, 0.0))

    def _failure(self, kind: str, queue: str, err: errors.Error | None, job: jobs.Job) -> None:
        code = "unknown" if err is None else err.code
        retryable = "unknown" if err is None else str(err.retryable).lower()
        outcome = "failed" if jobs.STATUS_TEXTS[jobs.status(job)] == "failed" else "retried"
        self._child(self.attempt_failures, kind, queue, code, retryable, outcome).inc()

    def on_effect(self, effect: effects.MachineEffect, job: jobs.Job) -> None:
        if type(effect) is effects.Lifecycle:
            self.on_lifecycle(effect, job)

    def on_call(self, target: str, operation: str, seconds: float, ok: bool) -> None:
        """A store, blob or analyzer call (`jobkit.worker.observed.CallObserver`)."""
        self._child(self.calls, target, operation, "ok" if ok else "error").observe(seconds)

    def on_analyzer_call(self, effect: str, seconds: float, ok: bool) -> None:
        """An analyzer call (`jobkit.worker.wrappers.Observer`)."""
        self.on_call("analyzer", effect, seconds, ok)

    def on_wait(self, limiter: str, seconds: float) -> None:
        """A rate limiter's acquisition (`jobkit.worker.wrappers.WaitObserver`)."""
        self._child(self.waits, limiter).observe(seconds)

    def on_breaker(
        self, name: str, before: breaker.BreakerState, after: breaker.BreakerState
    ) -> None:
        """A breaker's change of state (`jobkit.worker.wrappers.TransitionObserver`)."""
        self.breaker_state(name, after)
        self._child(self.transitions, name, after.value).inc()

    def breaker_state(self, name: str, state: breaker.BreakerState) -> None:
        for each in breaker.BreakerState:
            self._child(self.breaker, name, each.value).set(1 if each is state else 0)

    def on_model_usage(
        self, model: str, prompt_tokens: int, output_tokens: int, cost_usd: float
    ) -> None:
        """A model call's usage (`jobkit.worker.wrappers.UsageObserver`)."""
        self._child(self.tokens, model, "prompt").inc(prompt_tokens)
        self._child(self.tokens, model, "output").inc(output_tokens)
        self._child(self.cost, model).inc(cost_usd)

    def on_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self.requests, route, method, str(status)).observe(seconds)

    def on_counts(self, counts: schedule.Counts, now_timestamp: float, took: float) -> None:
        """The store's counts, read at `now_timestamp` in `took` seconds."""
        for queue, found in counts.items():
            self._child(self.jobs, queue, "pending").set(found.pending)
            self._child(self.jobs, queue, "processing").set(found.processing)
            self._child(self.due, queue).set(found.due)
            age = 0.0
            if found.oldest_due is not None:
                age = max(now_timestamp - found.oldest_due.timestamp(), 0.0)
            self._child(self.oldest, queue).set(age)
        self.refreshed.set(now_timestamp)
        self.refresh_seconds.set(took)


def kinds(types: registry.Registry, queues: Iterable[str] | None) -> list[tuple[str, str]]:
    """Each job type with its own queue and each configured one: the series to prime."""
    return [
        (job_type.name, queue)
        for job_type in types.types.values()
        for queue in sorted({job_type.queue, *(queues or ())})
    ]


async def endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def serve(metrics: Metrics, host: str, port: int) -> Callable[[], None]:
    """Serve `/metrics` on `host:port` from a thread of its own (prometheus-client's
    server: a scrape never waits for the event loop); returns what stops it."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
