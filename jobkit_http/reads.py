"""Reading endpoints: the job list, a job, its status (ETag, long-poll) and its result."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Final

from returns.result import Failure, Success
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from jobkit import _cache, errors, instants, jobs, listing, ports, status
from jobkit_http import views
from jobkit_http.api import job_id_of, owned_job, principal_of, service
from jobkit_http.problems import Problem, invalid

MAX_CURSOR = 512  # issued cursors are ~150 characters; longer ones are refused unparsed
LIST_PARAMS = frozenset({"status", "type", "createdFrom", "createdTo", "sort", "limit", "cursor"})
SORTS: dict[str, tuple[listing.SortField, bool]] = {
    "createdAt": ("createdAt", False),
    "-createdAt": ("createdAt", True),
    "priority": ("priority", False),
    "-priority": ("priority", True),
}


def _instant(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return instants.parse(raw)
    except ValueError:
        raise invalid(
            [errors.Problem(field=name, message="must be an ISO 8601 instant with an offset")]
        ) from None


def list_query(request: Request) -> listing.Query:
    params = request.query_params
    problems = [
        errors.Problem(field=name, message="unknown query parameter")
        for name in sorted(set(params) - LIST_PARAMS)
    ]
    statuses: set[status.Status] = set()
    for value in params.getlist("status"):
        for part in filter(None, value.split(",")):
            try:
                statuses.add(status.Status(part))
            except ValueError:
                known = ", ".join(s.value for s in status.Status)
                problems.append(
                    errors.Problem(field="status", message=f"{part!r} is not one of {known}")
                )
    types = frozenset(p for value in params.getlist("type") for p in value.split(",") if p)
    sort = params.get("sort", "-createdAt")
    if sort not in SORTS:
        problems.append(errors.Problem(field="sort", message=f"must be one of {', '.join(SORTS)}"))
        sort = "-createdAt"
    limit_raw = params.get("limit", "20")
    limit = int(limit_raw) if limit_raw.isascii() and limit_raw.isdigit() else 0
    if not 1 <= limit <= listing.MAX_LIMIT:
        problems.append(
            errors.Problem(
                field="limit", message=f"must be an integer within 1..{listing.MAX_LIMIT}"
            )
        )
        limit = 20
    if problems:
        raise invalid(problems, "the query has invalid parameters")
    field, descending = SORTS[sort]
    query = listing.Query(
        statuses=frozenset(statuses),
        types=types,
        created_from=_instant(request, "createdFrom"),
        created_to=_instant(request, "createdTo"),
        sort=field,
        descending=descending,
        limit=limit,
    )
    cursor = params.get("cursor")
    if cursor is None:
        return query
    if len(cursor) > MAX_CURSOR:
        raise invalid(
            [errors.Problem(field="cursor", message="is not a cursor this service issued")],
            "the cursor is not valid for this query",
        )
    match listing.decode_cursor(cursor, query):
        case Success(continued):
            found: listing.Query = continued
            return found
        case Failure(bad):
            raise invalid(bad.problems, "the cursor is not valid for this query")
    raise AssertionError("unreachable")


async def list_jobs(request: Request) -> Response:
    user = await principal_of(request)
    query = list_query(request)
    page = await service(request).runtime.store.list(user, query)
    return JSONResponse(
        {"jobs": [views.job_view(job) for job in page.jobs], "nextCursor": page.next_cursor}
    )


async def get_job(request: Request) -> Response:
    user = await principal_of(request)
    return JSONResponse(views.job_view(await owned_job(request, user)))


# Status bodies by job value. Pollers read the same job value until it changes (the store
# hands back the job it decoded before), so its body is built once. Ownership is still
# checked per request.
_BODIES: Final = _cache.IdentityCache[bytes](max_entries=1024)


def status_body(job: jobs.Job) -> bytes:
    """`views.status_view(job)` rendered as `JSONResponse` renders it."""
    found = _BODIES.get(job)
    if found is None:
        found = _BODIES.put(job, bytes(JSONResponse(views.status_view(job)).body))
    return found


def etag(job: jobs.Job) -> str:
    return f'"v{jobs.version(job)}"'


def retry_after(job: jobs.Job, now: datetime) -> str | None:
    """How long a poller should wait: until the next run, or a second while running."""
    current = jobs.status(job)
    if status.is_terminal(current):
        return None
    if current == status.PENDING:
        seconds = instants.seconds_between(now, jobs.run_at(job))
        return str(min(max(1, math.ceil(seconds)), 60))
    return "1"


def wait_seconds(request: Request, longest: float) -> float:
    if not request.scope["query_string"]:  # the common poll: no query to parse
        return 0.0
    raw = request.query_params.get("wait")
    extra = set(request.query_params) - {"wait"}
    if extra:
        raise invalid(
            [
                errors.Problem(field=name, message="unknown query parameter")
                for name in sorted(extra)
            ]
        )
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= longest:
        raise invalid(
            [
                errors.Problem(
                    field="wait", message=f"must be a number of seconds within 0..{longest:g}"
                )
            ]
        )
    return seconds


async def get_status(request: Request) -> Response:
    user = await principal_of(request)
    svc = service(request)
    wait = wait_seconds(request, svc.settings.long_poll_max_seconds)
    job = await svc.polled(job_id_of(request), user)
    if job is None:
        job = await owned_job(request, user)
    seen = request.headers.get("if-none-match")
    if wait > 0:
        since = seen if seen is not None else etag(job)
        job = await svc.wait_for_change(job, since, wait)
    tag = etag(job)
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    after = retry_after(job, svc.clock())
    if after is not None:
        headers["Retry-After"] = after
    if seen is not None and tag in {part.strip() for part in seen.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(status_body(job), headers=headers, media_type=JSONResponse.media_type)


async def get_result(request: Request) -> Response:
    user = await principal_of(request)
    job = await owned_job(request, user)
    if jobs.status(job) != status.COMPLETED:
        raise Problem(
            409,
            "not-completed",
            f"the job is {jobs.status(job).value}; its result exists once it has completed",
            jobStatus=jobs.status(job).value,
        )
    key = jobs.result_key(job)
    if key is None:
        raise Problem(404, "no-result", "this job completed without a result document")
    blobs = service(request).runtime.blobs
    try:
        chunks = await blobs.get(key)
    except ports.BlobNotFound:
        raise Problem(
            404, "no-result", "the result document is gone (deleted or expired)"
        ) from None
    return StreamingResponse(chunks, media_type="application/json")
