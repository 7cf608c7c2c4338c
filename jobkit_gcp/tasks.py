"""Push dispatch's doorbell on Cloud Tasks (`ports.Doorbell`, `ports.QueuedRings`): each ring
is one HTTP task, scheduled for the moment the work falls due, that calls the service's own
`POST /internal/dispatch`; the request runs one due job (`jobkit.worker.dispatch`).

A task carries nothing that matters: no job id, an empty body; the store decides what runs.
Its request carries an OIDC token for the dispatch service account (Cloud Tasks signs it)
and, when a secret is configured, the `X-Jobkit-Dispatch-Secret` header (the emulator
attaches no token). Rings are not deduplicated: each stands for one job's worth of work
(doorbells are interchangeable, so their number is what counts), and a task named after
its due moment would also stop a second job due in the same second from getting its own;
Cloud Tasks also keeps a used name out of reach for up to an hour. A duplicate ring costs
one dispatch that finds nothing due.

`ring` never blocks: tasks are created on the event loop by the async gRPC client, at most
`IN_FLIGHT` at once. A create that fails is logged and dropped; the sweep rings again for
the jobs that no task waits for. With `CLOUD_TASKS_EMULATOR_HOST` set the client talks to
an emulator over an insecure channel, as the Firestore and Storage clients do with theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Final, Self

import attrs
import google.auth.exceptions
import grpc
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport

from jobkit import errors
from jobkit.worker.observed import CallObserver

log = logging.getLogger("jobkit.dispatch")

DISPATCH_PATH: Final = "/internal/dispatch"
SWEEP_PATH: Final = "/internal/sweep"
SECRET_HEADER: Final = "X-Jobkit-Dispatch-Secret"
# A task is scheduled this long after its job's runAt, so that a dispatch whose clock is a
# little behind Cloud Tasks' still finds the job due.
MARGIN_SECONDS: Final = 0.2
# How long Cloud Tasks waits for a dispatch's answer: its maximum. A job that may run
# longer belongs to pull mode (a worker with CPU always allocated).
DISPATCH_DEADLINE_SECONDS: Final = 1800
IN_FLIGHT: Final = 32  # task creations at once
CALL_SECONDS: Final = 10.0  # longest wait for one Cloud Tasks call
CLOSE_SECONDS: Final = 1.0  # longest wait at shutdown for rings still being created
PAGE_SIZE: Final = 1000


@attrs.frozen(kw_only=True)
class TasksConfig:
    """Where doorbells go: `queue` (`projects/P/locations/L/queues/Q`), the service's base
    `url` as Cloud Tasks reaches it, the OIDC token's `service_account` and `audience`
    (default: `url`), the `secret` header, and an emulator's `host:port`."""

    queue: str
    url: str
    service_account: str | None = None
    audience: str | None = None
    secret: str | None = attrs.field(default=None, repr=False)
    emulator_host: str | None = None

    @property
    def dispatch_url(self) -> str:
        return self.url.rstrip("/") + DISPATCH_PATH


