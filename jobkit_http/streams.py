"""Live updates: a job's changes (`GET /jobs/{id}/events`) and a user's (`GET /events`) as
Server-Sent Events, fed by the change feed that the status long-poll waits on too.

A job's stream sends `status` events (the status endpoint's document; `id:` is the job's
version) for each version it sees, then `end` once the job is finished, and closes; a
client that reconnects with `Last-Event-ID` gets only what is newer. A user's stream sends
`ready` once it watches (load the list then, and miss nothing), `job` events (the job's
document, as the list serves it) for the user's jobs as they change, `deleted` for those
deleted, and `reset` when more changed at once than it keeps track of (load the list
again). Both send a comment every `events_heartbeat_seconds` so that proxies keep them
open. A user may hold `events_max_per_user` streams at once; one more is a `429`.

Streams need the same bearer token as every route. (The page reads them with `fetch`,
which can send it; see docs/explanation/security.md for why not `EventSource`.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from starlette.requests import Request

from jobkit import errors, jobs, status
from jobkit_http import sse, views
from jobkit_http.api import owned_job, principal_of, service
from jobkit_http.problems import Problem, invalid
from jobkit_http.service import Service

RETRY_AFTER_SECONDS = 5


class Streams:
    """The open streams of one process: how many each user holds, and the signal that ends
    them all when the server stops."""

    def __init__(self, *, max_per_user: int) -> None:
        self.max_per_user = max_per_user
        self.open: dict[str, int] = {}
        self.stopping = asyncio.Event()

    def admit(self, user: str) -> Callable[[], None]:
        """Count a new stream of `user`'s, or refuse it with a `429`; returns its release."""
        held = self.open.get(user, 0)
        if held >= self.max_per_user:
            raise Problem(
                429,
                "too-many-streams",
                f"you have {held} event streams open, the most one user may hold;"
                " close one (another tab, perhaps) and try again",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.open[user] = held + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self.open[user] - 1
            if left:
                self.open[user] = left
            else:
                del self.open[user]

        return release

    def stop(self) -> None:
        self.stopping.set()


def streams_of(request: Request) -> Streams:
    found: Streams = request.app.state.streams
    return found


def last_event_id(request: Request) -> int | None:
    """`Last-Event-ID` (a reconnecting client's), or `?lastEventId=` for clients that
    cannot set headers on their first request: the last version the client has."""
    params = request.query_params
    unknown = set(params) - {"lastEventId"}
    if unknown:
        raise invalid(
            [errors.Problem(field=name, message="unknown query parameter") for name in unknown]
        )
    raw = request.headers.get("last-event-id", params.get("lastEventId"))
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise invalid(
            [errors.Problem(field="Last-Event-ID", message="must be an event id of this stream")]
        )
    return int(raw)


def _stream(request: Request, user: str, chunks: AsyncIterator[bytes]) -> sse.EventStream:
    streams = streams_of(request)
    release = streams.admit(user)
    return sse.EventStream(chunks, stopping=streams.stopping, on_close=release)


async def job_events(request: Request) -> sse.EventStream:
    user = await principal_of(request)
    last = last_event_id(request)
    job = await owned_job(request, user)  # another user's job: 404, before any stream
    svc = service(request)
    return _stream(request, user, follow_job(svc, jobs.id(job), user, last))


async def user_events(request: Request) -> sse.EventStream:
    user = await principal_of(request)
    if request.query_params:
        raise invalid(
            [
                errors.Problem(field=name, message="unknown query parameter")
                for name in sorted(request.query_params)
            ]
        )
    return _stream(request, user, follow_user(service(request), user))


async def follow_job(
    svc: Service, job_id: str, user: str, last: int | None
) -> AsyncIterator[bytes]:
    """The events of one job from the version after `last` on, until it is finished."""
    heartbeat = svc.settings.events_heartbeat_seconds
    store = svc.runtime.store
    async with svc.runtime.changes.watch_job(job_id) as watch:
        job = await store.get(job_id)  # read after the watch began: no write slips between
        while True:
            if job is None or jobs.user_id(job) != user:
                yield sse.event("deleted", {"id": job_id})
                return
            version = jobs.version(job)
            if version != last:
                yield sse.event("status", views.status_view(job), event_id=version)
                last = version
            current = jobs.status(job)
            if status.is_terminal(current):
                yield sse.event("end", {"id": job_id, "status": current.value, "version": version})
                return
            if await watch.next(heartbeat):
                job = await store.get(job_id)
            else:
                yield sse.HEARTBEAT


async def follow_user(svc: Service, user: str) -> AsyncIterator[bytes]:
    """The changes of every job of `user`'s, from the moment the stream began."""
    heartbeat = svc.settings.events_heartbeat_seconds
    store = svc.runtime.store
    async with svc.runtime.changes.watch_user(user) as watch:
        yield sse.event("ready", {})
        while True:
            rung = await watch.next(heartbeat)
            if rung.more:
                yield sse.event("reset", {})
            elif not rung:
                yield sse.HEARTBEAT
            for job_id in [] if rung.more else sorted(rung.job_ids):
                job = await store.get(job_id)
                if job is None:
                    yield sse.event("deleted", {"id": job_id})
                elif jobs.user_id(job) == user:
                    yield sse.event("job", views.job_view(job))
