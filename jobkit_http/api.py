"""The API's shared pieces (auth, ownership, job documents) and its management endpoints."""

from __future__ import annotations

import asyncio
import re
import uuid

from returns.result import Failure, Success
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobkit import (
    errors,
    events,
    jobs,
)
from jobkit.worker import commands
from jobkit_http import views
from jobkit_http.problems import Problem
from jobkit_http.service import Service

PREFIX = views.PREFIX
# The form `str(uuid.UUID(...))` gives, which clients echo back: no need to parse it.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


async def principal_of(request: Request) -> str:
    """The caller's user id, or a `401`/`403` problem."""
    match await service(request).authenticator.authenticate(request.headers.get("authorization")):
        case Success(principal):
            user: str = principal.user_id
            return user
        case Failure(failure):
            raise Problem(
                failure.status,
                "unauthorized" if failure.status == 401 else "forbidden",
                failure.detail,
                title=failure.title,
                headers={"WWW-Authenticate": failure.www_authenticate},
            )
    raise AssertionError("unreachable")


def job_id_of(request: Request) -> str:
    raw: str = request.path_params["job_id"]
    if _CANONICAL_UUID.fullmatch(raw):
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise Problem(404, "not-found", f"no job {raw!r}: job ids are UUIDs") from None


async def owned_job(request: Request, user: str) -> jobs.Job:
    """The caller's job; another user's job is reported exactly like a missing one."""
    job_id = job_id_of(request)
    job = await commands.owned(service(request).runtime.store, job_id, user)
    if job is None:
        raise Problem(404, "not-found", f"no job {job_id}")
    return job


def accepted(job: jobs.Job, *, replayed: bool = False) -> JSONResponse:
    body = views.accepted_view(job)
    headers = {"Location": body["jobUrl"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=202, headers=headers)


def refused(refusal: commands.Refused) -> Problem:
    match refusal:
        case commands.NotFound(job_id=job_id):
            return Problem(404, "not-found", f"no job {job_id}")
        case errors.JobError(code=code, message=message, status=current):
            return Problem(409, "conflict", message, code=code, jobStatus=current)
    raise AssertionError("unreachable")


# -- management --------------------------------------------------------------------


async def _command(request: Request, event: events.Event) -> jobs.Job:
    user = await principal_of(request)
    svc = service(request)
    match await commands.apply(
        svc.runtime.store,
        svc.runtime.blobs,
        job_id_of(request),
        event,
        user_id=user,
        clock=svc.clock,
        on_effect=svc.on_effect,
    ):
        case Success(job):
            found: jobs.Job = job
            return found
        case Failure(refusal):
            raise refused(refusal)
    raise AssertionError("unreachable")


async def cancel_job(request: Request) -> Response:
    return JSONResponse(views.job_view(await _command(request, events.CancelRequested())))


async def retry_job(request: Request) -> Response:
    job = await _command(request, events.RetryRequested())
    service(request).submitted(job)
    return JSONResponse(views.job_view(job))


async def delete_record(request: Request) -> Response:
    await _command(request, events.Purged())
    return Response(status_code=204)


# -- operations -------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        async with asyncio.timeout(2):
            await service(request).runtime.ready()
    except Exception as exc:  # any failure means not ready; say which
        raise Problem(
            503, "not-ready", f"the job store or blob store is not answering: {type(exc).__name__}"
        ) from None
    return JSONResponse({"status": "ready"})