class CloudTasksDoorbell:
    """Rings as Cloud Tasks tasks; open it (`async with`) on the event loop that rings it.

    `rung` and `failed` count the tasks created and the rings dropped, since it opened.
    """

    def __init__(
        self,
        config: TasksConfig,
        *,
        observer: CallObserver | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._observer = observer
        self._clock = clock
        self._client: tasks_v2.CloudTasksAsyncClient | None = None
        self._backlog: list[datetime | None] = []
        self._pump: asyncio.Task[None] | None = None
        self.rung = 0
        self.failed = 0

    async def __aenter__(self) -> Self:
        try:
            self._client = _client(self.config)
        except google.auth.exceptions.DefaultCredentialsError:
            raise errors.ConfigurationError(
                "JOBKIT_DISPATCH=push: no Google Cloud credentials for Cloud Tasks: set"
                " GOOGLE_APPLICATION_CREDENTIALS, or run on Google Cloud"
            ) from None
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Create the rings still waiting (a stopping instance's releases), for a while."""
        pump = self._pump
        if pump is not None and not pump.done():
            try:
                async with asyncio.timeout(CLOSE_SECONDS):
                    await asyncio.shield(pump)
            except TimeoutError:
                log.warning(
                    "rings still unsent at shutdown are dropped: the sweep rings for them",
                    extra={"dropped": len(self._backlog)},
                )
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.transport.close()  # type: ignore[no-untyped-call]

    # -- ports.Doorbell ------------------------------------------------------------------

    def ring(self, at: datetime | None = None) -> None:
        """Create one task, due at `at` (now when None or past), in the background."""
        if self._client is None:
            self.failed += 1
            log.warning("a ring was dropped: the Cloud Tasks doorbell is not open")
            return
        self._backlog.append(at)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(
                self._send(), name="jobkit-doorbell"
            )

    async def listen(self, on_ring: Callable[[], None]) -> _Silent:
        """Push dispatch has no listeners: Cloud Tasks delivers each ring as a request."""
        return _Silent()

    # -- ports.QueuedRings ---------------------------------------------------------------

    async def waiting(self, until: datetime) -> int:
        """The tasks in the queue due by `until` that are not being dispatched now (a task
        in flight is one whose attempts outnumber its responses)."""
        client = self._opened()
        started = time.perf_counter()
        ok = False
        count = 0
        try:
            request = tasks_v2.ListTasksRequest(parent=self.config.queue, page_size=PAGE_SIZE)
            pages = await client.list_tasks(request=request, timeout=CALL_SECONDS)
            async for task in pages:
                due = _when(task.schedule_time)
                if (due is None or due <= until) and task.dispatch_count <= task.response_count:
                    count += 1
            ok = True
        finally:
            self._observe("list_tasks", started, ok)
        return count

    # -- sending -------------------------------------------------------------------------

    async def _send(self) -> None:
        while self._backlog:
            batch, self._backlog = self._backlog[:IN_FLIGHT], self._backlog[IN_FLIGHT:]
            await asyncio.gather(*(self._create(at) for at in batch))

    async def _create(self, at: datetime | None) -> None:
        client = self._client
        if client is None:
            self.failed += 1
            return
        task = self._task(at)
        started = time.perf_counter()
        try:
            await client.create_task(parent=self.config.queue, task=task, timeout=CALL_SECONDS)
        except (exceptions.GoogleAPIError, grpc.RpcError, OSError) as exc:
            self.failed += 1
            self._observe("create_task", started, False)
            log.warning(
                "a doorbell was not rung (the sweep will ring for its job): %s",
                _first_line(exc),
                extra={"queue": self.config.queue, "error": type(exc).__name__},
            )
            return
        self.rung += 1
        self._observe("create_task", started, True)

    def _task(self, at: datetime | None) -> tasks_v2.Task:
        config = self.config
        headers = {"Content-Type": "application/json"}
        if config.secret:
            headers[SECRET_HEADER] = config.secret
        request = tasks_v2.HttpRequest(
            url=config.dispatch_url,
            http_method=tasks_v2.HttpMethod.POST,
            headers=headers,
            body=b"{}",
        )
        if config.service_account:
            request.oidc_token = tasks_v2.OidcToken(
                service_account_email=config.service_account,
                audience=config.audience or config.url,
            )
        task = tasks_v2.Task(
            http_request=request,
            dispatch_deadline=timedelta(seconds=DISPATCH_DEADLINE_SECONDS),
        )
        if at is not None and at > self._clock():
            task.schedule_time = at + timedelta(seconds=MARGIN_SECONDS)
        return task

    def _opened(self) -> tasks_v2.CloudTasksAsyncClient:
        if self._client is None:
            raise RuntimeError("the Cloud Tasks doorbell is not open")
        return self._client

    def _observe(self, operation: str, started: float, ok: bool) -> None:
        if self._observer is not None:
            self._observer("tasks", operation, time.perf_counter() - started, ok)


class _Silent:
    async def close(self) -> None:
        return None


def _client(config: TasksConfig) -> tasks_v2.CloudTasksAsyncClient:
    """The async client: on an emulator's insecure channel when one is named, else with the
    Application Default Credentials (the service account on Cloud Run)."""
    if config.emulator_host:
        channel = grpc.aio.insecure_channel(config.emulator_host)
        return tasks_v2.CloudTasksAsyncClient(
            transport=CloudTasksGrpcAsyncIOTransport(channel=channel)
        )
    return tasks_v2.CloudTasksAsyncClient()


def _when(stamp: object) -> datetime | None:
    """A task's schedule time as an aware datetime; None when unset (due at once)."""
    if not isinstance(stamp, datetime) or stamp.timestamp() <= 0:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
